//! Admin routes for an app's users, pending signups and invites.

use axum::extract::{Path, State};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, AdminAnswer, Body, PageQuery, Query, no_content, ok};
use crate::domain::Core;
use crate::domain::admin::AdminError;
use crate::domain::admin_users::{AdminInvite, UserKey};
use crate::http::extract::now_ms;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(find_user))
        .routes(routes!(show_user, delete_user))
        .routes(routes!(suspend_user))
        .routes(routes!(activate_user))
        .routes(routes!(set_metadata))
        .routes(routes!(reset_password))
        .routes(routes!(disable_two_factor))
        .routes(routes!(list_signups, remove_signup))
        .routes(routes!(resend_signup))
        .routes(routes!(list_invites, create_invites, remove_invites))
        .routes(routes!(resend_invites))
}

/// Users, oldest first, with their personal values opened for display.
#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/users", tag = "admin",
    params(("app_id" = String, Path), PageQuery), security(("admin_token" = [])),
    responses((status = 200, description = "A page of users", body = Object),
              (status = 404, description = "No such app")))]
async fn list_users(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminAnswer {
    ok(json!({ "users": core.admin_list_users(&app_id, q.page()?).await? }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// The exact handle (normalised as at login).
    handle: Option<String>,
    /// The exact user name.
    user_name: Option<String>,
}

/// Finds one user by exact handle or user name (through the blind indexes).
#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/users/lookup", tag = "admin",
    params(("app_id" = String, Path), FindQuery), security(("admin_token" = [])),
    responses((status = 200, description = "The user", body = Object),
              (status = 404, description = "No such user or app"),
              (status = 422, description = "Neither or both of handle and userName")))]
async fn find_user(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
    Query(q): Query<FindQuery>,
) -> AdminAnswer {
    let key = match (q.handle, q.user_name) {
        (Some(h), None) => UserKey::Handle(h),
        (None, Some(n)) => UserKey::UserName(n),
        _ => {
            return Err(
                AdminError::Invalid("give exactly one of handle and userName".into()).into(),
            );
        }
    };
    ok(core.admin_find_user(&app_id, &key).await?)
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/users/{user_id}", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 200, description = "The user", body = Object),
              (status = 404, description = "No such user or app")))]
async fn show_user(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    ok(core.admin_find_user(&app_id, &UserKey::Id(user_id)).await?)
}

/// Deletes the user with their codes and invites; the handle can sign up again as a new user.
#[utoipa::path(delete, path = "/admin/v1/apps/{app_id}/users/{user_id}", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such user or app")))]
async fn delete_user(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    core.admin_delete_user(&app_id, &UserKey::Id(user_id), &caller, now_ms())
        .await?;
    no_content()
}

/// Suspends the user: every token is revoked, and logins answer 404 until reactivated.
#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/users/{user_id}/suspend", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Suspended"), (status = 404, description = "No such user or app")))]
async fn suspend_user(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    core.admin_set_user_active(&app_id, &UserKey::Id(user_id), false, &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/users/{user_id}/activate", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Active"), (status = 404, description = "No such user or app")))]
async fn activate_user(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    core.admin_set_user_active(&app_id, &UserKey::Id(user_id), true, &caller, now_ms())
        .await?;
    no_content()
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataBody {
    /// Values of declared fields by path, e.g. `{"user_data": {"name": "Ann"}}`.
    #[schema(value_type = Object)]
    meta_data: Map<String, Value>,
}

/// Sets declared metadata fields (editable by the user or not), validated as at signup.
#[utoipa::path(put, path = "/admin/v1/apps/{app_id}/users/{user_id}/metadata", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), request_body = MetadataBody,
    security(("admin_token" = [])),
    responses((status = 200, description = "The user after the change", body = Object),
              (status = 404, description = "No such user or app"),
              (status = 422, description = "Values that do not fit the declared fields")))]
async fn set_metadata(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
    Body(body): Body<MetadataBody>,
) -> AdminAnswer {
    ok(core
        .admin_set_user_metadata(
            &app_id,
            &UserKey::Id(user_id),
            &body.meta_data,
            &caller,
            now_ms(),
        )
        .await?)
}

/// Mails the user a password-reset code. No password is ever mailed.
#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/users/{user_id}/reset-password", tag = "admin", operation_id = "admin_reset_password",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "The reset code was mailed"),
              (status = 404, description = "No such user or app"),
              (status = 409, description = "An account without a password (anonymous)")))]
async fn reset_password(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    core.admin_force_password_reset(&app_id, &UserKey::Id(user_id), &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/users/{user_id}/disable-2fa", tag = "admin",
    params(("app_id" = String, Path), ("user_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204, description = "Both second factors are off"),
              (status = 404, description = "No such user or app")))]
async fn disable_two_factor(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path((app_id, user_id)): Path<(String, String)>,
) -> AdminAnswer {
    core.admin_disable_two_factor(&app_id, &UserKey::Id(user_id), &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/signups", tag = "admin",
    params(("app_id" = String, Path), PageQuery), security(("admin_token" = [])),
    responses((status = 200, description = "Pending signups", body = Object)))]
async fn list_signups(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminAnswer {
    ok(json!({ "signups": core.admin_list_signups(&app_id, q.page()?).await? }))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HandleBody {
    handle: String,
}

#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/signups/resend", tag = "admin",
    params(("app_id" = String, Path)), request_body = HandleBody, security(("admin_token" = [])),
    responses((status = 204, description = "A new code was mailed"),
              (status = 404, description = "No pending signup for the handle")))]
async fn resend_signup(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Body(body): Body<HandleBody>,
) -> AdminAnswer {
    core.admin_resend_signup(&app_id, &body.handle, &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(delete, path = "/admin/v1/apps/{app_id}/signups", tag = "admin",
    params(("app_id" = String, Path), HandleBody), security(("admin_token" = [])),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No pending signup for the handle")))]
async fn remove_signup(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Query(q): Query<HandleBody>,
) -> AdminAnswer {
    core.admin_remove_signup(&app_id, &q.handle, &caller, now_ms())
        .await?;
    no_content()
}

#[utoipa::path(get, path = "/admin/v1/apps/{app_id}/invites", tag = "admin",
    params(("app_id" = String, Path), PageQuery), security(("admin_token" = [])),
    responses((status = 200, description = "Pending invites", body = Object)))]
async fn list_invites(
    State(core): State<Arc<Core>>,
    _: Admin,
    Path(app_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminAnswer {
    ok(json!({ "invites": core.admin_list_invites(&app_id, q.page()?).await? }))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitesBody {
    /// Each `{handle, metaData?, locale?}`; 1 to 1000.
    #[schema(value_type = Vec<Object>)]
    invites: Vec<AdminInvite>,
}

/// Invites handles in bulk; each entry succeeds or fails on its own.
#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/invites", tag = "admin",
    params(("app_id" = String, Path)), request_body = InvitesBody, security(("admin_token" = [])),
    responses((status = 200, description = "The outcome per handle", body = Object),
              (status = 422, description = "No invites, or more than 1000")))]
async fn create_invites(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Body(body): Body<InvitesBody>,
) -> AdminAnswer {
    ok(
        json!({ "results": core.admin_create_invites(&app_id, &body.invites, &caller, now_ms()).await? }),
    )
}

#[utoipa::path(post, path = "/admin/v1/apps/{app_id}/invites/resend", tag = "admin",
    params(("app_id" = String, Path)), request_body = HandleBody, security(("admin_token" = [])),
    responses((status = 200, description = "How many invites were mailed again", body = Object),
              (status = 404, description = "No pending invite for the handle")))]
async fn resend_invites(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Body(body): Body<HandleBody>,
) -> AdminAnswer {
    let n = core
        .admin_resend_invites(&app_id, &body.handle, &caller, now_ms())
        .await?;
    ok(json!({ "resent": n }))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{app_id}/invites", tag = "admin",
    params(("app_id" = String, Path), HandleBody), security(("admin_token" = [])),
    responses((status = 200, description = "How many invites were removed", body = Object),
              (status = 404, description = "No pending invite for the handle")))]
async fn remove_invites(
    State(core): State<Arc<Core>>,
    Admin(caller): Admin,
    Path(app_id): Path<String>,
    Query(q): Query<HandleBody>,
) -> AdminAnswer {
    let n = core
        .admin_remove_invites(&app_id, &q.handle, &caller, now_ms())
        .await?;
    ok(json!({ "removed": n }))
}
