-- A pending signup re-requested with another password before it was completed is contested:
-- whoever completes it proves the mailbox, not which request's password is theirs, so the
-- account is created without a password (set by a reset) rather than with a stranger's.
ALTER TABLE signups ADD COLUMN contested SMALLINT NOT NULL DEFAULT 0;
