//! Reading the caller's records: `getUser`, `getApplication`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use std::sync::Arc;

use super::{Answer, Reply};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/getUser", get(get_user))
        .route("/api/appuser/getApplication", get(get_application))
}

async fn get_user(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    Ok(Reply::Json(core.get_user(session).await?))
}

async fn get_application(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::InvalidData)?;
    Ok(Reply::Json(core.application_view(app_id).await?))
}
