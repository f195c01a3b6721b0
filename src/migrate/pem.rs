//! PEM as the reference server stores it: RSA keys in PEM armour, often wrapped once more in
//! base64 (spec §2: "Each PEM is stored as base64 of the PEM text").

use base64::Engine;

use crate::crypto::keys::RsaPublic;

/// The label and DER body of the first PEM block in `text`, or of the PEM that `text` holds
/// base64-encoded.
pub fn decode(text: &str) -> Result<(String, Vec<u8>), String> {
    let text = text.trim();
    let pem_text = if text.starts_with("-----BEGIN ") {
        text.to_owned()
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| "neither PEM nor base64 of PEM".to_owned())?;
        let inner = String::from_utf8(bytes).map_err(|_| "base64 of something else than PEM")?;
        if !inner.trim_start().starts_with("-----BEGIN ") {
            return Err("base64 of something else than PEM".into());
        }
        inner.trim().to_owned()
    };
    let first = pem_text.lines().next().unwrap_or("");
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or("malformed PEM header")?
        .to_owned();
    if pem_text.contains("Proc-Type: 4,ENCRYPTED") || label.contains("ENCRYPTED") {
        return Err("the key is passphrase-protected; decrypt it first".into());
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in pem_text.lines().skip(1) {
        let line = line.trim();
        if line == end {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err("PEM without its END line".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "PEM body is not base64".to_owned())?;
    Ok((label, der))
}

/// An RSA private key (PKCS#1 `RSA PRIVATE KEY` as node-rsa writes it, or PKCS#8), returned
/// as PKCS#8 DER.
pub fn rsa_private_pkcs8(text: &str) -> Result<Vec<u8>, String> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    let (label, der) = decode(text)?;
    let key = match label.as_str() {
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der),
        "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der),
        other => return Err(format!("expected an RSA private key, found {other:?}")),
    }
    .map_err(|e| format!("RSA private key refused: {e}"))?;
    let pkcs8: Pkcs8V1Der<'static> = key.as_der().map_err(|_| "cannot re-encode the key")?;
    Ok(pkcs8.as_ref().to_vec())
}

/// An RSA public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`) of at least 2048 bits.
pub fn rsa_public(text: &str) -> Result<RsaPublic, String> {
    let (label, der) = decode(text)?;
    match label.as_str() {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
        l if l.contains("PRIVATE") => {
            return Err("this is a private key; give the public key".into());
        }
        other => return Err(format!("expected an RSA public key, found {other:?}")),
    }
    let key = RsaPublic::from_spki_der(&der).map_err(|e| e.to_string())?;
    if key.modulus_bits() < 2048 {
        return Err(format!(
            "RSA key of {} bits refused: at least 2048 are required",
            key.modulus_bits()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_refused_with_a_reason() {
        assert!(decode("hello").is_err());
        assert!(decode("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
        assert!(decode("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----").is_err());
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(decode(enc).unwrap_err().contains("passphrase"));
        let b64 = base64::engine::general_purpose::STANDARD.encode("not pem");
        assert!(decode(&b64).is_err());
    }

    #[test]
    fn generated_key_round_trips_through_base64_pem() {
        let key = crate::crypto::keys::generate_rsa(crate::crypto::keys::RsaBits::B2048).unwrap();
        let pem = crate::crypto::keys::pem("PRIVATE KEY", &key.pkcs8);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
        assert_eq!(rsa_private_pkcs8(&b64).unwrap(), key.pkcs8);
        let public = key.public.pem();
        assert_eq!(rsa_public(&public).unwrap().spki_der, key.public.spki_der);
        assert!(rsa_public(&pem).unwrap_err().contains("private"));
    }
}
