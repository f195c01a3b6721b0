//! Domain errors. Each variant is one CosyncJWT error (spec §1.5) or an operational failure;
//! `http/` owns the mapping to the wire.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid app token")]
    InvalidAppToken,
    #[error("app no longer exist")]
    AppNotFound,
    #[error("app is suspended")]
    AppSuspended,
    #[error("missing parameter")]
    MissingParameter,
    #[error("user account is suspended")]
    UserSuspended,
    #[error("invalid access token")]
    InvalidAccessToken,
    #[error("app does not support invitation")]
    InvitationDisabled,
    #[error("app does not support signup")]
    SignupDisabled,
    #[error("app does not support google two-factor verification")]
    GoogleTwoFactorUnsupported,
    #[error("app does not support phone two-factor verification")]
    PhoneTwoFactorUnsupported,
    #[error("user does not have verified phone number")]
    PhoneNotVerified,
    #[error("signup code expired")]
    SignupCodeExpired,
    #[error("phone number already in use")]
    PhoneInUse,
    #[error("app is migrated")]
    AppMigrated,
    #[error("app does not support anonymous login")]
    AnonymousDisabled,
    #[error("invalid login credentials")]
    InvalidCredentials,
    #[error("handle already registered")]
    HandleRegistered,
    #[error("invalid data")]
    InvalidData,
    #[error("account does not exist")]
    AccountNotFound,
    #[error("invalid metadata")]
    InvalidMetadata,
    #[error("user name already assigned")]
    UserNameTaken,
    #[error("app does not support username login")]
    UserNameLoginDisabled,
    #[error("account has not been verified")]
    NotVerified,
    /// A `server-secret` header: Tessera has no such credential on these routes.
    #[error("server secret rejected")]
    ServerSecretRejected,
    /// Every password-hashing worker is busy and the queue is full.
    #[error("busy")]
    Busy,
    /// The database cannot be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the detail is logged, never returned.
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Invalid => Error::InvalidData,
            StoreError::Gone => Error::AppNotFound,
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::crypto::CryptoError> for Error {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<crate::crypto::password::HashError> for Error {
    fn from(e: crate::crypto::password::HashError) -> Self {
        match e {
            crate::crypto::password::HashError::Busy => Error::Busy,
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Store look-ups where "not found" is an answer rather than a failure.
pub trait Found<T> {
    fn found(self) -> Result<Option<T>>;
}

impl<T> Found<T> for Result<T, StoreError> {
    fn found(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
