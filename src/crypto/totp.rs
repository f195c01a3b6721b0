//! TOTP (RFC 6238 over RFC 4226 HOTP) as authenticator apps use it: HMAC-SHA1, 6 digits,
//! 30-second steps, one step of drift either way. Time is a parameter; the caller keeps the
//! last accepted step so a code is accepted once (DESIGN.md §6).

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use super::CryptoError;
use super::keyring::ct_eq;

/// Seconds per time step (RFC 6238 §4.1, X = 30).
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Secret length in bytes: 160 bits, the HMAC-SHA1 block the RFC recommends (RFC 4226 §4).
pub const SECRET_BYTES: usize = 20;

/// A shared TOTP secret; wiped from memory when dropped.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    /// 20 bytes from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(
            super::random::bytes::<SECRET_BYTES>()?.to_vec(),
        )))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case base32 without padding (RFC 4648), as otpauth URIs carry it.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The form CosyncJWT clients show the user (spec §3.24): lower-case base32 in groups of
    /// four separated by spaces.
    pub fn grouped(&self) -> String {
        let b32 = self.base32().to_ascii_lowercase();
        let groups: Vec<&str> = b32
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        groups.join(" ")
    }
}

/// HOTP (RFC 4226 §5.3) with `digits` digits, zero-padded.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        &counter.to_be_bytes(),
    );
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let value = binary % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The time step containing `now_secs` (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now_secs: i64) -> i64 {
    now_secs.div_euclid(STEP_SECS)
}

/// The code for one step.
pub fn code_at(secret: &TotpSecret, step: i64) -> String {
    hotp(secret.as_bytes(), u64::try_from(step).unwrap_or(0), DIGITS)
}

/// Checks `code` against the steps around `now_secs` (±1), skipping every step at or before
/// `last_step` (codes already used). Returns the step that matched. All candidates are
/// compared in constant time.
pub fn verify(secret: &TotpSecret, code: &str, now_secs: i64, last_step: i64) -> Option<i64> {
    let now = step_at(now_secs);
    let mut matched = None;
    for step in [now - 1, now, now + 1] {
        let expected = code_at(secret, step);
        if ct_eq(expected.as_bytes(), code.as_bytes()) && step > last_step && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// Characters of the issuer an otpauth URI carries.
pub const MAX_ISSUER_CHARS: usize = 32;

/// The Key URI an authenticator app scans: `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    // The issuer appears twice and percent-encoding can triple its bytes; a long non-ASCII
    // app name would outgrow what a QR code holds, so only its first characters are used.
    let issuer: String = issuer.chars().take(MAX_ISSUER_CHARS).collect();
    let issuer = issuer.trim();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent_encode(issuer),
        percent_encode(account),
        secret.base32(),
        percent_encode(issuer),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA1 rows: the ASCII secret "12345678901234567890".
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let key = b"12345678901234567890";
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, expected) in vectors {
            let step = u64::try_from(step_at(time)).unwrap();
            assert_eq!(hotp(key, step, 8), expected, "T = {time}");
            // Six digits are the low six of the same value.
            assert_eq!(hotp(key, step, 6), &expected[2..], "T = {time}");
        }
    }

    #[test]
    fn window_is_one_step_each_way_and_used_steps_are_refused() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_111_111_111;
        let step = step_at(now);
        let current = code_at(&secret, step);
        assert_eq!(verify(&secret, &current, now, 0), Some(step));
        assert_eq!(
            verify(&secret, &code_at(&secret, step - 1), now, 0),
            Some(step - 1)
        );
        assert_eq!(
            verify(&secret, &code_at(&secret, step + 1), now, 0),
            Some(step + 1)
        );
        assert_eq!(verify(&secret, &code_at(&secret, step - 2), now, 0), None);
        assert_eq!(verify(&secret, &code_at(&secret, step + 2), now, 0), None);
        // Replay: the step that was accepted, or any earlier one, is refused.
        assert_eq!(verify(&secret, &current, now, step), None);
        assert_eq!(
            verify(&secret, &code_at(&secret, step - 1), now, step),
            None
        );
        assert_eq!(verify(&secret, "12345", now, 0), None);
        assert_eq!(verify(&secret, "", now, 0), None);
    }

    #[test]
    fn secret_formats() {
        let secret = TotpSecret::from_bytes((0u8..20).collect());
        assert_eq!(secret.base32(), "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT");
        let grouped = secret.grouped();
        assert_eq!(grouped, "aaaq eaye auda ocaj bifq ydio b4ib ceqt");
        assert_eq!(grouped.len(), 39);
        assert_eq!(TotpSecret::generate().unwrap().as_bytes().len(), 20);
        assert_eq!(format!("{secret:?}"), "TotpSecret(redacted)");
    }

    #[test]
    fn otpauth_uri_encodes_label_and_issuer() {
        let secret = TotpSecret::from_bytes((0u8..20).collect());
        assert_eq!(
            otpauth_uri("My App", "a+b@x.de", &secret),
            "otpauth://totp/My%20App:a%2Bb%40x.de?secret=AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT\
             &issuer=My%20App&algorithm=SHA1&digits=6&period=30"
        );
    }
}
