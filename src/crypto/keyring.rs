//! The master key and the data keys derived from it (DESIGN.md §4): AEAD for values at rest,
//! HMAC for blind indexes and code hashes. Ciphertexts carry the id of the key that sealed them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{hkdf, hmac};
use secrecy::{ExposeSecret, SecretBox};
use std::collections::HashMap;
use std::sync::Arc;

use super::CryptoError;

/// 32 secret bytes; never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Parses standard base64 of exactly 32 bytes; surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self(SecretBox::new(Box::new(arr))))
    }

    /// 32 bytes from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut arr = [0u8; 32];
        aws_lc_rs::rand::fill(&mut arr).map_err(|_| CryptoError::Failed)?;
        Ok(Self(SecretBox::new(Box::new(arr))))
    }

    /// The base64 text written to a key file.
    pub fn to_base64(&self) -> String {
        super::b64std(self.0.expose_secret())
    }

    fn derive(&self, label: &[u8]) -> Result<[u8; 32], CryptoError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera/v1");
        let prk = salt.extract(self.0.expose_secret());
        let info = [label];
        let okm = prk
            .expand(&info, hkdf::HKDF_SHA256)
            .map_err(|_| CryptoError::Failed)?;
        let mut out = [0u8; 32];
        okm.fill(&mut out).map_err(|_| CryptoError::Failed)?;
        Ok(out)
    }
}

/// Keys derived from one master key.
struct DataKeys {
    aead: RandomizedNonceKey,
    index: hmac::Key,
    codes: hmac::Key,
}

/// Derived keys for sealing values, blind indexes and code hashes.
/// Holds every readable master key generation so a rotation can run while serving.
#[derive(Clone)]
pub struct Keyring {
    current: u32,
    keys: Arc<HashMap<u32, DataKeys>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(current key id {:08x})", self.current)
    }
}

const KEY_ID_LEN: usize = 4;

impl Keyring {
    pub fn new(master: &MasterKey) -> Result<Self, CryptoError> {
        let (id, keys) = Self::derive_all(master)?;
        let mut map = HashMap::new();
        map.insert(id, keys);
        Ok(Self {
            current: id,
            keys: Arc::new(map),
        })
    }

    fn derive_all(master: &MasterKey) -> Result<(u32, DataKeys), CryptoError> {
        let id_bytes = master.derive(b"key id")?;
        let id = u32::from_be_bytes([id_bytes[0], id_bytes[1], id_bytes[2], id_bytes[3]]);
        let aead = RandomizedNonceKey::new(&AES_256_GCM, &master.derive(b"aead")?)
            .map_err(|_| CryptoError::Failed)?;
        let index = hmac::Key::new(hmac::HMAC_SHA256, &master.derive(b"blind index")?);
        let codes = hmac::Key::new(hmac::HMAC_SHA256, &master.derive(b"code hash")?);
        Ok((id, DataKeys { aead, index, codes }))
    }

    fn current_keys(&self) -> Result<&DataKeys, CryptoError> {
        self.keys.get(&self.current).ok_or(CryptoError::Failed)
    }

    /// Seals `plaintext`; `context` (table, column, row) is bound as associated data so a
    /// ciphertext copied to another row or column fails to open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let keys = self.current_keys()?;
        let mut buf = plaintext.to_vec();
        let nonce = keys
            .aead
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Failed)?;
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + buf.len());
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a value sealed by [`Keyring::seal`] under the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (id, rest) = sealed.split_at(KEY_ID_LEN);
        let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        let keys = self.keys.get(&id).ok_or(CryptoError::Decrypt)?;
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = keys
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// Seals a UTF-8 string.
    pub fn seal_str(&self, context: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(context, plaintext.as_bytes())
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_str(&self, context: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| CryptoError::Decrypt)
    }

    /// Keyed blind index of an already normalised value: equal inputs give equal indexes,
    /// and nothing about the value can be learnt without the key.
    pub fn blind_index(&self, purpose: &str, scope: &str, normalized: &str) -> Vec<u8> {
        let keys = self.keys.get(&self.current);
        let Some(keys) = keys else { return Vec::new() };
        hmac_parts(&keys.index, &[purpose, scope, normalized])
    }

    /// Keyed hash of a short code bound to what it may be used for.
    pub fn code_hash(&self, purpose: &str, scope: &str, code: &str) -> Vec<u8> {
        let keys = self.keys.get(&self.current);
        let Some(keys) = keys else { return Vec::new() };
        hmac_parts(&keys.codes, &[purpose, scope, code])
    }
}

/// HMAC over length-prefixed parts, so ("ab","c") and ("a","bc") never collide.
fn hmac_parts(key: &hmac::Key, parts: &[&str]) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.sign().as_ref().to_vec()
}

/// Constant-time equality for secrets (codes, hashes, signatures).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(&MasterKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let k = ring();
        let sealed = k.seal_str("users.handle:1", "alice@example.com").unwrap();
        assert_eq!(
            k.open_str("users.handle:1", &sealed).unwrap(),
            "alice@example.com"
        );
        assert!(k.open_str("users.handle:2", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open_str("users.handle:1", &tampered).is_err());
        assert!(k.open("x", &[1, 2, 3]).is_err());
    }

    #[test]
    fn other_master_key_cannot_open() {
        let sealed = ring().seal_str("c", "v").unwrap();
        assert!(ring().open_str("c", &sealed).is_err());
    }

    #[test]
    fn blind_index_is_deterministic_and_keyed() {
        let k = ring();
        assert_eq!(
            k.blind_index("h", "app", "a@b.c"),
            k.blind_index("h", "app", "a@b.c")
        );
        assert_ne!(
            k.blind_index("h", "app", "a@b.c"),
            k.blind_index("h", "app2", "a@b.c")
        );
        assert_ne!(k.blind_index("h", "ab", "c"), k.blind_index("h", "a", "bc"));
        assert_ne!(
            k.blind_index("h", "app", "a@b.c"),
            ring().blind_index("h", "app", "a@b.c")
        );
    }

    #[test]
    fn master_key_parsing() {
        let key = MasterKey::generate().unwrap();
        let text = format!("{}\n", key.to_base64());
        assert!(MasterKey::from_base64(&text).is_ok());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(redacted)");
    }
}
