//! Each admin command as one admin API call and its printed answer.

use anyhow::Context;
use axum::http::Method;
use serde_json::{Map, Value, json};

use super::client::{AdminClient, enc};
use super::*;
use crate::config::Settings;

/// Runs a non-server command.
pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let target = match &command {
        Command::Serve => anyhow::bail!("serve is not an admin command"),
        // Run on the database directly (src/cli/keys.rs, src/cli/import.rs; see main.rs).
        Command::Keys(_) | Command::Import(_) | Command::Export(_) => {
            anyhow::bail!("not an admin API command")
        }
        Command::App { target, .. }
        | Command::User { target, .. }
        | Command::Signup { target, .. }
        | Command::Invite { target, .. }
        | Command::Audit { target, .. }
        | Command::Admin { target, .. } => target.clone(),
    };
    if target.server.is_none() && settings.public_url.is_none() && settings.listen.ends_with(":0") {
        eprintln!(
            "tessera: warning: the listen port is 0, so URLs printed here carry no usable port; \
             set TESSERA_PUBLIC_URL to the address clients reach"
        );
    }
    let client = AdminClient::new(settings, target.server.clone(), target.token.clone()).await?;
    let call = match command {
        Command::Serve => anyhow::bail!("serve is not an admin command"),
        Command::App {
            cmd: AppCommand::Update { app_id, set },
            ..
        } => app_update(&client, &app_id, &set).await?,
        // Run on the database directly (src/cli/keys.rs, src/cli/import.rs; see main.rs).
        Command::Keys(_) | Command::Import(_) | Command::Export(_) => {
            anyhow::bail!("not an admin API command")
        }
        Command::App { cmd, .. } => app(cmd)?,
        Command::User { cmd, .. } => user(&client, cmd).await?,
        Command::Signup { cmd, .. } => signup(cmd)?,
        Command::Invite { cmd, .. } => invite(cmd)?,
        Command::Audit { cmd, .. } => audit(cmd)?,
        Command::Admin { cmd, .. } => admin(cmd)?,
    };
    let answer = client
        .call(call.method, &call.path, call.body.as_ref())
        .await?;
    (call.print)(&answer, target.json);
    // A bulk call that partly failed is a failure for scripts.
    if let Some(results) = answer.get("results").and_then(Value::as_array) {
        let failed = results.iter().filter(|r| r["ok"] != true).count();
        if failed > 0 {
            anyhow::bail!("{failed} of {} failed", results.len());
        }
    }
    Ok(())
}

/// Prints an answer, as JSON when asked.
type Printer = Box<dyn Fn(&Value, bool)>;

/// One API call and how to print its answer.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    print: Printer,
}

type Built = anyhow::Result<Call>;

fn call(
    method: Method,
    path: String,
    body: Option<Value>,
    print: impl Fn(&Value, bool) + 'static,
) -> Built {
    Ok(Call {
        method,
        path,
        body,
        print: Box::new(print),
    })
}

const API: &str = "/admin/v1";

fn app(cmd: AppCommand) -> Built {
    match cmd {
        AppCommand::Create {
            name,
            signup_flow,
            realm_app_id,
            key_bits,
        } => {
            let flow = match signup_flow {
                FlowArg::Code => "code",
                FlowArg::Link => "link",
                FlowArg::None => "none",
            };
            let body = json!({"name": name, "signupFlow": flow, "realmAppId": realm_app_id, "keyBits": key_bits.bits()});
            // Always one JSON object: scripts read appId and appToken from it.
            call(
                Method::POST,
                format!("{API}/apps"),
                Some(body),
                print_compact,
            )
        }
        AppCommand::List => call(Method::GET, format!("{API}/apps"), None, print_apps),
        AppCommand::Show { app_id } => call(
            Method::GET,
            format!("{API}/apps/{}", enc(&app_id)),
            None,
            print_doc,
        ),
        AppCommand::Update { app_id, set } => {
            anyhow::bail!("internal: app update {app_id} {set:?} goes through app_update")
        }
        AppCommand::Suspend { app_id } => call(
            Method::POST,
            format!("{API}/apps/{}/suspend", enc(&app_id)),
            None,
            done("suspended"),
        ),
        AppCommand::Activate { app_id } => call(
            Method::POST,
            format!("{API}/apps/{}/activate", enc(&app_id)),
            None,
            done("active"),
        ),
        AppCommand::Delete { app_id, yes } => {
            if !yes {
                anyhow::bail!(
                    "deleting app {app_id} removes all its users and data; add --yes to confirm"
                );
            }
            call(
                Method::DELETE,
                format!("{API}/apps/{}", enc(&app_id)),
                None,
                done("deleted"),
            )
        }
        AppCommand::RotateKey { app_id, key_bits } => call(
            Method::POST,
            format!("{API}/apps/{}/keys/rotate", enc(&app_id)),
            Some(json!({"keyBits": key_bits.bits()})),
            print_doc,
        ),
        AppCommand::Stats { app_id } => call(
            Method::GET,
            format!("{API}/apps/{}/stats", enc(&app_id)),
            None,
            print_doc,
        ),
        AppCommand::Templates { app_id } => call(
            Method::GET,
            format!("{API}/apps/{}/templates", enc(&app_id)),
            None,
            print_templates,
        ),
        AppCommand::SetTemplate {
            app_id,
            name,
            locale,
            subject,
            html_file,
            link_text,
        } => {
            let html = std::fs::read_to_string(&html_file)
                .with_context(|| format!("reading {}", html_file.display()))?;
            call(
                Method::PUT,
                format!(
                    "{API}/apps/{}/templates/{}/{}",
                    enc(&app_id),
                    enc(&name),
                    enc(&locale)
                ),
                Some(json!({"subject": subject, "html": html, "linkText": link_text})),
                done("stored"),
            )
        }
    }
}

/// `app update --set NAME=VALUE`: each VALUE gets its setting's JSON type, read from the app's
/// current settings. Text settings take the text as typed (`realmAppId=12345` is the text
/// "12345"; a quoted JSON string also works); the others take JSON.
async fn app_update(client: &AdminClient, app_id: &str, set: &[String]) -> Built {
    let path = format!("{API}/apps/{}", enc(app_id));
    let current = client.call(Method::GET, &path, None).await?;
    let mut changes = Map::new();
    for s in set {
        let (name, text) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected NAME=VALUE"))?;
        let name = name.trim();
        let is_text = current.get(name).is_none_or(Value::is_string);
        let value = match serde_json::from_str::<Value>(text) {
            Ok(Value::String(quoted)) => Value::String(quoted),
            Ok(_) | Err(_) if is_text => Value::String(text.to_owned()),
            Ok(v) => v,
            Err(e) => anyhow::bail!("--set {name}: the value is not valid JSON: {e}"),
        };
        changes.insert(name.to_owned(), value);
    }
    call(Method::PATCH, path, Some(Value::Object(changes)), print_doc)
}

/// The API path of a user: by id directly; by handle or user name through the look-up
/// route, whose answer gives the id.
async fn user_path(client: &AdminClient, r: &UserRef) -> anyhow::Result<String> {
    let app = enc(&r.app_id);
    let query = match r.by {
        // Ids never contain `@`: an e-mail given as an id is meant as a handle.
        UserBy::Id if r.user.contains('@') => format!("handle={}", enc(&r.user)),
        UserBy::Id => return Ok(format!("{API}/apps/{app}/users/{}", enc(&r.user))),
        UserBy::Handle => format!("handle={}", enc(&r.user)),
        UserBy::UserName => format!("userName={}", enc(&r.user)),
    };
    let found = client
        .call(
            Method::GET,
            &format!("{API}/apps/{app}/users/lookup?{query}"),
            None,
        )
        .await?;
    let id = found["id"]
        .as_str()
        .context("the look-up answered no user id")?;
    Ok(format!("{API}/apps/{app}/users/{}", enc(id)))
}

async fn user(client: &AdminClient, cmd: UserCommand) -> Built {
    let (r, method, suffix, body, print): (UserRef, Method, &str, Option<Value>, Printer) =
        match cmd {
            UserCommand::List { app_id, page } => {
                return call(
                    Method::GET,
                    format!(
                        "{API}/apps/{}/users?limit={}&offset={}",
                        enc(&app_id),
                        page.limit,
                        page.offset
                    ),
                    None,
                    print_users,
                );
            }
            UserCommand::Show(r) => (r, Method::GET, "", None, Box::new(print_doc)),
            UserCommand::Suspend(r) => (r, Method::POST, "/suspend", None, done("suspended")),
            UserCommand::Activate(r) => (r, Method::POST, "/activate", None, done("active")),
            UserCommand::Delete { user, yes } => {
                if !yes {
                    anyhow::bail!(
                        "deleting user {} cannot be undone; add --yes to confirm",
                        user.user
                    );
                }
                (user, Method::DELETE, "", None, done("deleted"))
            }
            UserCommand::SetMetadata { user, meta } => {
                let meta: Value =
                    serde_json::from_str(&meta).context("--meta must be a JSON object")?;
                (
                    user,
                    Method::PUT,
                    "/metadata",
                    Some(json!({"metaData": meta})),
                    Box::new(print_doc),
                )
            }
            UserCommand::ResetPassword(r) => (
                r,
                Method::POST,
                "/reset-password",
                None,
                done("reset code mailed"),
            ),
            UserCommand::Disable2fa(r) => (
                r,
                Method::POST,
                "/disable-2fa",
                None,
                done("second factors off"),
            ),
        };
    call(
        method,
        format!("{}{suffix}", user_path(client, &r).await?),
        body,
        print,
    )
}

fn signup(cmd: SignupCommand) -> Built {
    match cmd {
        SignupCommand::List { app_id, page } => call(
            Method::GET,
            format!(
                "{API}/apps/{}/signups?limit={}&offset={}",
                enc(&app_id),
                page.limit,
                page.offset
            ),
            None,
            print_signups,
        ),
        SignupCommand::Resend { app_id, handle } => call(
            Method::POST,
            format!("{API}/apps/{}/signups/resend", enc(&app_id)),
            Some(json!({"handle": handle})),
            done("new code mailed"),
        ),
        SignupCommand::Remove { app_id, handle } => call(
            Method::DELETE,
            format!(
                "{API}/apps/{}/signups?handle={}",
                enc(&app_id),
                enc(&handle)
            ),
            None,
            done("removed"),
        ),
    }
}

fn invite(cmd: InviteCommand) -> Built {
    match cmd {
        InviteCommand::List { app_id, page } => call(
            Method::GET,
            format!(
                "{API}/apps/{}/invites?limit={}&offset={}",
                enc(&app_id),
                page.limit,
                page.offset
            ),
            None,
            print_invites,
        ),
        InviteCommand::Create {
            app_id,
            mut handles,
            file,
            meta,
            locale,
        } => {
            if let Some(f) = file {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                handles.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
            if handles.is_empty() {
                anyhow::bail!("give --handle (repeatable) or --file");
            }
            let meta: Option<Value> = meta
                .map(|m| serde_json::from_str(&m).context("--meta must be a JSON object"))
                .transpose()?;
            let invites: Vec<Value> = handles
                .iter()
                .map(|h| json!({"handle": h, "metaData": meta, "locale": locale}))
                .collect();
            call(
                Method::POST,
                format!("{API}/apps/{}/invites", enc(&app_id)),
                Some(json!({ "invites": invites })),
                print_invite_results,
            )
        }
        InviteCommand::Resend { app_id, handle } => call(
            Method::POST,
            format!("{API}/apps/{}/invites/resend", enc(&app_id)),
            Some(json!({"handle": handle})),
            print_doc,
        ),
        InviteCommand::Remove { app_id, handle } => call(
            Method::DELETE,
            format!(
                "{API}/apps/{}/invites?handle={}",
                enc(&app_id),
                enc(&handle)
            ),
            None,
            print_doc,
        ),
    }
}

fn audit(cmd: AuditCommand) -> Built {
    let AuditCommand::List {
        app,
        user,
        action,
        outcome,
        from,
        to,
        page,
    } = cmd;
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("appId", app),
        ("userId", user),
        ("action", action),
        ("outcome", outcome),
    ] {
        if let Some(v) = v {
            q.append_pair(k, &v);
        }
    }
    for (k, v) in [("from", from), ("to", to)] {
        if let Some(v) = v {
            q.append_pair(k, &v.to_string());
        }
    }
    q.append_pair("limit", &page.limit.to_string());
    q.append_pair("offset", &page.offset.to_string());
    call(
        Method::GET,
        format!("{API}/audit?{}", q.finish()),
        None,
        print_audit,
    )
}

fn admin(cmd: AdminCommand) -> Built {
    let AdminCommand::Token(cmd) = cmd;
    match cmd {
        TokenCommand::Create {
            name,
            expires_in_days,
        } => call(
            Method::POST,
            format!("{API}/tokens"),
            Some(json!({"name": name, "expiresInDays": expires_in_days})),
            print_token,
        ),
        TokenCommand::List => call(Method::GET, format!("{API}/tokens"), None, print_tokens),
        TokenCommand::Revoke { id } => call(
            Method::DELETE,
            format!("{API}/tokens/{}", enc(&id)),
            None,
            done("revoked"),
        ),
    }
}

// Printing: JSON on request, otherwise tables and short lines.

fn done(word: &'static str) -> Printer {
    Box::new(move |v, j| say(v, j, word))
}

fn say(_: &Value, json: bool, word: &str) {
    if json {
        println!("{}", json!({ "ok": true, "result": word }));
    } else {
        println!("{word}");
    }
}

fn print_compact(v: &Value, _: bool) {
    println!("{v}");
}

fn print_doc(v: &Value, json: bool) {
    if json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Prints rows of `list` (a JSON array under `key`) as a table with the given columns.
fn table(v: &Value, json: bool, key: &str, columns: &[(&str, &str)]) {
    if json {
        println!("{v}");
        return;
    }
    let empty = Vec::new();
    let rows = v.get(key).and_then(Value::as_array).unwrap_or(&empty);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|(_, field)| text(&pointer(r, field)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |parts: Vec<String>| {
        let padded: Vec<String> = parts
            .iter()
            .zip(&widths)
            .map(|(p, w)| format!("{p:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| (*h).to_owned()).collect());
    for c in cells {
        line(c);
    }
}

fn pointer(v: &Value, field: &str) -> Value {
    v.pointer(&format!("/{}", field.replace('.', "/")))
        .cloned()
        .unwrap_or(Value::Null)
}

fn print_apps(v: &Value, j: bool) {
    table(
        v,
        j,
        "apps",
        &[
            ("APP ID", "appId"),
            ("STATUS", "status"),
            ("FLOW", "signupFlow"),
            ("USERS", "stats.users"),
            ("NAME", "name"),
        ],
    );
}

fn print_users(v: &Value, j: bool) {
    table(
        v,
        j,
        "users",
        &[
            ("USER ID", "id"),
            ("HANDLE", "handle"),
            ("USER NAME", "userName"),
            ("STATUS", "status"),
            ("CREATED", "createdAt"),
        ],
    );
}

fn print_signups(v: &Value, j: bool) {
    table(
        v,
        j,
        "signups",
        &[
            ("HANDLE", "handle"),
            ("LOCALE", "locale"),
            ("CONTESTED", "contested"),
            ("EXPIRES", "expiresAt"),
        ],
    );
}

fn print_invites(v: &Value, j: bool) {
    table(
        v,
        j,
        "invites",
        &[
            ("HANDLE", "handle"),
            ("SENDER", "senderHandle"),
            ("EXPIRES", "expiresAt"),
        ],
    );
}

fn print_invite_results(v: &Value, j: bool) {
    table(
        v,
        j,
        "results",
        &[("HANDLE", "handle"), ("OK", "ok"), ("ERROR", "error")],
    );
}

fn print_templates(v: &Value, j: bool) {
    table(
        v,
        j,
        "templates",
        &[
            ("NAME", "name"),
            ("LOCALE", "locale"),
            ("SUBJECT", "subject"),
        ],
    );
}

fn print_audit(v: &Value, j: bool) {
    table(
        v,
        j,
        "events",
        &[
            ("AT", "at"),
            ("ACTION", "action"),
            ("OUTCOME", "outcome"),
            ("APP", "appId"),
            ("USER", "userId"),
            ("IP", "ip"),
            ("DETAIL", "detail"),
        ],
    );
}

fn print_tokens(v: &Value, j: bool) {
    table(
        v,
        j,
        "tokens",
        &[
            ("ID", "id"),
            ("NAME", "name"),
            ("CREATED", "createdAt"),
            ("EXPIRES", "expiresAt"),
            ("REVOKED", "revokedAt"),
            ("LAST USED", "lastUsedAt"),
        ],
    );
}

fn print_token(v: &Value, j: bool) {
    if j {
        println!("{v}");
    } else {
        println!("{}", text(&v["token"]));
        eprintln!(
            "admin token {} created; it is shown only now: store it safely",
            text(&v["id"])
        );
    }
}
