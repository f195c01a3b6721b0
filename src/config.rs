//! One typed `Settings`: built-in defaults, then an optional TOML file (`--config`), then
//! `TESSERA_*` environment variables (env wins). Unknown file keys are rejected; secrets are
//! `SecretString` and never printed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Everything the server and the CLI need to run.
#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in the data directory.
    pub database_url: SecretString,
    pub listen: String,
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
    /// Base URL clients reach this server at (JWKS URLs, e-mail links); defaults to `http://LISTEN`.
    pub public_url: Option<String>,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub hash_workers: usize,
    pub hash_queue: usize,
    pub access_token_ttl_secs: i64,
    pub signup_code_ttl_secs: i64,
    pub reset_code_ttl_secs: i64,
    pub invite_code_ttl_secs: i64,
    pub code_max_attempts: i64,
    pub attempt_window_secs: i64,
    /// Lifetime of a login-token (the first half of a two-factor login).
    pub login_token_ttl_secs: i64,
    /// Lifetime of SMS codes (phone verification, SMS login).
    pub sms_code_ttl_secs: i64,
    /// SMS sent per user, and per phone number, within one attempt window.
    pub sms_send_limit: i64,
    /// Root of the Twilio-compatible SMS API.
    pub sms_base_url: String,
    /// Mails carrying a code (signup, reset, invite) per recipient within one attempt window.
    pub mail_send_limit: i64,
    /// Failed password logins per account before a lockout, for apps whose
    /// `maxLoginAttempts` is 0; 0 turns that default off.
    pub login_max_attempts: i64,
    /// How long failed logins are counted, and so how long a lockout lasts at most.
    pub login_lockout_secs: i64,
    pub db_max_connections: u32,
    pub db_acquire_timeout_secs: u64,
    /// PostgreSQL `statement_timeout` per connection; 0 disables it.
    pub db_statement_timeout_secs: u64,
    /// Longest a request may take; past it the answer is 503 (a database that stopped
    /// answering mid-request, a stuck mail server).
    pub request_timeout_secs: u64,
    pub log_format: LogFormat,
    /// Requests per minute per client address on the CosyncJWT routes that need no login or
    /// that send mail or SMS; 0 turns the limit off.
    pub rate_limit_per_min: u32,
    /// Requests per minute per client address on the other public routes (JWKS, discovery,
    /// health, metrics, documents); 0 turns the limit off.
    pub public_rate_limit_per_min: u32,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks); empty: the
    /// client address is the socket's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The TOML file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    public_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    hash_workers: Option<usize>,
    hash_queue: Option<usize>,
    access_token_ttl_secs: Option<i64>,
    signup_code_ttl_secs: Option<i64>,
    reset_code_ttl_secs: Option<i64>,
    invite_code_ttl_secs: Option<i64>,
    code_max_attempts: Option<i64>,
    attempt_window_secs: Option<i64>,
    login_token_ttl_secs: Option<i64>,
    sms_code_ttl_secs: Option<i64>,
    sms_send_limit: Option<i64>,
    sms_base_url: Option<String>,
    mail_send_limit: Option<i64>,
    login_max_attempts: Option<i64>,
    login_lockout_secs: Option<i64>,
    db_max_connections: Option<u32>,
    db_acquire_timeout_secs: Option<u64>,
    db_statement_timeout_secs: Option<u64>,
    rate_limit_per_min: Option<u32>,
    public_rate_limit_per_min: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    request_timeout_secs: Option<u64>,
    log_format: Option<LogFormat>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileSettings>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileSettings::default(),
        };
        // A value the process cannot read must not fall back silently to a default (for the
        // database URL, a local SQLite file): refuse it, naming only the variable.
        let unreadable = std::cell::RefCell::new(None);
        let settings = Self::build(from_file, |name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotUnicode(_)) => {
                unreadable
                    .borrow_mut()
                    .get_or_insert_with(|| name.to_owned());
                None
            }
            Err(std::env::VarError::NotPresent) => None,
        });
        if let Some(name) = unreadable.into_inner() {
            return Err(ConfigError::Env {
                name,
                message: "not valid UTF-8".into(),
            });
        }
        settings
    }

    fn build(f: FileSettings, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env_parse = |name: &str| -> Result<Option<String>, ConfigError> {
            Ok(env(name).filter(|v| !v.is_empty()))
        };
        fn num<T: std::str::FromStr>(
            name: &str,
            v: Option<String>,
        ) -> Result<Option<T>, ConfigError> {
            v.map(|s| {
                s.trim().parse::<T>().map_err(|_| ConfigError::Env {
                    name: name.to_owned(),
                    message: format!("not a valid number: {s:?}"),
                })
            })
            .transpose()
        }
        let data_dir = env_parse("TESSERA_DATA_DIR")?
            .map(PathBuf::from)
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("./tessera-data"));
        let database_url = env_parse("TESSERA_DATABASE_URL")?
            .or(f.database_url)
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("tessera.db").display()
                )
            });
        crate::store::sql::Backend::from_url(&database_url).map_err(|e| {
            ConfigError::Invalid(match e {
                crate::store::StoreError::Other(why) => why,
                other => other.to_string(),
            })
        })?;
        let log_format = match env_parse("TESSERA_LOG_FORMAT")? {
            Some(v) => match v.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(ConfigError::Env {
                        name: "TESSERA_LOG_FORMAT".into(),
                        message: format!("expected text or json, got {other:?}"),
                    });
                }
            },
            None => f.log_format.unwrap_or(LogFormat::Text),
        };
        macro_rules! pick {
            ($name:literal, $field:expr, $default:expr) => {
                num($name, env_parse($name)?)?
                    .or($field)
                    .unwrap_or($default)
            };
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let s = Settings {
            database_url: SecretString::from(database_url),
            listen: env_parse("TESSERA_LISTEN")?
                .or(f.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            master_key: env_parse("TESSERA_MASTER_KEY")?
                .or(f.master_key)
                .map(SecretString::from),
            master_key_file: env_parse("TESSERA_MASTER_KEY_FILE")?
                .map(PathBuf::from)
                .or(f.master_key_file),
            public_url: env_parse("TESSERA_PUBLIC_URL")?
                .or(f.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            smtp_url: env_parse("TESSERA_SMTP_URL")?
                .or(f.smtp_url)
                .map(SecretString::from),
            mail_from: env_parse("TESSERA_MAIL_FROM")?
                .or(f.mail_from)
                .unwrap_or_else(|| "Tessera <no-reply@localhost>".into()),
            argon2_memory_kib: pick!("TESSERA_ARGON2_MEMORY_KIB", f.argon2_memory_kib, 19_456),
            argon2_iterations: pick!("TESSERA_ARGON2_ITERATIONS", f.argon2_iterations, 2),
            hash_workers: pick!("TESSERA_HASH_WORKERS", f.hash_workers, cores),
            hash_queue: pick!("TESSERA_HASH_QUEUE", f.hash_queue, cores * 32),
            access_token_ttl_secs: pick!(
                "TESSERA_ACCESS_TOKEN_TTL_SECS",
                f.access_token_ttl_secs,
                24 * 3600
            ),
            signup_code_ttl_secs: pick!(
                "TESSERA_SIGNUP_CODE_TTL_SECS",
                f.signup_code_ttl_secs,
                48 * 3600
            ),
            reset_code_ttl_secs: pick!("TESSERA_RESET_CODE_TTL_SECS", f.reset_code_ttl_secs, 3600),
            invite_code_ttl_secs: pick!(
                "TESSERA_INVITE_CODE_TTL_SECS",
                f.invite_code_ttl_secs,
                7 * 24 * 3600
            ),
            code_max_attempts: pick!("TESSERA_CODE_MAX_ATTEMPTS", f.code_max_attempts, 5),
            attempt_window_secs: pick!("TESSERA_ATTEMPT_WINDOW_SECS", f.attempt_window_secs, 3600),
            login_token_ttl_secs: pick!(
                "TESSERA_LOGIN_TOKEN_TTL_SECS",
                f.login_token_ttl_secs,
                300
            ),
            sms_code_ttl_secs: pick!("TESSERA_SMS_CODE_TTL_SECS", f.sms_code_ttl_secs, 600),
            sms_send_limit: pick!("TESSERA_SMS_SEND_LIMIT", f.sms_send_limit, 5),
            mail_send_limit: pick!("TESSERA_MAIL_SEND_LIMIT", f.mail_send_limit, 10),
            login_max_attempts: pick!("TESSERA_LOGIN_MAX_ATTEMPTS", f.login_max_attempts, 10),
            login_lockout_secs: pick!("TESSERA_LOGIN_LOCKOUT_SECS", f.login_lockout_secs, 900),
            sms_base_url: env_parse("TESSERA_SMS_BASE_URL")?
                .or(f.sms_base_url)
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_owned(),
            rate_limit_per_min: pick!("TESSERA_RATE_LIMIT_PER_MIN", f.rate_limit_per_min, 300),
            public_rate_limit_per_min: pick!(
                "TESSERA_PUBLIC_RATE_LIMIT_PER_MIN",
                f.public_rate_limit_per_min,
                6000
            ),
            trusted_proxies: parse_proxies(
                env_parse("TESSERA_TRUSTED_PROXIES")?
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .or(f.trusted_proxies)
                    .unwrap_or_default(),
            )?,
            db_max_connections: pick!("TESSERA_DB_MAX_CONNECTIONS", f.db_max_connections, 8),
            db_acquire_timeout_secs: pick!(
                "TESSERA_DB_ACQUIRE_TIMEOUT_SECS",
                f.db_acquire_timeout_secs,
                5
            ),
            db_statement_timeout_secs: pick!(
                "TESSERA_DB_STATEMENT_TIMEOUT_SECS",
                f.db_statement_timeout_secs,
                30
            ),
            request_timeout_secs: pick!("TESSERA_REQUEST_TIMEOUT_SECS", f.request_timeout_secs, 40),
            data_dir,
            log_format,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        const MAX_SECS: i64 = 10 * 365 * 24 * 3600;
        if self.argon2_memory_kib < 8 || self.argon2_iterations < 1 {
            return Err(ConfigError::Invalid("argon2 cost too small".into()));
        }
        for (name, v) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("signup_code_ttl_secs", self.signup_code_ttl_secs),
            ("reset_code_ttl_secs", self.reset_code_ttl_secs),
            ("invite_code_ttl_secs", self.invite_code_ttl_secs),
            ("code_max_attempts", self.code_max_attempts),
            ("attempt_window_secs", self.attempt_window_secs),
            ("login_token_ttl_secs", self.login_token_ttl_secs),
            ("sms_code_ttl_secs", self.sms_code_ttl_secs),
            ("sms_send_limit", self.sms_send_limit),
            ("mail_send_limit", self.mail_send_limit),
            ("login_lockout_secs", self.login_lockout_secs),
        ] {
            // Ten years bounds every lifetime, window and limit: larger values would overflow
            // the millisecond arithmetic of expiries.
            if !(1..=MAX_SECS).contains(&v) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 and {MAX_SECS}"
                )));
            }
        }
        if self.master_key.is_some() && self.master_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "set master_key or master_key_file, not both".into(),
            ));
        }
        if !(self.sms_base_url.starts_with("https://") || self.sms_base_url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid(
                "sms_base_url must be an http(s) URL".into(),
            ));
        }
        if self.db_acquire_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "db_acquire_timeout_secs must be positive".into(),
            ));
        }
        if self.login_max_attempts < 0 {
            return Err(ConfigError::Invalid(
                "login_max_attempts cannot be negative".into(),
            ));
        }
        // PostgreSQL keeps statement_timeout in milliseconds in a 32-bit integer.
        if self.db_statement_timeout_secs > i32::MAX as u64 / 1000 {
            return Err(ConfigError::Invalid(format!(
                "db_statement_timeout_secs must be at most {} (0 disables it)",
                i32::MAX / 1000
            )));
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "request_timeout_secs must be positive".into(),
            ));
        }
        if self.db_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "db_max_connections must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The URL clients use to reach this server.
    pub fn public_url_or(&self, bound: &str) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Whether the database is the embedded SQLite store.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

/// Hand-written so no secret is ever formatted: the database URL's password, the master
/// key and the SMTP URL are shown only as present or absent.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("listen", &self.listen)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .field("master_key_file", &self.master_key_file)
            .field("public_url", &self.public_url)
            .field(
                "smtp_url",
                &self
                    .smtp_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
            )
            .field("mail_from", &self.mail_from)
            .field("sms_base_url", &redact_url(&self.sms_base_url))
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("hash_workers", &self.hash_workers)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_secs", &self.db_acquire_timeout_secs)
            .field("db_statement_timeout_secs", &self.db_statement_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// For `Debug` output: a URL's scheme, user name, host and path. Its password, and its query
/// (which may hold one), become `***`; a value that is not a `scheme://` URL is hidden whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, ""), |(before, _)| (before, "?***"));
    // The last '@' ends the credentials, even when a password holds a raw '@'.
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{query}")
        }
        None => format!("{scheme}://{rest}{query}"),
    }
}

/// Proxy addresses (`10.0.0.1`) or blocks (`10.0.0.0/8`); blanks are skipped.
fn parse_proxies(list: Vec<String>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::Invalid(format!(
                        "trusted_proxies: {s:?} is not an address or CIDR block"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(file: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let f: FileSettings = toml::from_str(file).map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.message().to_owned(),
        })?;
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::build(f, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = build("", &[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(
            s.database_url.expose_secret(),
            "sqlite://./tessera-data/tessera.db?mode=rwc"
        );
        assert!(s.is_sqlite());
        assert_eq!(s.argon2_memory_kib, 19_456);
        assert_eq!(
            (
                s.login_token_ttl_secs,
                s.sms_code_ttl_secs,
                s.sms_send_limit
            ),
            (300, 600, 5)
        );
        assert_eq!(s.sms_base_url, "https://api.twilio.com");
    }

    #[test]
    fn debug_output_hides_keys_and_passwords_in_urls() {
        let secret = "s3cr3t-value-that-must-not-print";
        let key = "c3VwZXJzZWNyZXRtYXN0ZXJrZXltYXN0ZXJrZXkxMjM=";
        let db = format!("postgres://tessera:{secret}@db.internal/tessera");
        let smtp = format!("smtps://mailer:{secret}@mail.example");
        let s = build(
            "",
            &[
                ("TESSERA_MASTER_KEY", key),
                ("TESSERA_DATABASE_URL", &db),
                ("TESSERA_SMTP_URL", &smtp),
            ],
        )
        .unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains(secret) && !text.contains(key), "{text}");
        assert!(text.contains("db.internal"), "the rest is shown: {text}");
        // A raw '@' in the password, a password in the query, a value that is no URL.
        for (url, shown) in [
            ("postgres://u:pa@ss@db/t", "postgres://u:***@db/t"),
            (
                "postgres://u@db/t?password=pw&sslmode=disable",
                "postgres://u:***@db/t?***",
            ),
            ("sqlite://./data/t.db?mode=rwc", "sqlite://./data/t.db?***"),
            ("hunter2", "***"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn env_wins_over_file() {
        let s = build(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/a\"",
            &[("TESSERA_LISTEN", "127.0.0.1:0")],
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:0");
        assert_eq!(s.data_dir, PathBuf::from("/tmp/a"));
    }

    #[test]
    fn unknown_keys_and_bad_numbers_are_rejected() {
        assert!(build("lisen = \"x\"", &[]).is_err());
        assert!(build("", &[("TESSERA_HASH_WORKERS", "many")]).is_err());
        assert!(build("", &[("TESSERA_LOG_FORMAT", "xml")]).is_err());
        assert!(build("code_max_attempts = 0", &[]).is_err());
        assert!(build("db_acquire_timeout_secs = 0", &[]).is_err());
        assert!(build("db_statement_timeout_secs = 2147484", &[]).is_err());
        assert!(build("db_statement_timeout_secs = 2147483", &[]).is_ok());
        assert!(build("request_timeout_secs = 0", &[]).is_err());
        assert!(build("sms_base_url = \"ftp://x\"", &[]).is_err());
        assert!(build("", &[("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")]).is_err());
        let s = build("", &[("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,")]).unwrap();
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(build("", &[("TESSERA_SMS_SEND_LIMIT", "0")]).is_err());
        assert!(
            build(
                "",
                &[("TESSERA_ACCESS_TOKEN_TTL_SECS", "9223372036854775807")]
            )
            .is_err(),
            "a lifetime that overflows expiry arithmetic"
        );
        assert!(
            build(
                "",
                &[
                    ("TESSERA_MASTER_KEY", "a"),
                    ("TESSERA_MASTER_KEY_FILE", "/k")
                ]
            )
            .is_err(),
            "two master keys"
        );
    }

    #[test]
    fn database_pool_settings() {
        let s = build("", &[]).unwrap();
        assert_eq!(
            (
                s.db_max_connections,
                s.db_acquire_timeout_secs,
                s.db_statement_timeout_secs
            ),
            (8, 5, 30)
        );
        let s = build(
            "db_max_connections = 20\ndb_statement_timeout_secs = 7",
            &[
                ("TESSERA_DB_ACQUIRE_TIMEOUT_SECS", "2"),
                ("TESSERA_DB_STATEMENT_TIMEOUT_SECS", "0"),
                ("TESSERA_DATABASE_URL", "postgres://u@db/t"),
            ],
        )
        .unwrap();
        assert_eq!(
            (
                s.db_max_connections,
                s.db_acquire_timeout_secs,
                s.db_statement_timeout_secs
            ),
            (20, 2, 0)
        );
        assert!(!s.is_sqlite());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = build(
            "",
            &[
                (
                    "TESSERA_MASTER_KEY",
                    "c2VjcmV0LW1hc3Rlci1rZXktdmFsdWUtMTIzNDU2Nzg=",
                ),
                (
                    "TESSERA_DATABASE_URL",
                    "postgres://app:hunter2pw@db/tessera",
                ),
                ("TESSERA_SMTP_URL", "smtps://mailer:smtp-pass-77@mail:465"),
            ],
        )
        .unwrap();
        let shown = format!("{s:?}");
        for secret in [
            "c2VjcmV0LW1hc3Rlci1rZXktdmFsdWUtMTIzNDU2Nzg=",
            "hunter2pw",
            "smtp-pass-77",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("postgres://app:***@db/tessera"));
    }
}
