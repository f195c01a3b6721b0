//! Phone numbers (DESIGN.md §3.8): parsed with libphonenumber's rules and kept as E.164, the
//! one form used for storage, blind indexes and sending. A number without a leading `+` is
//! read in the app's default region (`phoneDefaultRegion`), so `0015550100000` from Germany
//! and `+1 555-010-0000` are the same number.

use super::Error;

/// A phone number in E.164 (`+` and up to 15 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

/// Longest input accepted before parsing.
const MAX_INPUT: usize = 64;

impl Phone {
    /// Parses a number as typed; `region` is an ISO 3166-1 alpha-2 code or empty.
    pub fn parse(raw: &str, region: &str) -> Result<Self, Error> {
        let raw = raw.trim();
        if raw.is_empty()
            || raw.len() > MAX_INPUT
            || raw.chars().any(|c| c.is_control() || c.is_alphabetic())
        {
            return Err(Error::InvalidData);
        }
        let country = if region.is_empty() {
            None
        } else {
            Some(
                region
                    .parse::<phonenumber::country::Id>()
                    .map_err(|_| Error::InvalidData)?,
            )
        };
        let number = phonenumber::parse(country, raw).map_err(|_| Error::InvalidData)?;
        // The national number must have a length the country's numbering plan allows: read in
        // the wrong region, `0015550100000` would otherwise become a 14-digit "+1" number.
        // (A number no region's patterns claim, such as the fictional +1 555 01xx range, is
        // measured against its country code's main plan.)
        let db = &*phonenumber::metadata::DATABASE;
        let plan = number
            .metadata(db)
            .or_else(|| {
                db.by_code(&number.code().value())
                    .and_then(|plans| plans.into_iter().next())
            })
            .ok_or(Error::InvalidData)?;
        use phonenumber::Type;
        let national_digits = number.national().to_string().len();
        let lengths: Vec<u16> = [
            Type::Unknown,
            Type::FixedLine,
            Type::Mobile,
            Type::TollFree,
            Type::PremiumRate,
            Type::SharedCost,
            Type::PersonalNumber,
            Type::Voip,
            Type::Pager,
            Type::Uan,
        ]
        .into_iter()
        .filter_map(|kind| plan.descriptors().get(kind))
        .flat_map(|d| d.possible_length().iter().copied())
        .collect();
        if !lengths.is_empty() && !lengths.iter().any(|&l| usize::from(l) == national_digits) {
            return Err(Error::InvalidData);
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        let digits = e164.len().saturating_sub(1);
        // E.164 allows 15 digits; fewer than 7 is no subscriber number anywhere.
        if !e164.starts_with('+') || !(7..=15).contains(&digits) {
            return Err(Error::InvalidData);
        }
        // The stored form must read back as itself (it is what the blind index is made of);
        // odd inputs such as `000)0740` in Germany format to an E.164 string that does not.
        let again = phonenumber::parse(None, &e164)
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string());
        if again.ok().as_deref() != Some(e164.as_str()) {
            return Err(Error::InvalidData);
        }
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `region` names a region the parser knows (used to validate the app setting).
    pub fn known_region(region: &str) -> bool {
        region.parse::<phonenumber::country::Id>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_of_one_number_resolve_to_one_e164() {
        for raw in ["+1 555 010 0000", "+1-555-010-0000", " +1 (555) 010-0000 "] {
            assert_eq!(
                Phone::parse(raw, "").unwrap().as_str(),
                "+15550100000",
                "{raw}"
            );
        }
        assert_eq!(
            Phone::parse("0015550100000", "DE").unwrap().as_str(),
            "+15550100000"
        );
        assert_eq!(
            Phone::parse("030 1234567", "DE").unwrap().as_str(),
            "+49301234567"
        );
        assert_eq!(
            Phone::parse("(555) 010-0000", "US").unwrap().as_str(),
            "+15550100000"
        );
        assert_eq!(
            Phone::parse("+44 20 7946 0958", "US").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            Phone::parse("+4930123456", "GB").unwrap().as_str(),
            "+4930123456"
        );
    }

    #[test]
    fn hostile_and_malformed_numbers_are_refused() {
        for raw in [
            "",
            "   ",
            "0015550100000",
            "+1 555 010 0000\0",
            "+1\n5550100000",
            "call me",
            "+12",
            "+1234567890123456789",
            &"1".repeat(100),
        ] {
            assert_eq!(Phone::parse(raw, ""), Err(Error::InvalidData), "{raw:?}");
        }
        assert_eq!(Phone::parse("+15550100000", "XX"), Err(Error::InvalidData));
        // An international prefix of another region read as national digits: no such length.
        assert_eq!(Phone::parse("0015550100000", "US"), Err(Error::InvalidData));
        // Found by fuzzing: its E.164 form did not parse back to itself.
        assert_eq!(Phone::parse("000)0740", "DE"), Err(Error::InvalidData));
        assert_eq!(
            Phone::parse("+1 555 010 00000", ""),
            Err(Error::InvalidData)
        );
        assert!(Phone::known_region("DE"));
        assert!(!Phone::known_region("ZZZ"));
    }
}
