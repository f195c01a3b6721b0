//! Hostile and broken input to every new input path: missing and garbled exports, unsafe zip
//! entry names, a bad app key, CSV values with NUL, 10 kB and formula-like fields (the row
//! tests live in `migration`), wrong passphrases, garbled archives, bad key files.

use std::path::Path;

use crate::helpers::*;
use crate::migration::{fixture_path, old_deployment, python_ok, write_fixture, zip_dir};

fn fails(server: &TestServer, args: &[&str], needle: &str) {
    let out = server.cli(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "tessera {args:?} should fail");
    assert!(
        err.contains(needle),
        "tessera {args:?}: expected {needle:?} in {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn broken_exports_are_refused_with_a_reason() {
    let server = TestServer::start();
    let d = server.dir.path();
    fails(
        &server,
        &["import", "cosync", &s(&d.join("nope.zip"))],
        "nope.zip",
    );
    let garbled = d.join("garbled.zip");
    std::fs::write(&garbled, b"PK\x03\x04 this is not really a zip").unwrap();
    fails(
        &server,
        &["import", "cosync", &s(&garbled)],
        "not a readable zip",
    );
    let empty_dir = d.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    fails(
        &server,
        &["import", "cosync", &s(&empty_dir)],
        "no app-collection.csv",
    );
    // An app row whose key is garbage, or encrypted, or missing.
    for (key, needle) in [
        ("bm90IGEga2V5", "appPrivateKey"),
        ("", "appPrivateKey"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----",
            "passphrase-protected",
        ),
    ] {
        let dir = d.join(format!("badkey{}", key.len()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("app-collection.csv"),
            format!("name,appId,appPrivateKey\nX,5f0c1d2e3a4b4c5d8e9fa0b1c2d3e4f5,\"{key}\"\n"),
        )
        .unwrap();
        fails(&server, &["import", "cosync", &s(&dir)], needle);
    }
    let apps = server.cli(&["app", "list", "--json"]);
    let apps: serde_json::Value = serde_json::from_slice(&apps.stdout).unwrap();
    assert_eq!(apps["apps"], serde_json::json!([]), "nothing stored");
}

#[tokio::test]
async fn unsafe_zip_entries_are_refused_and_never_written() {
    if !python_ok() {
        return;
    }
    let server = TestServer::start();
    let dir = fixture_path(&server);
    let users = write_fixture(&dir, &old_deployment(), 3);
    let zip = server.dir.path().join("hostile.zip");
    let outside = server.dir.path().join("evil.csv");
    zip_dir(
        &dir,
        &zip,
        &[
            ("../evil.csv", b"handle\nx@y.z\n"),
            ("/tmp/abs/app-collection.csv", b"name\nEvil\n"),
            ("..\\..\\win.csv", b"x"),
            ("notes.txt", b"hello"),
        ],
    );
    let out = server.cli(&["import", "cosync", &s(&zip), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = report["warnings"].to_string();
    assert_eq!(warnings.matches("unsafe path").count(), 3, "{warnings}");
    assert!(
        warnings.contains("not one of the export's files"),
        "{warnings}"
    );
    assert_eq!(report["counts"]["users"]["created"], users as u64);
    assert!(!outside.exists(), "nothing is extracted to disk");
    assert!(!Path::new("/tmp/abs/app-collection.csv").exists());
}

#[tokio::test]
async fn archives_need_the_right_passphrase_and_intact_bytes() {
    let server = TestServer::start();
    let d = server.dir.path();
    let app = server.create_app("A", "code");
    let pass = d.join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let short = d.join("short");
    std::fs::write(&short, "short").unwrap();
    let archive = d.join("a.tessera");
    fails(
        &server,
        &[
            "export",
            "--app",
            &app.app_id,
            &s(&archive),
            "--passphrase-file",
            &s(&short),
        ],
        "at least 12",
    );
    fails(
        &server,
        &[
            "export",
            "--app",
            "no-such-app",
            &s(&archive),
            "--passphrase-file",
            &s(&pass),
        ],
        "no-such-app",
    );
    let out = server.cli(&[
        "export",
        "--app",
        &app.app_id,
        &s(&archive),
        "--passphrase-file",
        &s(&pass),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never overwrites.
    fails(
        &server,
        &[
            "export",
            "--app",
            &app.app_id,
            &s(&archive),
            "--passphrase-file",
            &s(&pass),
        ],
        "creating",
    );
    let wrong = d.join("wrong");
    std::fs::write(&wrong, "another long passphrase").unwrap();
    fails(
        &server,
        &[
            "import",
            "tessera",
            &s(&archive),
            "--passphrase-file",
            &s(&wrong),
        ],
        "wrong passphrase",
    );
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let flipped = d.join("flipped.tessera");
    std::fs::write(&flipped, &bytes).unwrap();
    fails(
        &server,
        &[
            "import",
            "tessera",
            &s(&flipped),
            "--passphrase-file",
            &s(&pass),
        ],
        "wrong passphrase, or the archive was changed",
    );
    let garbage = d.join("garbage.tessera");
    std::fs::write(&garbage, b"\x00\x01garbage").unwrap();
    fails(
        &server,
        &[
            "import",
            "tessera",
            &s(&garbage),
            "--passphrase-file",
            &s(&pass),
        ],
        "not a Tessera archive",
    );
    std::fs::write(&garbage, &bytes[..40]).unwrap();
    fails(
        &server,
        &[
            "import",
            "tessera",
            &s(&garbage),
            "--passphrase-file",
            &s(&pass),
        ],
        "truncated",
    );
    fails(
        &server,
        &[
            "import",
            "tessera",
            &s(&d.join("missing")),
            "--passphrase-file",
            &s(&pass),
        ],
        "missing",
    );
}

#[tokio::test]
async fn bad_key_files_are_refused() {
    let server = TestServer::start();
    let d = server.dir.path();
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    fails(
        &server,
        &[
            "keys",
            "import-legacy-server-key",
            "--public-key",
            &s(&garbage),
        ],
        "neither PEM nor base64",
    );
    let private = d.join("private.pem");
    let key = tessera::crypto::keys::generate_rsa(tessera::crypto::keys::RsaBits::B2048).unwrap();
    std::fs::write(
        &private,
        tessera::crypto::keys::pem("PRIVATE KEY", &key.pkcs8),
    )
    .unwrap();
    fails(
        &server,
        &[
            "keys",
            "import-legacy-server-key",
            "--public-key",
            &s(&private),
        ],
        "give the public key",
    );
    fails(
        &server,
        &[
            "keys",
            "import-legacy-server-key",
            "--public-key",
            &s(&d.join("none.pem")),
        ],
        "none.pem",
    );
    // The same public key twice is accepted once.
    let public = d.join("public.pem");
    std::fs::write(&public, key.public.pem()).unwrap();
    let first = server.cli(&[
        "keys",
        "import-legacy-server-key",
        "--public-key",
        &s(&public),
    ]);
    assert!(first.status.success());
    let second = server.cli(&[
        "keys",
        "import-legacy-server-key",
        "--public-key",
        &s(&public),
    ]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("already imported"));
    // Rotation to a garbled or missing key file does nothing.
    let bad_key = d.join("bad.key");
    std::fs::write(&bad_key, "c2hvcnQ=").unwrap();
    fails(
        &server,
        &["keys", "rotate-master", "--new-key-file", &s(&bad_key)],
        "32 bytes",
    );
    fails(
        &server,
        &[
            "keys",
            "rotate-master",
            "--new-key-file",
            &s(&d.join("no.key")),
        ],
        "no.key",
    );
    let state = server.cli(&["keys", "rotation-status"]);
    assert!(String::from_utf8_lossy(&state.stdout).contains("\"rotation\":null"));
    // generate-master never overwrites.
    fails(
        &server,
        &["keys", "generate-master", "--out", &s(&public)],
        "creating",
    );
}
