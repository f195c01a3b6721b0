//! The caller's records: `getUser`, `getApplication`, `userNameAvailable`, `setUserName`,
//! `setLocale`, `setUserMetadata`, `deleteAccount`.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;

use super::{Answer, Reply};
use crate::domain::profile::DeleteProof;
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/getUser", get(get_user))
        .route("/api/appuser/getApplication", get(get_application))
        .route("/api/appuser/userNameAvailable", get(user_name_available))
        .route("/api/appuser/setUserName", post(set_user_name))
        .route("/api/appuser/setLocale", post(set_locale))
        .route("/api/appuser/setUserMetadata", post(set_user_metadata))
        .route("/api/appuser/deleteAccount", post(delete_account))
}

async fn get_user(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    Ok(Reply::Json(core.get_user(session).await?))
}

async fn get_application(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::InvalidData)?;
    Ok(Reply::Json(core.application_view(app_id).await?))
}

async fn user_name_available(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let name = req.fields.required("userName")?;
    let available = core.user_name_available(session, &name).await?;
    Ok(Reply::Json(json!({ "available": available })))
}

async fn set_user_name(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let name = req.fields.required("userName")?;
    core.set_user_name(session, &name, req.now).await?;
    Ok(Reply::True)
}

async fn set_locale(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let locale = req.fields.required("locale")?;
    core.set_locale(session, &locale, req.now).await?;
    Ok(Reply::True)
}

async fn set_user_metadata(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let text = req.fields.text("metaData")?.ok_or(Error::InvalidData)?;
    core.set_user_metadata(session, &text, req.now).await?;
    Ok(Reply::True)
}

async fn delete_account(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let token = req.fields.text("token")?;
    let handle = req.fields.text("handle")?;
    let password = req.fields.text("password")?;
    let proof = match (token, handle, password) {
        (None, None, None) => return Err(Error::MissingParameter.into()),
        (_, Some(handle), Some(password)) => DeleteProof::Password {
            handle,
            password: password.into(),
        },
        (Some(_), _, _) => DeleteProof::SocialToken,
        _ => return Err(Error::InvalidData.into()),
    };
    core.delete_account(session, proof, req.now).await?;
    Ok(Reply::True)
}
