//! The second factor: `loginComplete`, `setPhone`, `verifyPhone`,
//! `setTwoFactorGoogleVerification`, `setTwoFactorPhoneVerification` (spec §3.2, §3.21-§3.24).

use axum::extract::State;
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Answer, Reply, doc, issued_json};
use crate::domain::two_factor::{TwoFactorAnswer, TwoFactorRoute};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(login_complete))
        .routes(routes!(set_phone))
        .routes(routes!(verify_phone))
        .routes(routes!(set_google))
        .routes(routes!(set_phone_2fa))
}

/// The app's 2FA mode decides what happens; the route only picks the error code in mode
/// `none` (408 here, 409 on the phone route), as spec §3.23 says.
#[utoipa::path(post, path = "/api/appuser/setTwoFactorGoogleVerification", tag = "cosync",
    request_body(content((doc::TwoFactorBody = "application/x-www-form-urlencoded"), (doc::TwoFactorBody = "application/json"))),
    security(("access_token" = [])),
    responses((status = 200, description = "Enable: `{googleSecretKey, QRDataImage}`; disable or confirm: `true`", body = Object),
              (status = 400, description = "A protocol error", body = doc::CosyncError)))]
async fn set_google(core: State<Arc<Core>>, req: CosyncRequest) -> Answer {
    set_two_factor(core, req, TwoFactorRoute::Google).await
}

#[utoipa::path(post, path = "/api/appuser/setTwoFactorPhoneVerification", tag = "cosync",
    request_body(content((doc::TwoFactorBody = "application/x-www-form-urlencoded"), (doc::TwoFactorBody = "application/json"))),
    security(("access_token" = [])),
    responses((status = 200, description = "`true`", body = bool),
              (status = 400, description = "A protocol error", body = doc::CosyncError)))]
async fn set_phone_2fa(core: State<Arc<Core>>, req: CosyncRequest) -> Answer {
    set_two_factor(core, req, TwoFactorRoute::Phone).await
}

#[utoipa::path(post, path = "/api/appuser/loginComplete", tag = "cosync", request_body(content((doc::LoginCompleteBody = "application/x-www-form-urlencoded"), (doc::LoginCompleteBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("app_token" = [])), responses((status = 200, description = "The token pair", body = doc::Tokens), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn login_complete(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let app_id = req.caller.require_app_id(Error::MissingParameter)?;
    let login_token = req.fields.required_secret("loginToken")?;
    let code = req.fields.required("code")?;
    let issued = {
        use secrecy::ExposeSecret;
        core.login_complete(app_id, login_token.expose_secret(), &code, req.now)
            .await?
    };
    Ok(Reply::Json(issued_json(issued)))
}

#[utoipa::path(post, path = "/api/appuser/setPhone", tag = "cosync", request_body(content((doc::PhoneBody = "application/x-www-form-urlencoded"), (doc::PhoneBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`: a code is sent by SMS", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn set_phone(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    let phone = req.fields.required("phone")?;
    core.set_phone(session, &phone, req.now).await?;
    Ok(Reply::True)
}

#[utoipa::path(post, path = "/api/appuser/verifyPhone", tag = "cosync", request_body(content((doc::CodeBody = "application/x-www-form-urlencoded"), (doc::CodeBody = "application/json")), description = "Form-encoded (also without a Content-Type) or JSON"), security(("access_token" = [])), responses((status = 200, description = "`true`: the phone is verified", body = bool), (status = 400, description = "A protocol error", body = doc::CosyncError), (status = 503, description = "Database unavailable or overloaded", body = doc::CosyncError)))]
async fn verify_phone(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    let code = req.fields.required("code")?;
    core.verify_phone(session, &code, req.now).await?;
    Ok(Reply::True)
}

async fn set_two_factor(
    State(core): State<Arc<Core>>,
    req: CosyncRequest,
    route: TwoFactorRoute,
) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    let enable = req.fields.flag("twoFactor")?;
    let code = req.fields.text("code")?;
    match core
        .set_two_factor(session, route, enable, code.as_deref(), req.now)
        .await?
    {
        TwoFactorAnswer::True => Ok(Reply::True),
        TwoFactorAnswer::Enrolled {
            secret,
            qr_data_url,
        } => Ok(Reply::Json(
            json!({"googleSecretKey": secret, "QRDataImage": qr_data_url}),
        )),
    }
}
