//! Signing keys: per-app RSA key pairs (RS256, user JWTs) and the server's Ed25519 key
//! (Tessera's own tokens). Keys are parsed once and kept ready for signing.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

use super::{CryptoError, b64std, b64url};

/// RSA modulus sizes an app may use; 2048 keeps the PEM within Atlas's 512-character limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaBits {
    B2048,
    B3072,
    B4096,
}

/// A freshly generated app key: PKCS#8 private DER (to be sealed) and its public parts.
pub struct GeneratedRsa {
    pub pkcs8: Vec<u8>,
    pub public: RsaPublic,
}

/// Generates an RSA key pair (e = 65537).
pub fn generate_rsa(bits: RsaBits) -> Result<GeneratedRsa, CryptoError> {
    let size = match bits {
        RsaBits::B2048 => KeySize::Rsa2048,
        RsaBits::B3072 => KeySize::Rsa3072,
        RsaBits::B4096 => KeySize::Rsa4096,
    };
    let kp = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| CryptoError::Failed)?;
    let der: Pkcs8V1Der<'static> = kp.as_der().map_err(|_| CryptoError::Failed)?;
    let pkcs8 = der.as_ref().to_vec();
    let signer = RsaSigner::from_pkcs8("", &pkcs8)?;
    Ok(GeneratedRsa {
        pkcs8,
        public: signer.public,
    })
}

/// The public half of an app key, with the derived JWK and PEM forms.
#[derive(Debug, Clone)]
pub struct RsaPublic {
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublic {
    /// Parses an RSA public key from SPKI (or PKCS#1) DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| CryptoError::Key(e.to_string()))?;
        let comps = PublicKeyComponents::<Vec<u8>>::from(&key);
        let spki = key
            .as_der()
            .map_err(|_| CryptoError::Failed)?
            .as_ref()
            .to_vec();
        Ok(Self {
            spki_der: spki,
            n: comps.n,
            e: comps.e,
        })
    }

    /// Size of the modulus in bits (leading zero bytes of the encoding not counted).
    pub fn modulus_bits(&self) -> usize {
        let n: &[u8] = match self.n.iter().position(|b| *b != 0) {
            Some(i) => &self.n[i..],
            None => &[],
        };
        n.first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM (SPKI), lines of 64 characters.
    pub fn pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): a stable `kid` derived from the key itself.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64url(&self.e),
            b64url(&self.n)
        );
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The RFC 7517 JWK of this key for a JWKS document.
    pub fn jwk(&self, kid: &str) -> serde_json::Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": b64url(&self.n),
            "e": b64url(&self.e),
        })
    }

    /// Verifies an RS256 signature (PKCS#1 v1.5, SHA-256).
    pub fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        let comps = PublicKeyComponents {
            n: self.n.as_slice(),
            e: self.e.as_slice(),
        };
        comps
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature_bytes,
            )
            .is_ok()
    }
}

/// Wraps DER in PEM armour.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = b64std(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An app's RSA private key, parsed once, ready to sign RS256.
pub struct RsaSigner {
    pub kid: String,
    key: RsaKeyPair,
    pub public: RsaPublic,
}

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaSigner(kid {})", self.kid)
    }
}

impl RsaSigner {
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| CryptoError::Key(e.to_string()))?;
        let comps = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Failed)?
            .as_ref()
            .to_vec();
        Ok(Self {
            kid: kid.to_owned(),
            public: RsaPublic {
                spki_der: spki,
                n: comps.n,
                e: comps.e,
            },
            key,
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
            .map_err(|_| CryptoError::Failed)?;
        Ok(sig)
    }
}

/// The server's Ed25519 key for tokens only Tessera verifies.
pub struct EdSigner {
    pub kid: String,
    key: Ed25519KeyPair,
    public: Vec<u8>,
}

impl std::fmt::Debug for EdSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdSigner(kid {})", self.kid)
    }
}

impl EdSigner {
    /// New key; returns the PKCS#8 document to store sealed.
    pub fn generate() -> Result<Vec<u8>, CryptoError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CryptoError::Failed)?;
        Ok(doc.as_ref().to_vec())
    }

    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| CryptoError::Key(e.to_string()))?;
        let public = key.public_key().as_ref().to_vec();
        Ok(Self {
            kid: kid.to_owned(),
            key,
            public,
        })
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).as_ref().to_vec()
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.public)
            .verify(message, sig)
            .is_ok()
    }
}
