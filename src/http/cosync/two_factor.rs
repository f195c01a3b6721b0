//! The second factor: `loginComplete`, `setPhone`, `verifyPhone`,
//! `setTwoFactorGoogleVerification`, `setTwoFactorPhoneVerification` (spec §3.2, §3.21-§3.24).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::json;
use std::sync::Arc;

use super::{Answer, Reply, issued_json};
use crate::domain::two_factor::{TwoFactorAnswer, TwoFactorRoute};
use crate::domain::{Core, Error};
use crate::http::extract::CosyncRequest;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/appuser/loginComplete", post(login_complete))
        .route("/api/appuser/setPhone", post(set_phone))
        .route("/api/appuser/verifyPhone", post(verify_phone))
        .route(
            "/api/appuser/setTwoFactorGoogleVerification",
            post(|core, req| set_two_factor(core, req, TwoFactorRoute::Google)),
        )
        .route(
            "/api/appuser/setTwoFactorPhoneVerification",
            post(|core, req| set_two_factor(core, req, TwoFactorRoute::Phone)),
        )
}

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

async fn set_phone(State(core): State<Arc<Core>>, req: CosyncRequest) -> Answer {
    let session = req.caller.require_session(Error::InvalidData)?;
    let phone = req.fields.required("phone")?;
    core.set_phone(session, &phone, req.now).await?;
    Ok(Reply::True)
}

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
