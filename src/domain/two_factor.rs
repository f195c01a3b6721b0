//! The second factor (spec §3.2, §3.21-§3.24, §4.4): phone verification, the two 2FA
//! setters, the gate in `login`, and `loginComplete`.
//!
//! Fixes of spec §10 items 5, 9 and 10: login-tokens are typed, expire, are bound to the user,
//! the app and the credential epoch, and complete once; a TOTP step is accepted once per user;
//! every code has an attempt budget per account; SMS sends are limited per user and per number;
//! the authenticator secret is never mailed, is stored sealed, and an app can require a code
//! from it before 2FA turns on.

use super::apps::App;
use super::auth::Session;
use super::phone::Phone;
use super::settings::TwoFactorMode;
use super::tokens::Issued;
use super::users::USER_ACTIVE;
use super::{Core, Error, Found, Result, parse_code};
use crate::crypto::jwt::{ServerClaims, TokenKind};
use crate::crypto::keyring::ct_eq;
use crate::crypto::random;
use crate::crypto::totp::{self, TotpSecret};
use crate::store::{CodeRow, StoreError, TwoFactorChange, UserRow};

/// Code purposes; each row's subject is the user id.
const PHONE: &str = "phone";
const LOGIN: &str = "login2fa";
const TOTP_ENROL: &str = "totp-enrol";
/// What the login row of an authenticator login is hashed from (the TOTP code is checked
/// against the secret, not against the row).
const TOTP_MARKER: &str = "totp";
/// How long an unconfirmed authenticator secret waits for its first code.
const ENROL_TTL_MS: i64 = 15 * 60 * 1000;

/// Blind-index purpose of verified phone numbers.
pub const IDX_PHONE: &str = "phone";

/// Which 2FA setter was called. Both run the same logic chosen by the app's mode; the route
/// only picks the error when the app has no second factor (408 or 409, spec §3.23-§3.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorRoute {
    Google,
    Phone,
}

/// What a 2FA setter answers.
#[derive(Debug)]
pub enum TwoFactorAnswer {
    True,
    /// `{"googleSecretKey","QRDataImage"}`.
    Enrolled {
        secret: String,
        qr_data_url: String,
    },
}

/// What `login` answers.
#[derive(Debug)]
pub enum LoginOutcome {
    Issued(Issued),
    /// `{"login-token"}`: the password was right, the second factor is still to come.
    SecondFactor(String),
}

/// Budget key of one account: `purpose:app:handle-index`, the shape that deleting the
/// account clears.
fn account_key(purpose: &str, user: &UserRow) -> String {
    format!(
        "{purpose}:{}:{}",
        user.app_id,
        hex::encode(&user.handle_idx)
    )
}

/// A TOTP code as typed. A JSON number loses leading zeros, so 1-6 digits are padded.
fn parse_totp_code(raw: &str) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidData);
    }
    Ok(format!("{t:0>6}"))
}

impl Core {
    pub fn phone_index(&self, app_id: &str, phone: &Phone) -> Vec<u8> {
        self.keyring.blind_index(IDX_PHONE, app_id, phone.as_str())
    }

    fn user_phone(&self, user: &UserRow) -> Result<Option<String>> {
        user.phone_enc
            .as_ref()
            .map(|enc| {
                self.keyring
                    .open_str(&format!("users.phone:{}", user.id), enc)
            })
            .transpose()
            .map_err(Error::from)
    }

    fn user_totp_secret(&self, user: &UserRow) -> Result<Option<TotpSecret>> {
        user.totp_enc
            .as_ref()
            .map(|enc| {
                self.keyring
                    .open(&format!("users.totp:{}", user.id), enc)
                    .map(TotpSecret::from_bytes)
            })
            .transpose()
            .map_err(Error::from)
    }

    /// Whether this login needs a second factor (spec §4.4 "intended semantics").
    fn needs_second_factor(app: &App, user: &UserRow) -> bool {
        match app.settings.two_factor_verification {
            TwoFactorMode::Google => user.two_factor_google && user.totp_enc.is_some(),
            TwoFactorMode::Phone => {
                user.two_factor_phone && user.phone_verified && user.phone_enc.is_some()
            }
            TwoFactorMode::None => false,
        }
    }

    /// After a correct password: a login-token if the user must show a second factor (and,
    /// in phone mode, an SMS code sent to the verified number), else `None`.
    pub async fn second_factor_gate(
        &self,
        app: &App,
        user: &UserRow,
        handle: &str,
        now: i64,
    ) -> Result<Option<String>> {
        if !Self::needs_second_factor(app, user) {
            return Ok(None);
        }
        let phone_mode = app.settings.two_factor_verification == TwoFactorMode::Phone;
        let ttl = self.policy.login_token_ttl_secs;
        if phone_mode && let Some(jti) = self.login_sms_over_limit(app, user, now).await? {
            // Past the send limit the code already sent stays usable with a new login-token,
            // so logins by someone who knows the password cannot lock the owner out.
            return self.login_token(app, user, jti, now).map(Some);
        }
        let secret = if phone_mode {
            random::six_digit_code()?
        } else {
            TOTP_MARKER.to_owned()
        };
        let jti = random::row_id();
        self.store
            .code_put(&CodeRow {
                app_id: app.id().to_owned(),
                purpose: LOGIN.into(),
                subject: user.id.as_bytes().to_vec(),
                code_hash: self.keyring.code_hash(LOGIN, &jti, &secret),
                // The token id the code is bound to (not a secret: the hash is keyed).
                payload: Some(jti.as_bytes().to_vec()),
                expires_at: now + ttl * 1000,
                created_at: now,
            })
            .await?;
        if phone_mode {
            let phone = self.user_phone(user)?.unwrap_or_default();
            if let Err(e) = self
                .send_sms(app, &user.locale, &phone, handle, &secret, "login")
                .await
            {
                self.store
                    .code_delete(app.id(), LOGIN, user.id.as_bytes())
                    .await?;
                return Err(e);
            }
        }
        self.login_token(app, user, jti, now).map(Some)
    }

    fn login_token(&self, app: &App, user: &UserRow, jti: String, now: i64) -> Result<String> {
        let now_secs = now / 1000;
        Ok(self.tokens.issue(&ServerClaims {
            typ: TokenKind::Login,
            scope: "login".into(),
            app_id: app.id().to_owned(),
            sub: Some(user.id.clone()),
            ep: Some(user.epoch),
            jti: Some(jti),
            iat: now_secs,
            exp: Some(now_secs + self.policy.login_token_ttl_secs),
        })?)
    }

    /// Counts one login SMS; past the limit, the token id of the login code still
    /// outstanding (602 if there is none: nothing can be sent or reused).
    async fn login_sms_over_limit(
        &self,
        app: &App,
        user: &UserRow,
        now: i64,
    ) -> Result<Option<String>> {
        let key = account_key("sms-login", user);
        match self
            .spend_budget(&key, self.policy.sms_send_limit, now, Error::InvalidData)
            .await
        {
            Ok(()) => Ok(None),
            Err(Error::InvalidData) => {
                let outstanding = self
                    .store
                    .code_get(app.id(), LOGIN, user.id.as_bytes())
                    .await
                    .found()?
                    .filter(|row| now <= row.expires_at)
                    .and_then(|row| row.payload)
                    .and_then(|jti| String::from_utf8(jti).ok());
                outstanding.map(Some).ok_or(Error::InvalidData)
            }
            Err(e) => Err(e),
        }
    }

    /// `loginComplete`: the login-token and the second factor give the token pair. Every
    /// failure is 600 (spec §3.2); a non-numeric code is 602.
    pub async fn login_complete(
        &self,
        app_id: &str,
        login_token: &str,
        code: &str,
        now: i64,
    ) -> Result<Issued> {
        let claims = self
            .tokens
            .verify(login_token, TokenKind::Login, now / 1000)
            .map_err(|_| Error::InvalidCredentials)?;
        let (Some(user_id), Some(epoch), Some(jti)) = (claims.sub, claims.ep, claims.jti) else {
            return Err(Error::InvalidCredentials);
        };
        if claims.app_id != app_id {
            return Err(Error::InvalidCredentials);
        }
        let code = parse_totp_code(code)?;
        let app = self.active_app(app_id).await?;
        let user = self
            .store
            .user_get(app_id, &user_id)
            .await
            .found()?
            .ok_or(Error::InvalidCredentials)?;
        if user.epoch != epoch {
            return Err(Error::InvalidCredentials);
        }
        if user.status != USER_ACTIVE {
            return Err(Error::UserSuspended);
        }
        let proven = self
            .check_second_factor(&app, &user, &jti, &code, now)
            .await;
        let outcome = if proven.is_ok() { "success" } else { "failure" };
        self.audit_account(app_id, Some(&user.id), "login.second_factor", outcome, now)
            .await;
        proven?;
        let handle = self.user_handle(&user)?;
        self.issue(&app, &user, &handle, now).await
    }

    /// The second factor of a login: the code for the login-token `jti`, within the account's
    /// attempt budget, used once.
    async fn check_second_factor(
        &self,
        app: &App,
        user: &UserRow,
        jti: &str,
        code: &str,
        now: i64,
    ) -> Result<()> {
        let budget = account_key(LOGIN, user);
        self.spend_attempt(&budget, now, Error::InvalidCredentials)
            .await?;
        let row = self
            .store
            .code_get(app.id(), LOGIN, user.id.as_bytes())
            .await
            .found()?
            .filter(|r| now <= r.expires_at)
            .ok_or(Error::InvalidCredentials)?;
        let presented = match app.settings.two_factor_verification {
            TwoFactorMode::Google => {
                let presented = self.keyring.code_hash(LOGIN, jti, TOTP_MARKER);
                let secret = self
                    .user_totp_secret(user)?
                    .filter(|_| user.two_factor_google)
                    .ok_or(Error::InvalidCredentials)?;
                let step = totp::verify(&secret, code, now / 1000, user.totp_last_step)
                    .ok_or(Error::InvalidCredentials)?;
                if !ct_eq(&presented, &row.code_hash)
                    || !self
                        .store
                        .user_totp_advance(app.id(), &user.id, step)
                        .await?
                {
                    return Err(Error::InvalidCredentials);
                }
                presented
            }
            TwoFactorMode::Phone => {
                let presented = self.keyring.code_hash(LOGIN, jti, code);
                if !ct_eq(&presented, &row.code_hash) {
                    return Err(Error::InvalidCredentials);
                }
                presented
            }
            // The app turned 2FA off after this token was issued: log in again.
            TwoFactorMode::None => return Err(Error::InvalidCredentials),
        };
        if !self
            .store
            .code_take(app.id(), LOGIN, user.id.as_bytes(), &presented)
            .await?
        {
            return Err(Error::InvalidCredentials);
        }
        self.store.attempt_clear(&budget).await?;
        Ok(())
    }

    /// Counts one SMS against the user's and (if given) the number's send limit.
    async fn spend_sms_budget(
        &self,
        user: &UserRow,
        phone_idx: Option<&[u8]>,
        now: i64,
    ) -> Result<()> {
        let limit = self.policy.sms_send_limit;
        self.spend_budget(&account_key("sms", user), limit, now, Error::InvalidData)
            .await?;
        if let Some(idx) = phone_idx {
            let key = format!("sms-to:{}:{}", user.app_id, hex::encode(idx));
            self.spend_budget(&key, limit, now, Error::InvalidData)
                .await?;
        }
        Ok(())
    }

    /// `setPhone`: sends a verification code to the number. A verified number stays in
    /// force until the new one is verified, so this call alone never weakens 2FA.
    pub async fn set_phone(&self, session: &Session, raw: &str, now: i64) -> Result<()> {
        let app = self.active_app(&session.app_id).await?;
        if app.settings.two_factor_verification != TwoFactorMode::Phone {
            return Err(Error::PhoneTwoFactorUnsupported);
        }
        let phone = Phone::parse(raw, &app.settings.phone_default_region)?;
        let mut user = self.session_user(session).await?;
        let idx = self.phone_index(app.id(), &phone);
        if let Some(owner) = self.store.user_by_phone(app.id(), &idx).await.found()?
            && owner.id != user.id
        {
            return Err(Error::PhoneInUse);
        }
        self.spend_sms_budget(&user, Some(&idx), now).await?;
        let code = random::six_digit_code()?;
        self.store
            .code_put(&CodeRow {
                app_id: app.id().to_owned(),
                purpose: PHONE.into(),
                subject: user.id.as_bytes().to_vec(),
                code_hash: self.keyring.code_hash(PHONE, &user.id, &code),
                payload: Some(
                    self.keyring
                        .seal_str(&format!("codes.phone:{}", user.id), phone.as_str())?,
                ),
                expires_at: now + self.policy.sms_code_ttl_secs * 1000,
                created_at: now,
            })
            .await?;
        let handle = self.user_handle(&user)?;
        if let Err(e) = self
            .send_sms(&app, &user.locale, phone.as_str(), &handle, &code, "phone")
            .await
        {
            self.store
                .code_delete(app.id(), PHONE, user.id.as_bytes())
                .await?;
            return Err(e);
        }
        if !user.phone_verified {
            // Shown by getUser as the number being verified (spec §3.21).
            user.phone_enc = Some(
                self.keyring
                    .seal_str(&format!("users.phone:{}", user.id), phone.as_str())?,
            );
            user.phone_idx = None;
            user.updated_at = now;
            self.store.user_set_phone(&user).await?;
        }
        Ok(())
    }

    /// `verifyPhone`: the code sent by `setPhone` makes its number the user's verified phone.
    pub async fn verify_phone(&self, session: &Session, code: &str, now: i64) -> Result<()> {
        let code = parse_code(code)?;
        let app = self.active_app(&session.app_id).await?;
        let mut user = self.session_user(session).await?;
        let budget = account_key(PHONE, &user);
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        let row = self
            .store
            .code_get(app.id(), PHONE, user.id.as_bytes())
            .await
            .found()?
            .ok_or(Error::InvalidData)?;
        let presented = self.keyring.code_hash(PHONE, &user.id, &code);
        if !ct_eq(&presented, &row.code_hash) || now > row.expires_at {
            return Err(Error::InvalidData);
        }
        let sealed = row.payload.as_deref().ok_or(Error::InvalidData)?;
        let number = self
            .keyring
            .open_str(&format!("codes.phone:{}", user.id), sealed)?;
        let phone = Phone::parse(&number, "")?;
        if !self
            .store
            .code_take(app.id(), PHONE, user.id.as_bytes(), &presented)
            .await?
        {
            return Err(Error::InvalidData);
        }
        user.phone_enc = Some(
            self.keyring
                .seal_str(&format!("users.phone:{}", user.id), phone.as_str())?,
        );
        user.phone_idx = Some(self.phone_index(app.id(), &phone));
        user.phone_verified = true;
        user.updated_at = now;
        match self.store.user_set_phone(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::PhoneInUse),
            Err(e) => return Err(e.into()),
        }
        self.store.attempt_clear(&budget).await?;
        Ok(())
    }

    /// `setTwoFactorGoogleVerification` and `setTwoFactorPhoneVerification`.
    pub async fn set_two_factor(
        &self,
        session: &Session,
        route: TwoFactorRoute,
        enable: bool,
        code: Option<&str>,
        now: i64,
    ) -> Result<TwoFactorAnswer> {
        let app = self.active_app(&session.app_id).await?;
        let mode = app.settings.two_factor_verification;
        if mode == TwoFactorMode::None {
            return Err(match route {
                TwoFactorRoute::Google => Error::GoogleTwoFactorUnsupported,
                TwoFactorRoute::Phone => Error::PhoneTwoFactorUnsupported,
            });
        }
        let user = self.session_user(session).await?;
        // An app that requires confirmation also requires it to switch an active
        // authenticator off or replace it: an access-token alone does not weaken 2FA.
        let must_prove = mode == TwoFactorMode::Google
            && app.settings.two_factor_require_confirmation
            && user.two_factor_google
            && user.totp_enc.is_some();
        let change = match (mode, enable, code) {
            (TwoFactorMode::Phone, true, _) => {
                if !user.phone_verified {
                    return Err(Error::PhoneNotVerified);
                }
                TwoFactorChange {
                    phone: Some(true),
                    ..TwoFactorChange::default()
                }
            }
            (TwoFactorMode::Phone, false, _) => TwoFactorChange {
                phone: Some(false),
                ..TwoFactorChange::default()
            },
            (_, false, code) => {
                if must_prove {
                    self.prove_active_totp(&app, &user, code.ok_or(Error::InvalidData)?, now)
                        .await?;
                }
                self.store
                    .code_delete(app.id(), TOTP_ENROL, user.id.as_bytes())
                    .await?;
                TwoFactorChange {
                    google: Some(false),
                    totp: Some((None, user.totp_last_step)),
                    ..TwoFactorChange::default()
                }
            }
            // Replacing an active authenticator: switch it off with a code from it first.
            (_, true, None) if must_prove => return Err(Error::InvalidData),
            (_, true, None) => return self.enrol_totp(&app, user, now).await,
            (_, true, Some(code)) => return self.confirm_totp(&app, user, code, now).await,
        };
        self.store
            .user_set_two_factor(app.id(), &user.id, &change, now)
            .await?;
        self.audit_account(app.id(), Some(&user.id), "2fa.change", "success", now)
            .await;
        Ok(TwoFactorAnswer::True)
    }

    /// A new authenticator secret: on at once (the reference behaviour), or, when the app
    /// requires confirmation, pending until a code from it arrives.
    async fn enrol_totp(&self, app: &App, user: UserRow, now: i64) -> Result<TwoFactorAnswer> {
        let secret = TotpSecret::generate()?;
        let handle = self.user_handle(&user)?;
        let issuer = if app.settings.google_app_name.is_empty() {
            app.row.name.as_str()
        } else {
            app.settings.google_app_name.as_str()
        };
        let uri = totp::otpauth_uri(issuer, &handle, &secret);
        let qr_data_url =
            crate::notify::qr::png_data_url(&uri).map_err(|e| Error::Internal(e.to_string()))?;
        if app.settings.two_factor_require_confirmation {
            self.store
                .code_put(&CodeRow {
                    app_id: app.id().to_owned(),
                    purpose: TOTP_ENROL.into(),
                    subject: user.id.as_bytes().to_vec(),
                    code_hash: self.keyring.code_hash(TOTP_ENROL, &user.id, TOTP_MARKER),
                    payload: Some(self.keyring.seal(
                        &format!("codes.{TOTP_ENROL}:{}", user.id),
                        secret.as_bytes(),
                    )?),
                    expires_at: now + ENROL_TTL_MS,
                    created_at: now,
                })
                .await?;
        } else {
            self.activate_totp(app, &user, &secret, 0, now).await?;
        }
        Ok(TwoFactorAnswer::Enrolled {
            secret: secret.grouped(),
            qr_data_url,
        })
    }

    /// A code from the pending secret turns authenticator 2FA on; with no pending secret, a
    /// code from the active one confirms it (`true`). Wrong codes spend the account's budget.
    async fn confirm_totp(
        &self,
        app: &App,
        user: UserRow,
        code: &str,
        now: i64,
    ) -> Result<TwoFactorAnswer> {
        let pending = self
            .store
            .code_get(app.id(), TOTP_ENROL, user.id.as_bytes())
            .await
            .found()?
            .filter(|r| now <= r.expires_at);
        let Some(row) = pending else {
            self.prove_active_totp(app, &user, code, now).await?;
            return Ok(TwoFactorAnswer::True);
        };
        let code = parse_totp_code(code)?;
        let budget = account_key(TOTP_ENROL, &user);
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        let sealed = row.payload.as_deref().ok_or(Error::InvalidData)?;
        let secret = TotpSecret::from_bytes(
            self.keyring
                .open(&format!("codes.{TOTP_ENROL}:{}", user.id), sealed)?,
        );
        let step = totp::verify(&secret, &code, now / 1000, 0).ok_or(Error::InvalidData)?;
        if !self
            .store
            .code_take(app.id(), TOTP_ENROL, user.id.as_bytes(), &row.code_hash)
            .await?
        {
            return Err(Error::InvalidData);
        }
        self.activate_totp(app, &user, &secret, step, now).await?;
        self.store.attempt_clear(&budget).await?;
        Ok(TwoFactorAnswer::True)
    }

    /// A current code from the user's active authenticator (each step once); wrong codes
    /// spend the account's budget. 602 on any failure.
    async fn prove_active_totp(
        &self,
        app: &App,
        user: &UserRow,
        code: &str,
        now: i64,
    ) -> Result<()> {
        let code = parse_totp_code(code)?;
        let budget = account_key(TOTP_ENROL, user);
        self.spend_attempt(&budget, now, Error::InvalidData).await?;
        let secret = self
            .user_totp_secret(user)?
            .filter(|_| user.two_factor_google)
            .ok_or(Error::InvalidData)?;
        let step = totp::verify(&secret, &code, now / 1000, user.totp_last_step)
            .ok_or(Error::InvalidData)?;
        if !self
            .store
            .user_totp_advance(app.id(), &user.id, step)
            .await?
        {
            return Err(Error::InvalidData);
        }
        self.store.attempt_clear(&budget).await?;
        Ok(())
    }

    /// Stores `secret` sealed as the user's authenticator secret and turns 2FA on; tells the
    /// user by mail (the secret itself is never mailed).
    async fn activate_totp(
        &self,
        app: &App,
        user: &UserRow,
        secret: &TotpSecret,
        last_step: i64,
        now: i64,
    ) -> Result<()> {
        let sealed = self
            .keyring
            .seal(&format!("users.totp:{}", user.id), secret.as_bytes())?;
        let change = TwoFactorChange {
            google: Some(true),
            totp: Some((Some(&sealed), last_step)),
            ..TwoFactorChange::default()
        };
        self.store
            .user_set_two_factor(app.id(), &user.id, &change, now)
            .await?;
        self.audit_account(app.id(), Some(&user.id), "2fa.change", "success", now)
            .await;
        let handle = self.user_handle(user)?;
        self.send_mail_best_effort(app, "qrCode", &user.locale, &handle)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_codes_as_typed() {
        assert_eq!(parse_totp_code(" 012345 ").unwrap(), "012345");
        assert_eq!(parse_totp_code("12345").unwrap(), "012345");
        assert_eq!(parse_totp_code("7").unwrap(), "000007");
        for bad in ["", "1234567", "12a456", "-12345", "1e5", "12 34"] {
            assert_eq!(parse_totp_code(bad), Err(Error::InvalidData), "{bad:?}");
        }
    }
}
