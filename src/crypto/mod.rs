//! Cryptography: every secret Tessera holds passes through here.

pub mod jwt;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod random;
pub mod totp;

pub use keyring::{Keyring, MasterKey};

use base64::Engine;

/// base64url without padding, as JWS (RFC 7515 §2) requires.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` on any malformed input.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Standard base64 with padding (PEM bodies, master key files).
pub fn b64std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Errors of the crypto layer; details stay inside, callers see only the kind.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key must be 32 bytes of standard base64")]
    BadMasterKey,
    #[error("ciphertext could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    #[error("key material rejected: {0}")]
    Key(String),
    #[error("cryptographic operation failed")]
    Failed,
}
