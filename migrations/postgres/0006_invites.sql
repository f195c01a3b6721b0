-- Invitations, one per invitee and inviter (spec §3.9): a second inviter adds an invite of
-- its own instead of replacing the first one's code, sender or metadata.
CREATE TABLE invites (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    handle_idx  BYTEA NOT NULL,
    sender_id   TEXT NOT NULL,
    code_hash   BYTEA NOT NULL,
    payload     BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, handle_idx, sender_id)
);
CREATE INDEX invites_sender ON invites(app_id, sender_id);
DELETE FROM codes WHERE purpose = 'invite';
