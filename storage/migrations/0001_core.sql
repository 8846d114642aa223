-- Reference data and state that are not time series.

CREATE TABLE communities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    center_lat  double precision,
    center_lon  double precision,
    geojson     jsonb NOT NULL DEFAULT '{"type":"FeatureCollection","features":[]}'
);

CREATE TABLE elders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id bigint REFERENCES communities(id) ON DELETE RESTRICT,
    external_key text UNIQUE,            -- an id from another system (or the simulator's roster)
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    gender       text CHECK (gender IN ('F', 'M')),
    birth_year   int CHECK (birth_year BETWEEN 1900 AND 2100),
    address      text CHECK (length(address) <= 300),
    phone        text CHECK (length(phone) <= 40),
    home_lat     double precision CHECK (home_lat BETWEEN -90 AND 90),
    home_lon     double precision CHECK (home_lon BETWEEN -180 AND 180),
    notes        text CHECK (length(notes) <= 2000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id                text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    model             text CHECK (length(model) <= 100),
    elder_id          bigint REFERENCES elders(id) ON DELETE SET NULL,
    report_interval_s int NOT NULL DEFAULT 60 CHECK (report_interval_s BETWEEN 1 AND 86400),
    online            boolean,
    status_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_elder_idx ON devices (elder_id);

-- Who wore which device when: readings keep the elder they were taken from even
-- after a device is swapped to someone else.
CREATE TABLE device_pairings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    elder_id    bigint NOT NULL REFERENCES elders(id) ON DELETE CASCADE,
    paired_at   timestamptz NOT NULL DEFAULT now(),
    unpaired_at timestamptz
);
CREATE UNIQUE INDEX device_pairings_open_idx ON device_pairings (device_id) WHERE unpaired_at IS NULL;

-- One row per elder for an instant map load: the newest value of everything.
CREATE TABLE latest_state (
    elder_id   bigint PRIMARY KEY REFERENCES elders(id) ON DELETE CASCADE,
    device_id  text,
    last_seen  timestamptz,
    pos_ts     timestamptz,
    lat        double precision,
    lon        double precision,
    acc        real,
    src        text,
    vitals_ts  timestamptz,
    hr         real,
    spo2       real,
    sbp        real,
    dbp        real,
    temp       real,
    rr         real,
    steps      int,
    battery    real,
    worn       boolean,
    event_ts   timestamptz,
    event_type text,
    online     boolean,
    status_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Bad input is kept, with the reason, never dropped silently.
CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL,
    item_index  int,
    raw         bytea NOT NULL,
    raw_size    int NOT NULL
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at DESC);
CREATE INDEX quarantine_reason_idx ON quarantine (reason, received_at DESC);
CREATE INDEX quarantine_device_idx ON quarantine (device_id, received_at DESC);
