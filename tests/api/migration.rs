//! Moving from CosyncJWT: a fixture export in the reference's CSV format (bcrypt hashes made
//! here, RSA keys and old-server tokens made by Python's `cryptography`/PyJWT), imported with
//! the CLI; imported users log in with their original passwords; JWTs verify with the imported
//! public key; old app-tokens work, old access-tokens do not; the report names every rejected
//! row; a second run creates nothing. Also Tessera's own export/import round trip.

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::helpers::*;

pub const APP_ID: &str = "5f0c1d2e3a4b4c5d8e9fa0b1c2d3e4f5";

/// Keys and tokens an old CosyncJWT deployment has, made by an independent implementation.
const KEYGEN: &str = r#"
import json, sys, time, base64, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization as s
app_id = sys.argv[1]
def pair(bits):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return k
app = pair(2048)
server = pair(2048)
pkcs1 = app.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()).decode()
app_pub = app.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode()
srv_priv = server.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
srv_pub = server.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode()
now = int(time.time())
out = {
  "appPrivatePkcs1": pkcs1,
  "appPublic": app_pub,
  "serverPublic": srv_pub,
  "appToken": jwt.encode({"appId": app_id, "scope": "app", "iat": now}, srv_priv, algorithm="RS256"),
  "accessToken": jwt.encode({"handle": "user1@example.com", "appId": app_id, "scope": "user", "iat": now}, srv_priv, algorithm="RS256"),
  "serverSecret": jwt.encode({"name": "cosync", "scope": "server", "iat": now}, srv_priv, algorithm="RS256"),
  "otherAppToken": jwt.encode({"appId": app_id, "scope": "app"}, pair(2048).private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()), algorithm="RS256"),
}
h = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
c = base64.urlsafe_b64encode(json.dumps({"appId": app_id, "scope": "app"}).encode()).rstrip(b"=").decode()
out["noneToken"] = h + "." + c + "."
import hmac, hashlib
hs = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=").decode()
mac = hmac.new(srv_pub.encode(), (hs + "." + c).encode(), hashlib.sha256).digest()
out["hsWithPublicKey"] = hs + "." + c + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
out["expiredAppToken"] = jwt.encode({"appId": app_id, "scope": "app", "exp": now - 60}, srv_priv, algorithm="RS256")
print(json.dumps(out))
"#;

pub fn python_ok() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install PyJWT (pip install pyjwt cryptography)"
        );
        eprintln!("skipping: PyJWT/cryptography not installed");
    }
    ok
}

pub fn old_deployment() -> Value {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(KEYGEN)
        .arg(APP_ID)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// CSV field as csv-writer writes it (quoted when it holds `,`, `"`, CR or LF).
fn q(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn bcrypt_of(password: &str, cost: u32) -> String {
    bcrypt::hash_with_result(md5_hex(password), cost)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA)
}

pub const ANON: &str = "ANON_5F3C2A1B-0000-4000-8000-ABCDEFABCDEF";
pub const TOTP_GROUPED: &str = "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp";

/// The expected rejections: (file, row, reason fragment).
pub const REJECTED: &[(&str, usize, &str)] = &[
    ("user-collection.csv", 3, "duplicate handle"),
    ("user-collection.csv", 4, "handle is missing"),
    ("user-collection.csv", 5, "not a bcrypt hash"),
    ("user-collection.csv", 6, "not valid UTF-8"),
    ("user-collection.csv", 7, "NUL"),
    ("user-collection.csv", 8, "over the 8192-byte limit"),
    ("user-collection.csv", 9, "formula-like"),
    ("user-collection.csv", 10, "another app"),
    ("user-collection.csv", 11, "unknown status"),
    ("email-template-collection.csv", 2, "unknown templateName"),
    ("invite-collection.csv", 2, "code is not 6 digits"),
];

/// Rows of `user-collection.csv` before the generated users; returns (lines, good users).
fn awkward_users(now_iso: &str) -> (Vec<Vec<u8>>, usize) {
    let pw = |p| bcrypt_of(p, 4);
    let row = |h: &str, p: &str, extra: &str| -> Vec<u8> {
        format!(
            "{},{},active,{APP_ID},false,false,,,,false,,{extra},,EN,{now_iso},{now_iso}",
            q(h),
            p
        )
        .into_bytes()
    };
    let mut lines = vec![
        // 1: mixed case, stored as the reference's `register` left it: imported normalised.
        row("Mixed.Case@Example.COM", &pw("mixed"), ""),
        // 2: dup@ exact, then 3: the same account un-normalised: the exact one is kept.
        row("dup@example.com", &pw("dup"), ""),
        row(" DUP@example.com", &pw("dup-other"), ""),
        // 4: missing handle.
        row("", &pw("x"), ""),
        // 5: not a bcrypt hash.
        row("plain@example.com", "5f4dcc3b5aa765d61d8327deb882cf99", ""),
    ];
    // 6: non-UTF-8 bytes in the handle.
    let mut bad = b"bad\xff\xfe@example.com,".to_vec();
    bad.extend_from_slice(pw("x").as_bytes());
    bad.extend_from_slice(format!(",active,{APP_ID},false,false,,,,false,,,,EN,,").as_bytes());
    lines.push(bad);
    // 7: NUL, 8: a 10 kB field, 9: formula, 10: another app, 11: unknown status.
    lines.push(row("nul\0@example.com", &pw("x"), ""));
    lines.push(row(
        "big@example.com",
        &pw("x"),
        &q(&format!("{{\"bio\":\"{}\"}}", "x".repeat(10 * 1024))),
    ));
    lines.push(row("=HYPERLINK(\"http://x\")@example.com", &pw("x"), ""));
    lines.push(
        format!(
            "other@example.com,{},active,0000other0000,false,false,,,,false,,,,EN,,",
            pw("x")
        )
        .into_bytes(),
    );
    lines.push(
        format!(
            "weird@example.com,{},deleted,{APP_ID},false,false,,,,false,,,,EN,,",
            pw("x")
        )
        .into_bytes(),
    );
    // 12: anonymous user, byte-exact, no password.
    lines.push(format!("{ANON},,active,{APP_ID},false,false,,,,false,,,,EN,,").into_bytes());
    // 13: no password (imported; a reset sets one), 14: metadata the export mangled.
    lines.push(row("nopass@example.com", "", ""));
    lines.push(row(
        "mangled@example.com",
        &pw("mangled"),
        "[object Object]",
    ));
    // 15: authenticator 2FA, 16: verified phone, 17: suspended, 18: cost-10 hash, 19: FR.
    lines.push(
        format!(
            "totp@example.com,{},active,{APP_ID},false,true,{TOTP_GROUPED},,,false,,,,EN,,",
            pw("totp")
        )
        .into_bytes(),
    );
    lines.push(
        format!(
            "phone@example.com,{},active,{APP_ID},false,false,,,+15550100001,true,123456,{},,EN,,",
            pw("phone"),
            q(r#"{"user_data":{"name":"Phone Person"}}"#)
        )
        .into_bytes(),
    );
    lines.push(
        format!(
            "suspended@example.com,{},suspend,{APP_ID},false,false,,,,false,,,,EN,,",
            pw("suspended")
        )
        .into_bytes(),
    );
    lines.push(row("legacy10@example.com", &bcrypt_of("legacy10", 10), ""));
    lines.push(
        format!(
            "french@example.com,{},active,{APP_ID},false,false,,,,false,,,Tue Jul 02 2024 10:11:12 GMT+0000 (Coordinated Universal Time),FR,,",
            pw("french")
        )
        .into_bytes(),
    );
    // Good ones: 1, 2, 12-19 = 10 users.
    (lines, 10)
}

/// Writes the fixture export into `dir` (CSV files) and returns how many users should import.
pub fn write_fixture(dir: &Path, old: &Value, generated: usize) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let now_iso = "2099-01-01T00:00:00.000Z";
    let recent = {
        let t = time::OffsetDateTime::now_utc();
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let meta = r#"[{"_id":"65a","id":"1","path":"user_data.name","required":false,"fieldName":"name","canEdit":true}]"#;
    let app = format!(
        "name,status,jwtEnabled,appPrivateKey,appPublicKey,appToken,appSecret,handle,invitationEnabled,signupEnabled,signupFlow,twoFactorVerification,emailExtension,emailExtensionAPIKey,emailExtensionSenderEmail,TWILIOAccountSid,TWILIOToken,TWILIOPhoneNumber,googleAppName,maxLoginAttempts,passwordFilter,passwordMinLength,passwordMinUpper,passwordMinLower,passwordMinDigit,passwordMinSpecial,userJWTExpiration,realmAppId,appData,metaDataInvite,metaData,metaDataEmail,locales,createdAt,updatedAt,anonymousLoginEnabled\n\
         Legacy Shop,active,true,{},{},{},secret-not-used,email,true,true,code,google,false,SG.key,,AC0123abcd,twilio-token,+15550100000,Legacy Shop,0,false,5,0,0,0,0,24,realm-xyz,[object Object],,{},true,\"EN,FR\",Tue Jul 02 2024 10:11:12 GMT+0000 (Coordinated Universal Time),{now_iso},true\n",
        b64(old["appPrivatePkcs1"].as_str().unwrap()),
        b64(old["appPublic"].as_str().unwrap()),
        old["appToken"].as_str().unwrap(),
        q(meta),
    );
    std::fs::write(dir.join("app-collection.csv"), app).unwrap();
    let header = "handle,password,status,appId,twoFactorPhoneVerification,twoFactorGoogleVerification,googleSecretKey,twoFactorCode,phone,phoneVerified,phoneCode,metaData,lastLogin,locale,createdAt,updatedAt\n";
    let mut users = header.as_bytes().to_vec();
    let (lines, good) = awkward_users(now_iso);
    for l in lines {
        users.extend_from_slice(&l);
        users.push(b'\n');
    }
    for i in 0..generated {
        let m = q(&format!(r#"{{"user_data":{{"name":"User {i}"}}}}"#));
        users.extend_from_slice(
            format!(
                "user{i}@example.com,{},active,{APP_ID},false,false,,,,false,,{m},,EN,{now_iso},{now_iso}\n",
                bcrypt_of(&format!("pw{i}"), 4)
            )
            .as_bytes(),
        );
    }
    std::fs::write(dir.join("user-collection.csv"), users).unwrap();
    std::fs::write(
        dir.join("signup-collection.csv"),
        format!(
            "handle,password,status,appId,code,locale,metaData,createdAt,updatedAt\n\
             pending@example.com,{},pending,{APP_ID},123456,EN,,{recent},{recent}\n\
             done@example.com,{},verified,{APP_ID},222222,EN,,{recent},{recent}\n",
            bcrypt_of("pending", 4),
            bcrypt_of("done", 4)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("invite-collection.csv"),
        format!(
            "handle,senderHandle,senderUserId,code,status,appId,metaData,createdAt,updatedAt\n\
             invitee@example.com,user1@example.com,realm-user-1,654321,pending,{APP_ID},,{recent},{recent}\n\
             broken@example.com,user1@example.com,realm-user-1,12,pending,{APP_ID},,{recent},{recent}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("email-template-collection.csv"),
        format!(
            "appId,subject,replyTo,templateName,htmlTemplate,locale,htmlTemplate,createdAt,updatedAt\n\
             {APP_ID},Your %APP_NAME% code,,signUp,{},EN,x,,\n\
             {APP_ID},Nope,,notATemplate,<p>x</p>,EN,x,,\n",
            q("<p>Hello %HANDLE%,</p>\n<p>your code is %CODE%</p>")
        ),
    )
    .unwrap();
    good + generated
}

/// Zips the CSV files of `dir` (as the reference's export does) into `zip_path`.
pub fn zip_dir(dir: &Path, zip_path: &Path, extra: &[(&str, &[u8])]) {
    let f = std::fs::File::create(zip_path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for name in [
        "app-collection.csv",
        "user-collection.csv",
        "signup-collection.csv",
        "invite-collection.csv",
        "email-template-collection.csv",
    ] {
        z.start_file(name, opts).unwrap();
        z.write_all(&std::fs::read(dir.join(name)).unwrap())
            .unwrap();
    }
    for (name, bytes) in extra {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// Runs a CLI command that must succeed and returns its stdout.
pub fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "tessera {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fixture_path(server: &TestServer) -> PathBuf {
    server.dir.path().join("export")
}

async fn login(server: &TestServer, token: &str, handle: &str, password: &str) -> Reply {
    server
        .form(
            "/api/appuser/login",
            &[("app-token", token)],
            &[("handle", handle), ("password", &md5_hex(password))],
        )
        .await
}

/// PyJWT verifies `jwt` with the PEM public key the old deployment had.
fn verify_with_pem(jwt: &str, pem: &str, aud: &str) -> Value {
    let script = r#"
import sys, json, jwt
token, pem, aud = sys.argv[1:4]
print(json.dumps(jwt.decode(token, pem, algorithms=["RS256"], audience=aud)))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, jwt, pem, aud])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyJWT refused the JWT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How many users still have a bcrypt hash.
async fn bcrypt_left(server: &TestServer) -> i64 {
    let sql = "SELECT COUNT(*) FROM users WHERE password_hash LIKE '$2%'";
    match &server.db {
        Some(db) => db.query_i64(sql),
        None => {
            use sqlx::{Connection, Row};
            let url = format!("sqlite://{}/tessera.db", server.data_dir().display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query(sql).fetch_one(&mut c).await.unwrap().get(0);
            n
        }
    }
}

async fn cosync_export_imports_and_old_apps_keep_working(backend: Backend) {
    if !python_ok() {
        return;
    }
    let server = TestServer::on(backend);
    let old = old_deployment();
    let dir = fixture_path(&server);
    let expected_users = write_fixture(&dir, &old, 300);
    let zip = server.dir.path().join("export.zip");
    zip_dir(&dir, &zip, &[]);
    let zip_s = zip.display().to_string();

    // A dry run writes nothing.
    let dry: Value = serde_json::from_str(&ok(
        &server,
        &["import", "cosync", &zip_s, "--dry-run", "--json"],
    ))
    .unwrap();
    assert_eq!(dry["counts"]["users"]["created"], expected_users as u64);
    let apps: Value = serde_json::from_str(&ok(&server, &["app", "list", "--json"])).unwrap();
    assert_eq!(apps["apps"], json!([]), "a dry run stores nothing");

    let report: Value =
        serde_json::from_str(&ok(&server, &["import", "cosync", &zip_s, "--json"])).unwrap();
    assert_eq!(report["appId"], APP_ID, "{report:#}");
    assert_eq!(
        report["counts"]["users"]["created"], expected_users as u64,
        "{report:#}"
    );
    assert_eq!(report["counts"]["apps"]["created"], 1);
    assert_eq!(report["counts"]["signups"]["created"], 1);
    assert_eq!(report["counts"]["invites"]["created"], 1);
    assert_eq!(report["counts"]["templates"]["created"], 1);
    let rejected = report["rejected"].as_array().unwrap();
    for (file, row, reason) in REJECTED {
        assert!(
            rejected.iter().any(|r| r["file"] == *file
                && r["row"] == *row as u64
                && r["reason"].as_str().unwrap().contains(reason)),
            "expected {file} row {row}: {reason} in {rejected:#?}"
        );
    }
    assert_eq!(rejected.len(), REJECTED.len(), "{rejected:#?}");
    let warnings = report["warnings"].to_string();
    for w in [
        "[object Object]",
        "emailExtensionAPIKey",
        "no password hash",
    ] {
        assert!(warnings.contains(w), "warning {w} missing: {warnings}");
    }
    // Nothing personal in the report.
    let text = report.to_string();
    assert!(
        !text.contains("example.com") && !text.contains("Phone Person"),
        "{text}"
    );

    // Old app-tokens: valid once the old server's public key is imported.
    let app_token = old["appToken"].as_str().unwrap();
    login(&server, app_token, "user1@example.com", "pw1")
        .await
        .assert_code(400);
    let key_file = server.dir.path().join("old-server.pem");
    std::fs::write(&key_file, old["serverPublic"].as_str().unwrap()).unwrap();
    ok(
        &server,
        &[
            "keys",
            "import-legacy-server-key",
            "--public-key",
            &key_file.display().to_string(),
        ],
    );
    let mut reply = login(&server, app_token, "user1@example.com", "pw1").await;
    for _ in 0..50 {
        if reply.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        reply = login(&server, app_token, "user1@example.com", "pw1").await;
    }
    let v = reply.json();
    let jwt = v["jwt"].as_str().unwrap_or_else(|| panic!("{v}"));
    // Realm/Atlas configured with the old app public key verifies Tessera's JWT.
    let claims = verify_with_pem(jwt, old["appPublic"].as_str().unwrap(), "realm-xyz");
    assert_eq!(claims["sub"], "user1@example.com");
    assert_eq!(claims["user_data"]["name"], "User 1");
    // The old server's other tokens are refused: users log in again.
    let access = old["accessToken"].as_str().unwrap();
    server
        .get("/api/appuser/getUser", &[("access-token", access)])
        .await
        .assert_code(405);
    for forged in [
        "noneToken",
        "otherAppToken",
        "serverSecret",
        "hsWithPublicKey",
        "expiredAppToken",
        "accessToken",
    ] {
        login(
            &server,
            old[forged].as_str().unwrap(),
            "user1@example.com",
            "pw1",
        )
        .await
        .assert_code(400);
    }
    server
        .form(
            "/api/appuser/login",
            &[("server-secret", old["serverSecret"].as_str().unwrap())],
            &[
                ("handle", "user1@example.com"),
                ("password", &md5_hex("pw1")),
            ],
        )
        .await
        .assert_code(500);

    // Original passwords; bcrypt is replaced by Argon2id on the first success.
    let before = bcrypt_left(&server).await;
    for (h, p) in [
        ("user299@example.com", "pw299"),
        ("mixed.case@example.com", "mixed"),
        ("  MIXED.case@example.com", "mixed"),
        ("dup@example.com", "dup"),
        ("legacy10@example.com", "legacy10"),
        ("french@example.com", "french"),
        ("phone@example.com", "phone"),
    ] {
        let r = login(&server, app_token, h, p).await;
        assert_eq!(r.status, 200, "{h}: {}", r.text);
        assert!(r.json()["jwt"].is_string(), "{h}: {}", r.text);
    }
    assert_eq!(
        bcrypt_left(&server).await,
        before - 6,
        "each first login rehashes once"
    );
    login(&server, app_token, "user299@example.com", "pw299")
        .await
        .json()["jwt"]
        .as_str()
        .unwrap();
    login(&server, app_token, "user2@example.com", "wrong")
        .await
        .assert_code(600);
    login(&server, app_token, "dup@example.com", "dup-other")
        .await
        .assert_code(600);
    login(&server, app_token, "suspended@example.com", "suspended")
        .await
        .assert_code(404);
    // The authenticator user gets the second step; the secret came over.
    let v = login(&server, app_token, "totp@example.com", "totp")
        .await
        .json();
    assert!(v["login-token"].is_string(), "{v}");
    // Anonymous handle, byte-exact.
    let v = server
        .form(
            "/api/appuser/loginAnonymous",
            &[("app-token", app_token)],
            &[("handle", ANON)],
        )
        .await
        .json();
    assert_eq!(claims_of(&v)["sub"], ANON);
    // Profile data decrypts.
    let v = login(&server, app_token, "phone@example.com", "phone")
        .await
        .json();
    let me = server
        .get(
            "/api/appuser/getUser",
            &[("access-token", v["access-token"].as_str().unwrap())],
        )
        .await
        .json();
    assert_eq!(me["phone"], "+15550100001");
    assert_eq!(me["phoneVerified"], true);
    assert_eq!(me["metaData"]["user_data"]["name"], "Phone Person");
    // Pending signup and invite keep their codes.
    let v = server
        .form(
            "/api/appuser/completeSignup",
            &[("app-token", app_token)],
            &[("handle", "pending@example.com"), ("code", "123456")],
        )
        .await
        .json();
    assert!(v["jwt"].is_string(), "{v}");
    login(&server, app_token, "pending@example.com", "pending")
        .await
        .json()["jwt"]
        .as_str()
        .unwrap();
    let v = server
        .form(
            "/api/appuser/register",
            &[("app-token", app_token)],
            &[
                ("handle", "invitee@example.com"),
                ("password", &md5_hex("invited")),
                ("code", "654321"),
            ],
        )
        .await
        .json();
    assert!(v["jwt"].is_string(), "{v}");
    // The Tessera app-token the report printed works too.
    let tessera_token = report["appToken"].as_str().unwrap();
    login(&server, tessera_token, "user3@example.com", "pw3")
        .await
        .json()["jwt"]
        .as_str()
        .unwrap();
    // Settings and the published key came over.
    let app = server
        .get("/api/appuser/getApplication", &[("app-token", app_token)])
        .await
        .json();
    assert_eq!(app["name"], "Legacy Shop");
    assert_eq!(app["locales"], json!(["EN", "FR"]));
    assert_eq!(app["twoFactorVerification"], "google");
    assert_eq!(app["metaData"][0]["path"], "user_data.name");

    // Again: nothing new.
    let again: Value =
        serde_json::from_str(&ok(&server, &["import", "cosync", &zip_s, "--json"])).unwrap();
    for kind in ["apps", "users", "signups", "invites", "templates", "keys"] {
        assert_eq!(again["counts"][kind]["created"], 0, "{kind}: {again:#}");
    }
    assert_eq!(again["counts"]["users"]["existing"], expected_users as u64);
    // Nothing personal in clear at rest (the SQLite file and its WAL).
    if server.db.is_none() {
        let mut raw = Vec::new();
        for f in ["tessera.db", "tessera.db-wal"] {
            raw.extend(std::fs::read(server.data_dir().join(f)).unwrap_or_default());
        }
        let raw = String::from_utf8_lossy(&raw);
        for secret in [
            "user42@example.com",
            "Phone Person",
            "+15550100001",
            "JBSWY3DPEHPK3PXP",
            "twilio-token",
            "BEGIN RSA PRIVATE KEY",
        ] {
            assert!(!raw.contains(secret), "{secret} stored in clear");
        }
    }
    // Recorded in the audit log, counts only.
    let audit = ok(
        &server,
        &["audit", "list", "--action", "admin.import", "--json"],
    );
    assert!(
        audit.contains("users created 310 existing 0 rejected 9"),
        "{audit}"
    );
    assert!(!audit.contains("example.com"), "{audit}");
    // The text report, as docs/migrating-from-cosyncjwt.md quotes it.
    let text = ok(&server, &["import", "cosync", &zip_s, "--dry-run"]);
    for line in [
        "rejected: user-collection.csv row 3: duplicate handle (same as user-collection.csv row 2 after trimming and lower-casing)",
        "rejected: user-collection.csv row 4: handle is missing",
        "rejected: user-collection.csv row 5: password is not a bcrypt hash ($2a$/$2b$/$2y$)",
        "rejected: user-collection.csv row 6: field handle is not valid UTF-8",
        "rejected: user-collection.csv row 7: field handle contains a NUL character",
        "rejected: user-collection.csv row 8: field metaData is 10250 bytes, over the 8192-byte limit",
        "rejected: user-collection.csv row 9: handle is a formula-like value",
        "rejected: user-collection.csv row 10: belongs to another app (appId differs)",
        "warning: user-collection.csv row 13: no password hash: the user sets one with forgotPassword",
        "warning: user-collection.csv row 14: metaData not recoverable: the export wrote [object Object]; imported without it",
        "warning: app-collection.csv row 1: emailExtensionAPIKey (SendGrid) not imported: Tessera sends mail through its own SMTP settings",
    ] {
        assert!(text.contains(line), "{line}\nnot in\n{text}");
    }
    // The folder form reads the same.
    let dir_s = dir.display().to_string();
    let from_dir: Value =
        serde_json::from_str(&ok(&server, &["import", "cosync", &dir_s, "--json"])).unwrap();
    assert_eq!(
        from_dir["counts"]["users"]["existing"],
        expected_users as u64
    );
}

fn claims_of(v: &Value) -> Value {
    claims(v["jwt"].as_str().unwrap_or_else(|| panic!("{v}")))
}

async fn tessera_export_restores_on_another_server(backend: Backend) {
    let a = TestServer::on(backend);
    let app = a.create_app("Portable", "code");
    a.set(&app, &["userNamesEnabled=true"]);
    let v = sign_up(&a, &app, "carol@example.com", "carol-pw").await;
    let jwt_a = v["jwt"].as_str().unwrap().to_owned();
    let pass = a.dir.path().join("pass.txt");
    std::fs::write(&pass, "a long enough passphrase\n").unwrap();
    let archive = a.dir.path().join("portable.tessera");
    let out = ok(
        &a,
        &[
            "export",
            "--app",
            &app.app_id,
            &archive.display().to_string(),
            "--passphrase-file",
            &pass.display().to_string(),
        ],
    );
    assert!(out.contains("1 users"), "{out}");
    let bytes = std::fs::read(&archive).unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("carol"),
        "sealed at rest"
    );

    let b = TestServer::on(backend);
    let wrong = b.dir.path().join("wrong.txt");
    std::fs::write(&wrong, "not the passphrase at all").unwrap();
    let out = b.cli(&[
        "import",
        "tessera",
        &archive.display().to_string(),
        "--passphrase-file",
        &wrong.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    let report: Value = serde_json::from_str(&ok(
        &b,
        &[
            "import",
            "tessera",
            &archive.display().to_string(),
            "--passphrase-file",
            &pass.display().to_string(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(report["appId"], app.app_id.as_str());
    assert_eq!(report["counts"]["users"]["created"], 1);
    let token = report["appToken"].as_str().unwrap();
    let v = login(&b, token, "carol@example.com", "carol-pw")
        .await
        .json();
    let jwt_b = v["jwt"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        header_of(jwt_b)["kid"],
        header_of(&jwt_a)["kid"],
        "same key pair"
    );
    let jwks_a = a
        .get(&format!("/apps/{}/.well-known/jwks.json", app.app_id), &[])
        .await
        .json();
    let jwks_b = b
        .get(&format!("/apps/{}/.well-known/jwks.json", app.app_id), &[])
        .await
        .json();
    assert_eq!(jwks_a, jwks_b);
    // Idempotent.
    let again: Value = serde_json::from_str(&ok(
        &b,
        &[
            "import",
            "tessera",
            &archive.display().to_string(),
            "--passphrase-file",
            &pass.display().to_string(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(again["counts"]["users"]["created"], 0);
    assert_eq!(again["counts"]["users"]["existing"], 1);
}

async fn another_export_of_an_existing_app_publishes_none_of_its_keys(backend: Backend) {
    if !python_ok() {
        return;
    }
    let server = TestServer::on(backend);
    let jwks = || async {
        let path = format!("/apps/{APP_ID}/.well-known/jwks.json");
        let v = server.get(&path, &[]).await.json();
        let mut kids: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        kids
    };
    let mut published = Vec::new();
    for round in 0..2 {
        // Each deployment has the same app id and a key pair of its own.
        let dir = server.dir.path().join(format!("export-{round}"));
        write_fixture(&dir, &old_deployment(), 5);
        let report: Value = serde_json::from_str(&ok(
            &server,
            &["import", "cosync", &dir.display().to_string(), "--json"],
        ))
        .unwrap();
        if round == 1 {
            assert!(
                report["warnings"]
                    .to_string()
                    .contains("exists with another signing key"),
                "{report:#}"
            );
        }
        published.push(jwks().await);
    }
    assert_eq!(
        published[0], published[1],
        "the second export's key is not published"
    );
    assert_eq!(published[0].len(), 1);
}

on_both_backends!(
    another_export_of_an_existing_app_publishes_none_of_its_keys,
    cosync_export_imports_and_old_apps_keep_working,
    tessera_export_restores_on_another_server
);
