-- Public keys of the CosyncJWT server Tessera replaces: app-tokens it signed (RS256, scope
-- "app", claim appId) stay valid so shipped client apps keep working. Never its access-tokens.
CREATE TABLE legacy_server_keys (
    kid         TEXT PRIMARY KEY,
    public_der  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
-- The master key rotation under way or last finished (one row, id 'master'), so a rotation
-- resumes where it stopped. sealed_new is the new master key sealed under the old one: every
-- node holding the old key reads it and can open values re-sealed meanwhile. It is erased
-- once a node starts on the new key.
CREATE TABLE key_rotation (
    id           TEXT PRIMARY KEY,
    old_kid      BIGINT NOT NULL,
    new_kid      BIGINT NOT NULL,
    sealed_new   BYTEA,
    phase        TEXT NOT NULL,
    cursor_pk    TEXT NOT NULL,
    done         BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
