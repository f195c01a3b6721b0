//! Invitations (spec §3.9, §3.10, §4.2), implementing the intended behaviour the reference
//! broke: the invitee gets the code, the invite is bound to the invited handle, single use,
//! expiring (7 days by default), and its code shares an attempt budget per handle.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::auth::Session;
use super::metadata::{self, get_path, set_path};
use super::tokens::Issued;
use super::users::NewUser;
use super::{Core, Error, Handle, Result, WirePassword, parse_code};
use crate::crypto::keyring::ct_eq;
use crate::crypto::random;
use crate::store::{InviteRow, StoreError};

const INVITE: &str = "invite";

/// What the invite remembers, sealed.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InvitePayload {
    pub sender_handle: String,
    pub sender_user_id: String,
    pub meta_data: Map<String, Value>,
    /// The invitee's handle, for operators' listings and resends.
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub locale: String,
}

/// The sender id of invites an operator made (no user sent them).
pub const ADMIN_SENDER: &str = "admin";

/// Input of `register`.
#[derive(Debug)]
pub struct RegisterInput {
    pub handle: String,
    pub password: SecretString,
    pub code: String,
    pub metadata: Option<String>,
    pub locale: Option<String>,
}

impl Core {
    pub(super) fn invite_scope(app_id: &str, handle_idx: &[u8]) -> String {
        format!("{app_id}:{}", hex::encode(handle_idx))
    }

    pub(super) fn invite_context(invite: &InviteRow) -> String {
        format!(
            "invites.payload:{}:{}:{}",
            invite.app_id,
            hex::encode(&invite.handle_idx),
            invite.sender_id
        )
    }

    /// Invites `handle` on behalf of the logged-in user. Each inviter has an invite of its own
    /// (one code, sender and metadata): a second inviter never replaces the first one's.
    pub async fn invite(
        &self,
        session: &Session,
        handle: &str,
        sender_user_id: &str,
        meta: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let invitee = Handle::parse(handle)?;
        if invitee.is_anonymous()
            || sender_user_id.chars().count() > 256
            || sender_user_id.chars().any(char::is_control)
        {
            return Err(Error::InvalidData);
        }
        let app = self.active_app(&session.app_id).await?;
        if !app.settings.invitation_enabled {
            return Err(Error::InvitationDisabled);
        }
        let inviter = self.session_user(session).await?;
        let invite_meta = if app.settings.meta_data_invite.is_empty() {
            Map::new()
        } else {
            metadata::validate(
                &app.settings.meta_data_invite,
                &metadata::parse_input(meta)?,
            )?
        };
        // A handle without `@` may not be another account's user name either (spec §10.17).
        if self.find_user(app.id(), &invitee).await?.is_some() {
            return Err(Error::HandleRegistered);
        }
        let payload = InvitePayload {
            sender_handle: self.user_handle(&inviter)?,
            sender_user_id: sender_user_id.to_owned(),
            meta_data: invite_meta,
            handle: invitee.as_str().to_owned(),
            locale: inviter.locale.clone(),
        };
        self.send_invite(&app, &inviter.id, &payload, now).await
    }

    /// Stores the invite of `payload.handle` from `sender_id` with a fresh code and mails the
    /// code; a failed send leaves no invite.
    pub(super) async fn send_invite(
        &self,
        app: &super::apps::App,
        sender_id: &str,
        payload: &InvitePayload,
        now: i64,
    ) -> Result<()> {
        let invitee = Handle::parse(&payload.handle)?;
        let idx = self.handle_index(app.id(), &invitee);
        self.spend_mail_budget(app.id(), &idx, now).await?;
        let text = serde_json::to_string(payload).map_err(|e| Error::Internal(e.to_string()))?;
        let code = random::six_digit_code()?;
        let mut row = InviteRow {
            app_id: app.id().to_owned(),
            handle_idx: idx.clone(),
            sender_id: sender_id.to_owned(),
            code_hash: self
                .keyring
                .code_hash(INVITE, &Self::invite_scope(app.id(), &idx), &code),
            payload: Vec::new(),
            expires_at: now + self.policy.invite_code_ttl_secs * 1000,
            created_at: now,
        };
        row.payload = self.keyring.seal_str(&Self::invite_context(&row), &text)?;
        self.store.invite_put(&row).await?;
        let locale = if app.settings.locales.contains(&payload.locale) {
            payload.locale.as_str()
        } else {
            "EN"
        };
        if let Err(e) = self
            .send_mail(app, "invite", locale, invitee.as_str(), &code, "")
            .await
        {
            self.store.invite_delete(app.id(), &idx, sender_id).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Opens an invite's sealed payload.
    pub(super) fn invite_payload(&self, invite: &InviteRow) -> Result<InvitePayload> {
        let text = self
            .keyring
            .open_str(&Self::invite_context(invite), &invite.payload)?;
        serde_json::from_str(&text).map_err(|e| Error::Internal(e.to_string()))
    }

    pub async fn register(&self, app_id: &str, input: RegisterInput, now: i64) -> Result<Issued> {
        let handle = Handle::parse(&input.handle)?;
        let password = WirePassword::parse_strict(input.password)?;
        let code = parse_code(&input.code)?;
        let app = self.active_app(app_id).await?;
        if !app.settings.invitation_enabled {
            return Err(Error::InvitationDisabled);
        }
        let idx = self.handle_index(app_id, &handle);
        let scope = Self::invite_scope(app_id, &idx);
        let budget = format!("{INVITE}:{scope}");
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        let presented = self.keyring.code_hash(INVITE, &scope, &code);
        // The code names the invite among the handle's invites; every one is compared.
        let mut matched = None;
        for invite in self.store.invites_for(app_id, &idx).await? {
            if ct_eq(&presented, &invite.code_hash) && now <= invite.expires_at && matched.is_none()
            {
                matched = Some(invite);
            }
        }
        let invite = matched.ok_or(Error::InvalidData)?;
        self.check_user_cap(&app).await?;
        if !handle.has_at() && self.find_user(app_id, &handle).await?.is_some() {
            return Err(Error::HandleRegistered);
        }
        let payload = self.invite_payload(&invite)?;
        let locale = super::signup::pick_locale(&app, input.locale.as_deref())?;
        let own = if app.settings.meta_data.is_empty() {
            Map::new()
        } else {
            metadata::parse_input(input.metadata.as_deref()).map_err(|_| Error::InvalidData)?
        };
        // Invite values win over the invitee's own (spec §3.10), then both are validated.
        let mut merged = own;
        for f in &app.settings.meta_data_invite {
            if let Some(v) = get_path(&payload.meta_data, &f.path) {
                set_path(&mut merged, &f.path, v.clone());
            }
        }
        let mut meta = metadata::validate(&app.settings.meta_data, &merged)?;
        for f in &app.settings.meta_data_invite {
            if let Some(v) = get_path(&payload.meta_data, &f.path) {
                set_path(&mut meta, &f.path, v.clone());
            }
        }
        let row = self.new_user_row(
            &NewUser {
                app_id,
                handle: &handle,
                password_hash: Some(self.hasher.hash(&password.0).await?),
                locale: &locale,
                metadata: &meta,
                login_provider: "",
            },
            now,
        )?;
        let jwt = self.user_jwt(&app, &row, handle.as_str(), now).await?;
        match self.store.invite_take_and_create_user(&invite, &row).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(Error::InvalidData),
            Err(StoreError::Conflict(_)) => return Err(Error::HandleRegistered),
            Err(e) => return Err(e.into()),
        }
        self.store.attempt_clear(&budget).await?;
        self.send_mail_best_effort(&app, "signUpSuccess", &locale, handle.as_str())
            .await;
        let mut issued = self.issue_signed(&app, &row, jwt, now).await?;
        let mut sender = Map::new();
        sender.insert("senderHandle".into(), Value::String(payload.sender_handle));
        sender.insert("senderUserId".into(), Value::String(payload.sender_user_id));
        issued.signed_user_token = Some(
            self.signed_user_token(&app, handle.as_str(), &code, &meta, sender, now)
                .await?,
        );
        Ok(issued)
    }
}
