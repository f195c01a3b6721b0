//! The input parsers every route relies on: handles, user names, phones (with and without a
//! default region), codes and metadata. Each accepts or refuses; none panics, and what a
//! parser accepts parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::domain::handle::{Handle, UserName};
use tessera::domain::metadata::parse_input;
use tessera::domain::phone::Phone;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = Handle::parse(text) {
        assert_eq!(Handle::parse(h.as_str()).ok(), Some(h));
    }
    if let Ok(n) = UserName::parse(text) {
        assert_eq!(UserName::parse(n.as_str()).ok(), Some(n));
    }
    for region in ["", "US", "DE", "GB"] {
        if let Ok(p) = Phone::parse(text, region) {
            assert_eq!(Phone::parse(p.as_str(), "").ok(), Some(p));
        }
    }
    let _ = tessera::domain::parse_code(text);
    let _ = parse_input(Some(text));
});
