//! Several Tessera nodes on one PostgreSQL database (issue 5): nothing that matters lives in
//! one node's memory, concurrent start-up migrates once, and a database outage gives 503s
//! from which the node recovers by itself. PostgreSQL only (skipped without
//! `TEST_DATABASE_URL`, failing under `CI`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const SIGNUP: &str = "/api/appuser/signup";
const COMPLETE: &str = "/api/appuser/completeSignup";
const LOGIN: &str = "/api/appuser/login";
const GET_USER: &str = "/api/appuser/getUser";

#[tokio::test]
async fn two_nodes_share_accounts_sessions_and_code_budgets() {
    if Backend::postgres().is_none() {
        return;
    }
    let a = TestServer::start_on(Backend::Postgres, &[("TESSERA_CODE_MAX_ATTEMPTS", "4")]);
    let b = a.next_node(&[]);
    let app = a.create_app("Shared", "code");
    let pw = md5_hex("pw-1");

    // Signup and completeSignup on A, login on B.
    a.form(
        SIGNUP,
        &app.header(),
        &[("handle", "ann@example.com"), ("password", &pw)],
    )
    .await
    .assert_true();
    let code = code_in(&a.outbox().pop().unwrap());
    let done = a
        .form(
            COMPLETE,
            &app.header(),
            &[("handle", "ann@example.com"), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let login = b
        .form(
            LOGIN,
            &app.header(),
            &[("handle", "ann@example.com"), ("password", &pw)],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let jwt = login.json()["jwt"].as_str().unwrap().to_owned();
    let jwks = a
        .get(&format!("/apps/{}/.well-known/jwks.json", app.app_id), &[])
        .await
        .json();
    assert_eq!(
        header_of(&jwt)["kid"],
        jwks["keys"][0]["kid"],
        "B signs with the key A publishes"
    );

    // Access-tokens from either node work on the other (one server key, in the database).
    let at_a = done.json()["access-token"].as_str().unwrap().to_owned();
    let at_b = login.json()["access-token"].as_str().unwrap().to_owned();
    assert_eq!(
        b.get(GET_USER, &[("access-token", &at_a)]).await.status,
        200
    );
    assert_eq!(
        a.get(GET_USER, &[("access-token", &at_b)]).await.status,
        200
    );

    // A password change made through A revokes the tokens on B.
    let db = a.db.as_ref().unwrap();
    let new_pw = md5_hex("a different password");
    a.form(
        "/api/appuser/changePassword",
        &[("access-token", &at_a)],
        &[("password", &pw), ("newPassword", &new_pw)],
    )
    .await
    .assert_true();
    b.get(GET_USER, &[("access-token", &at_b)])
        .await
        .assert_code(405);
    b.get(GET_USER, &[("access-token", &at_a)])
        .await
        .assert_code(405);
    a.get(GET_USER, &[("access-token", &at_b)])
        .await
        .assert_code(405);

    // The same signup completed on A and B at once: exactly one account, one winner.
    a.form(
        SIGNUP,
        &app.header(),
        &[("handle", "cy@example.com"), ("password", &pw)],
    )
    .await
    .assert_true();
    let code = code_in(&a.outbox().pop().unwrap());
    let body = [("handle", "cy@example.com"), ("code", code.as_str())];
    let h = app.header();
    let (ra, rb) = tokio::join!(a.form(COMPLETE, &h, &body), b.form(COMPLETE, &h, &body));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "A: {} B: {}", ra.text, rb.text);
    let loser = if ra.status == 400 { &ra } else { &rb };
    loser.assert_code(602);
    assert_eq!(db.query_i64("SELECT count(*) FROM users"), 2);

    // Wrong codes on A and on B count against one budget of 4.
    a.form(
        SIGNUP,
        &app.header(),
        &[("handle", "bo@example.com"), ("password", &pw)],
    )
    .await
    .assert_true();
    let code = code_in(&a.outbox().pop().unwrap());
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for node in [&a, &b, &a, &b] {
        node.form(
            COMPLETE,
            &app.header(),
            &[("handle", "bo@example.com"), ("code", wrong)],
        )
        .await
        .assert_code(602);
    }
    // Per-node counters would leave B two attempts; the shared budget is spent.
    b.form(
        COMPLETE,
        &app.header(),
        &[("handle", "bo@example.com"), ("code", &code)],
    )
    .await
    .assert_code(602);
}

async fn signup_on(node: &TestServer, app: &TestApp, n: u32) -> Reply {
    node.form(
        SIGNUP,
        &app.header(),
        &[
            ("handle", &format!("n{n}@x.de")),
            ("password", &md5_hex("pw-changing-1")),
        ],
    )
    .await
}

/// App changes made through one node reach the other within `APP_CACHE_TTL`, and a settings
/// change on a node still holding the older copy never writes over them.
#[tokio::test]
async fn app_changes_on_one_node_reach_the_other() {
    if Backend::postgres().is_none() {
        return;
    }
    let a = TestServer::start_on(Backend::Postgres, &[]);
    let b = a.next_node(&[]);
    let app = a.create_app("Changing", "none");
    let out = a.cli(&["admin", "token", "create", "--name", "nodes"]);
    assert!(out.status.success());
    let bearer = format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
    let auth = [("authorization", bearer.as_str())];
    let app_path = format!("/admin/v1/apps/{}", app.app_id);
    // B holds a copy of the app.
    assert_eq!(signup_on(&b, &app, 1).await.status, 200);

    // A key rotation through A, then at once a settings change through B.
    let r = a
        .json(&format!("{app_path}/keys/rotate"), &auth, json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new_kid = r.json()["kid"].as_str().unwrap().to_owned();
    let r = b
        .raw(
            reqwest::Method::PATCH,
            &app_path,
            &auth,
            Some("application/json"),
            json!({"userNamesEnabled": true}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    for (n, node) in [(2, &a), (3, &b)] {
        let r = signup_on(node, &app, n).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            header_of(r.json()["jwt"].as_str().unwrap())["kid"],
            json!(new_kid),
            "both nodes sign with the new key"
        );
    }

    // A suspension through A reaches B.
    let r = a
        .json(&format!("{app_path}/suspend"), &auth, json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    signup_on(&b, &app, 4).await.assert_code(402);
}

/// A master key file nodes share, as an operator would distribute it.
fn shared_master_key(dir: &std::path::Path) -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).unwrap();
    let path = dir.join("master.key");
    std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn three_nodes_start_at_once_on_a_fresh_database() {
    if Backend::postgres().is_none() {
        return;
    }
    let db = PgSchema::create();
    let keys = tempfile::tempdir().unwrap();
    let key_file = shared_master_key(keys.path());
    let start = Instant::now();
    let nodes: Vec<TestServer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (db, key_file) = (db.clone(), key_file.as_str());
                s.spawn(move || {
                    TestServer::start_node(Some(db), &[("TESSERA_MASTER_KEY_FILE", key_file)])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("node started"))
            .collect()
    });
    eprintln!("three nodes up in {:?}", start.elapsed());
    // Each migration applied once; one server token key, whichever node won.
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        db.query_i64("SELECT count(*) FROM _sqlx_migrations"),
        shipped
    );
    assert_eq!(db.query_i64("SELECT count(*) FROM server_keys"), 1);
    let app = nodes[0].create_app("Three", "code");
    for node in &nodes {
        let r = node.get("/readyz", &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = node.get("/api/appuser/getApplication", &app.header()).await;
        assert_eq!(
            r.status, 200,
            "app-tokens are valid on every node: {}",
            r.text
        );
        let log = node.drain_log().join("\n");
        assert!(!log.contains("\"level\":\"ERROR\""), "{log}");
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore, so an outage can be
/// simulated without disturbing other tests that share the PostgreSQL server.
struct Proxy {
    addr: String,
    cut: Arc<AtomicBool>,
    /// While set, connections stay open but every byte is swallowed: a database that
    /// accepts and never answers (a network partition, a hung server).
    hole: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let hole = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (cut, hole, conns) = (cut.clone(), hole.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    // Decided under the lock so `cut` cannot miss a connection being set up.
                    let mut live = conns.lock().unwrap();
                    if cut.load(Ordering::SeqCst) {
                        continue; // dropping `inbound` closes it: the database is "down"
                    }
                    let (upstream, hole) = (upstream.clone(), hole.clone());
                    live.push(tokio::spawn(async move {
                        if let Ok(out) = tokio::net::TcpStream::connect(&upstream).await {
                            let (a_read, a_write) = inbound.into_split();
                            let (b_read, b_write) = out.into_split();
                            tokio::join!(
                                pump(a_read, b_write, hole.clone()),
                                pump(b_read, a_write, hole)
                            );
                        }
                    }));
                }
            })
        };
        Self {
            addr,
            cut,
            hole,
            conns,
            accept,
        }
    }

    fn swallow(&self, on: bool) {
        self.hole.store(on, Ordering::SeqCst);
    }

    /// Closes every open connection and refuses new ones.
    fn cut(&self) {
        let mut live = self.conns.lock().unwrap();
        self.cut.store(true, Ordering::SeqCst);
        for h in live.drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies bytes one way, dropping them while `hole` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hole: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if hole.load(Ordering::SeqCst) {
                    continue;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_the_node_recovers() {
    if Backend::postgres().is_none() {
        return;
    }
    let db = PgSchema::create();
    let proxy = Proxy::start(db.host_port()).await;
    let via_proxy = db.url_via(&proxy.addr);
    let server = TestServer::start_node(
        Some(db.clone()),
        &[
            ("TESSERA_DATABASE_URL", &via_proxy),
            ("TESSERA_DB_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    let app = server.create_app("Outage", "code");
    let get_app = "/api/appuser/getApplication";
    assert_eq!(server.get(get_app, &app.header()).await.status, 200);

    proxy.cut();
    // The node answers getApplication from its copy of the app until that expires.
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    let started = Instant::now();
    let r = server.get(get_app, &app.header()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"code": 500, "message": "internal server error"})
    );
    assert!(r.headers.get("retry-after").is_some(), "Retry-After on 503");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the acquire timeout"
    );
    let login = server
        .form(
            LOGIN,
            &app.header(),
            &[("handle", "x@example.com"), ("password", &md5_hex("pw"))],
        )
        .await;
    assert_eq!(login.status, 503, "{}", login.text);
    let jwks = server
        .get(&format!("/apps/{}/.well-known/jwks.json", app.app_id), &[])
        .await;
    assert_eq!(
        (jwks.status, jwks.content_type.as_str()),
        (503, "application/problem+json")
    );
    assert!(jwks.headers.get("retry-after").is_some());
    assert_eq!(server.get("/readyz", &[]).await.status, 503);
    let log = server.wait_for_log("database unavailable").join("\n");
    assert!(
        log.contains("database unavailable"),
        "a clear log line: {log}"
    );
    assert!(!log.contains(&via_proxy), "the database URL is not logged");

    // The database comes back: the same process serves again, no restart.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get(get_app, &app.header()).await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node did not recover: {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = sign_up(&server, &app, "back@example.com", "pw").await;
    assert!(v["jwt"].is_string());
}

/// Connections the database dropped while the node was idle (a database restart, an idle
/// timeout on a proxy, an operator's `pg_terminate_backend`) are found dead before they are
/// handed out and replaced: the next requests succeed, none answers 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_dropped_while_idle_are_replaced_before_use() {
    if Backend::postgres().is_none() {
        return;
    }
    let db = PgSchema::create();
    // The application name picks out this node's connections among other tests' ones.
    let url = format!("{}&application_name={}", db.url, db.name);
    let server = TestServer::start_node(Some(db.clone()), &[("TESSERA_DATABASE_URL", &url)]);
    let app = server.create_app("Dropped", "code");
    let handles: Vec<String> = (0..8).map(|i| format!("u{i}@example.com")).collect();
    for h in &handles {
        assert!(sign_up(&server, &app, h, "pw").await["jwt"].is_string());
    }
    let count = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'",
        db.name
    );
    assert!(db.query_i64(&count) > 0, "the node holds open connections");

    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}'",
        db.name
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.query_i64(&count) > 0 {
        assert!(Instant::now() < deadline, "backends did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(tessera::store::sql::IDLE_PING_AFTER + tessera::domain::apps::APP_CACHE_TTL)
        .await;

    let (header, password) = (app.header(), md5_hex("pw"));
    let logins = handles.iter().map(|h| async {
        server
            .form(
                LOGIN,
                &header,
                &[("handle", h.as_str()), ("password", password.as_str())],
            )
            .await
    });
    for r in futures::future::join_all(logins).await {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.json()["jwt"].is_string());
    }
    assert!(db.query_i64(&count) > 0, "new connections were opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_gets_503_at_the_request_deadline() {
    if Backend::postgres().is_none() {
        return;
    }
    let db = PgSchema::create();
    let proxy = Proxy::start(db.host_port()).await;
    let via_proxy = db.url_via(&proxy.addr);
    let server = TestServer::start_node(
        Some(db.clone()),
        &[
            ("TESSERA_DATABASE_URL", &via_proxy),
            // Longer than the deadline, so only the deadline can end the wait.
            ("TESSERA_DB_ACQUIRE_TIMEOUT_SECS", "30"),
            ("TESSERA_REQUEST_TIMEOUT_SECS", "2"),
        ],
    );
    let app = server.create_app("Partition", "code");
    let get_app = "/api/appuser/getApplication";
    assert_eq!(server.get(get_app, &app.header()).await.status, 200);

    proxy.swallow(true);
    // The node answers getApplication from its copy of the app until that expires.
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    let started = Instant::now();
    let app_header = app.header();
    let jwks = format!("/apps/{}/.well-known/jwks.json", app.app_id);
    let (a, b) = tokio::join!(server.get(get_app, &app_header), server.get(&jwks, &[]));
    let waited = started.elapsed();
    assert_eq!((a.status, b.status), (503, 503), "{} / {}", a.text, b.text);
    assert_eq!(
        a.json(),
        json!({"code": 500, "message": "internal server error"})
    );
    assert_eq!(b.content_type, "application/problem+json");
    assert!(a.headers.get("retry-after").is_some());
    assert!(
        waited < Duration::from_secs(10),
        "answered at the 2 s deadline, not after the partition: {waited:?}"
    );
    let log = server.wait_for_log("exceeded its deadline").join("\n");
    assert!(log.contains("exceeded its deadline"), "{log}");

    // The partition heals: the node serves again by itself.
    proxy.swallow(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = server.get(get_app, &app.header()).await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn start_up_gives_up_on_a_database_that_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds every connection without a byte in return.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().map_while(Result::ok) {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("TESSERA_DATA_DIR", dir.path())
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env(
            "TESSERA_DATABASE_URL",
            format!("postgres://tessera:s3cret-pw@{addr}/tessera"),
        )
        .env("TESSERA_DB_ACQUIRE_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "start-up gave up in bounded time: {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the database at start-up"),
        "{err}"
    );
    assert!(err.contains("did not answer"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert!(
        !dir.path().join("master.key").exists(),
        "a start-up that never reached the database left no new master key"
    );
}

/// Runs `tessera app list` with only these settings; its exit code and all it printed.
fn app_list_with(
    data: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, String) {
    let out = std::process::Command::new(BIN)
        .args(["app", "list"])
        .env_clear()
        .env("TESSERA_DATA_DIR", data)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), printed)
}

/// Database URLs that cannot work, or would lose everything, or would make the driver log a
/// secret, are refused as configuration errors (exit 2) before anything is written, and the
/// error never repeats what may be a password.
#[test]
fn bad_database_urls_are_refused_before_anything_is_written() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let cases: Vec<(&OsStr, &str)> = vec![
        (
            OsStr::from_bytes(b"postgres://u:S3cretPw\xe9@127.0.0.1:1/db"),
            "TESSERA_DATABASE_URL: not valid UTF-8",
        ),
        (OsStr::new("sqlite::memory:"), "in-memory SQLite database"),
        (OsStr::new("sqlite://"), "in-memory SQLite database"),
        (
            OsStr::new("postgres://u@127.0.0.1:1/db?sslmode=disable&sslpassword=S3cretPw!"),
            "does not accept: \"sslpassword\"",
        ),
        (
            OsStr::new("postgres:S3cretPw!"),
            "is not a sqlite: or postgres:// URL",
        ),
        (
            OsStr::new("postgres://u@127.0.0.1:1/db&password=S3cretPw!"),
            "parameters follow a '?'",
        ),
        (
            OsStr::new("sqlite:///tmp/x.db?mode=rwc&vfs=S3cretPw!"),
            "does not accept: \"vfs\"",
        ),
    ];
    for (url, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (code, all) = app_list_with(&data, &[("TESSERA_DATABASE_URL", url)]);
        assert_eq!(code, Some(2), "{url:?}: {all}");
        assert!(all.contains(expected), "{url:?}: {all}");
        assert!(!all.contains("S3cretPw"), "{url:?}: {all}");
        assert!(!data.exists(), "{url:?}: nothing written");
    }
}

/// A master key that cannot be read stops start-up before the database is created or
/// migrated.
#[test]
fn a_bad_master_key_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, err) = app_list_with(&data, &[("TESSERA_MASTER_KEY", "not-base64!!".as_ref())]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("TESSERA_MASTER_KEY"), "{err}");
    assert!(!err.contains("not-base64!!"), "{err}");
    assert!(!data.join("tessera.db").exists(), "no database created");
}

/// A SQLite file that cannot be opened is named in the error, with what to check, and the
/// failed start-up leaves no master key behind.
#[test]
fn an_unopenable_sqlite_file_is_named_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = dir.path().join("no-such-dir").join("t.db");
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    let (code, err) = app_list_with(&data, &[("TESSERA_DATABASE_URL", url.as_ref())]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot open the SQLite database {:?}",
            missing.display().to_string()
        )),
        "{err}"
    );
    assert!(
        err.contains("its directory must exist and be writable"),
        "{err}"
    );
    assert!(!data.join("master.key").exists(), "no key generated");
}

/// An operator closes the database to new connections (`ALLOW_CONNECTIONS false`) and ends
/// the open ones: PostgreSQL refuses with SQLSTATE 55000, which is an outage (503), not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_closed_to_connections_answers_503_and_recovers() {
    use sqlx::Connection;
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let name = format!("tclosed_{}", uuid::Uuid::new_v4().simple());
    let run = |sql: String| {
        let admin = admin.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("admin statement");
            let _ = conn.close().await;
        }
    };
    run(format!("CREATE DATABASE {name}")).await;
    let (base, _) = admin
        .rsplit_once('/')
        .expect("database in TEST_DATABASE_URL");
    let url = format!("{base}/{name}");
    let server = TestServer::start_node(
        None,
        &[
            ("TESSERA_DATABASE_URL", &url),
            ("TESSERA_DB_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    let app = server.create_app("Closed", "code");
    let get_app = "/api/appuser/getApplication";
    assert_eq!(server.get(get_app, &app.header()).await.status, 200);
    run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    run(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    // The node answers getApplication from its copy of the app until that expires.
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    let r = server.get(get_app, &app.header()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(server.get("/readyz", &[]).await.status, 503);
    run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get(get_app, &app.header()).await.status != 200 {
        assert!(Instant::now() < deadline, "node did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
    run(format!("DROP DATABASE {name} WITH (FORCE)")).await;
}
