-- Tessera schema (SQLite). Times are Unix milliseconds; flags are 0/1; personal data is sealed
-- (AEAD) in *_enc columns and looked up through keyed blind indexes in *_idx columns.

CREATE TABLE server_keys (
    purpose     TEXT PRIMARY KEY,
    kid         TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE apps (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    settings    TEXT NOT NULL,
    secrets     BLOB,
    active_kid  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE app_keys (
    kid             TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    sealed_private  BLOB NOT NULL,
    public_der      BLOB NOT NULL,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX app_keys_app ON app_keys(app_id);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    handle_idx         BLOB NOT NULL,
    handle_enc         BLOB NOT NULL,
    user_name_idx      BLOB,
    user_name_enc      BLOB,
    password_hash      TEXT,
    status             TEXT NOT NULL,
    locale             TEXT NOT NULL,
    metadata_enc       BLOB,
    epoch              BIGINT NOT NULL DEFAULT 0,
    login_provider     TEXT NOT NULL DEFAULT '',
    two_factor_phone   SMALLINT NOT NULL DEFAULT 0,
    two_factor_google  SMALLINT NOT NULL DEFAULT 0,
    totp_enc           BLOB,
    totp_last_step     BIGINT NOT NULL DEFAULT 0,
    phone_enc          BLOB,
    phone_idx          BLOB,
    phone_verified     SMALLINT NOT NULL DEFAULT 0,
    last_login         BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_handle ON users(app_id, handle_idx);
CREATE UNIQUE INDEX users_user_name ON users(app_id, user_name_idx);

CREATE TABLE signups (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    handle_idx     BLOB NOT NULL,
    handle_enc     BLOB NOT NULL,
    password_hash  TEXT NOT NULL,
    metadata_enc   BLOB,
    locale         TEXT NOT NULL,
    code_hash      BLOB NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX signups_handle ON signups(app_id, handle_idx);

-- One outstanding code per purpose and subject (reset, phone verification, SMS login...).
CREATE TABLE codes (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    subject     BLOB NOT NULL,
    code_hash   BLOB NOT NULL,
    payload     BLOB,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, purpose, subject)
);

-- Attempt budgets (codes, passwords): a count within a window, updated atomically.
CREATE TABLE attempts (
    key           TEXT PRIMARY KEY,
    count         BIGINT NOT NULL,
    window_start  BIGINT NOT NULL
);
