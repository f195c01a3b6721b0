//! The admin REST API under `/admin/v1/`: JSON in and out, RFC 9457 problem documents for
//! errors, authenticated by a server admin token (`Authorization: Bearer tsa_…`). The CLI runs
//! the same router in process, marked as a local caller.

mod apps;
mod users;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

use super::error::{problem, problem_from};
use super::extract::now_ms;
use crate::domain::Core;
use crate::domain::admin::{AdminCaller, AdminError};

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .merge(apps::router())
        .merge(users::router())
}

/// Marks a request made by the CLI on the server's own database. Only code in this process
/// can attach it (request extensions never come from the network).
#[derive(Debug, Clone, Copy)]
pub struct LocalAdmin;

/// An authenticated admin caller.
pub struct Admin(pub AdminCaller);

impl FromRequestParts<Arc<Core>> for Admin {
    type Rejection = AdminFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Core>,
    ) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<LocalAdmin>().is_some() {
            return Ok(Self(AdminCaller::Local));
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AdminFailure(AdminError::Unauthenticated))?;
        let id = core.verify_admin_token(presented, now_ms()).await?;
        Ok(Self(AdminCaller::Token(id)))
    }
}

/// An admin error on its way to the wire.
#[derive(Debug)]
pub struct AdminFailure(pub AdminError);

impl From<AdminError> for AdminFailure {
    fn from(e: AdminError) -> Self {
        Self(e)
    }
}

impl From<crate::domain::Error> for AdminFailure {
    fn from(e: crate::domain::Error) -> Self {
        Self(AdminError::Domain(e))
    }
}

impl IntoResponse for AdminFailure {
    fn into_response(self) -> Response {
        match &self.0 {
            AdminError::Unauthenticated | AdminError::BadToken => {
                let mut res = problem(StatusCode::UNAUTHORIZED, &self.0.to_string());
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera-admin\""),
                );
                res
            }
            AdminError::TokenNoLongerValid => problem(StatusCode::FORBIDDEN, &self.0.to_string()),
            AdminError::NotFound(m) => problem(StatusCode::NOT_FOUND, m),
            AdminError::Invalid(m) => problem(StatusCode::UNPROCESSABLE_ENTITY, m),
            AdminError::Conflict(m) => problem(StatusCode::CONFLICT, m),
            AdminError::Domain(e) => problem_from(e),
        }
    }
}

pub type AdminAnswer = Result<Response, AdminFailure>;

/// A JSON answer with a status.
pub fn reply(status: StatusCode, body: Value) -> AdminAnswer {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

pub fn ok(body: Value) -> AdminAnswer {
    reply(StatusCode::OK, body)
}

pub fn no_content() -> AdminAnswer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON body whose every rejection (not JSON, wrong shape, unknown field) is a problem
/// document (400), never axum's plain-text default.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Core>> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, core: &Arc<Core>) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, core).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> Response {
    let detail = match r {
        JsonRejection::MissingJsonContentType(_) => "the body must be application/json".into(),
        JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".into(),
        // serde's message names the field and what was expected; it never echoes values.
        JsonRejection::JsonDataError(e) => format!("the body does not fit: {}", e.body_text()),
        _ => "the body could not be read".into(),
    };
    problem(StatusCode::BAD_REQUEST, &detail)
}

/// Query strings that do not parse are problem documents too.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Arc<Core>> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Core>,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, core).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(problem(
                StatusCode::BAD_REQUEST,
                &format!("the query string does not fit: {}", e.body_text()),
            )),
        }
    }
}

/// `limit` and `offset` of a listing.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 1000, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<crate::domain::admin::Page, AdminFailure> {
        Ok(crate::domain::admin::Page::new(self.limit, self.offset)?)
    }
}
