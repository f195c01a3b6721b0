//! Handles (DESIGN.md §3.8): one normalisation used at every write and look-up.
//! Anonymous handles (`ANON_…`) are kept byte-exact because their JWT `sub` must not change;
//! every other handle is trimmed, NFC-normalised and lower-cased.

use unicode_normalization::UnicodeNormalization;

use super::Error;

/// Longest handle accepted, in bytes (an e-mail address is at most 254).
pub const MAX_HANDLE_BYTES: usize = 254;

/// The case-sensitive marker of anonymous handles (spec §3.3).
pub const ANON_MARKER: &str = "ANON_";

/// A normalised handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    /// Normalises and validates a handle as typed by a user.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.contains(ANON_MARKER) {
            return Self::parse_anonymous(raw);
        }
        let trimmed = raw.trim();
        // Lower-case first, then NFC: lower-casing can leave a string that is not in NFC, and
        // the blind index needs a form that parsing again does not change.
        let normal: String = trimmed.to_lowercase().nfc().collect();
        check(&normal)?;
        // A handle is a bare mailbox: whitespace, quotes, angle brackets and list separators
        // belong to display names and address lists, which would mail someone else.
        if normal
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '<' | '>' | ',' | ';' | '\\'))
        {
            return Err(Error::InvalidData);
        }
        Ok(Self(normal))
    }

    /// Accepts a handle only if it is anonymous, keeping it byte-exact.
    pub fn parse_anonymous(raw: &str) -> Result<Self, Error> {
        if !raw.contains(ANON_MARKER) {
            return Err(Error::InvalidCredentials);
        }
        check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_anonymous(&self) -> bool {
        self.0.contains(ANON_MARKER)
    }

    /// Whether the handle looks like an e-mail address rather than a user name.
    pub fn has_at(&self) -> bool {
        self.0.contains('@')
    }
}

fn check(value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::MissingParameter);
    }
    if value.len() > MAX_HANDLE_BYTES || value.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(Error::InvalidData);
    }
    Ok(())
}

/// Characters that render as nothing (zero-width, direction marks, byte-order mark, soft
/// hyphen): a handle with them would look like another account's.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Whether the letters of `s` come from more than one script (Common and Inherited characters,
/// such as digits and punctuation, go with any): `аlice` with a Cyrillic `а` is refused.
fn mixes_scripts(s: &str) -> bool {
    use unicode_script::{Script, UnicodeScript};
    let mut seen = None;
    for c in s.chars() {
        let script = c.script();
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        match seen {
            None => seen = Some(script),
            Some(first) if first != script => return true,
            Some(_) => {}
        }
    }
    false
}

/// A user name: trimmed, NFKC (full-width and other compatibility forms fold to their plain
/// letters), lower-case, 1-64 characters of one script, no control characters, no `@` (so it
/// can never be mistaken for another user's e-mail handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let normal: String = raw
            .trim()
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect();
        if normal.is_empty() {
            return Err(Error::MissingParameter);
        }
        if normal.chars().count() > 64
            || normal.contains('@')
            || normal.contains(ANON_MARKER)
            || normal
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || invisible(c))
            || mixes_scripts(&normal)
        {
            return Err(Error::InvalidData);
        }
        Ok(Self(normal))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_handles_are_trimmed_and_lower_cased() {
        assert_eq!(
            Handle::parse("  Alice@Example.COM\t").unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(
            Handle::parse("Ünïcode@x.de").unwrap().as_str(),
            "ünïcode@x.de"
        );
        // A decomposed "e" + combining acute equals the precomposed form after NFC.
        assert_eq!(
            Handle::parse("e\u{301}@x.de").unwrap(),
            Handle::parse("\u{e9}@x.de").unwrap()
        );
        // The Kelvin sign is canonically K, so it cannot open a second account.
        assert_eq!(Handle::parse("\u{212A}@x.de").unwrap().as_str(), "k@x.de");
    }

    #[test]
    fn anonymous_handles_stay_byte_exact() {
        let raw = "ANON_5F3C2A1B-0000-4000-8000-ABCDEFABCDEF";
        assert_eq!(Handle::parse(raw).unwrap().as_str(), raw);
        assert!(Handle::parse(raw).unwrap().is_anonymous());
        assert_eq!(
            Handle::parse_anonymous("bob@x.de"),
            Err(Error::InvalidCredentials)
        );
    }

    #[test]
    fn hostile_handles_are_refused() {
        assert_eq!(Handle::parse("   "), Err(Error::MissingParameter));
        assert_eq!(Handle::parse("a\0b@x.de"), Err(Error::InvalidData));
        assert_eq!(Handle::parse("a\u{7}@x.de"), Err(Error::InvalidData));
        assert_eq!(Handle::parse(&"a".repeat(10_000)), Err(Error::InvalidData));
        assert_eq!(Handle::parse("ANON_\u{0}"), Err(Error::InvalidData));
        for c in ['\u{200B}', '\u{FEFF}', '\u{202E}', '\u{00AD}', '\u{2060}'] {
            assert_eq!(
                Handle::parse(&format!("al{c}ice@x.de")),
                Err(Error::InvalidData),
                "{c:?}"
            );
            assert_eq!(UserName::parse(&format!("bo{c}b")), Err(Error::InvalidData));
        }
        for display_form in [
            "\"a@x.de\" <b@y.de>",
            "\"q q\"@x.de",
            "a@x.de,b@y.de",
            "a b@x.de",
        ] {
            assert_eq!(
                Handle::parse(display_form),
                Err(Error::InvalidData),
                "{display_form}"
            );
        }
    }

    #[test]
    fn user_names_fold_compatibility_forms_and_refuse_mixed_scripts() {
        assert_eq!(UserName::parse("ＡＬＩＣＥ").unwrap().as_str(), "alice");
        assert_eq!(UserName::parse("\u{0430}lice"), Err(Error::InvalidData));
        assert_eq!(UserName::parse("José_99").unwrap().as_str(), "josé_99");
        assert_eq!(UserName::parse("алиса").unwrap().as_str(), "алиса");
    }

    #[test]
    fn user_names() {
        assert_eq!(UserName::parse(" Bob ").unwrap().as_str(), "bob");
        assert_eq!(UserName::parse("bob@x.de"), Err(Error::InvalidData));
        assert_eq!(UserName::parse("a b"), Err(Error::InvalidData));
        assert_eq!(UserName::parse(""), Err(Error::MissingParameter));
        assert_eq!(UserName::parse(&"x".repeat(65)), Err(Error::InvalidData));
    }
}
