//! `forgotPassword`, `resetPassword`, `changePassword`.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use std::sync::Arc;

use super::{Answer, Reply};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/forgotPassword", post(forgot_password))
        .route("/api/appuser/resetPassword", post(reset_password))
        .route("/api/appuser/changePassword", post(change_password))
}

async fn forgot_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    core.forgot_password(app_id, &handle, req.now).await?;
    Ok(Reply::True)
}

async fn reset_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let password = req.fields.required_secret("password")?;
    let code = req.fields.required("code")?;
    core.reset_password(app_id, &handle, password, &code, req.now)
        .await?;
    Ok(Reply::True)
}

async fn change_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let current = req.fields.text("password")?.map(Into::into);
    let new = req.fields.text("newPassword")?.map(Into::into);
    core.change_password(session, current, new, req.now).await?;
    Ok(Reply::True)
}
