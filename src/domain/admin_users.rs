//! Administration of an app's users, pending signups and invites: look-ups through the blind
//! indexes, paged listings opened for display, suspension (which revokes tokens), deletion,
//! metadata, a forced password reset (a reset code is mailed; no password is ever mailed) and
//! switching 2FA off.

use serde_json::{Map, Value, json};

use super::admin::{AdminCaller, AdminError, AdminResult, Page};
use super::apps::{App, iso_millis};
use super::invites::{ADMIN_SENDER, InvitePayload};
use super::settings::SignupFlow;
use super::signup::SIGNUP_CODE;
use super::users::{USER_ACTIVE, USER_SUSPENDED};
use super::{Core, Error, Found, Handle, UserName, metadata};
use crate::crypto::random;
use crate::store::{TwoFactorChange, UserRow};

/// One invite an operator asks for.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminInvite {
    pub handle: String,
    #[serde(default)]
    pub meta_data: Option<Map<String, Value>>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// How an operator names a user.
#[derive(Debug, Clone)]
pub enum UserKey {
    Id(String),
    Handle(String),
    UserName(String),
}

impl Core {
    async fn admin_user(&self, app: &App, key: &UserKey) -> AdminResult<UserRow> {
        let found = match key {
            UserKey::Id(id) => self.store.user_get(app.id(), id).await.found()?,
            UserKey::Handle(h) => {
                let handle = Handle::parse(h).map_err(|_| invalid("not a valid handle"))?;
                let idx = self.handle_index(app.id(), &handle);
                self.store.user_by_handle(app.id(), &idx).await.found()?
            }
            UserKey::UserName(n) => {
                let name = UserName::parse(n).map_err(|_| invalid("not a valid user name"))?;
                let idx = self.user_name_index(app.id(), &name);
                self.store.user_by_name(app.id(), &idx).await.found()?
            }
        };
        found.ok_or_else(|| AdminError::NotFound("no such user".into()))
    }

    fn admin_user_doc(&self, app: &App, user: &UserRow) -> AdminResult<Value> {
        let mut doc = self.user_document(app.id(), user)?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("id".into(), Value::String(user.id.clone()));
            obj.insert("anonymous".into(), Value::Bool(user.anonymous));
            obj.insert(
                "hasPassword".into(),
                Value::Bool(user.password_hash.is_some()),
            );
        }
        Ok(doc)
    }

    pub async fn admin_find_user(&self, app_id: &str, key: &UserKey) -> AdminResult<Value> {
        let app = self.admin_app(app_id).await?;
        let user = self.admin_user(&app, key).await?;
        self.admin_user_doc(&app, &user)
    }

    pub async fn admin_list_users(&self, app_id: &str, page: Page) -> AdminResult<Vec<Value>> {
        let app = self.admin_app(app_id).await?;
        self.store
            .user_list(app.id(), page.limit, page.offset)
            .await?
            .iter()
            .map(|u| self.admin_user_doc(&app, u))
            .collect()
    }

    /// Suspends (every token revoked; logins answer 404) or reactivates a user.
    pub async fn admin_set_user_active(
        &self,
        app_id: &str,
        key: &UserKey,
        active: bool,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let user = self.admin_user(&app, key).await?;
        let status = if active { USER_ACTIVE } else { USER_SUSPENDED };
        self.store
            .user_set_status(app.id(), &user.id, status, now)
            .await?;
        let action = if active {
            "admin.user.activate"
        } else {
            "admin.user.suspend"
        };
        self.admin_audit(Some(app_id), Some(&user.id), action, caller, None, now)
            .await;
        Ok(())
    }

    pub async fn admin_delete_user(
        &self,
        app_id: &str,
        key: &UserKey,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let user = self.admin_user(&app, key).await?;
        self.store.user_delete(&user).await?;
        self.store
            .attempt_clear_suffix(&format!("{}:{}", app.id(), hex::encode(&user.handle_idx)))
            .await?;
        self.admin_audit(
            Some(app_id),
            Some(&user.id),
            "admin.user.delete",
            caller,
            None,
            now,
        )
        .await;
        Ok(())
    }

    /// Sets declared metadata fields (any of them, `canEdit` or not), validated as on signup.
    pub async fn admin_set_user_metadata(
        &self,
        app_id: &str,
        key: &UserKey,
        given: &Map<String, Value>,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<Value> {
        let app = self.admin_app(app_id).await?;
        if app.settings.meta_data.is_empty() {
            return Err(invalid("the app declares no metadata fields"));
        }
        let user = self.admin_user(&app, key).await?;
        let id = user.id.clone();
        match self.store_user_metadata(&app, user, given, true, now).await {
            Ok(()) => {}
            Err(Error::InvalidMetadata) => {
                return Err(invalid(
                    "metadata does not fit the app's declared fields (required fields, strings only, JWT within 2048 characters)",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_audit(
            Some(app_id),
            Some(&id),
            "admin.user.metadata",
            caller,
            None,
            now,
        )
        .await;
        let user = self.admin_user(&app, &UserKey::Id(id)).await?;
        self.admin_user_doc(&app, &user)
    }

    /// Mails the user a password-reset code (the same mail as `forgotPassword`).
    pub async fn admin_force_password_reset(
        &self,
        app_id: &str,
        key: &UserKey,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let user = self.admin_user(&app, key).await?;
        let handle = self.user_handle(&user)?;
        match self.forgot_password(app.id(), &handle, now).await {
            Ok(()) => {}
            Err(Error::AccountNotFound) => {
                return Err(AdminError::Conflict(
                    "the account has no password to reset (anonymous or social)".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_audit(
            Some(app_id),
            Some(&user.id),
            "admin.user.reset_password",
            caller,
            None,
            now,
        )
        .await;
        Ok(())
    }

    /// Switches both second factors off and forgets the authenticator secret.
    pub async fn admin_disable_two_factor(
        &self,
        app_id: &str,
        key: &UserKey,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let user = self.admin_user(&app, key).await?;
        let change = TwoFactorChange {
            phone: Some(false),
            google: Some(false),
            totp: Some((None, user.totp_last_step)),
        };
        self.store
            .user_set_two_factor(app.id(), &user.id, &change, now)
            .await?;
        self.admin_audit(
            Some(app_id),
            Some(&user.id),
            "admin.user.disable_2fa",
            caller,
            None,
            now,
        )
        .await;
        Ok(())
    }

    pub async fn admin_list_signups(&self, app_id: &str, page: Page) -> AdminResult<Vec<Value>> {
        let app = self.admin_app(app_id).await?;
        self.store
            .signup_list(app.id(), page.limit, page.offset)
            .await?
            .iter()
            .map(|s| {
                let handle = self
                    .keyring
                    .open_str(&format!("signups.handle:{}", s.id), &s.handle_enc)?;
                Ok(json!({
                    "handle": handle,
                    "locale": s.locale,
                    "contested": s.contested,
                    "createdAt": iso_millis(s.created_at),
                    "expiresAt": iso_millis(s.expires_at),
                }))
            })
            .collect()
    }

    /// Mails a pending signup a new code (the old one stops working), keeping its password.
    pub async fn admin_resend_signup(
        &self,
        app_id: &str,
        handle: &str,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let handle = Handle::parse(handle).map_err(|_| invalid("not a valid handle"))?;
        let idx = self.handle_index(app.id(), &handle);
        let mut pending = self
            .store
            .signup_get(app.id(), &idx)
            .await
            .found()?
            .ok_or_else(|| AdminError::NotFound("no pending signup for that handle".into()))?;
        self.spend_mail_budget(app.id(), &idx, now).await?;
        let code = random::six_digit_code()?;
        pending.code_hash = self.keyring.code_hash(SIGNUP_CODE, &pending.id, &code);
        pending.expires_at = now + self.policy.signup_code_ttl_secs * 1000;
        pending.updated_at = now;
        let same = pending.password_hash.clone();
        self.store.signup_upsert(&pending, &same).await?;
        let sent = if app.settings.signup_flow == SignupFlow::Link {
            let link = self.signup_link(&app, &handle, &code, now)?;
            self.send_mail(
                &app,
                "signUpLink",
                &pending.locale,
                handle.as_str(),
                &code,
                &link,
            )
            .await
        } else {
            self.send_mail(&app, "signUp", &pending.locale, handle.as_str(), &code, "")
                .await
        };
        sent?;
        self.admin_audit(Some(app_id), None, "admin.signup.resend", caller, None, now)
            .await;
        Ok(())
    }

    pub async fn admin_remove_signup(
        &self,
        app_id: &str,
        handle: &str,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let app = self.admin_app(app_id).await?;
        let handle = Handle::parse(handle).map_err(|_| invalid("not a valid handle"))?;
        let idx = self.handle_index(app.id(), &handle);
        if self
            .store
            .signup_get(app.id(), &idx)
            .await
            .found()?
            .is_none()
        {
            return Err(AdminError::NotFound(
                "no pending signup for that handle".into(),
            ));
        }
        self.store.signup_delete(app.id(), &idx).await?;
        self.admin_audit(Some(app_id), None, "admin.signup.remove", caller, None, now)
            .await;
        Ok(())
    }

    pub async fn admin_list_invites(&self, app_id: &str, page: Page) -> AdminResult<Vec<Value>> {
        let app = self.admin_app(app_id).await?;
        self.store
            .invite_list(app.id(), page.limit, page.offset)
            .await?
            .iter()
            .map(|i| {
                let p = self.invite_payload(i)?;
                Ok(json!({
                    "handle": p.handle,
                    "senderId": i.sender_id,
                    "senderHandle": p.sender_handle,
                    "metaData": p.meta_data,
                    "createdAt": iso_millis(i.created_at),
                    "expiresAt": iso_millis(i.expires_at),
                }))
            })
            .collect()
    }

    /// Invites each handle in the operator's name. Each entry succeeds or fails on its own;
    /// the answer lists the outcome per handle.
    pub async fn admin_create_invites(
        &self,
        app_id: &str,
        invites: &[AdminInvite],
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<Vec<Value>> {
        let app = self.admin_app(app_id).await?;
        if invites.is_empty() || invites.len() > 1000 {
            return Err(invalid("give 1 to 1000 invites"));
        }
        let mut results = Vec::with_capacity(invites.len());
        for inv in invites {
            let outcome = self.admin_invite_one(&app, inv, now).await;
            let (ok, error) = match &outcome {
                Ok(()) => (true, None),
                Err(e) => (false, Some(e.to_string())),
            };
            results.push(
                json!({"handle": inv.handle.trim().to_lowercase(), "ok": ok, "error": error}),
            );
        }
        let made = results.iter().filter(|r| r["ok"] == true).count();
        self.admin_audit(
            Some(app_id),
            None,
            "admin.invite.create",
            caller,
            Some(&format!("{made} of {}", invites.len())),
            now,
        )
        .await;
        Ok(results)
    }

    async fn admin_invite_one(&self, app: &App, inv: &AdminInvite, now: i64) -> AdminResult<()> {
        let handle = Handle::parse(&inv.handle).map_err(|_| invalid("not a valid handle"))?;
        if handle.is_anonymous() {
            return Err(invalid("anonymous handles cannot be invited"));
        }
        if self.find_user(app.id(), &handle).await?.is_some() {
            return Err(AdminError::Conflict(
                "the handle is already registered".into(),
            ));
        }
        let meta = match &inv.meta_data {
            Some(m) if !app.settings.meta_data_invite.is_empty() => {
                metadata::validate(&app.settings.meta_data_invite, m)
                    .map_err(|_| invalid("metaData does not fit the app's invite fields"))?
            }
            Some(m) if !m.is_empty() => {
                return Err(invalid("the app declares no invite metadata fields"));
            }
            _ if app.settings.meta_data_invite.iter().any(|f| f.required) => {
                return Err(invalid("metaData is required by the app's invite fields"));
            }
            _ => Map::new(),
        };
        let locale = inv
            .locale
            .clone()
            .unwrap_or_else(|| "EN".into())
            .to_uppercase();
        if !app.settings.locales.contains(&locale) {
            return Err(invalid("locale is not one of the app's"));
        }
        let payload = InvitePayload {
            sender_handle: String::new(),
            sender_user_id: String::new(),
            meta_data: meta,
            handle: handle.as_str().to_owned(),
            locale,
        };
        self.send_invite(app, ADMIN_SENDER, &payload, now).await?;
        Ok(())
    }

    /// Mails every pending invite of `handle` again, each with a new code.
    pub async fn admin_resend_invites(
        &self,
        app_id: &str,
        handle: &str,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<usize> {
        let app = self.admin_app(app_id).await?;
        let handle = Handle::parse(handle).map_err(|_| invalid("not a valid handle"))?;
        let idx = self.handle_index(app.id(), &handle);
        let invites = self.store.invites_for(app.id(), &idx).await?;
        if invites.is_empty() {
            return Err(AdminError::NotFound(
                "no pending invite for that handle".into(),
            ));
        }
        for invite in &invites {
            let mut payload = self.invite_payload(invite)?;
            payload.handle = handle.as_str().to_owned();
            self.send_invite(&app, &invite.sender_id, &payload, now)
                .await?;
        }
        self.admin_audit(Some(app_id), None, "admin.invite.resend", caller, None, now)
            .await;
        Ok(invites.len())
    }

    /// Removes every pending invite of `handle`.
    pub async fn admin_remove_invites(
        &self,
        app_id: &str,
        handle: &str,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<usize> {
        let app = self.admin_app(app_id).await?;
        let handle = Handle::parse(handle).map_err(|_| invalid("not a valid handle"))?;
        let idx = self.handle_index(app.id(), &handle);
        let invites = self.store.invites_for(app.id(), &idx).await?;
        if invites.is_empty() {
            return Err(AdminError::NotFound(
                "no pending invite for that handle".into(),
            ));
        }
        for invite in &invites {
            self.store
                .invite_delete(app.id(), &idx, &invite.sender_id)
                .await?;
        }
        self.admin_audit(Some(app_id), None, "admin.invite.remove", caller, None, now)
            .await;
        Ok(invites.len())
    }
}

fn invalid(message: &str) -> AdminError {
    AdminError::Invalid(message.to_owned())
}
