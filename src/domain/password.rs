//! Passwords after signup: `forgotPassword`, `resetPassword`, `changePassword` (spec §3.12-3.14).
//! Reset codes are CSPRNG, hashed, single use, expiring (1 h by default) and attempt-limited;
//! a reset or change bumps the user's credential epoch, revoking every earlier access-token.

use secrecy::SecretString;

use super::{Core, Error, Handle, Result, WirePassword, parse_code};
use crate::crypto::keyring::ct_eq;
use crate::crypto::password::Verified;
use crate::crypto::random;
use crate::store::CodeRow;

const RESET: &str = "reset";

impl Core {
    fn reset_scope(app_id: &str, handle_idx: &[u8]) -> String {
        format!("{app_id}:{}", hex::encode(handle_idx))
    }

    /// Mails a reset code to an existing user (unknown → 603, as the protocol defines).
    pub async fn forgot_password(&self, app_id: &str, handle: &str, now: i64) -> Result<()> {
        let handle = Handle::parse(handle)?;
        let app = self.active_app(app_id).await?;
        if !handle.has_at() && !app.settings.user_names_enabled {
            return Err(Error::UserNameLoginDisabled);
        }
        let private = app.settings.hide_account_existence;
        let Some(user) = self.find_user(app_id, &handle).await? else {
            if private {
                // The same answer, and the same budget spent, as for an account.
                self.spend_mail_budget(app_id, &self.handle_index(app_id, &handle), now)
                    .await?;
                return Ok(());
            }
            return Err(Error::AccountNotFound);
        };
        let to = self.user_handle(&user)?;
        // Anonymous and social accounts have no password to reset; an account created from a
        // contested signup has none yet, and a reset is how its owner sets one.
        let passwordless = Handle::parse(&to).map(|h| h.is_anonymous()).unwrap_or(true)
            || !user.login_provider.is_empty();
        if user.password_hash.is_none() && passwordless {
            return if private {
                Ok(())
            } else {
                Err(Error::AccountNotFound)
            };
        }
        self.spend_mail_budget(app_id, &user.handle_idx, now)
            .await?;
        let code = random::six_digit_code()?;
        let scope = Self::reset_scope(app_id, &user.handle_idx);
        self.store
            .code_put(&CodeRow {
                app_id: app_id.to_owned(),
                purpose: RESET.into(),
                subject: user.handle_idx.clone(),
                code_hash: self.keyring.code_hash(RESET, &scope, &code),
                payload: None,
                expires_at: now + self.policy.reset_code_ttl_secs * 1000,
                created_at: now,
            })
            .await?;
        if let Err(e) = self
            .send_mail(&app, "resetPassword", &user.locale, &to, &code, "")
            .await
        {
            self.store
                .code_delete(app_id, RESET, &user.handle_idx)
                .await?;
            return Err(e);
        }
        Ok(())
    }

    pub async fn reset_password(
        &self,
        app_id: &str,
        handle: &str,
        password: SecretString,
        code: &str,
        now: i64,
    ) -> Result<()> {
        let handle = Handle::parse(handle)?;
        let password = WirePassword::parse_strict(password)?;
        let code = parse_code(code)?;
        let app = self.active_app(app_id).await?;
        let user = self
            .find_user(app_id, &handle)
            .await?
            .ok_or(Error::InvalidData)?;
        let scope = Self::reset_scope(app_id, &user.handle_idx);
        self.spend_attempt(&format!("{RESET}:{scope}"), now, Error::InvalidData)
            .await?;
        let Some(stored) = self
            .store
            .code_get(app_id, RESET, &user.handle_idx)
            .await
            .ok()
        else {
            return Err(Error::InvalidData);
        };
        let presented = self.keyring.code_hash(RESET, &scope, &code);
        if !ct_eq(&presented, &stored.code_hash) || now > stored.expires_at {
            return Err(Error::InvalidData);
        }
        if !self
            .store
            .code_take(app_id, RESET, &user.handle_idx, &presented)
            .await?
        {
            return Err(Error::InvalidData);
        }
        let hash = self.hasher.hash(&password.0).await?;
        // The reference switched 2FA off here, so a mailbox alone took over the account;
        // Tessera keeps it (the next login asks for the second factor) unless the app says so.
        self.store
            .user_set_password(
                app_id,
                &user.id,
                &hash,
                app.settings.reset_password_removes_two_factor,
                now,
            )
            .await?;
        self.store
            .attempt_clear(&format!("{RESET}:{scope}"))
            .await?;
        self.audit_account(app_id, Some(&user.id), "password.reset", "success", now)
            .await;
        Ok(())
    }

    /// Missing fields, equal passwords, a wrong length or a wrong current password: 602.
    pub async fn change_password(
        &self,
        session: &super::auth::Session,
        current: Option<SecretString>,
        new: Option<SecretString>,
        now: i64,
    ) -> Result<()> {
        use secrecy::ExposeSecret;
        let (Some(current), Some(new)) = (current, new) else {
            return Err(Error::InvalidData);
        };
        if current.expose_secret() == new.expose_secret() {
            return Err(Error::InvalidData);
        }
        let new = WirePassword::parse_strict(new)?;
        self.active_app(&session.app_id).await?;
        let user = self.session_user(session).await?;
        let budget = format!(
            "password:{}:{}",
            session.app_id,
            hex::encode(&user.handle_idx)
        );
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        match self
            .hasher
            .verify(&current, user.password_hash.as_deref())
            .await?
        {
            Verified::No => {
                self.audit_account(
                    &session.app_id,
                    Some(&user.id),
                    "password.change",
                    "failure",
                    now,
                )
                .await;
                return Err(Error::InvalidData);
            }
            Verified::Yes | Verified::YesRehash(_) => {}
        }
        let hash = self.hasher.hash(&new.0).await?;
        self.store
            .user_set_password(&session.app_id, &user.id, &hash, false, now)
            .await?;
        // A reset code asked for before the change must not undo it.
        self.store
            .code_delete(&session.app_id, RESET, &user.handle_idx)
            .await?;
        self.store.attempt_clear(&budget).await?;
        self.audit_account(
            &session.app_id,
            Some(&user.id),
            "password.change",
            "success",
            now,
        )
        .await;
        Ok(())
    }
}
