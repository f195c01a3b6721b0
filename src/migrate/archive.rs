//! Tessera's portable app archive: `tessera export --app ID PATH` writes one app (key pairs,
//! settings, secrets, templates, users with their password hashes and second factors) as
//! JSON sealed with a key derived from a passphrase (Argon2id, 64 MiB, t=3; AES-256-GCM), and
//! `tessera import tessera PATH` restores it on another server with the same ids, through the
//! same validation and writer as the CosyncJWT import. Nothing in the file is readable
//! without the passphrase; a wrong passphrase or any change to the file is detected.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{ImportError, Plan, PlannedApp, PlannedKey, PlannedUser, Report, Where};
use crate::crypto::password::is_bcrypt;
use crate::domain::settings::{AppSecrets, AppSettings};
use crate::domain::{Core, Handle, UserName};
use crate::store::TemplateRow;

const MAGIC: &[u8] = b"TESSERA-ARCHIVE-1\n";
const SALT_LEN: usize = 16;
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 12;
/// Largest archive read.
const MAX_ARCHIVE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Archive {
    format: String,
    version: u32,
    exported_at: i64,
    app: ArchivedApp,
    templates: Vec<ArchivedTemplate>,
    users: Vec<ArchivedUser>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchivedApp {
    id: String,
    name: String,
    status: String,
    settings: AppSettings,
    secrets: AppSecrets,
    keys: Vec<ArchivedKey>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchivedKey {
    /// base64 PKCS#8.
    pkcs8: String,
    status: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchivedTemplate {
    name: String,
    locale: String,
    subject: String,
    html: String,
    link_text: String,
    updated_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchivedUser {
    handle: String,
    password_hash: Option<String>,
    status: String,
    locale: String,
    metadata: Map<String, Value>,
    user_name: Option<String>,
    login_provider: String,
    two_factor_phone: bool,
    two_factor_google: bool,
    /// base64 of the authenticator secret.
    totp: Option<String>,
    totp_last_step: i64,
    phone: Option<String>,
    phone_verified: bool,
    last_login: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn derive_key(passphrase: &str, salt: &[u8]) -> Result<LessSafeKey, ImportError> {
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
        .map_err(|e| ImportError::Input(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| ImportError::Input(format!("deriving the archive key: {e}")))?;
    let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map_err(|_| ImportError::Input("archive key refused".into()))?;
    Ok(LessSafeKey::new(unbound))
}

fn check_passphrase(passphrase: &str) -> Result<(), ImportError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(ImportError::Input(format!(
            "the passphrase must be at least {MIN_PASSPHRASE} characters"
        )));
    }
    Ok(())
}

/// Seals `plain` under `passphrase`: magic, salt, nonce, ciphertext and tag.
pub fn seal(plain: &[u8], passphrase: &str) -> Result<Vec<u8>, ImportError> {
    check_passphrase(passphrase)?;
    let salt = crate::crypto::random::bytes::<SALT_LEN>()?;
    let nonce_bytes = crate::crypto::random::bytes::<NONCE_LEN>()?;
    let key = derive_key(passphrase, &salt)?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(MAGIC),
        &mut buf,
    )
    .map_err(|_| ImportError::Input("sealing the archive failed".into()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + SALT_LEN + NONCE_LEN + buf.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens an archive sealed by [`seal`].
pub fn open(sealed: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let rest = sealed.strip_prefix(MAGIC).ok_or_else(|| {
        ImportError::Input("not a Tessera archive (made by tessera export)".into())
    })?;
    if rest.len() < SALT_LEN + NONCE_LEN + 16 {
        return Err(ImportError::Input("the archive is truncated".into()));
    }
    let (salt, rest) = rest.split_at(SALT_LEN);
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let key = derive_key(passphrase, salt)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| ImportError::Input("the archive is damaged".into()))?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(MAGIC), &mut buf)
        .map_err(|_| ImportError::Input("wrong passphrase, or the archive was changed".into()))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Core {
    /// The archive of one app, sealed under `passphrase`; returns its bytes and user count.
    pub async fn export_app(
        &self,
        app_id: &str,
        passphrase: &str,
        now: i64,
    ) -> Result<(Vec<u8>, usize), ImportError> {
        check_passphrase(passphrase)?;
        let app = self.app(app_id).await?;
        let mut keys = Vec::new();
        let mut rows = self.store.app_keys(app_id).await?;
        // The signing key first: the importer makes the first key the one that signs.
        rows.sort_by_key(|k| (k.kid != app.row.active_kid, k.created_at));
        for k in rows {
            let pkcs8 = Zeroizing::new(self.keyring.open(
                &format!("app_keys.sealed_private:{}", k.kid),
                &k.sealed_private,
            )?);
            keys.push(ArchivedKey {
                pkcs8: b64().encode(&pkcs8),
                status: k.status,
                created_at: k.created_at,
            });
        }
        let templates = self
            .store
            .template_list(app_id)
            .await?
            .into_iter()
            .map(|t| ArchivedTemplate {
                name: t.name,
                locale: t.locale,
                subject: t.subject,
                html: t.html,
                link_text: t.link_text,
                updated_at: t.updated_at,
            })
            .collect();
        let mut users = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.users_after(app_id, &after, 1000).await?;
            let Some(last) = page.last().map(|u| u.id.clone()) else {
                break;
            };
            for u in &page {
                users.push(self.archived_user(u)?);
            }
            after = last;
        }
        let archive = Archive {
            format: "tessera-app-archive".into(),
            version: 1,
            exported_at: now,
            app: ArchivedApp {
                id: app.row.id.clone(),
                name: app.row.name.clone(),
                status: app.row.status.clone(),
                secrets: self.app_secrets(&app)?,
                settings: app.settings,
                keys,
                created_at: app.row.created_at,
                updated_at: app.row.updated_at,
            },
            templates,
            users,
        };
        let n = archive.users.len();
        let json = Zeroizing::new(
            serde_json::to_vec(&archive).map_err(|e| ImportError::Input(e.to_string()))?,
        );
        Ok((seal(&json, passphrase)?, n))
    }

    fn archived_user(&self, u: &crate::store::UserRow) -> Result<ArchivedUser, ImportError> {
        let phone = u
            .phone_enc
            .as_ref()
            .map(|enc| self.keyring.open_str(&format!("users.phone:{}", u.id), enc))
            .transpose()?;
        let totp = u
            .totp_enc
            .as_ref()
            .map(|enc| self.keyring.open(&format!("users.totp:{}", u.id), enc))
            .transpose()?
            .map(|t| b64().encode(Zeroizing::new(t).as_slice()));
        Ok(ArchivedUser {
            handle: self.user_handle(u)?,
            password_hash: u.password_hash.clone(),
            status: u.status.clone(),
            locale: u.locale.clone(),
            metadata: self.user_metadata(u)?,
            user_name: self.user_name(u)?,
            login_provider: u.login_provider.clone(),
            two_factor_phone: u.two_factor_phone,
            two_factor_google: u.two_factor_google,
            totp,
            totp_last_step: u.totp_last_step,
            phone,
            phone_verified: u.phone_verified,
            last_login: u.last_login,
            created_at: u.created_at,
            updated_at: u.updated_at,
        })
    }
}

/// Reads an archive file into an import plan.
pub fn plan(
    path: &std::path::Path,
    passphrase: &str,
    report: &mut Report,
) -> Result<Plan, ImportError> {
    let len = std::fs::metadata(path)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?
        .len();
    if len > MAX_ARCHIVE_BYTES {
        return Err(ImportError::Input(
            "the archive is larger than 2 GiB".into(),
        ));
    }
    let sealed =
        std::fs::read(path).map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let json = open(&sealed, passphrase)?;
    let archive: Archive = serde_json::from_slice(&json)
        .map_err(|e| ImportError::Input(format!("the archive content is not understood: {e}")))?;
    if archive.format != "tessera-app-archive" || archive.version != 1 {
        return Err(ImportError::Input(
            "unsupported archive format or version".into(),
        ));
    }
    let a = archive.app;
    if !super::cosync::valid_app_id(&a.id) {
        return Err(ImportError::Input("the archived app id is invalid".into()));
    }
    a.settings
        .validate()
        .map_err(|e| ImportError::Input(format!("archived settings: {e}")))?;
    let mut keys = Vec::new();
    for k in a.keys {
        let pkcs8 = Zeroizing::new(
            b64()
                .decode(k.pkcs8.as_bytes())
                .map_err(|_| ImportError::Input("an archived key is not base64".into()))?,
        );
        crate::crypto::keys::RsaSigner::from_pkcs8("", &pkcs8)
            .map_err(|e| ImportError::Input(format!("an archived key is refused: {e}")))?;
        keys.push(PlannedKey {
            pkcs8,
            status: if k.status == "active" || k.status == "retiring" {
                k.status
            } else {
                "retiring".into()
            },
            created_at: k.created_at,
        });
    }
    let app_id = a.id.clone();
    let templates = archive
        .templates
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            (
                Where::row("templates", i + 1),
                TemplateRow {
                    app_id: app_id.clone(),
                    name: t.name,
                    locale: t.locale,
                    subject: t.subject,
                    html: t.html,
                    link_text: t.link_text,
                    updated_at: t.updated_at,
                },
            )
        })
        .collect();
    let mut users = Vec::new();
    for (i, u) in archive.users.into_iter().enumerate() {
        let at = Where::row("users", i + 1);
        match planned_user(u, at.clone()) {
            Ok(p) => users.push(p),
            Err(reason) => report.reject(at, reason),
        }
    }
    Ok(Plan {
        app: PlannedApp {
            id: a.id,
            name: a.name,
            status: a.status,
            settings: a.settings,
            secrets: a.secrets,
            keys,
            created_at: a.created_at,
            updated_at: a.updated_at,
        },
        users,
        signups: Vec::new(),
        invites: Vec::new(),
        templates,
    })
}

fn planned_user(u: ArchivedUser, at: Where) -> Result<PlannedUser, String> {
    let handle = Handle::parse(&u.handle).map_err(|_| "handle is invalid".to_owned())?;
    if let Some(h) = &u.password_hash
        && !is_bcrypt(h)
        && !h.starts_with("$argon2id$")
    {
        return Err("password hash is neither Argon2id nor bcrypt".into());
    }
    if !["active", "suspend", "pending"].contains(&u.status.as_str()) {
        return Err("unknown status".into());
    }
    let user_name = u
        .user_name
        .as_deref()
        .map(UserName::parse)
        .transpose()
        .map_err(|_| "user name is invalid".to_owned())?;
    let totp = u
        .totp
        .as_deref()
        .map(|t| b64().decode(t.as_bytes()).map(Zeroizing::new))
        .transpose()
        .map_err(|_| "authenticator secret is not base64".to_owned())?;
    let phone = u
        .phone
        .as_deref()
        .map(|p| crate::domain::phone::Phone::parse(p, "").map(|p| p.as_str().to_owned()))
        .transpose()
        .map_err(|_| "phone is invalid".to_owned())?;
    if u.locale.len() != 2 || !u.locale.chars().all(|c| c.is_ascii_uppercase()) {
        return Err("locale is invalid".into());
    }
    Ok(PlannedUser {
        exact: true,
        from: at,
        handle,
        password_hash: u.password_hash,
        status: u.status,
        locale: u.locale,
        metadata: u.metadata,
        user_name,
        login_provider: u.login_provider,
        two_factor_phone: u.two_factor_phone,
        two_factor_google: u.two_factor_google,
        totp,
        totp_last_step: u.totp_last_step,
        phone,
        phone_verified: u.phone_verified,
        last_login: u.last_login,
        created_at: u.created_at,
        updated_at: u.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_archive_needs_the_passphrase_and_detects_changes() {
        let sealed = seal(b"{\"x\":1}", "correct horse battery").unwrap();
        assert_eq!(
            open(&sealed, "correct horse battery").unwrap().as_slice(),
            b"{\"x\":1}"
        );
        assert!(
            open(&sealed, "wrong horse battery!")
                .unwrap_err()
                .to_string()
                .contains("passphrase")
        );
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(open(&changed, "correct horse battery").is_err());
        assert!(open(b"PK\x03\x04", "correct horse battery").is_err());
        assert!(open(&sealed[..MAGIC.len() + 4], "correct horse battery").is_err());
        assert!(seal(b"x", "short").is_err());
    }
}
