-- People who sign in, what they may see, their sessions, and device credentials.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         text NOT NULL CHECK (login ~ '^[^[:space:]]{1,64}$'),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('admin', 'staff', 'caregiver', 'family')),
    -- Everyone but an administrator works within one community; an admin may span all.
    community_id  bigint REFERENCES communities(id) ON DELETE RESTRICT,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    -- A caregiver's sign-in is the caregiver the 六助 dispatcher assigns orders to.
    caregiver_id  bigint UNIQUE REFERENCES caregivers(id) ON DELETE SET NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (role = 'admin' OR community_id IS NOT NULL),
    CHECK (caregiver_id IS NULL OR role = 'caregiver')
);
-- "Wang.Li" and "wang.li" are the same person signing in.
CREATE UNIQUE INDEX users_login_idx ON users (lower(login));

-- A family member sees an elder only through a link with the elder's consent on record.
CREATE TABLE family_links (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    elder_id            bigint NOT NULL REFERENCES elders(id) ON DELETE CASCADE,
    relation            text CHECK (length(relation) <= 40),
    consent_recorded_at timestamptz NOT NULL,
    consented_by        text NOT NULL CHECK (length(consented_by) BETWEEN 1 AND 100),
    recorded_by         bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);
CREATE UNIQUE INDEX family_links_open_idx ON family_links (user_id, elder_id)
    WHERE revoked_at IS NULL;
CREATE INDEX family_links_elder_idx ON family_links (elder_id);

-- One row per sign-in; access tokens name their session, so revoking it ends them too.
CREATE TABLE sessions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    client_addr text,
    user_agent  text CHECK (length(user_agent) <= 300),
    revoked_at  timestamptz,
    revoked_why text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Refresh tokens rotate: each is good for one use.  A used one presented again means
-- it was copied, and the whole session is revoked (OAuth 2.0 security BCP, 4.14).
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  bigint NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE login_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login       text NOT NULL,           -- as typed, lower-cased; also for unknown names
    client_addr text NOT NULL,
    at          timestamptz NOT NULL,
    succeeded   boolean NOT NULL
);
CREATE INDEX login_attempts_login_idx ON login_attempts (login, at);
CREATE INDEX login_attempts_addr_idx ON login_attempts (client_addr, at);
CREATE INDEX login_attempts_at_idx ON login_attempts (at);  -- pruning after a day

-- Each device's own MQTT password, as the PBKDF2 hash Mosquitto's password file holds;
-- the plaintext is shown once when issued and never stored.
CREATE TABLE device_credentials (
    device_id   text PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    secret_hash text NOT NULL CHECK (secret_hash LIKE '$7$%'),
    issued_at   timestamptz NOT NULL,
    revoked_at  timestamptz
);
