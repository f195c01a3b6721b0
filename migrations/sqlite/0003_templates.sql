-- Per-app message templates (spec §6.1), per name and locale; the built-in English
-- templates apply where an app has none.
CREATE TABLE templates (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    locale      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    link_text   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, name, locale)
);
