-- Who looked at or changed an elder's record, and how family members want to be told.

-- Append-only: rows are written by storage/audit.py and never changed.  The trigger
-- below refuses UPDATE and DELETE for every role, the owner included, so a bug or a
-- hand-typed statement cannot rewrite the trail; TRUNCATE is refused too.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    user_id     bigint,          -- no foreign key: the trail outlives a deleted account
    login       text CHECK (length(login) <= 100),
    role        text CHECK (length(role) <= 20),
    action      text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    elder_id    bigint,          -- likewise kept when the elder is deleted
    object_kind text CHECK (length(object_kind) <= 40),
    object_id   text CHECK (length(object_id) <= 100),
    detail      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    client_addr text CHECK (length(client_addr) <= 100)
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_elder_idx ON audit_log (elder_id, at DESC);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, at DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- How a person wants to be notified.  ``channels`` is a list of
-- {"kind": "in_app|wecom|dingtalk|email|sms|webhook", "address": "..."}; quiet hours are
-- Asia/Shanghai wall-clock times (both NULL: no quiet hours).  The notification sender
-- reads this table.
CREATE TABLE notification_preferences (
    user_id     bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    channels    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(channels) = 'array'),
    quiet_start time,
    quiet_end   time,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
