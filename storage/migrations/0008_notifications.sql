-- Notifications: per-community escalation ladders, who is on duty, the emergency number,
-- every delivery attempt, and the in-app inbox.

-- Also created by 0007 (the family page); the same shape, so either may come first.
-- channels: [{"kind": "wecom", "url": "wecombot://...", "enabled": true}, ...] in the
-- order to try them; quiet hours are Asia/Shanghai wall-clock times.
CREATE TABLE IF NOT EXISTS notification_preferences (
    user_id     bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    channels    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(channels) = 'array'),
    quiet_start time,
    quiet_end   time,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- steps: [{"audience": "duty", "wait_s": 120, "min_severity": "medium", "remind": true}, ...]
-- A community without a row uses notify.ladder.DEFAULT_LADDER.
CREATE TABLE escalation_ladders (
    community_id  bigint PRIMARY KEY REFERENCES communities(id) ON DELETE CASCADE,
    steps         jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    reminder_s    int NOT NULL DEFAULT 60 CHECK (reminder_s BETWEEN 0 AND 86400),
    max_reminders int NOT NULL DEFAULT 5 CHECK (max_reminders BETWEEN 0 AND 50),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint REFERENCES users(id) ON DELETE SET NULL
);

-- Who the ladder's first two steps reach now (UTC; ends_at NULL = until further notice).
CREATE TABLE duty_roster (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id   bigint NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    user_id        bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_in_ladder text NOT NULL CHECK (role_in_ladder IN ('duty', 'supervisor')),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX duty_roster_idx ON duty_roster (community_id, starts_at);

-- The last step: the number to call, and the apprise URL (an SMS or voice gateway) that
-- reaches whoever answers it; without a URL the step is shown, not sent.
CREATE TABLE emergency_contacts (
    community_id bigint PRIMARY KEY REFERENCES communities(id) ON DELETE CASCADE,
    label        text NOT NULL DEFAULT '120' CHECK (length(label) BETWEEN 1 AND 40),
    phone        text NOT NULL CHECK (length(phone) BETWEEN 1 AND 40),
    notify_url   text CHECK (length(notify_url) <= 2000)
);

-- Every try on every channel.  A row is claimed (ok NULL) before the send, so two nodes
-- never both send it (the unique key), and finished with the outcome after.
CREATE TABLE notification_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice       text NOT NULL CHECK (length(notice) <= 200),  -- 'alert:7/step:1/round:0'
    alert_id     bigint REFERENCES alerts(id) ON DELETE CASCADE,
    order_id     bigint REFERENCES orders(id) ON DELETE CASCADE,
    user_id      bigint REFERENCES users(id) ON DELETE SET NULL,
    recipient    text NOT NULL,                 -- 'user:5' or 'emergency:<community>'
    recipient_name text NOT NULL,
    step         text NOT NULL,                 -- duty, supervisor, family, emergency, caregiver
    step_no      int,
    round        int NOT NULL DEFAULT 0,        -- 0 the first notice, n the n-th reminder
    attempt_no   int NOT NULL CHECK (attempt_no >= 1),  -- the person's n-th channel
    channel_kind text NOT NULL,
    target       text NOT NULL,                 -- the URL, secrets masked
    at           timestamptz NOT NULL,
    finished_at  timestamptz,
    ok           boolean,                       -- NULL: being sent
    error        text CHECK (length(error) <= 1000),
    UNIQUE (notice, recipient, attempt_no)
);
CREATE INDEX notification_attempts_alert_idx ON notification_attempts (alert_id, id);
CREATE INDEX notification_attempts_order_idx ON notification_attempts (order_id, id);

CREATE TABLE notification_inbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    notice     text NOT NULL,
    alert_id   bigint REFERENCES alerts(id) ON DELETE CASCADE,
    order_id   bigint REFERENCES orders(id) ON DELETE CASCADE,
    step       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL,
    read_at    timestamptz,
    UNIQUE (user_id, notice)
);
CREATE INDEX notification_inbox_user_idx ON notification_inbox (user_id, id DESC);
