-- Dashboard sessions: a signed-in browser holds a random token in an HttpOnly cookie; the store
-- keeps only its hash, the key it was opened with (so revoking the key ends its sessions) and the
-- CSRF token the dashboard must echo on every change.
CREATE TABLE ui_sessions (
    hash       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_key ON ui_sessions (key_id);
