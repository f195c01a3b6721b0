//! The CosyncJWT body decoder (JSON and form-encoded) and the field accessors on its result:
//! any bytes give fields or a protocol error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::http::extract::Fields;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if let Ok(fields) = Fields::from_body(body, mode & 1 == 1) {
        for name in ["handle", "password", "code", "metaData", "locale", "twoFactor", "phone"] {
            let _ = fields.text(name);
            let _ = fields.flag(name);
        }
    }
});
