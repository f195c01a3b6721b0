//! Signing up and logging in: `signup`, `completeSignup` (POST and the e-mail link), `login`.

use axum::Router;
use axum::routing::post;
use serde_json::Value;
use std::sync::Arc;

use super::{Answer, Reply, issued_json};
use crate::domain::login::LoginInput;
use crate::domain::signup::{CompleteOutcome, SignupInput, SignupOutcome};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/login", post(login))
        .route("/api/appuser/signup", post(signup))
        .route("/api/appuser/completeSignup", post(complete_signup))
}

async fn login(
    axum::extract::State(core): axum::extract::State<Arc<Core>>,
    req: CosyncRequest,
) -> Answer {
    let app_id = req.caller.require_app_scope()?;
    let input = LoginInput {
        handle: req.fields.required("handle")?,
        password: req.fields.required_secret("password")?,
    };
    let issued = core.login(app_id, input, req.now).await?;
    Ok(Reply::Json(issued_json(issued)))
}

async fn signup(
    axum::extract::State(core): axum::extract::State<Arc<Core>>,
    req: CosyncRequest,
) -> Answer {
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

async fn complete_signup(
    axum::extract::State(core): axum::extract::State<Arc<Core>>,
    req: CosyncRequest,
) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let code = req.fields.required("code")?;
    match core
        .complete_signup(app_id, &handle, &code, req.now)
        .await?
    {
        CompleteOutcome::Issued(issued) => Ok(Reply::Json(issued_json(issued))),
        CompleteOutcome::Page(html) => Ok(Reply::Html(html)),
    }
}
