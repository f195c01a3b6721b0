//! The master key and the data keys derived from it (DESIGN.md §4): AEAD for values at rest,
//! HMAC for blind indexes and code hashes. Ciphertexts carry the id of the key that sealed them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{hkdf, hmac};
use secrecy::{ExposeSecret, SecretBox};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

/// The readable generations and the one that seals.
struct Generations {
    current: u32,
    keys: HashMap<u32, Arc<DataKeys>>,
}

/// Derived keys for sealing values, blind indexes and code hashes.
/// Holds every readable master key generation so a rotation can run while serving: values
/// open under the key their id names, new values seal under the current one, and look-ups
/// try the blind index of every generation (see `migrate::rotate`). Clones share the state.
#[derive(Clone)]
pub struct Keyring {
    state: Arc<RwLock<Generations>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(current key id {:08x})", self.current_id())
    }
}

const KEY_ID_LEN: usize = 4;

impl Keyring {
    pub fn new(master: &MasterKey) -> Result<Self, CryptoError> {
        let (id, keys) = Self::derive_all(master)?;
        let mut map = HashMap::new();
        map.insert(id, Arc::new(keys));
        Ok(Self {
            state: Arc::new(RwLock::new(Generations {
                current: id,
                keys: map,
            })),
        })
    }

    /// The key id a master key's ciphertexts carry.
    pub fn id_of(master: &MasterKey) -> Result<u32, CryptoError> {
        let id_bytes = master.derive(b"key id")?;
        Ok(u32::from_be_bytes([
            id_bytes[0],
            id_bytes[1],
            id_bytes[2],
            id_bytes[3],
        ]))
    }

    /// The key id at the front of a sealed value.
    pub fn sealed_key_id(sealed: &[u8]) -> Option<u32> {
        let id = sealed.get(..KEY_ID_LEN)?;
        Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
    }

    fn derive_all(master: &MasterKey) -> Result<(u32, DataKeys), CryptoError> {
        let id = Self::id_of(master)?;
        let aead = RandomizedNonceKey::new(&AES_256_GCM, &master.derive(b"aead")?)
            .map_err(|_| CryptoError::Failed)?;
        let index = hmac::Key::new(hmac::HMAC_SHA256, &master.derive(b"blind index")?);
        let codes = hmac::Key::new(hmac::HMAC_SHA256, &master.derive(b"code hash")?);
        Ok((id, DataKeys { aead, index, codes }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generations> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of the key that seals new values.
    pub fn current_id(&self) -> u32 {
        self.read().current
    }

    /// Every readable key id, the current one first.
    pub fn ids(&self) -> Vec<u32> {
        let g = self.read();
        let mut ids: Vec<u32> = g.keys.keys().copied().filter(|i| *i != g.current).collect();
        ids.sort_unstable();
        ids.insert(0, g.current);
        ids
    }

    /// Makes another master key readable (idempotent); returns its id.
    pub fn add(&self, master: &MasterKey) -> Result<u32, CryptoError> {
        let (id, keys) = Self::derive_all(master)?;
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        g.keys.entry(id).or_insert_with(|| Arc::new(keys));
        Ok(id)
    }

    /// Seals new values (and computes new indexes) under key `id`, which must be readable.
    pub fn set_current(&self, id: u32) -> Result<(), CryptoError> {
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        if !g.keys.contains_key(&id) {
            return Err(CryptoError::Failed);
        }
        g.current = id;
        Ok(())
    }

    fn keys_of(&self, id: u32) -> Option<Arc<DataKeys>> {
        self.read().keys.get(&id).cloned()
    }

    fn current_keys(&self) -> Result<(u32, Arc<DataKeys>), CryptoError> {
        let g = self.read();
        let keys = g.keys.get(&g.current).cloned().ok_or(CryptoError::Failed)?;
        Ok((g.current, keys))
    }

    /// Seals `plaintext`; `context` (table, column, row) is bound as associated data so a
    /// ciphertext copied to another row or column fails to open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (current, keys) = self.current_keys()?;
        let mut buf = plaintext.to_vec();
        let nonce = keys
            .aead
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Failed)?;
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + buf.len());
        out.extend_from_slice(&current.to_be_bytes());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a value sealed by [`Keyring::seal`] under the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let id = Self::sealed_key_id(sealed).ok_or(CryptoError::Decrypt)?;
        let keys = self.keys_of(id).ok_or(CryptoError::Decrypt)?;
        let (nonce, ct) = sealed[KEY_ID_LEN..].split_at(NONCE_LEN);
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
        match self.current_keys() {
            Ok((_, keys)) => hmac_parts(&keys.index, &[purpose, scope, normalized]),
            Err(_) => Vec::new(),
        }
    }

    /// The blind index under every readable key, the current one first: during a master key
    /// rotation a row may still carry the index of the previous key.
    pub fn blind_indexes(&self, purpose: &str, scope: &str, normalized: &str) -> Vec<Vec<u8>> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.keys_of(id))
            .map(|keys| hmac_parts(&keys.index, &[purpose, scope, normalized]))
            .collect()
    }

    /// Keyed hash of a short code bound to what it may be used for.
    pub fn code_hash(&self, purpose: &str, scope: &str, code: &str) -> Vec<u8> {
        match self.current_keys() {
            Ok((_, keys)) => hmac_parts(&keys.codes, &[purpose, scope, code]),
            Err(_) => Vec::new(),
        }
    }
}

impl Keyring {
    /// Whether `stored` is the hash of `code` under any readable key (a code issued just
    /// before a master key rotation stays usable while both keys are loaded).
    pub fn code_hash_matches(&self, purpose: &str, scope: &str, code: &str, stored: &[u8]) -> bool {
        self.ids()
            .into_iter()
            .filter_map(|id| self.keys_of(id))
            .any(|keys| ct_eq(&hmac_parts(&keys.codes, &[purpose, scope, code]), stored))
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
    fn a_second_generation_reads_both_and_seals_under_the_current() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let k = Keyring::new(&old).unwrap();
        let before = k.seal_str("c", "v").unwrap();
        let old_idx = k.blind_index("h", "app", "a@b.c");
        let new_id = k.add(&new).unwrap();
        assert_eq!(new_id, Keyring::id_of(&new).unwrap());
        k.set_current(new_id).unwrap();
        let after = k.seal_str("c", "v").unwrap();
        assert_eq!(Keyring::sealed_key_id(&after), Some(new_id));
        assert_eq!(k.open_str("c", &before).unwrap(), "v");
        assert_eq!(k.open_str("c", &after).unwrap(), "v");
        let all = k.blind_indexes("h", "app", "a@b.c");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], old_idx);
        assert_ne!(all[0], old_idx);
        // The new key alone reads what was sealed under it, not what was not re-sealed.
        let only_new = Keyring::new(&new).unwrap();
        assert!(only_new.open_str("c", &after).is_ok());
        assert!(only_new.open_str("c", &before).is_err());
        assert!(k.set_current(7).is_err());
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
