//! The admin API (`/admin/v1`) and the admin CLI over the real server: every route's success,
//! validation failures, missing/wrong/revoked tokens, and that no answer ever carries a
//! private key, password hash, code or provider secret.

use serde_json::{Value, json};

use crate::helpers::*;

/// An admin session against one server: every answer's text is kept for the leak check.
struct AdminApi<'a> {
    server: &'a TestServer,
    token: String,
    seen: std::cell::RefCell<Vec<String>>,
}

impl<'a> AdminApi<'a> {
    fn new(server: &'a TestServer) -> Self {
        let out = server.cli(&["admin", "token", "create", "--name", "tests"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(token.starts_with("tsa_"), "{token}");
        Self {
            server,
            token,
            seen: Default::default(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let headers = [("authorization", auth.as_str())];
        let reply = match body {
            Some(b) => {
                self.server
                    .raw(
                        method,
                        path,
                        &headers,
                        Some("application/json"),
                        b.to_string().into(),
                    )
                    .await
            }
            None => {
                self.server
                    .raw(method, path, &headers, None, Vec::new())
                    .await
            }
        };
        self.seen.borrow_mut().push(reply.text.clone());
        reply
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    fn assert_no_secret_seen(&self, secrets: &[&str]) {
        for text in self.seen.borrow().iter() {
            for bad in ["PRIVATE KEY", "$argon2", "secretHash", "sealed"]
                .iter()
                .chain(secrets)
            {
                assert!(
                    !text.contains(bad),
                    "an admin answer carries {bad:?}: {text}"
                );
            }
        }
    }
}

fn problem(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
    assert_eq!(r.json()["status"], status);
}

async fn admin_tokens_are_required_and_revocable(backend: Backend) {
    let server = TestServer::on(backend);
    let api = AdminApi::new(&server);
    // No token, a malformed one, a forged one: 401 with a Bearer challenge.
    let none = server.get("/admin/v1/apps", &[]).await;
    problem(&none, 401);
    assert!(
        none.headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    for bad in ["Bearer nonsense", "Bearer tsa_x.y", "Basic dXNlcjpwdw=="] {
        problem(
            &server
                .get("/admin/v1/apps", &[("authorization", bad)])
                .await,
            401,
        );
    }
    let (id, _) = api
        .token
        .trim_start_matches("tsa_")
        .split_once('.')
        .unwrap();
    let forged = format!("Bearer tsa_{id}.{}", "A".repeat(43));
    problem(
        &server
            .get("/admin/v1/apps", &[("authorization", &forged)])
            .await,
        401,
    );
    // An app-token or access-token is not an admin token.
    let app = server.create_app("Tokens", "code");
    let as_app = format!("Bearer {}", app.app_token);
    problem(
        &server
            .get("/admin/v1/apps", &[("authorization", &as_app)])
            .await,
        401,
    );

    // A second token over the API; listing never shows a secret; revoked: 403.
    let r = api
        .post(
            "/admin/v1/tokens",
            json!({"name": "ci", "expiresInDays": 30}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.json();
    let second_token = second["token"].as_str().unwrap().to_owned();
    let list = api.get("/admin/v1/tokens").await;
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|t| t.get("token").is_none() && t["name"].is_string())
    );
    assert!(
        !list
            .to_string()
            .contains(second_token.split('.').nth(1).unwrap())
    );
    problem(
        &api.post("/admin/v1/tokens", json!({"name": ""})).await,
        422,
    );
    problem(
        &api.post("/admin/v1/tokens", json!({"name": "x", "scope": "all"}))
            .await,
        400,
    );
    let path = format!("/admin/v1/tokens/{}", second["id"].as_str().unwrap());
    assert_eq!(
        api.send(reqwest::Method::DELETE, &path, None).await.status,
        204
    );
    problem(&api.send(reqwest::Method::DELETE, &path, None).await, 404);
    let revoked = format!("Bearer {second_token}");
    problem(
        &server
            .get("/admin/v1/apps", &[("authorization", &revoked)])
            .await,
        403,
    );
    // The CLI revokes too; the first token then stops working.
    let out = server.cli(&["admin", "token", "revoke", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    problem(
        &api.send(reqwest::Method::GET, "/admin/v1/apps", None).await,
        403,
    );
    api.assert_no_secret_seen(&[]);
}

async fn apps_settings_keys_and_status(backend: Backend) {
    let server = TestServer::on(backend);
    let api = AdminApi::new(&server);
    let r = api
        .post(
            "/admin/v1/apps",
            json!({"name": "Admin made", "signupFlow": "none", "realmAppId": "realm-1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let app_id = created["appId"].as_str().unwrap().to_owned();
    let app_token = created["appToken"].as_str().unwrap().to_owned();
    let app_path = format!("/admin/v1/apps/{app_id}");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "signupFlow": "magic"}),
        json!({"name": "x", "keyBits": 1024}),
    ] {
        problem(&api.post("/admin/v1/apps", bad).await, 422);
    }
    problem(
        &api.post("/admin/v1/apps", json!({"name": "x", "owner": "server"}))
            .await,
        400,
    );

    // Settings: validated, all or none, secrets write-only.
    let patch = |body: Value| api.send(reqwest::Method::PATCH, &app_path, Some(body));
    let r = patch(json!({"userNamesEnabled": true, "TWILIOToken": "tw-very-secret", "TWILIOAccountSid": "AC1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let view = r.json();
    assert_eq!(view["userNamesEnabled"], true);
    assert_eq!(
        view["secretsSet"],
        json!(["TWILIOAccountSid", "TWILIOToken"])
    );
    problem(
        &patch(json!({"userNamesEnabled": false, "noSuchSetting": 1})).await,
        422,
    );
    problem(&patch(json!({"locales": ["FR"]})).await, 422);
    problem(&patch(json!({"status": "inactive"})).await, 422);
    problem(&patch(json!({})).await, 422);
    assert_eq!(
        api.get(&app_path).await["userNamesEnabled"],
        true,
        "nothing changed"
    );
    problem(
        &api.send(reqwest::Method::GET, "/admin/v1/apps/nope", None)
            .await,
        404,
    );

    // Suspension shows on the CosyncJWT routes (402) until activation.
    let h = [("app-token", app_token.as_str())];
    let pw = md5_hex("pw");
    let signup = |handle: &'static str| {
        let (pw, server) = (pw.clone(), &server);
        async move {
            server
                .form(
                    "/api/appuser/signup",
                    &h,
                    &[("handle", handle), ("password", &pw)],
                )
                .await
        }
    };
    let first = signup("k1@x.de").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let old_jwt = first.json()["jwt"].as_str().unwrap().to_owned();
    assert_eq!(
        api.post(&format!("{app_path}/suspend"), json!({}))
            .await
            .status,
        204
    );
    signup("k2@x.de").await.assert_code(402);
    assert_eq!(api.get(&app_path).await["status"], "inactive");
    assert_eq!(
        api.post(&format!("{app_path}/activate"), json!({}))
            .await
            .status,
        204
    );

    // Key rotation: a new kid signs, the old one stays published, at most three keys.
    let jwks_path = format!("/apps/{app_id}/.well-known/jwks.json");
    let jwks = || async {
        let r = server.get(&jwks_path, &[]).await;
        r.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let old_kid = header_of(&old_jwt)["kid"].as_str().unwrap().to_owned();
    let r = api
        .post(&format!("{app_path}/keys/rotate"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new_kid = r.json()["kid"].as_str().unwrap().to_owned();
    assert!(
        r.json()["publicKey"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let published = jwks().await;
    assert!(
        published.contains(&old_kid) && published.contains(&new_kid),
        "{published:?}"
    );
    let next = signup("k3@x.de").await;
    assert_eq!(
        header_of(next.json()["jwt"].as_str().unwrap())["kid"],
        new_kid.as_str()
    );
    for _ in 0..2 {
        assert_eq!(
            api.post(&format!("{app_path}/keys/rotate"), json!({}))
                .await
                .status,
            201
        );
    }
    let published = jwks().await;
    assert_eq!(published.len(), 3, "at most three keys published");
    assert!(!published.contains(&old_kid), "the oldest key retired");
    problem(
        &api.post(&format!("{app_path}/keys/rotate"), json!({"keyBits": 1}))
            .await,
        422,
    );

    // Statistics and templates.
    let stats = api.get(&format!("{app_path}/stats")).await;
    assert_eq!(
        stats,
        json!({"users": 2, "anonymousUsers": 0, "pendingSignups": 0, "invites": 0})
    );
    let r = api
        .send(
            reqwest::Method::PUT,
            &format!("{app_path}/templates/signUp/EN"),
            Some(json!({"subject": "Welcome", "html": "<p>%CODE%</p>"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api
        .send(
            reqwest::Method::PUT,
            &format!("{app_path}/templates/nonsense/EN"),
            Some(json!({"subject": "x", "html": "y"})),
        )
        .await;
    problem(&r, 422);
    let templates = api.get(&format!("{app_path}/templates")).await;
    assert_eq!(templates["templates"][0]["subject"], "Welcome");

    // Listing, then deletion with everything in it.
    let apps = api.get("/admin/v1/apps").await;
    assert_eq!(apps["apps"][0]["stats"]["users"], 2);
    assert_eq!(
        api.send(reqwest::Method::DELETE, &app_path, None)
            .await
            .status,
        204
    );
    problem(&api.send(reqwest::Method::GET, &app_path, None).await, 404);
    signup("k4@x.de").await.assert_code(401);
    // The audit log names what changed, never a value.
    let audit = api
        .get(&format!(
            "/admin/v1/audit?appId={app_id}&action=admin.app.update"
        ))
        .await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert!(
        events[0]["detail"]
            .as_str()
            .unwrap()
            .contains("TWILIOToken")
    );
    let all = api
        .get(&format!("/admin/v1/audit?appId={app_id}&limit=100"))
        .await;
    let actions: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "admin.app.create",
        "admin.app.suspend",
        "admin.app.activate",
        "admin.app.rotate_key",
        "admin.template.put",
        "admin.app.delete",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    problem(
        &api.send(reqwest::Method::GET, "/admin/v1/audit?limit=0", None)
            .await,
        422,
    );
    problem(
        &api.send(reqwest::Method::GET, "/admin/v1/audit?bogus=1", None)
            .await,
        400,
    );
    api.assert_no_secret_seen(&["tw-very-secret"]);
}

async fn users_signups_and_invites(backend: Backend) {
    let server = TestServer::on(backend);
    let api = AdminApi::new(&server);
    let app = server.create_app("People", "code");
    server.set(
        &app,
        &[
            "userNamesEnabled=true",
            "invitationEnabled=true",
            r#"metaData=[{"path":"team","fieldName":"team","required":false,"canEdit":false}]"#,
        ],
    );
    let base = format!("/admin/v1/apps/{}", app.app_id);
    sign_up(&server, &app, "ann@x.de", "pw").await;
    sign_up(&server, &app, "bob@x.de", "pw").await;
    let h = app.header();
    let login = |handle: &'static str, pw: &'static str| {
        let server = &server;
        async move {
            server
                .form(
                    "/api/appuser/login",
                    &h,
                    &[("handle", handle), ("password", &md5_hex(pw))],
                )
                .await
        }
    };
    let at = login("ann@x.de", "pw").await.json()["access-token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .form(
            "/api/appuser/setUserName",
            &[("access-token", at.as_str())],
            &[("userName", "annie")],
        )
        .await
        .assert_true();

    // Listing is paged and opened for display; look-ups go through the blind indexes.
    let page = api.get(&format!("{base}/users?limit=1")).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["handle"], "ann@x.de");
    let page2 = api.get(&format!("{base}/users?limit=1&offset=1")).await;
    assert_eq!(page2["users"][0]["handle"], "bob@x.de");
    let ann = api
        .get(&format!("{base}/users/lookup?handle=%20ANN@x.de"))
        .await;
    assert_eq!(ann["userName"], "annie");
    let by_name = api
        .get(&format!("{base}/users/lookup?userName=Annie"))
        .await;
    assert_eq!(by_name["id"], ann["id"]);
    problem(
        &api.send(reqwest::Method::GET, &format!("{base}/users/lookup"), None)
            .await,
        422,
    );
    problem(
        &api.send(
            reqwest::Method::GET,
            &format!("{base}/users/lookup?handle=nobody@x.de"),
            None,
        )
        .await,
        404,
    );
    problem(
        &api.send(
            reqwest::Method::GET,
            &format!("{base}/users?limit=5000"),
            None,
        )
        .await,
        422,
    );
    let user = format!("{base}/users/{}", ann["id"].as_str().unwrap());
    assert_eq!(api.get(&user).await["handle"], "ann@x.de");

    // Suspension revokes every token and refuses logins; activation lets the user back.
    assert_eq!(
        api.post(&format!("{user}/suspend"), json!({})).await.status,
        204
    );
    server
        .get("/api/appuser/getUser", &[("access-token", at.as_str())])
        .await
        .assert_code(405);
    login("ann@x.de", "pw").await.assert_code(404);
    assert_eq!(
        api.post(&format!("{user}/activate"), json!({}))
            .await
            .status,
        204
    );
    assert_eq!(login("ann@x.de", "pw").await.status, 200);

    // Metadata an operator sets, non-editable fields included, validated.
    let r = api
        .send(
            reqwest::Method::PUT,
            &format!("{user}/metadata"),
            Some(json!({"metaData": {"team": "blue"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["metaData"], json!({"team": "blue"}));
    let jwt = login("ann@x.de", "pw").await.json()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&jwt)["team"], "blue");
    let r = api
        .send(
            reqwest::Method::PUT,
            &format!("{user}/metadata"),
            Some(json!({"metaData": {"team": 7}})),
        )
        .await;
    problem(&r, 422);

    // A forced reset mails a code, never a password; 2FA off; deletion.
    let before = server.outbox().len();
    assert_eq!(
        api.post(&format!("{user}/reset-password"), json!({}))
            .await
            .status,
        204
    );
    let mails = server.outbox();
    assert_eq!(mails.len(), before + 1);
    let code = code_in(mails.last().unwrap());
    let reset = server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[
                ("handle", "ann@x.de"),
                ("password", &md5_hex("new")),
                ("code", &code),
            ],
        )
        .await;
    reset.assert_true();
    assert_eq!(
        api.post(&format!("{user}/disable-2fa"), json!({}))
            .await
            .status,
        204
    );
    assert_eq!(
        api.send(reqwest::Method::DELETE, &user, None).await.status,
        204
    );
    login("ann@x.de", "new").await.assert_code(600);
    problem(&api.send(reqwest::Method::GET, &user, None).await, 404);

    // Pending signups: listed, resent (the old code dies), removed.
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "pend@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_true();
    let first_code = code_in(&server.outbox().pop().unwrap());
    // The app's own sender address (validated) goes on its mails from now on.
    let sender = |v: &str| {
        api.send(
            reqwest::Method::PATCH,
            &base,
            Some(json!({"emailExtensionSenderEmail": v})),
        )
    };
    problem(&sender("\"x\" <a@b.de>").await, 422);
    assert_eq!(sender("hello@people.example").await.status, 200);
    let signups = api.get(&format!("{base}/signups")).await;
    assert_eq!(signups["signups"][0]["handle"], "pend@x.de");
    assert_eq!(
        api.post(
            &format!("{base}/signups/resend"),
            json!({"handle": "pend@x.de"})
        )
        .await
        .status,
        204
    );
    let resent = server.outbox().pop().unwrap();
    assert!(
        resent.contains("From: Tessera <hello@people.example>")
            || resent.contains("<hello@people.example>"),
        "{resent}"
    );
    let second_code = code_in(&resent);
    if first_code != second_code {
        server
            .form(
                "/api/appuser/completeSignup",
                &h,
                &[("handle", "pend@x.de"), ("code", &first_code)],
            )
            .await
            .assert_code(602);
    }
    problem(
        &api.post(
            &format!("{base}/signups/resend"),
            json!({"handle": "none@x.de"}),
        )
        .await,
        404,
    );
    let r = api
        .send(
            reqwest::Method::DELETE,
            &format!("{base}/signups?handle=pend@x.de"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "pend@x.de"), ("code", &second_code)],
        )
        .await
        .assert_code(602);

    // Invites in bulk: each entry on its own.
    let r = api
        .post(
            &format!("{base}/invites"),
            json!({"invites": [{"handle": "New@X.de"}, {"handle": "bob@x.de"}, {"handle": "not a handle"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json()["results"].clone();
    assert_eq!(
        results[0],
        json!({"handle": "new@x.de", "ok": true, "error": null})
    );
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[2]["ok"], false);
    let invite_code = code_in(&server.outbox().pop().unwrap());
    let invites = api.get(&format!("{base}/invites")).await;
    assert_eq!(invites["invites"][0]["handle"], "new@x.de");
    let r = api
        .post(
            &format!("{base}/invites/resend"),
            json!({"handle": "new@x.de"}),
        )
        .await;
    assert_eq!(r.json()["resent"], 1);
    let resent_code = code_in(&server.outbox().pop().unwrap());
    if resent_code != invite_code {
        server
            .form(
                "/api/appuser/register",
                &h,
                &[
                    ("handle", "new@x.de"),
                    ("password", &md5_hex("pw")),
                    ("code", &invite_code),
                ],
            )
            .await
            .assert_code(602);
    }
    let stats = api.get(&format!("{base}/stats")).await;
    assert_eq!(stats["invites"], 1);
    let r = api
        .send(
            reqwest::Method::DELETE,
            &format!("{base}/invites?handle=new@x.de"),
            None,
        )
        .await;
    assert_eq!(r.json()["removed"], 1);
    problem(
        &api.post(&format!("{base}/invites"), json!({"invites": []}))
            .await,
        422,
    );
    let audit = api
        .get(&format!(
            "/admin/v1/audit?appId={}&userId={}",
            app.app_id,
            ann["id"].as_str().unwrap()
        ))
        .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "admin.user.suspend",
        "admin.user.activate",
        "admin.user.metadata",
        "admin.user.reset_password",
        "admin.user.disable_2fa",
        "admin.user.delete",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    api.assert_no_secret_seen(&[&first_code, &second_code, &invite_code, &resent_code]);
}

async fn cli_tables_json_exit_codes_and_remote(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Cli", "code");
    sign_up(&server, &app, "cli@x.de", "pw").await;
    let run = |args: &[&str]| {
        let out = server.cli(args);
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, table, _) = run(&["user", "list", &app.app_id]);
    assert_eq!(code, Some(0));
    assert!(
        table.lines().next().unwrap().starts_with("USER ID"),
        "{table}"
    );
    assert!(table.contains("cli@x.de"), "{table}");
    let (_, json_out, _) = run(&["user", "list", &app.app_id, "--json"]);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    let id = v["users"][0]["id"].as_str().unwrap().to_owned();
    let (code, shown, _) = run(&[
        "user",
        "show",
        &app.app_id,
        "cli@x.de",
        "--by",
        "handle",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&shown).unwrap()["id"],
        id.as_str()
    );
    let (code, out, _) = run(&["user", "suspend", &app.app_id, &id]);
    assert_eq!((code, out.trim()), (Some(0), "suspended"));
    // Clear errors and non-zero exits.
    let (code, _, err) = run(&["app", "show", "no-such-app"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("no app with id no-such-app") && err.contains("404"),
        "{err}"
    );
    let (code, _, err) = run(&["app", "delete", &app.app_id]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--yes"), "{err}");
    let (code, _, err) = run(&["app", "update", &app.app_id, "--set", "bogus=1"]);
    assert_ne!(code, Some(0));
    assert_eq!(
        err.matches("unknown setting").count(),
        1,
        "said once: {err}"
    );
    // The same commands against the running server with a token.
    let (_, token, _) = run(&["admin", "token", "create", "--name", "remote"]);
    let token = token.trim().to_owned();
    let (code, out, err) = run(&[
        "app",
        "stats",
        &app.app_id,
        "--server",
        &server.base,
        "--token",
        &token,
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["users"], 1);
    let (code, _, err) = run(&[
        "app",
        "list",
        "--server",
        &server.base,
        "--token",
        "tsa_bad.token",
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = run(&["app", "list", "--server", &server.base]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--token"), "{err}");
    let (code, out, _) = run(&[
        "audit",
        "list",
        "--app",
        &app.app_id,
        "--action",
        "admin.user.suspend",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("admin.user.suspend") && out.contains("cli"),
        "{out}"
    );
}

/// A node keeps each app in memory for `APP_CACHE_TTL`: a change through its admin API applies
/// at the next request; one the CLI makes on the database, once that time has passed.
async fn app_changes_reach_a_running_node(backend: Backend) {
    let server = TestServer::on(backend);
    let api = AdminApi::new(&server);
    let app = server.create_app("Cached", "none");
    let app_path = format!("/admin/v1/apps/{}", app.app_id);
    let (server_ref, app_ref, n) = (&server, &app, std::cell::Cell::new(0));
    let signup = || {
        n.set(n.get() + 1);
        let handle = format!("c{}@x.de", n.get());
        let (server, app) = (server_ref, app_ref);
        async move {
            server
                .form(
                    "/api/appuser/signup",
                    &app.header(),
                    &[("handle", &handle), ("password", &md5_hex("pw-cached-1"))],
                )
                .await
        }
    };
    assert_eq!(signup().await.status, 200);
    let r = api.post(&format!("{app_path}/suspend"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    signup().await.assert_code(402);
    let r = api.post(&format!("{app_path}/activate"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(signup().await.status, 200);

    // The CLI on the database, beside the running node.
    let out = server.cli(&["app", "suspend", &app.app_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A settings change through the node, which may still hold the active copy, is applied to
    // the app as it is now: the suspension stays.
    let r = api
        .send(
            reqwest::Method::PATCH,
            &app_path,
            Some(json!({"userNamesEnabled": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let view = api.get(&app_path).await;
    assert_eq!(
        (&view["status"], &view["userNamesEnabled"]),
        (&json!("inactive"), &json!(true))
    );
    tokio::time::sleep(tessera::domain::apps::APP_CACHE_TTL).await;
    signup().await.assert_code(402);
}

on_both_backends!(
    app_changes_reach_a_running_node,
    admin_tokens_are_required_and_revocable,
    apps_settings_keys_and_status,
    users_signups_and_invites,
    cli_tables_json_exit_codes_and_remote,
);
