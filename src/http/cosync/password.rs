//! `forgotPassword`, `resetPassword`, `changePassword`.

use axum::extract::State;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Answer, Reply, doc};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
}

#[utoipa::path(post, path = "/api/appuser/forgotPassword", tag = "cosync", request_body(content((doc::HandleBody = "application/x-www-form-urlencoded"), (doc::HandleBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = []), ("access_token" = [])), responses((status = 200, description = "`true`: a reset code is mailed", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn forgot_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    crate::domain::Handle::parse(&handle)?;
    if core.app(app_id).await?.settings.hide_account_existence {
        // Answer before any account is looked up, so neither the answer nor its timing says
        // whether the handle exists; the mail (if any) goes out afterwards.
        let (core, app_id, now) = (core.clone(), app_id.to_owned(), req.now);
        let ip = crate::domain::CLIENT_IP.try_with(|ip| *ip).ok().flatten();
        tokio::spawn(crate::domain::CLIENT_IP.scope(ip, async move {
            if let Err(e) = core.forgot_password(&app_id, &handle, now).await {
                tracing::warn!(error = %e, "forgotPassword (answered already) did not send");
            }
        }));
        return Ok(Reply::True);
    }
    core.forgot_password(app_id, &handle, req.now).await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/resetPassword", tag = "cosync", request_body(content((doc::ResetPasswordBody = "application/x-www-form-urlencoded"), (doc::ResetPasswordBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = []), ("access_token" = [])), responses((status = 200, description = "`true`: the password is set and earlier access-tokens are revoked", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn reset_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let handle = req.fields.required("handle")?;
    let password = req.fields.required_secret("password")?;
    let code = req.fields.required("code")?;
    core.reset_password(app_id, &handle, password, &code, req.now)
        .await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/changePassword", tag = "cosync", request_body(content((doc::ChangePasswordBody = "application/x-www-form-urlencoded"), (doc::ChangePasswordBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`: earlier access-tokens are revoked", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn change_password(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::MissingParameter)?;
    let current = req.fields.text("password")?.map(Into::into);
    let new = req.fields.text("newPassword")?.map(Into::into);
    core.change_password(session, current, new, req.now).await?;
    Ok(Reply::True)
}
