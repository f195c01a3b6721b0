//! Password login (spec §3.1, §4.3, §4.4). Unknown handles are verified against a dummy hash so
//! a miss costs what a hit costs; the password is checked before the account's state is
//! revealed; then the second factor, if the user has one, is asked for.

use secrecy::SecretString;

use super::two_factor::LoginOutcome;
use super::users::{USER_ACTIVE, USER_PENDING};
use super::{Core, Error, Handle, Result};
use crate::crypto::password::Verified;

/// Input of `login`.
#[derive(Debug)]
pub struct LoginInput {
    pub handle: String,
    pub password: SecretString,
}

impl Core {
    pub async fn login(&self, app_id: &str, input: LoginInput, now: i64) -> Result<LoginOutcome> {
        let handle = Handle::parse(&input.handle)?;
        let app = self.app(app_id).await?;
        if !handle.has_at() && !handle.is_anonymous() && !app.settings.user_names_enabled {
            return Err(Error::UserNameLoginDisabled);
        }
        app.check_status()?;
        let user = self.find_user(app_id, &handle).await?;
        // Failed logins are counted per account (unknown handles too, so a lockout says
        // nothing about existence), before the hash is checked, so parallel guesses cannot
        // pass the limit; a success clears the count.
        let budget = format!(
            "login:{app_id}:{}",
            hex::encode(
                user.as_ref()
                    .map(|u| u.handle_idx.clone())
                    .unwrap_or_else(|| self.handle_index(app_id, &handle))
            )
        );
        let limit = match app.settings.max_login_attempts {
            0 => self.policy.login_max_attempts,
            n => n,
        };
        if limit > 0 {
            let window_ms = self.policy.login_lockout_secs * 1000;
            if self.store.attempt_hit(&budget, now, window_ms).await? > limit {
                tracing::warn!(app = app_id, "login refused: account locked out");
                self.metrics.lockout();
                let user_id = user.as_ref().map(|u| u.id.as_str());
                self.audit_account(app_id, user_id, "login.lockout", "denied", now)
                    .await;
                return Err(Error::InvalidCredentials);
            }
        }
        let verified = self
            .hasher
            .verify(
                &input.password,
                user.as_ref().and_then(|u| u.password_hash.as_deref()),
            )
            .await?;
        let Some(user) = user else {
            // Spec §3.1 step 5: a pending signup answers 608 (unless the app hides existence).
            if !app.settings.hide_account_existence
                && self
                    .pending_signup(app_id, &handle)
                    .await?
                    .is_some_and(|pending| now <= pending.expires_at)
            {
                return Err(Error::NotVerified);
            }
            return Err(Error::InvalidCredentials);
        };
        match verified {
            Verified::No => {
                self.audit_account(app_id, Some(&user.id), "login", "failure", now)
                    .await;
                return Err(Error::InvalidCredentials);
            }
            Verified::Yes => {}
            Verified::YesRehash(new_hash) => {
                if let Some(old) = user.password_hash.as_deref() {
                    self.store
                        .user_rehash(app_id, &user.id, old, &new_hash)
                        .await?;
                }
            }
        }
        self.store.attempt_clear(&budget).await?;
        match user.status.as_str() {
            USER_ACTIVE => {}
            USER_PENDING => return Err(Error::NotVerified),
            _ => return Err(Error::UserSuspended),
        }
        let handle_text = self.user_handle(&user)?;
        if let Some(login_token) = self
            .second_factor_gate(&app, &user, &handle_text, now)
            .await?
        {
            self.audit_account(app_id, Some(&user.id), "login.password", "success", now)
                .await;
            return Ok(LoginOutcome::SecondFactor(login_token));
        }
        self.audit_account(app_id, Some(&user.id), "login", "success", now)
            .await;
        Ok(LoginOutcome::Issued(
            self.issue(&app, &user, &handle_text, now).await?,
        ))
    }
}
