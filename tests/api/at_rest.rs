//! Nothing personal in plaintext at rest (DESIGN.md §3.1): a distinctive handle and metadata
//! value never appear in the raw SQLite database file or its WAL, nor in a PostgreSQL dump.

use crate::helpers::*;

async fn handle_and_metadata_are_not_in_the_database_file(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("AtRest", "code");
    server.set(
        &app,
        &[r#"metaData=[{"path":"profile.name","fieldName":"name","required":true}]"#],
    );
    let handle = "zebra-quokka-7731@example.com";
    let secret_name = "Xylophone Marmalade 9917";
    let pw = md5_hex("pw");
    let meta = format!(r#"{{"profile":{{"name":"{secret_name}"}}}}"#);
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", handle), ("password", &pw), ("metaData", &meta)],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", handle), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(
        claims(done.json()["jwt"].as_str().unwrap())["profile"]["name"],
        secret_name
    );

    let mut scanned = 0;
    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(db) = &server.db {
        let dump = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(&db.url)
            .arg("--schema")
            .arg(&db.name)
            .output()
            .expect("pg_dump");
        assert!(
            dump.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&dump.stderr)
        );
        assert!(
            String::from_utf8_lossy(&dump.stdout).contains(&format!("COPY {}.users", db.name)),
            "dump has the users table"
        );
        stored.push(("the PostgreSQL dump".into(), dump.stdout));
    }
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("tessera.db") {
            stored.push((name, std::fs::read(&path).unwrap()));
        }
    }
    for (name, bytes) in &stored {
        scanned += bytes.len();
        for needle in [handle, "zebra-quokka", secret_name, &code, &pw] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} found in plaintext in {name}"
            );
        }
    }
    assert!(scanned > 0, "no database file scanned");
    // Nor in the server's log.
    let log = server.drain_log().join("\n");
    assert!(log.contains("mail written to the outbox"), "log captured");
    for needle in [handle, secret_name, &code, &pw, &app.app_token] {
        assert!(!log.contains(needle), "{needle:?} appears in the log");
    }
    let key = std::fs::metadata(server.data_dir().join("master.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

on_both_backends!(handle_and_metadata_are_not_in_the_database_file,);
