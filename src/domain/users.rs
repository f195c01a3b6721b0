//! Users: sealing and opening their personal data, look-up by handle or user name, and the
//! `getUser` view (spec §3.15).

use serde_json::{Map, Value, json};

use super::apps::iso_millis;
use super::{Core, Error, Found, Handle, Result, UserName};
use crate::store::UserRow;

/// Blind-index purposes.
pub const IDX_HANDLE: &str = "handle";
pub const IDX_USER_NAME: &str = "user_name";

/// User status strings of spec §6.
pub const USER_ACTIVE: &str = "active";
pub const USER_SUSPENDED: &str = "suspend";
pub const USER_PENDING: &str = "pending";

/// Personal data to store for a new user.
pub struct NewUser<'a> {
    pub app_id: &'a str,
    pub handle: &'a Handle,
    pub password_hash: Option<String>,
    pub locale: &'a str,
    pub metadata: &'a Map<String, Value>,
    pub login_provider: &'a str,
}

impl Core {
    pub fn handle_index(&self, app_id: &str, handle: &Handle) -> Vec<u8> {
        self.keyring
            .blind_index(IDX_HANDLE, app_id, handle.as_str())
    }

    pub fn user_name_index(&self, app_id: &str, name: &UserName) -> Vec<u8> {
        self.keyring
            .blind_index(IDX_USER_NAME, app_id, name.as_str())
    }

    /// Builds the row of a new user with every personal value sealed to its row.
    pub fn new_user_row(&self, new: &NewUser<'_>, now: i64) -> Result<UserRow> {
        let id = crate::crypto::random::row_id();
        let metadata_enc = if new.metadata.is_empty() {
            None
        } else {
            let text =
                serde_json::to_string(new.metadata).map_err(|e| Error::Internal(e.to_string()))?;
            Some(
                self.keyring
                    .seal_str(&format!("users.metadata:{id}"), &text)?,
            )
        };
        Ok(UserRow {
            handle_idx: self.handle_index(new.app_id, new.handle),
            handle_enc: self
                .keyring
                .seal_str(&format!("users.handle:{id}"), new.handle.as_str())?,
            id,
            app_id: new.app_id.to_owned(),
            user_name_idx: None,
            user_name_enc: None,
            password_hash: new.password_hash.clone(),
            status: USER_ACTIVE.into(),
            locale: new.locale.to_owned(),
            metadata_enc,
            epoch: 0,
            login_provider: new.login_provider.to_owned(),
            two_factor_phone: false,
            two_factor_google: false,
            totp_enc: None,
            totp_last_step: 0,
            phone_enc: None,
            phone_idx: None,
            phone_verified: false,
            last_login: None,
            created_at: now,
            updated_at: now,
            anonymous: new.handle.is_anonymous(),
        })
    }

    pub fn user_handle(&self, user: &UserRow) -> Result<String> {
        Ok(self
            .keyring
            .open_str(&format!("users.handle:{}", user.id), &user.handle_enc)?)
    }

    pub fn user_name(&self, user: &UserRow) -> Result<Option<String>> {
        user.user_name_enc
            .as_ref()
            .map(|enc| {
                self.keyring
                    .open_str(&format!("users.user_name:{}", user.id), enc)
            })
            .transpose()
            .map_err(Error::from)
    }

    pub fn user_metadata(&self, user: &UserRow) -> Result<Map<String, Value>> {
        let Some(enc) = &user.metadata_enc else {
            return Ok(Map::new());
        };
        let text = self
            .keyring
            .open_str(&format!("users.metadata:{}", user.id), enc)?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(Error::Internal("stored metadata is not an object".into())),
        }
    }

    /// Finds a user by handle, or by user name when the typed value is a valid user name
    /// (spec §4.3: login accepts either).
    /// During a master key rotation a row may still carry the index under the old key, so
    /// every readable key's index is tried (the current one first).
    pub async fn find_user(&self, app_id: &str, handle: &Handle) -> Result<Option<UserRow>> {
        for idx in self
            .keyring
            .blind_indexes(IDX_HANDLE, app_id, handle.as_str())
        {
            if let Some(u) = self.store.user_by_handle(app_id, &idx).await.found()? {
                return Ok(Some(u));
            }
        }
        if handle.has_at() || handle.is_anonymous() {
            return Ok(None);
        }
        match UserName::parse(handle.as_str()) {
            Ok(name) => {
                for idx in self
                    .keyring
                    .blind_indexes(IDX_USER_NAME, app_id, name.as_str())
                {
                    if let Some(u) = self.store.user_by_name(app_id, &idx).await.found()? {
                        return Ok(Some(u));
                    }
                }
                Ok(None)
            }
            Err(_) => Ok(None),
        }
    }

    /// The pending signup of a handle, by the blind index of every readable key.
    pub async fn pending_signup(
        &self,
        app_id: &str,
        handle: &Handle,
    ) -> Result<Option<crate::store::SignupRow>> {
        for idx in self
            .keyring
            .blind_indexes(IDX_HANDLE, app_id, handle.as_str())
        {
            if let Some(s) = self.store.signup_get(app_id, &idx).await.found()? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// `getUser`: the caller's own record, with the keys and JSON types of spec §3.15.
    pub async fn get_user(&self, session: &super::auth::Session) -> Result<Value> {
        let app = self.active_app(&session.app_id).await?;
        let user = self.session_user(session).await?;
        self.user_document(app.id(), &user)
    }

    /// A user's record with its personal values opened (`getUser`, and the admin views).
    pub fn user_document(&self, app_id: &str, user: &UserRow) -> Result<Value> {
        let mut doc = json!({
            "status": user.status,
            "createdAt": iso_millis(user.created_at),
            "updatedAt": iso_millis(user.updated_at),
            "handle": self.user_handle(user)?,
            "locale": user.locale,
            "twoFactorPhoneVerification": user.two_factor_phone,
            "twoFactorGoogleVerification": user.two_factor_google,
            "appId": app_id,
            "phoneVerified": user.phone_verified,
            "metaData": Value::Object(self.user_metadata(user)?),
            "loginProvider": user.login_provider,
        });
        if let Some(obj) = doc.as_object_mut() {
            if let Some(name) = self.user_name(user)? {
                obj.insert("userName".into(), Value::String(name));
            }
            if let Some(enc) = &user.phone_enc {
                let phone = self
                    .keyring
                    .open_str(&format!("users.phone:{}", user.id), enc)?;
                obj.insert("phone".into(), Value::String(phone));
            }
            if let Some(t) = user.last_login {
                obj.insert("lastLogin".into(), Value::String(iso_millis(t)));
            }
        }
        Ok(doc)
    }
}
