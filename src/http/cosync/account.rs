//! The caller's records: `getUser`, `getApplication`, `userNameAvailable`, `setUserName`,
//! `setLocale`, `setUserMetadata`, `deleteAccount`.

use axum::extract::State;
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Answer, Reply, doc};
use crate::domain::profile::DeleteProof;
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(get_user))
        .routes(routes!(get_application))
        .routes(routes!(user_name_available))
        .routes(routes!(set_user_name))
        .routes(routes!(set_locale))
        .routes(routes!(set_user_metadata))
        .routes(routes!(delete_account))
}

#[utoipa::path(get, path = "/api/appuser/getUser", tag = "cosync", security(("access_token" = [])), responses((status = 200, description = "The caller's record (spec §3.15)", body = Object), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn get_user(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    Ok(Reply::Json(core.get_user(session).await?))
}

#[utoipa::path(get, path = "/api/appuser/getApplication", tag = "cosync", security(("app_token" = []), ("access_token" = [])), responses((status = 200, description = "The app's public settings (spec §3.20), never a secret", body = Object), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn get_application(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::InvalidData)?;
    Ok(Reply::Json(core.application_view(app_id).await?))
}

#[utoipa::path(get, path = "/api/appuser/userNameAvailable", tag = "cosync", params(doc::UserNameQuery), security(("access_token" = [])), responses((status = 200, description = "`{\"available\": bool}`", body = Object), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn user_name_available(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let name = req.fields.required("userName")?;
    let available = core.user_name_available(session, &name).await?;
    Ok(Reply::Json(json!({ "available": available })))
}

#[utoipa::path(post, path = "/api/appuser/setUserName", tag = "cosync", request_body(content((doc::UserNameBody = "application/x-www-form-urlencoded"), (doc::UserNameBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true` (a user name is set once)", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn set_user_name(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let name = req.fields.required("userName")?;
    core.set_user_name(session, &name, req.now).await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/setLocale", tag = "cosync", request_body(content((doc::LocaleBody = "application/x-www-form-urlencoded"), (doc::LocaleBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn set_locale(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let locale = req.fields.required("locale")?;
    core.set_locale(session, &locale, req.now).await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/setUserMetadata", tag = "cosync", request_body(content((doc::MetadataBody = "application/x-www-form-urlencoded"), (doc::MetadataBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn set_user_metadata(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let text = req.fields.text("metaData")?.ok_or(Error::InvalidData)?;
    core.set_user_metadata(session, &text, req.now).await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/deleteAccount", tag = "cosync", request_body(content((doc::DeleteAccountBody = "application/x-www-form-urlencoded"), (doc::DeleteAccountBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`: the account and everything keyed by it are gone", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
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
