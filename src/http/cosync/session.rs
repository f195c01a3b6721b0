//! Signing up and logging in: `signup`, `completeSignup` (POST, and the GET e-mail link that
//! shows a confirmation page), `login`, `loginAnonymous`.

use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Answer, Reply, doc, issued_json};
use crate::domain::login::LoginInput;
use crate::domain::signup::{CompleteOutcome, SignupInput, SignupOutcome};
use crate::domain::two_factor::LoginOutcome;
use crate::domain::{Core, Error, parse_code};
use crate::http::extract::CosyncRequest;
use crate::notify::templates::escape_html;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(login_anonymous))
        .routes(routes!(signup))
        .routes(routes!(complete_signup, confirm_page))
}

#[utoipa::path(post, path = "/api/appuser/login", tag = "cosync", request_body(content((doc::LoginBody = "application/x-www-form-urlencoded"), (doc::LoginBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = [])), responses((status = 200, description = "The token pair, or a login-token when a second factor is due", body = doc::Tokens), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn login(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_scope()?;
    let input = LoginInput {
        handle: req.fields.required("handle")?,
        password: req.fields.required_secret("password")?,
    };
    let outcome = core.login(app_id, input, req.now).await;
    core.metrics.login(match &outcome {
        Ok(LoginOutcome::Issued(_)) => "success",
        Ok(LoginOutcome::SecondFactor(_)) => "second_factor",
        Err(Error::InvalidCredentials) => "failure",
        Err(_) => "refused",
    });
    match outcome? {
        LoginOutcome::Issued(issued) => Ok(Reply::Json(issued_json(issued))),
        LoginOutcome::SecondFactor(token) => Ok(Reply::Json(json!({ "login-token": token }))),
    }
}

#[utoipa::path(post, path = "/api/appuser/loginAnonymous", tag = "cosync", request_body(content((doc::AnonymousBody = "application/x-www-form-urlencoded"), (doc::AnonymousBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = [])), responses((status = 200, description = "The token pair of the anonymous user (created on first login)", body = doc::Tokens), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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

#[utoipa::path(post, path = "/api/appuser/signup", tag = "cosync", request_body(content((doc::SignupBody = "application/x-www-form-urlencoded"), (doc::SignupBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = [])), responses((status = 200, description = "`true` (flows code, link: a code is mailed); flow none: `{jwt, access-token, code}`", body = Object), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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

#[utoipa::path(post, path = "/api/appuser/completeSignup", tag = "cosync", request_body(content((doc::CompleteSignupBody = "application/x-www-form-urlencoded"), (doc::CompleteSignupBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = []), ("access_token" = [])), responses((status = 200, description = "The token pair; flow link: the clickThrough page as a JSON string", body = doc::Tokens), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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

#[utoipa::path(get, path = "/api/appuser/completeSignup", tag = "cosync", params(doc::ConfirmQuery), responses((status = 200, description = "A confirmation page (text/html) whose button POSTs the code; opening it changes nothing", body = String), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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
