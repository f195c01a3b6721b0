//! Test harness: spawns the real `tessera` binary on 127.0.0.1:0 with a temporary data
//! directory, and offers typed helpers for the CLI, HTTP calls and the mail outbox.
//!
//! # Running a test on both backends
//!
//! Write the test as an `async fn` taking a [`Backend`], start its server with
//! [`TestServer::on`] (or [`TestServer::start_on`] for extra environment), and list it in
//! `on_both_backends!` at the end of the file:
//!
//! ```ignore
//! async fn my_case(backend: Backend) {
//!     let server = TestServer::on(backend);
//!     // ...
//! }
//!
//! on_both_backends!(my_case);
//! ```
//!
//! That makes two tests, `my_case::sqlite` and `my_case::postgres`. The PostgreSQL one runs
//! on a fresh schema in `TEST_DATABASE_URL`'s database (dropped with the server); without
//! that variable it prints a skip message, and it fails when `CI` is set.
//! `cargo test postgres` runs only the PostgreSQL variants.

// A toolkit: not every helper is used by every set of tests at every moment.
#![allow(dead_code)]

use md5::{Digest, Md5};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// The CosyncJWT wire form of a password: lower-case hex MD5.
pub fn md5_hex(password: &str) -> String {
    hex(&Md5::digest(password.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// For each named `async fn name(backend: Backend)`, a module `name` with a `sqlite` and a
/// `postgres` test (see the module documentation).
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                super::$test(crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = crate::helpers::Backend::postgres() {
                    super::$test(backend).await;
                }
            }
        }
    )*};
}

/// The database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a file in the server's data directory.
    Sqlite,
    /// A fresh schema in `TEST_DATABASE_URL`'s database.
    Postgres,
}

impl Backend {
    /// `Some(Postgres)` when `TEST_DATABASE_URL` is set; `None` (skip, with a message)
    /// otherwise. Panics when `CI` is set without it: CI must not skip these runs.
    pub fn postgres() -> Option<Self> {
        pg_admin_url().map(|_| Backend::Postgres)
    }
}

/// `TEST_DATABASE_URL`, or `None` after printing why the test is skipped.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TEST_DATABASE_URL is not: the PostgreSQL runs must not be skipped"
            );
            eprintln!("skipping PostgreSQL run: TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// Runs `f` to completion on a private runtime (usable from `Drop` and sync helpers).
fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("block_on thread")
    })
}

/// A fresh PostgreSQL schema in `TEST_DATABASE_URL`'s database, used through `search_path`;
/// dropped when the last node using it goes. (A schema rather than a database: `CREATE
/// DATABASE` costs about a second of WAL and fsync here, a schema a few milliseconds.)
pub struct PgSchema {
    admin_url: String,
    pub name: String,
    /// URL whose connections see only this schema.
    pub url: String,
}

impl PgSchema {
    pub fn create() -> Arc<Self> {
        let admin_url = pg_admin_url().expect("TEST_DATABASE_URL");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let sql = format!("CREATE SCHEMA {name}");
        block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("create schema");
            let _ = conn.close().await;
        });
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{name}");
        Arc::new(Self {
            admin_url,
            name,
            url,
        })
    }

    /// The database URL with another `host:port` (a proxy in front of PostgreSQL).
    pub fn url_via(&self, host_port: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("scheme");
        let (userinfo, after) = match rest.split_once('@') {
            Some((u, a)) => (format!("{u}@"), a),
            None => (String::new(), rest),
        };
        let path = after.find('/').map(|i| &after[i..]).unwrap_or("");
        format!("{scheme}://{userinfo}{host_port}{path}")
    }

    /// `host:port` of the PostgreSQL server.
    pub fn host_port(&self) -> String {
        let rest = self.url.split_once("://").expect("scheme").1;
        let after = rest.rsplit_once('@').map(|(_, a)| a).unwrap_or(rest);
        let hp = after.split(['/', '?']).next().unwrap_or("");
        if hp.contains(':') {
            hp.to_owned()
        } else {
            format!("{hp}:5432")
        }
    }

    /// Runs one SQL statement on this database.
    pub fn execute(&self, sql: &str) -> u64 {
        let sql = sql.to_owned();
        block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("execute");
            let _ = conn.close().await;
            done.rows_affected()
        })
    }

    /// The first column of the first row of a query returning a BIGINT.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let sql = sql.to_owned();
        block_on(async {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .expect("query");
            let _ = conn.close().await;
            row.get::<i64, _>(0)
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                {
                    eprintln!("could not drop test schema {}: {e}", self.name);
                }
                let _ = conn.close().await;
            }
        });
    }
}

/// A running server process; killed when dropped (and its PostgreSQL database dropped once
/// no other node uses it).
pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    child: Child,
    pub client: reqwest::Client,
    log: mpsc::Receiver<String>,
    pub backend: Backend,
    /// The PostgreSQL database (shared by every node started with [`TestServer::next_node`]).
    pub db: Option<Arc<PgSchema>>,
}

impl TestServer {
    /// Sends `signal` (`TERM`, `INT`) and waits up to `within` for the process to exit;
    /// `None` if it is still running then.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", signal, &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -s {signal} {pid}");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every test server and CLI call gets: cheap Argon2 (one test keeps the
/// production cost), JSON logs, and the given data directory.
fn base_env(data_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("TESSERA_DATA_DIR".into(), data_dir.display().to_string()),
        ("TESSERA_LISTEN".into(), "127.0.0.1:0".into()),
        ("TESSERA_ARGON2_MEMORY_KIB".into(), "1024".into()),
        ("TESSERA_ARGON2_ITERATIONS".into(), "1".into()),
        ("TESSERA_LOG_FORMAT".into(), "json".into()),
        // Every test calls from 127.0.0.1; the limits have tests of their own.
        ("TESSERA_RATE_LIMIT_PER_MIN".into(), "0".into()),
        ("TESSERA_PUBLIC_RATE_LIMIT_PER_MIN".into(), "0".into()),
    ]
}

impl TestServer {
    /// A server on SQLite.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server on SQLite with extra environment variables (later entries win).
    pub fn start_with(extra: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Sqlite, extra)
    }

    /// A server on `backend` (a fresh schema for PostgreSQL).
    pub fn on(backend: Backend) -> Self {
        Self::start_on(backend, &[])
    }

    /// A server on `backend` with extra environment variables (later entries win).
    pub fn start_on(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create()),
        };
        Self::start_node(db, extra)
    }

    /// Another node on this server's database, with the same master key (read from this
    /// node's key file, as operators share it) and the same extra settings.
    pub fn next_node(&self, extra: &[(&str, &str)]) -> Self {
        let key_file = self.data_dir().join("master.key").display().to_string();
        let mut all: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "TESSERA_DATA_DIR" && k != "TESSERA_DATABASE_URL")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.push(("TESSERA_MASTER_KEY_FILE", &key_file));
        all.extend_from_slice(extra);
        Self::start_node(self.db.clone(), &all)
    }

    /// A server on `db` (PostgreSQL) or SQLite (`None`).
    pub fn start_node(db: Option<Arc<PgSchema>>, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = base_env(&dir.path().join("data"));
        if let Some(db) = &db {
            env.push(("TESSERA_DATABASE_URL".into(), db.url.clone()));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let backend = if db.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        Self::spawn(dir, env, backend, db)
    }

    fn spawn(
        dir: tempfile::TempDir,
        env: Vec<(String, String)>,
        backend: Backend,
        db: Option<Arc<PgSchema>>,
    ) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tessera");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut base = None;
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while base.is_none() && std::time::Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "listening"
                    {
                        base = Some(format!(
                            "http://{}",
                            v["fields"]["address"].as_str().unwrap()
                        ));
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let Some(base) = base else {
            let _ = child.kill();
            seen.extend(rx.try_iter());
            panic!(
                "server did not log its listening address; log:\n{}",
                seen.join("\n")
            );
        };
        Self {
            backend,
            db,
            base,
            dir,
            env,
            child,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            log: rx,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Log lines printed so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// Log lines up to the first one containing `needle` (waiting up to 10 s for it, since the
    /// line may still be on its way from the process); all lines read if it never comes.
    pub fn wait_for_log(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while std::time::Instant::now() < deadline {
            match self.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    lines.push(line);
                    if found {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        lines
    }

    /// Runs the CLI against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run tessera cli")
    }

    /// `tessera app create`, parsed.
    pub fn create_app(&self, name: &str, flow: &str) -> TestApp {
        let out = self.cli(&["app", "create", "--name", name, "--signup-flow", flow]);
        assert!(
            out.status.success(),
            "app create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("app create prints JSON");
        TestApp {
            app_id: v["appId"].as_str().unwrap().into(),
            app_token: v["appToken"].as_str().unwrap().into(),
            public_key: v["publicKey"].as_str().unwrap().into(),
            jwks_url: v["jwksUrl"].as_str().unwrap().into(),
        }
    }

    /// `tessera app update APP --set k=v ...`
    pub fn set(&self, app: &TestApp, settings: &[&str]) {
        let mut args = vec!["app", "update", app.app_id.as_str()];
        for s in settings {
            args.push("--set");
            args.push(s);
        }
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "app update failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The CLI wrote to the database, not through the server: a running node applies
        // the change once its copy of the app expires.
        std::thread::sleep(tessera::domain::apps::APP_CACHE_TTL);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a form body (what the Swift SDK sends).
    pub async fn form(&self, path: &str, headers: &[(&str, &str)], body: &[(&str, &str)]) -> Reply {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body)
            .finish();
        self.raw(
            reqwest::Method::POST,
            path,
            headers,
            Some("application/x-www-form-urlencoded"),
            encoded.into_bytes(),
        )
        .await
    }

    /// POST a JSON body (what the React and Kotlin SDKs send).
    pub async fn json(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        self.raw(
            reqwest::Method::POST,
            path,
            headers,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.raw(reqwest::Method::GET, path, headers, None, Vec::new())
            .await
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        Reply {
            status,
            content_type,
            text,
            headers,
        }
    }

    /// Mails written to the outbox so far, oldest first.
    pub fn outbox(&self) -> Vec<String> {
        let dir = self.data_dir().join("outbox");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

/// What `tessera app create` printed.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub app_id: String,
    pub app_token: String,
    pub public_key: String,
    pub jwks_url: String,
}

impl TestApp {
    pub fn header(&self) -> [(&str, &str); 1] {
        [("app-token", self.app_token.as_str())]
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON: {} {}", self.status, self.text))
    }

    /// Asserts a CosyncJWT error: HTTP 400 and exactly `{code, message}`.
    #[track_caller]
    pub fn assert_code(&self, code: i64) {
        assert_eq!(
            self.status, 400,
            "expected HTTP 400 with code {code}, got {} {}",
            self.status, self.text
        );
        let v = self.json();
        assert_eq!(v["code"], code, "body {}", self.text);
        let obj = v.as_object().unwrap();
        assert_eq!(
            obj.len(),
            2,
            "error body must have exactly code and message: {}",
            self.text
        );
        assert!(obj["message"].is_string());
    }

    #[track_caller]
    pub fn assert_true(&self) {
        assert_eq!(
            (self.status, self.text.as_str()),
            (200, "true"),
            "expected literal true"
        );
    }
}

/// The 6-digit code in the newest mail's text part.
pub fn code_in(mail: &str) -> String {
    let flat = mail.replace("=\r\n", "").replace("=\n", "");
    let bytes = flat.as_bytes();
    for i in 0..bytes.len().saturating_sub(6) {
        let window = &bytes[i..i + 6];
        let before = if i == 0 { b' ' } else { bytes[i - 1] };
        let after = bytes.get(i + 6).copied().unwrap_or(b' ');
        if window.iter().all(u8::is_ascii_digit)
            && !before.is_ascii_digit()
            && !after.is_ascii_digit()
            && before == b' '
        {
            return String::from_utf8(window.to_vec()).unwrap();
        }
    }
    panic!("no code in mail:\n{mail}");
}

/// Decodes the claims of a JWT without verifying it.
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn header_of(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs up `handle` with flow `code` and completes it from the mailed code; returns the
/// completion answer.
pub async fn sign_up(server: &TestServer, app: &TestApp, handle: &str, password: &str) -> Value {
    let pw = md5_hex(password);
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", handle), ("password", &pw)],
        )
        .await
        .assert_true();
    let mail = server.outbox().pop().expect("signup mail");
    let code = code_in(&mail);
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", handle), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    done.json()
}
