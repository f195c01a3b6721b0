//! The one conversion from domain errors to the wire: CosyncJWT routes answer HTTP 400 with
//! exactly `{"code":N,"message":"..."}` (spec §1.4, §1.5); overload and outages answer 503.
//! Internal details are logged, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Error;

/// A CosyncJWT error response.
#[derive(Debug)]
pub struct WireError(pub Error);

impl From<Error> for WireError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// The code and message of spec §1.5, byte for byte (typos included: clients show them).
pub fn code_and_message(e: &Error) -> (u16, &'static str) {
    match e {
        Error::InvalidAppToken => (400, "invalid app token"),
        Error::AppNotFound => (401, "app no longer exist"),
        Error::AppSuspended => (402, "app is suspended"),
        Error::MissingParameter => (403, "missing parameter"),
        Error::UserSuspended => (404, "user account is suspended"),
        Error::InvalidAccessToken => (405, "invalid access token"),
        Error::InvitationDisabled => (406, "app does not support invitaion"),
        Error::SignupDisabled => (407, "app does not support signup"),
        Error::GoogleTwoFactorUnsupported => {
            (408, "app does not support google two-factor verification")
        }
        Error::PhoneTwoFactorUnsupported => {
            (409, "app does not support phone two-factor verification")
        }
        Error::PhoneNotVerified => (410, "user does not have verified phone number"),
        Error::SignupCodeExpired => (411, "signup code expired."),
        Error::PhoneInUse => (412, "phone number already in use"),
        Error::AppMigrated => (413, "app is migrated"),
        Error::AnonymousDisabled => (414, "app does not support anonymous login"),
        Error::InvalidCredentials => (600, "invalid login credentials"),
        Error::HandleRegistered => (601, "handle already registered"),
        Error::InvalidData => (602, "invalid data"),
        Error::AccountNotFound => (603, "account does not exist"),
        Error::InvalidMetadata => (604, "invalid metadata"),
        Error::UserNameTaken => (605, "user name already assigned"),
        Error::UserNameLoginDisabled => (606, "app does not support username login"),
        Error::NotVerified => (608, "account has not been verified"),
        Error::ServerSecretRejected | Error::Busy | Error::Unavailable(_) | Error::Internal(_) => {
            (500, "internal server error")
        }
    }
}

/// `application/json; charset=UTF-8`, as the reference sends on every JSON answer.
pub const JSON_UTF8: &str = "application/json; charset=UTF-8";

pub fn json_body(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    res
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        let (code, message) = code_and_message(&self.0);
        let status = match &self.0 {
            Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable; answering 503");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"code": code, "message": message}).to_string();
        let mut res = json_body(status, body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// An RFC 9457 problem document for the standard (non-CosyncJWT) routes.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    })
    .to_string();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// Domain errors on standard routes: unknown app → 404, outages → 503, the rest → 400/500.
pub fn problem_from(e: &Error) -> Response {
    match e {
        Error::AppNotFound => problem(StatusCode::NOT_FOUND, "no such app"),
        Error::Busy | Error::Unavailable(_) => {
            if let Error::Unavailable(d) = e {
                tracing::error!(error = %d, "database unavailable; answering 503");
            }
            let mut res = problem(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
        Error::Internal(d) => {
            tracing::error!(error = %d, "internal error");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        other => problem(StatusCode::BAD_REQUEST, code_and_message(other).1),
    }
}
