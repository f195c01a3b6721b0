//! The caller's own profile: user names, locale, metadata, and deleting the account
//! (spec §3.11, §3.16-§3.19).

use secrecy::SecretString;
use serde_json::Value;

use super::auth::Session;
use super::metadata::{self, get_path, set_path};
use super::users::IDX_USER_NAME;
use super::{Core, Error, Found, Handle, Result, UserName};
use crate::crypto::password::Verified;
use crate::store::StoreError;

/// How `deleteAccount` proves the caller may delete.
#[derive(Debug)]
pub enum DeleteProof {
    Password {
        handle: String,
        password: SecretString,
    },
    /// A social id-token; social login is not offered, so this always fails with 602.
    SocialToken,
}

impl Core {
    /// `{"available": bool}`; names that could never be set are reported unavailable.
    pub async fn user_name_available(&self, session: &Session, name: &str) -> Result<bool> {
        let app = self.app(&session.app_id).await?;
        if !app.settings.user_names_enabled {
            return Err(Error::UserNameLoginDisabled);
        }
        // A revoked token (password changed, account deleted) asks nothing.
        self.session_user(session).await?;
        let Ok(name) = UserName::parse(name) else {
            return Ok(false);
        };
        let idx = self.user_name_index(app.id(), &name);
        let taken = self.store.user_by_name(app.id(), &idx).await.is_ok();
        let as_handle = Handle::parse(name.as_str())?;
        let handle_taken = self.find_user(app.id(), &as_handle).await?.is_some();
        Ok(!taken && !handle_taken)
    }

    /// Sets the user name once (a second call is 602; a taken name 605).
    pub async fn set_user_name(&self, session: &Session, name: &str, now: i64) -> Result<()> {
        let name = UserName::parse(name)?;
        let app = self.app(&session.app_id).await?;
        if !app.settings.user_names_enabled {
            return Err(Error::UserNameLoginDisabled);
        }
        app.check_status()?;
        let user = self.session_user(session).await?;
        if user.user_name_idx.is_some() {
            return Err(Error::InvalidData);
        }
        // Login resolves a handle or a user name: a name that is another account's handle
        // would make one of them unreachable (spec §10.17).
        if let Ok(as_handle) = Handle::parse(name.as_str()) {
            let handle_idx = self.handle_index(app.id(), &as_handle);
            if self
                .store
                .user_by_handle(app.id(), &handle_idx)
                .await
                .found()?
                .is_some_and(|other| other.id != user.id)
            {
                return Err(Error::UserNameTaken);
            }
        }
        let idx = self.user_name_index(app.id(), &name);
        let enc = self
            .keyring
            .seal_str(&format!("users.{IDX_USER_NAME}:{}", user.id), name.as_str())?;
        match self
            .store
            .user_set_user_name(app.id(), &user.id, &idx, &enc, now)
            .await
        {
            Ok(true) => Ok(()),
            // Set by a concurrent call: a name is set once.
            Ok(false) => Err(Error::InvalidData),
            Err(StoreError::Conflict(_)) => Err(Error::UserNameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// `EN` always; otherwise exactly one of the app's locales (602).
    pub async fn set_locale(&self, session: &Session, locale: &str, now: i64) -> Result<()> {
        let app = self.active_app(&session.app_id).await?;
        if locale != "EN" && !app.settings.locales.iter().any(|l| l == locale) {
            return Err(Error::InvalidData);
        }
        let user = self.session_user(session).await?;
        self.store
            .user_set_locale(&session.app_id, &user.id, locale, now)
            .await?;
        Ok(())
    }

    /// Updates editable fields. Unlike the reference, fields not sent keep their values
    /// (spec §10 item 21); a non-editable field may be re-sent unchanged, not altered (604).
    pub async fn set_user_metadata(&self, session: &Session, text: &str, now: i64) -> Result<()> {
        let given = metadata::parse_input(Some(text)).map_err(|_| Error::InvalidData)?;
        let app = self.active_app(&session.app_id).await?;
        if app.settings.meta_data.is_empty() {
            return Err(Error::InvalidData);
        }
        let user = self.session_user(session).await?;
        self.store_user_metadata(&app, user, &given, false, now)
            .await
    }

    /// Merges `given` into the user's metadata field by field and stores it. Users may change
    /// only `canEdit` fields (re-sending another unchanged is fine); an operator may change any
    /// declared field. Required fields stay set, and the JWT must still fit.
    pub(super) async fn store_user_metadata(
        &self,
        app: &super::apps::App,
        mut user: crate::store::UserRow,
        given: &serde_json::Map<String, Value>,
        operator: bool,
        now: i64,
    ) -> Result<()> {
        let mut current = self.user_metadata(&user)?;
        for f in &app.settings.meta_data {
            let editable = operator || f.can_edit == Some(true);
            match get_path(given, &f.path) {
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    let v = Value::String(metadata::clean_text(s)?);
                    if editable {
                        set_path(&mut current, &f.path, v);
                    } else if get_path(&current, &f.path) != Some(&v) {
                        return Err(Error::InvalidMetadata);
                    }
                }
                None | Some(Value::Null) => {}
                Some(Value::String(_)) if !f.required && editable => {
                    remove_path(&mut current, &f.path);
                }
                Some(_) => return Err(Error::InvalidMetadata),
            }
            if f.required && get_path(&current, &f.path).is_none() {
                return Err(Error::InvalidMetadata);
            }
        }
        let text = serde_json::to_string(&current).map_err(|e| Error::Internal(e.to_string()))?;
        user.metadata_enc = Some(
            self.keyring
                .seal_str(&format!("users.metadata:{}", user.id), &text)?,
        );
        // The JWT must still fit: check before storing.
        let handle = self.user_handle(&user)?;
        self.user_jwt(app, &user, &handle, now).await?;
        self.store
            .user_set_metadata(app.id(), &user.id, user.metadata_enc.as_deref(), now)
            .await?;
        Ok(())
    }

    /// Deletes the caller's account and everything keyed by it; a later signup with the same
    /// handle is a new user.
    pub async fn delete_account(
        &self,
        session: &Session,
        proof: DeleteProof,
        now: i64,
    ) -> Result<()> {
        let DeleteProof::Password { handle, password } = proof else {
            return Err(Error::InvalidData);
        };
        let handle = Handle::parse(&handle)?;
        let app = self.app(&session.app_id).await?;
        if !handle.has_at() && !handle.is_anonymous() && !app.settings.user_names_enabled {
            return Err(Error::UserNameLoginDisabled);
        }
        let me = self.session_user(session).await?;
        let found = self.find_user(app.id(), &handle).await?;
        let target = found.filter(|u| u.id == me.id);
        let budget = format!("password:{}:{}", app.id(), hex::encode(&me.handle_idx));
        self.spend_attempt(&budget, now, Error::InvalidCredentials)
            .await?;
        let hash = target.as_ref().and_then(|u| u.password_hash.as_deref());
        if self.hasher.verify(&password, hash).await? == Verified::No {
            return Err(Error::InvalidCredentials);
        }
        let Some(user) = target else {
            return Err(Error::InvalidCredentials);
        };
        self.store.user_delete(&user).await?;
        self.store
            .attempt_clear_suffix(&format!("{}:{}", app.id(), hex::encode(&user.handle_idx)))
            .await?;
        self.audit_account(app.id(), Some(&user.id), "account.delete", "success", now)
            .await;
        Ok(())
    }
}

fn remove_path(obj: &mut serde_json::Map<String, Value>, path: &str) {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        match cur.get_mut(*seg) {
            Some(Value::Object(next)) => cur = next,
            _ => return,
        }
    }
    cur.remove(*last);
}
