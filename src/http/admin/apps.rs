//! Admin routes for tokens, apps (settings, status, keys, templates, statistics) and the audit
//! log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, AdminAnswer, AdminFailure, Body, PageQuery, Query, no_content, ok, reply};
use crate::crypto::keys::RsaBits;
use crate::domain::Core;
use crate::domain::admin::AdminError;
use crate::domain::apps::NewApp;
use crate::domain::settings::{AppSettings, SignupFlow};
use crate::http::extract::now_ms;
use crate::store::{AuditFilter, TemplateRow};

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_apps, create_app))
        .routes(routes!(show_app, update_app, delete_app))
        .routes(routes!(suspend_app))
        .routes(routes!(activate_app))
        .routes(routes!(rotate_key))
        .routes(routes!(app_stats))
        .routes(routes!(list_templates))
        .routes(routes!(put_template))
        .routes(routes!(audit))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewToken {
    /// What the token is for (1-100 characters).
    name: String,
    /// Days until it expires; absent: valid until revoked.
    expires_in_days: Option<i64>,
}

/// Admin tokens.
#[utoipa::path(get, path = "/admin/v1/tokens", tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, description = "Every admin token (never its secret)", body = Object),
              (status = 401, description = "No or a wrong admin token"),
              (status = 403, description = "A revoked or expired admin token")))]
async fn list_tokens(State(core): State<Arc<Core>>, _: Admin) -> AdminAnswer {
    ok(json!({"tokens": core.list_admin_tokens().await?}))
}

/// Creates an admin token; its secret is in this answer only.
#[utoipa::path(post, path = "/admin/v1/tokens", tag = "admin", request_body = NewToken,
    security(("admin_token" = [])),
    responses((status = 201, description = "The token, shown once", body = Object),
              (status = 422, description = "A bad name or expiry")))]
async fn create_token(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Body(body): Body<NewToken>,
) -> AdminAnswer {
    let now = now_ms();
    let ttl = body.expires_in_days.map(|d| d.saturating_mul(86_400));
    let created = core.create_admin_token(&body.name, ttl, now).await?;
    core.admin_audit(
        None,
        None,
        "admin.token.create",
        &caller,
        Some(&created.id),
        now,
    )
    .await;
    reply(StatusCode::CREATED, json!(created))
}

#[utoipa::path(delete, path = "/admin/v1/tokens/{token_id}", tag = "admin",
    params(("token_id" = String, Path, description = "The token's id")),
    security(("admin_token" = [])),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such active token")))]
async fn revoke_token(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(token_id): Path<String>,
) -> AdminAnswer {
    let now = now_ms();
    core.revoke_admin_token(&token_id, now).await?;
    core.admin_audit(
        None,
        None,
        "admin.token.revoke",
        &caller,
        Some(&token_id),
        now,
    )
    .await;
    no_content()
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewAppBody {
    name: String,
    /// `code` (default), `link` or `none`.
    signup_flow: Option<String>,
    /// The Realm / Atlas app id (the `aud` of user JWTs).
    realm_app_id: Option<String>,
    /// 2048 (default), 3072 or 4096.
    key_bits: Option<u32>,
}

fn key_bits(bits: Option<u32>) -> Result<RsaBits, AdminFailure> {
    match bits.unwrap_or(2048) {
        2048 => Ok(RsaBits::B2048),
        3072 => Ok(RsaBits::B3072),
        4096 => Ok(RsaBits::B4096),
        _ => Err(AdminError::Invalid("keyBits must be 2048, 3072 or 4096".into()).into()),
    }
}

#[utoipa::path(get, path = "/admin/v1/apps", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Every app with its status and counts", body = Object)))]
async fn list_apps(State(core): State<Arc<Core>>, _: Admin) -> AdminAnswer {
    let mut apps = Vec::new();
    for app in core.list_apps().await? {
        apps.push(json!({
            "appId": app.id(),
            "name": app.row.name,
            "status": app.row.status,
            "signupFlow": app.settings.signup_flow,
            "stats": core.app_stats(app.id()).await?,
        }));
    }
    ok(json!({ "apps": apps }))
}

#[utoipa::path(post, path = "/admin/v1/apps", tag = "admin", request_body = NewAppBody,
    security(("admin_token" = [])),
    responses((status = 201, description = "appId, appToken, publicKey, jwksUrl", body = Object),
              (status = 422, description = "A bad name, flow or key size")))]
async fn create_app(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Body(body): Body<NewAppBody>,
) -> AdminAnswer {
    let flow = match body.signup_flow.as_deref().unwrap_or("code") {
        "code" => SignupFlow::Code,
        "link" => SignupFlow::Link,
        "none" => SignupFlow::None,
        _ => {
            return Err(AdminError::Invalid("signupFlow must be code, link or none".into()).into());
        }
    };
    let settings = AppSettings {
        signup_flow: flow,
        realm_app_id: body.realm_app_id.unwrap_or_default(),
        ..AppSettings::default()
    };
    settings
        .validate()
        .map_err(|e| AdminFailure(AdminError::Invalid(e.0)))?;
    let now = now_ms();
    let created = match core
        .create_app(
            NewApp {
                name: body.name,
                settings,
                key_bits: key_bits(body.key_bits)?,
            },
            now,
        )
        .await
    {
        Ok(c) => c,
        Err(crate::domain::Error::InvalidData) => {
            return Err(
                AdminError::Invalid("name must be 1-200 printable characters".into()).into(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    core.admin_audit(
        Some(&created.app_id),
        None,
        "admin.app.create",
        &caller,
        None,
        now,
    )
    .await;
    reply(StatusCode::CREATED, json!(created))
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 200, description = "Settings, status, keys, which secrets are set, counts", body = Object),
              (status = 404, description = "No such app")))]
async fn show_app(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    ok(core.admin_app_view(&app_id).await?)
}

/// Changes settings: any setting of the app model (spec §6), `name`, and the write-only
/// secrets (`TWILIOAccountSid`, `TWILIOToken`, `TWILIOPhoneNumber`); all or none apply.
#[utoipa::path(patch, path = "/admin/v1/apps/{app_id}", tag = "admin",
    params(("app_id" = String, Path)), request_body = Object, security(("admin_token" = [])),
    responses((status = 200, description = "The app after the change", body = Object),
              (status = 404, description = "No such app"),
              (status = 422, description = "An unknown setting or a bad value; nothing changed")))]
async fn update_app(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Body(body): Body<Map<String, Value>>,
) -> AdminAnswer {
    if body.contains_key("status") {
        return Err(
            AdminError::Invalid("use the suspend and activate routes for status".into()).into(),
        );
    }
    let changes: Vec<(String, String)> = body
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    ok(core
        .admin_update_app(&app_id, &changes, &caller, now_ms())
        .await?)
}

#[utoipa::path(delete, path = "/admin/v1/apps/{app_id}", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "The app and all its data are gone"),
              (status = 404, description = "No such app")))]
async fn delete_app(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    core.delete_app(&app_id, &caller, now_ms()).await?;
    no_content()
}

/// Suspends the app: every CosyncJWT route answers 402 until it is activated.
#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/suspend", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Suspended"), (status = 404, description = "No such app")))]
async fn suspend_app(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    core.set_app_active(&app_id, false, &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/activate", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Active"), (status = 404, description = "No such app")))]
async fn activate_app(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    core.set_app_active(&app_id, true, &caller, now_ms())
        .await?;
    no_content()
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateBody {
    /// 2048 (default), 3072 or 4096.
    key_bits: Option<u32>,
}

/// A new signing key (new `kid`); the previous key stays in the JWKS while retiring, and at
/// most three keys are published.
#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/keys/rotate", tag = "admin",
    params(("app_id" = String, Path)), request_body = RotateBody, security(("admin_token" = [])),
    responses((status = 201, description = "kid, publicKey, jwksUrl of the new key", body = Object),
              (status = 404, description = "No such app")))]
async fn rotate_key(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Body(body): Body<RotateBody>,
) -> AdminAnswer {
    let bits = key_bits(body.key_bits)?;
    reply(
        StatusCode::CREATED,
        core.rotate_app_key(&app_id, bits, &caller, now_ms())
            .await?,
    )
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/stats", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 200, description = "users, anonymousUsers, pendingSignups, invites", body = Object),
              (status = 404, description = "No such app")))]
async fn app_stats(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    ok(core.app_stats(&app_id).await?)
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/templates", tag = "admin",
    params(("app_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 200, description = "The app's own templates (built-in defaults apply to the rest)", body = Object)))]
async fn list_templates(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
) -> AdminAnswer {
    let app = core.admin_app(&app_id).await?;
    let list: Vec<Value> = core
        .store
        .template_list(app.id())
        .await
        .map_err(crate::domain::Error::from)?
        .into_iter()
        .map(|t| json!({"name": t.name, "locale": t.locale, "subject": t.subject, "html": t.html, "linkText": t.link_text}))
        .collect();
    ok(json!({ "templates": list }))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateBody {
    subject: String,
    /// HTML with the placeholders %HANDLE%, %CODE%, %APP_NAME%, %LINK%.
    html: String,
    /// The text %LINK% becomes.
    link_text: Option<String>,
}

/// Stores the app's template for a message name (spec §6.1) and one of its locales.
#[utoipa::path(put, path = "/admin/v1/apps/{app_id}/templates/{name}/{locale}", tag = "admin",
    params(("app_id" = String, Path), ("name" = String, Path), ("locale" = String, Path)),
    request_body = TemplateBody, security(("admin_token" = [])),
    responses((status = 204, description = "Stored"),
              (status = 422, description = "Unknown name, a locale the app lacks, or a bad subject")))]
async fn put_template(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, name, locale)): Path<(String, String, String)>,
    Body(body): Body<TemplateBody>,
) -> AdminAnswer {
    let app = core.admin_app(&app_id).await?;
    let now = now_ms();
    let row = TemplateRow {
        app_id: app.id().to_owned(),
        name: name.clone(),
        locale: locale.clone(),
        subject: body.subject,
        html: body.html,
        link_text: body.link_text.unwrap_or_else(|| "LINK".into()),
        updated_at: now,
    };
    match core.put_template(&row).await {
        Ok(()) => {}
        Err(crate::domain::Error::InvalidData) => {
            return Err(AdminError::Invalid(format!(
                "template names: {:?}; the locale must be one of the app's; the subject one line",
                crate::notify::templates::TEMPLATE_NAMES
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    core.admin_audit(
        Some(&app_id),
        None,
        "admin.template.put",
        &caller,
        Some(&format!("{name}/{locale}")),
        now,
    )
    .await;
    no_content()
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    app_id: Option<String>,
    user_id: Option<String>,
    /// e.g. `login`, `admin.app.update`.
    action: Option<String>,
    /// `success`, `failure` or `denied`.
    outcome: Option<String>,
    /// Unix milliseconds, inclusive.
    from: Option<i64>,
    /// Unix milliseconds, inclusive.
    to: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin", params(AuditQuery),
    security(("admin_token" = [])),
    responses((status = 200, description = "Audit events", body = Object)))]
async fn audit(
    State(core): State<Arc<Core>>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> AdminAnswer {
    let page = PageQuery {
        limit: q.limit,
        offset: q.offset,
    }
    .page()?;
    let events = core
        .audit_events(AuditFilter {
            app_id: q.app_id,
            user_id: q.user_id,
            action: q.action,
            outcome: q.outcome,
            from: q.from,
            to: q.to,
            limit: page.limit,
            offset: page.offset,
        })
        .await?;
    ok(json!({ "events": events }))
}
