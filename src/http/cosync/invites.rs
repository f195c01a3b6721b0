//! `invite` (by a logged-in user) and `register` (by the invitee).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use std::sync::Arc;

use super::{Answer, Reply, issued_json};
use crate::domain::invites::RegisterInput;
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/invite", post(invite))
        .route("/api/appuser/register", post(register))
}

async fn invite(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let sender = req.fields.required("senderUserId")?;
    let meta = req.fields.text("metaData")?;
    core.invite(session, &handle, &sender, meta.as_deref(), req.now)
        .await?;
    Ok(Reply::True)
}

async fn register(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let input = RegisterInput {
        handle: req.fields.required("handle")?,
        password: req.fields.required_secret("password")?,
        code: req.fields.required("code")?,
        metadata: req.fields.text("metaData")?,
        locale: req.fields.text("locale")?,
    };
    let issued = core.register(app_id, input, req.now).await?;
    Ok(Reply::Json(issued_json(issued)))
}
