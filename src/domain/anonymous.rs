//! Anonymous login (spec §3.3, §4.5): the `ANON_…` handle is the only credential. The user is
//! created on first use. Fixes of spec §10: the body's metadata is never stored or copied into
//! claims (declared fields get `ANON_<fieldName>` placeholders), and a suspended anonymous
//! user is refused like any other.

use super::tokens::Issued;
use super::users::{NewUser, USER_ACTIVE};
use super::{Core, Error, Handle, Result};
use crate::store::StoreError;

impl Core {
    pub async fn login_anonymous(
        &self,
        app_id: &str,
        handle: &str,
        locale: Option<&str>,
        now: i64,
    ) -> Result<Issued> {
        let handle = Handle::parse_anonymous(handle)?;
        let app = self.app(app_id).await?;
        if !app.settings.anonymous_login_enabled {
            return Err(Error::AnonymousDisabled);
        }
        app.check_status()?;
        let idx = self.handle_index(app_id, &handle);
        let user = match self.find_user(app_id, &handle).await? {
            Some(u) => u,
            None => {
                self.check_user_cap(&app).await?;
                let locale = super::signup::pick_locale(&app, locale)?;
                let row = self.new_user_row(
                    &NewUser {
                        app_id,
                        handle: &handle,
                        password_hash: None,
                        locale: &locale,
                        metadata: &serde_json::Map::new(),
                        login_provider: "",
                    },
                    now,
                )?;
                // The JWT must fit before the user is stored (spec atlas-custom-jwt).
                self.user_jwt(&app, &row, handle.as_str(), now).await?;
                match self.store.user_create(&row).await {
                    Ok(()) => row,
                    // A concurrent first login created it: use that one.
                    Err(StoreError::Conflict(_)) => self.store.user_by_handle(app_id, &idx).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if user.status != USER_ACTIVE {
            return Err(Error::UserSuspended);
        }
        self.issue(&app, &user, handle.as_str(), now).await
    }
}
