-- The detection rules' state per elder (baselines, open episodes, windows), saved
-- periodically so that a restart or a hand-over to another worker forgets nothing.
CREATE TABLE detector_state (
    elder_id bigint PRIMARY KEY REFERENCES elders(id) ON DELETE CASCADE,
    state    jsonb NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
