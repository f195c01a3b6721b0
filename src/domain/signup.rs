//! Signup (spec §3.4-§3.6, §4.1): flows `code`, `link` and `none`.
//!
//! Differences from the reference, on purpose: every signup request draws a fresh code from a
//! CSPRNG, bound to the password of that request, so a pending signup never keeps an earlier
//! requester's password once the mailbox owner completes it; codes are stored as keyed hashes,
//! expire after 48 h, and share one attempt budget per handle that survives resends.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::apps::App;
use super::metadata;
use super::settings::SignupFlow;
use super::tokens::Issued;
use super::users::NewUser;
use super::{Core, Error, Found, Handle, Result, WirePassword, parse_code};
use crate::crypto::password::Verified;
use crate::crypto::random;
use crate::store::{SignupRow, StoreError};

/// Input of `signup`.
#[derive(Debug)]
pub struct SignupInput {
    pub handle: String,
    pub password: SecretString,
    pub metadata: Option<String>,
    pub locale: Option<String>,
}

/// What `signup` answers.
#[derive(Debug)]
pub enum SignupOutcome {
    /// Flows `code` and `link`: a code (or link) was mailed.
    Sent,
    /// Flow `none`: the user exists now.
    Created { issued: Issued, code: u32 },
}

/// What `completeSignup` answers.
#[derive(Debug)]
pub enum CompleteOutcome {
    Issued(Issued),
    /// Flow `link`: the rendered `clickThrough` page.
    Page(String),
}

pub(super) const SIGNUP_CODE: &str = "signup";

/// The password hash a pending signup stores, and the earlier pending hash it matched.
struct PendingPassword {
    hash: String,
    matched: String,
}

/// The locale a request asks for: upper-cased, default `EN`, one of the app's (else 602).
pub fn pick_locale(app: &App, requested: Option<&str>) -> Result<String> {
    let locale = requested
        .map(|l| l.trim().to_uppercase())
        .filter(|l| !l.is_empty());
    let locale = locale.unwrap_or_else(|| "EN".into());
    if app.settings.locales.contains(&locale) {
        Ok(locale)
    } else {
        Err(Error::InvalidData)
    }
}

fn attempt_key(app_id: &str, handle_idx: &[u8]) -> String {
    format!("{SIGNUP_CODE}:{app_id}:{}", hex::encode(handle_idx))
}

impl Core {
    pub async fn signup(
        &self,
        app_id: &str,
        input: SignupInput,
        now: i64,
    ) -> Result<SignupOutcome> {
        let handle = Handle::parse(&input.handle)?;
        let password = WirePassword::parse_strict(input.password)?;
        let app = self.active_app(app_id).await?;
        if !app.settings.signup_enabled {
            return Err(Error::SignupDisabled);
        }
        if handle.is_anonymous() {
            return Err(Error::InvalidData);
        }
        let idx = self.handle_index(app_id, &handle);
        // A handle without `@` may not be another account's user name either (spec §10.17).
        if self.find_user(app_id, &handle).await?.is_some() {
            return Err(Error::HandleRegistered);
        }
        self.check_user_cap(&app).await?;
        let locale = pick_locale(&app, input.locale.as_deref())?;
        // Spec §3.4: metaData is read only when the app declares fields.
        let meta = if app.settings.meta_data.is_empty() {
            Map::new()
        } else {
            let given = metadata::parse_input(input.metadata.as_deref())?;
            metadata::validate(&app.settings.meta_data, &given)?
        };
        match app.settings.signup_flow {
            SignupFlow::None => {
                let password_hash = self.hasher.hash(&password.0).await?;
                self.signup_immediately(&app, &handle, password_hash, &locale, &meta, now)
                    .await
            }
            flow => {
                self.spend_mail_budget(app_id, &idx, now).await?;
                let hashes = self.pending_password(app_id, &idx, &password, now).await?;
                self.signup_pending(&app, &handle, idx, hashes, &locale, &meta, flow, now)
                    .await
            }
        }
    }

    /// The hash to store for a pending signup and the pending hash the password matched (empty
    /// if none): a re-request with the same password keeps the signup uncontested.
    async fn pending_password(
        &self,
        app_id: &str,
        idx: &[u8],
        password: &WirePassword,
        now: i64,
    ) -> Result<PendingPassword> {
        if let Some(pending) = self.store.signup_get(app_id, idx).await.found()?
            && now <= pending.expires_at
            && self
                .hasher
                .verify(&password.0, Some(&pending.password_hash))
                .await?
                != Verified::No
        {
            return Ok(PendingPassword {
                hash: pending.password_hash.clone(),
                matched: pending.password_hash,
            });
        }
        Ok(PendingPassword {
            hash: self.hasher.hash(&password.0).await?,
            matched: String::new(),
        })
    }

    async fn signup_immediately(
        &self,
        app: &App,
        handle: &Handle,
        password_hash: String,
        locale: &str,
        meta: &Map<String, Value>,
        now: i64,
    ) -> Result<SignupOutcome> {
        let row = self.new_user_row(
            &NewUser {
                app_id: app.id(),
                handle,
                password_hash: Some(password_hash),
                locale,
                metadata: meta,
                login_provider: "",
            },
            now,
        )?;
        // Signed before the user is stored: a JWT over the limit fails the call, storing nothing.
        let jwt = self.user_jwt(app, &row, handle.as_str(), now).await?;
        match self.store.user_create(&row).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::HandleRegistered),
            Err(e) => return Err(e.into()),
        }
        let code = random::six_digit_code()?;
        let mut issued = self.issue_signed(app, &row, jwt, now).await?;
        issued.signed_user_token = Some(
            self.signed_user_token(app, handle.as_str(), &code, meta, Map::new(), now)
                .await?,
        );
        self.send_mail_best_effort(app, "signUpSuccess", locale, handle.as_str())
            .await;
        Ok(SignupOutcome::Created {
            issued,
            code: code.parse().unwrap_or(0),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn signup_pending(
        &self,
        app: &App,
        handle: &Handle,
        idx: Vec<u8>,
        password: PendingPassword,
        locale: &str,
        meta: &Map<String, Value>,
        flow: SignupFlow,
        now: i64,
    ) -> Result<SignupOutcome> {
        // The JWT the account will get must fit before a code is mailed for it.
        let would_be = self.new_user_row(
            &NewUser {
                app_id: app.id(),
                handle,
                password_hash: None,
                locale,
                metadata: meta,
                login_provider: "",
            },
            now,
        )?;
        self.user_jwt(app, &would_be, handle.as_str(), now).await?;
        let id = random::row_id();
        let code = random::six_digit_code()?;
        let metadata_enc = if meta.is_empty() {
            None
        } else {
            let text = serde_json::to_string(meta).map_err(|e| Error::Internal(e.to_string()))?;
            Some(
                self.keyring
                    .seal_str(&format!("signups.metadata:{id}"), &text)?,
            )
        };
        let row = SignupRow {
            code_hash: self.keyring.code_hash(SIGNUP_CODE, &id, &code),
            handle_enc: self
                .keyring
                .seal_str(&format!("signups.handle:{id}"), handle.as_str())?,
            id,
            app_id: app.id().to_owned(),
            handle_idx: idx.clone(),
            password_hash: password.hash,
            metadata_enc,
            locale: locale.to_owned(),
            expires_at: now + self.policy.signup_code_ttl_secs * 1000,
            created_at: now,
            updated_at: now,
            contested: false,
        };
        self.store.signup_upsert(&row, &password.matched).await?;
        let sent = match flow {
            SignupFlow::Link => {
                let link = self.signup_link(app, handle, &code, now)?;
                self.send_mail(app, "signUpLink", locale, handle.as_str(), &code, &link)
                    .await
            }
            _ => {
                self.send_mail(app, "signUp", locale, handle.as_str(), &code, "")
                    .await
            }
        };
        if let Err(e) = sent {
            // Nobody can complete a signup whose code never left; leave nothing behind.
            self.store.signup_delete(app.id(), &idx).await?;
            return Err(if e == Error::InvalidData {
                Error::InvalidData
            } else {
                e
            });
        }
        Ok(SignupOutcome::Sent)
    }

    pub(super) fn signup_link(
        &self,
        app: &App,
        handle: &Handle,
        code: &str,
        now: i64,
    ) -> Result<String> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("appToken", &self.app_token(app.id(), now)?)
            .append_pair("handle", handle.as_str())
            .append_pair("code", code)
            .finish();
        Ok(format!(
            "{}/api/appuser/completeSignup?{query}",
            self.public_url()
        ))
    }

    /// `completeSignup` (POST and the confirmed e-mail link).
    pub async fn complete_signup(
        &self,
        app_id: &str,
        handle: &str,
        code: &str,
        now: i64,
    ) -> Result<CompleteOutcome> {
        let handle = Handle::parse(handle)?;
        let code = parse_code(code)?;
        let app = self.active_app(app_id).await?;
        if !app.settings.signup_enabled {
            return Err(Error::SignupDisabled);
        }
        let idx = self.handle_index(app_id, &handle);
        let budget = attempt_key(app_id, &idx);
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        // During a master key rotation the row may carry the previous key's index and hash.
        let Some(pending) = self.pending_signup(app_id, &handle).await? else {
            return Err(Error::InvalidData);
        };
        if !self
            .keyring
            .code_hash_matches(SIGNUP_CODE, &pending.id, &code, &pending.code_hash)
        {
            return Err(Error::InvalidData);
        }
        if now > pending.expires_at {
            return Err(Error::SignupCodeExpired);
        }
        let meta = match &pending.metadata_enc {
            Some(enc) => {
                let text = self
                    .keyring
                    .open_str(&format!("signups.metadata:{}", pending.id), enc)?;
                metadata::parse_input(Some(&text))?
            }
            None => Map::new(),
        };
        // A contested signup proves the mailbox, not which request's password is the owner's:
        // the account starts without one, and a password reset sets it.
        let password_hash = (!pending.contested).then(|| pending.password_hash.clone());
        let row = self.new_user_row(
            &NewUser {
                app_id,
                handle: &handle,
                password_hash,
                locale: &pending.locale,
                metadata: &meta,
                login_provider: "",
            },
            now,
        )?;
        self.check_user_cap(&app).await?;
        // Spec §3.5: a JWT that cannot be built (metadata the app now requires, say) is 602,
        // and nothing is stored.
        let jwt = match self.user_jwt(&app, &row, handle.as_str(), now).await {
            Ok(jwt) => jwt,
            Err(Error::InvalidMetadata) => return Err(Error::InvalidData),
            Err(e) => return Err(e),
        };
        match self.store.signup_complete(&pending.id, &row).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(Error::InvalidData),
            Err(StoreError::Conflict(_)) => return Err(Error::HandleRegistered),
            Err(e) => return Err(e.into()),
        }
        self.store.attempt_clear(&budget).await?;
        self.send_mail_best_effort(&app, "signUpSuccess", &pending.locale, handle.as_str())
            .await;
        if app.settings.signup_flow == SignupFlow::Link {
            let page = self
                .render_page(
                    &app,
                    "clickThrough",
                    &pending.locale,
                    handle.as_str(),
                    &code,
                )
                .await?;
            return Ok(CompleteOutcome::Page(page));
        }
        let mut issued = self.issue_signed(&app, &row, jwt, now).await?;
        issued.signed_user_token = Some(
            self.signed_user_token(&app, handle.as_str(), &code, &meta, Map::new(), now)
                .await?,
        );
        Ok(CompleteOutcome::Issued(issued))
    }
}
