//! Master key rotation while a server runs: the rotation is killed half-way (SIGKILL), the
//! server keeps serving users whose rows are under either key, the rotation is run again and
//! resumes to completion, and a node started with the new key alone reads everything.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::*;
use crate::migration::{fixture_path, ok, old_deployment, python_ok, write_fixture};

async fn login_ok(server: &TestServer, token: &str, handle: &str, password: &str) -> Value {
    let r = server
        .form(
            "/api/appuser/login",
            &[("app-token", token)],
            &[("handle", handle), ("password", &md5_hex(password))],
        )
        .await;
    assert_eq!(r.status, 200, "{handle}: {}", r.text);
    let v = r.json();
    assert!(v["jwt"].is_string(), "{handle}: {v}");
    v
}

async fn get_user_handle(server: &TestServer, token: &str, handle: &str, password: &str) -> Value {
    let v = login_ok(server, token, handle, password).await;
    server
        .get(
            "/api/appuser/getUser",
            &[("access-token", v["access-token"].as_str().unwrap())],
        )
        .await
        .json()["handle"]
        .clone()
}

async fn rotation_killed_midway_resumes_while_serving(backend: Backend) {
    if !python_ok() {
        return;
    }
    let server = TestServer::on(backend);
    let dir = fixture_path(&server);
    write_fixture(&dir, &old_deployment(), 300);
    let report: Value = serde_json::from_str(&ok(
        &server,
        &["import", "cosync", &dir.display().to_string(), "--json"],
    ))
    .unwrap();
    let token = report["appToken"].as_str().unwrap().to_owned();
    let new_key = server.dir.path().join("new.key");
    let new_key_s = new_key.display().to_string();
    ok(&server, &["keys", "generate-master", "--out", &new_key_s]);

    // Start the rotation slowly and kill it half-way.
    let mut cmd = Command::new(BIN);
    cmd.args([
        "keys",
        "rotate-master",
        "--new-key-file",
        &new_key_s,
        "--batch-size",
        "10",
        "--pause-ms",
        "40",
        "--grace-secs",
        "3",
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in &server.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("rotated ")
            && rest.ends_with("(users)")
            && rest.split('/').next().and_then(|n| n.parse::<i64>().ok()) >= Some(100)
        {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed mid-way; log: {seen:?}");
    let state: Value = serde_json::from_str(&ok(&server, &["keys", "rotation-status"])).unwrap();
    assert_eq!(state["phase"], "users", "{state}");
    let done = state["done"].as_i64().unwrap();
    assert!((100..300).contains(&done), "{state}");

    // Half the users are under the new key, half under the old: the server serves both.
    for (h, p) in [
        ("mixed.case@example.com", "mixed"),
        ("dup@example.com", "dup"),
        ("user0@example.com", "pw0"),
        ("user150@example.com", "pw150"),
        ("user299@example.com", "pw299"),
    ] {
        assert_eq!(get_user_handle(&server, &token, h, p).await, h);
    }

    // Run it again: it resumes and completes.
    let out = ok(
        &server,
        &[
            "keys",
            "rotate-master",
            "--new-key-file",
            &new_key_s,
            "--batch-size",
            "50",
        ],
    );
    assert!(
        out.contains("complete") && out.contains("(resumed)"),
        "{out}"
    );
    let state: Value = serde_json::from_str(&ok(&server, &["keys", "rotation-status"])).unwrap();
    assert_eq!(state["phase"], "done", "{state}");
    assert_eq!(
        get_user_handle(&server, &token, "user7@example.com", "pw7").await,
        "user7@example.com"
    );
    // A signup pending since before the rotation completes while both keys are loaded.
    let v = server
        .form(
            "/api/appuser/completeSignup",
            &[("app-token", &token)],
            &[("handle", "pending@example.com"), ("code", "123456")],
        )
        .await
        .json();
    assert!(v["jwt"].is_string(), "{v}");

    // A node with the new key alone: the old key is no longer needed.
    let key_env = ("TESSERA_MASTER_KEY_FILE", new_key_s.as_str());
    let node = match backend {
        Backend::Sqlite => {
            let url = format!(
                "sqlite://{}/tessera.db?mode=rwc",
                server.data_dir().display()
            );
            TestServer::start_node(None, &[("TESSERA_DATABASE_URL", url.as_str()), key_env])
        }
        Backend::Postgres => server.next_node(&[key_env]),
    };
    for (h, p) in [
        ("user0@example.com", "pw0"),
        ("user299@example.com", "pw299"),
        ("phone@example.com", "phone"),
    ] {
        assert_eq!(get_user_handle(&node, &token, h, p).await, h);
    }
    let v = login_ok(&node, &token, "phone@example.com", "phone").await;
    let me = node
        .get(
            "/api/appuser/getUser",
            &[("access-token", v["access-token"].as_str().unwrap())],
        )
        .await
        .json();
    assert_eq!(me["phone"], "+15550100001");
    assert_eq!(me["metaData"]["user_data"]["name"], "Phone Person");
    // The node on the new key erased the stored copy of the new key.
    let state: Value = serde_json::from_str(&ok(&node, &["keys", "rotation-status"])).unwrap();
    assert!(state["rotation"].is_null(), "{state}");
    // Rotating to the key in use is refused.
    let again = node.cli(&["keys", "rotate-master", "--new-key-file", &new_key_s]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("in use"));
}

on_both_backends!(rotation_killed_midway_resumes_while_serving);
