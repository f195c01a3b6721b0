//! Signing up and logging in: `signup`, `completeSignup` (POST, and the GET e-mail link that
//! shows a confirmation page), `login`, `loginAnonymous`.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

use super::{Answer, Reply, issued_json};
use crate::domain::login::LoginInput;
use crate::domain::signup::{CompleteOutcome, SignupInput, SignupOutcome};
use crate::domain::two_factor::LoginOutcome;
use crate::domain::{Core, Error, parse_code};
use crate::http::extract::CosyncRequest;
use crate::notify::templates::escape_html;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/login", post(login))
        .route("/api/appuser/loginAnonymous", post(login_anonymous))
        .route("/api/appuser/signup", post(signup))
        .route(
            "/api/appuser/completeSignup",
            post(complete_signup).get(confirm_page),
        )
}

async fn login(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_scope()?;
    let input = LoginInput {
        handle: req.fields.required("handle")?,
        password: req.fields.required_secret("password")?,
    };
    match core.login(app_id, input, req.now).await? {
        LoginOutcome::Issued(issued) => Ok(Reply::Json(issued_json(issued))),
        LoginOutcome::SecondFactor(token) => Ok(Reply::Json(json!({ "login-token": token }))),
    }
}

async fn login_anonymous(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_scope()?;
    let handle = req
        .fields
        .text("handle")?
        .ok_or(Error::InvalidCredentials)?;
    let locale = req.fields.text("locale")?;
    let issued = core
        .login_anonymous(app_id, &handle, locale.as_deref(), req.now)
        .await?;
    Ok(Reply::Json(issued_json(issued)))
}

async fn signup(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_scope()?;
    let input = SignupInput {
        handle: req.fields.required("handle")?,
        password: req.fields.required_secret("password")?,
        metadata: req.fields.text("metaData")?,
        locale: req.fields.text("locale")?,
    };
    match core.signup(app_id, input, req.now).await? {
        SignupOutcome::Sent => Ok(Reply::True),
        SignupOutcome::Created { issued, code } => {
            let mut v = issued_json(issued);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("code".into(), Value::from(code));
            }
            Ok(Reply::Json(v))
        }
    }
}

/// POST from an SDK, or from the confirmation page's button (field `confirm`), which then
/// gets the `clickThrough` page whatever the app's flow.
async fn complete_signup(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let code = req.fields.required("code")?;
    let from_page = req.fields.text("confirm")?.is_some();
    match core
        .complete_signup(app_id, &handle, &code, req.now)
        .await?
    {
        CompleteOutcome::Page(html) if from_page => Ok(Reply::Html(html)),
        // Spec §3.5: an SDK gets the `clickThrough` page as a JSON string.
        CompleteOutcome::Page(html) => Ok(Reply::Json(Value::String(html))),
        CompleteOutcome::Issued(_) if from_page => {
            let app = core.app(app_id).await?;
            let page = core
                .render_page(&app, "clickThrough", "EN", &handle, &code)
                .await?;
            Ok(Reply::Html(page))
        }
        CompleteOutcome::Issued(issued) => Ok(Reply::Json(issued_json(issued))),
    }
}

/// The e-mail link. Opening it changes nothing (mail scanners prefetch links): it shows a
/// page whose button POSTs the confirmation.
async fn confirm_page(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let token = req.fields.required("appToken")?;
    let handle = req.fields.required("handle")?;
    let code = parse_code(&req.fields.required("code")?)?;
    let app = core.app(app_id).await?;
    let action = format!(
        "{}/api/appuser/completeSignup?appToken={}",
        core.public_url(),
        form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{app}</title></head><body>\
         <form method=\"post\" action=\"{action}\">\
         <p>Confirm that <b>{handle}</b> signs up to {app}.</p>\
         <input type=\"hidden\" name=\"handle\" value=\"{handle}\">\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"page\">\
         <button type=\"submit\">Confirm</button></form></body></html>",
        app = escape_html(&app.row.name),
        action = escape_html(&action),
        handle = escape_html(&handle),
        code = escape_html(&code),
    );
    Ok(Reply::Html(html))
}
