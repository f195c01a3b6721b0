//! `invite` (by a logged-in user) and `register` (by the invitee).

use axum::extract::State;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Answer, Reply, doc, issued_json};
use crate::domain::invites::RegisterInput;
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(invite))
        .routes(routes!(register))
}

#[utoipa::path(post, path = "/api/appuser/invite", tag = "cosync", request_body(content((doc::InviteBody = "application/x-www-form-urlencoded"), (doc::InviteBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`: the invitee is mailed a code", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn invite(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let sender = req.fields.required("senderUserId")?;
    let meta = req.fields.text("metaData")?;
    core.invite(session, &handle, &sender, meta.as_deref(), req.now)
        .await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/register", tag = "cosync", request_body(content((doc::RegisterBody = "application/x-www-form-urlencoded"), (doc::RegisterBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = []), ("access_token" = [])), responses((status = 200, description = "The token pair of the new user", body = doc::Tokens), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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
