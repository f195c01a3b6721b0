//! Random values from the system CSPRNG (aws-lc): codes, ids and secrets.

use super::CryptoError;

/// Fills a buffer with CSPRNG bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| CryptoError::Failed)?;
    Ok(out)
}

/// A uniformly drawn 6-digit code in 100000..=999999 (the range CosyncJWT clients expect),
/// by rejection sampling so no value is more likely than another.
pub fn six_digit_code() -> Result<String, CryptoError> {
    const SPAN: u32 = 900_000;
    const LIMIT: u32 = u32::MAX - (u32::MAX % SPAN);
    loop {
        let n = u32::from_be_bytes(bytes::<4>()?);
        if n < LIMIT {
            return Ok((100_000 + n % SPAN).to_string());
        }
    }
}

/// 32 lower-case hex characters: the CosyncJWT app id format (a UUIDv4 without dashes).
pub fn app_id() -> Result<String, CryptoError> {
    let mut b = bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(hex::encode(b))
}

/// A time-ordered unique id for rows.
pub fn row_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_in_range() {
        for _ in 0..2000 {
            let c = six_digit_code().unwrap();
            assert_eq!(c.len(), 6);
            let n: u32 = c.parse().unwrap();
            assert!((100_000..=999_999).contains(&n));
        }
    }

    #[test]
    fn app_ids_are_uuid_v4_hex() {
        let id = app_id().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(&id[12..13], "4");
        assert_ne!(id, app_id().unwrap());
    }
}
