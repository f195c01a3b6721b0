-- Audit events: who did what, when, from where, and how it ended. Never a secret; the
-- subject is a user id, not a handle.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    app_id      TEXT,
    user_id     TEXT,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    ip          TEXT,
    detail      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_events_app_time ON audit_events(app_id, created_at);
