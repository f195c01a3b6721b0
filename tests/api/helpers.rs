//! Test harness: spawns the real `tessera` binary on 127.0.0.1:0 with a temporary data
//! directory, and offers typed helpers for the CLI, HTTP calls and the mail outbox.

use md5::{Digest, Md5};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// The CosyncJWT wire form of a password: lower-case hex MD5.
pub fn md5_hex(password: &str) -> String {
    hex(&Md5::digest(password.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running server process; killed when dropped.
pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    child: Child,
    pub client: reqwest::Client,
    log: mpsc::Receiver<String>,
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
    ]
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra environment variables (later entries win).
    pub fn start_with(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = base_env(&dir.path().join("data"));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::spawn(dir, env)
    }

    fn spawn(dir: tempfile::TempDir, env: Vec<(String, String)>) -> Self {
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
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while base.is_none() && std::time::Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v["fields"]["message"] == "listening" => {
                        base = Some(format!(
                            "http://{}",
                            v["fields"]["address"].as_str().unwrap()
                        ));
                    }
                    _ => {}
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let base = base.expect("server did not log its listening address");
        Self {
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
        let text = res.text().await.unwrap();
        Reply {
            status,
            content_type,
            text,
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
