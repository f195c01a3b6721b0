-- Server admin tokens (shown once at creation, stored as keyed hashes, revocable, optional
-- expiry) and a flag for anonymous users, whose handles are sealed and cannot be counted by name.
CREATE TABLE admin_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
ALTER TABLE users ADD COLUMN anonymous SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX users_app_created ON users(app_id, created_at);
CREATE INDEX invites_app ON invites(app_id, created_at);
CREATE INDEX audit_events_time ON audit_events(created_at);
