//! Identifiers that arrive from outside, parsed into types that can only hold valid values.
//!
//! - [`ResidentId`]: 18-character resident ID number (GB 11643-1999, ISO 7064 MOD 11-2 check
//!   character, a real birth date).
//! - [`CreditCode`]: 18-character unified social credit code (GB 32100-2015 check character).
//! - [`MobileNumber`]: mainland mobile number, stored as 11 digits.
//! - [`OpenId`]: a WeChat openid.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused. The `Display` text is `code: detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid_resident_id: {0}")]
    ResidentId(String),
    #[error("invalid_credit_code: {0}")]
    CreditCode(String),
    #[error("invalid_mobile: {0}")]
    Mobile(String),
    #[error("invalid_openid: {0}")]
    OpenId(String),
}

const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: &[u8; 11] = b"10X98765432";

/// The check character of a resident ID number given its first 17 digits.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(RESIDENT_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(RESIDENT_CHECK[(sum % 11) as usize] as char)
}

/// Sex as encoded in the resident ID (odd sequence digit: male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// A valid 18-character resident ID number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

impl ResidentId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_ascii_uppercase();
        // Counted in characters: slicing bytes below is safe only once every character
        // is known to be ASCII (a non-ASCII character is several bytes).
        if s.chars().count() != 18 {
            return Err(IdError::ResidentId(format!(
                "must be 18 characters, got {}",
                s.chars().count()
            )));
        }
        if !s.is_ascii() {
            return Err(IdError::ResidentId(
                "only digits and a final X are allowed".into(),
            ));
        }
        let first17 = &s[..17];
        if !first17.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::ResidentId(
                "the first 17 characters must be digits".into(),
            ));
        }
        if !first17.starts_with(|c: char| ('1'..='8').contains(&c)) {
            return Err(IdError::ResidentId("address code is not valid".into()));
        }
        let birth = NaiveDate::parse_from_str(&s[6..14], "%Y%m%d")
            .map_err(|_| IdError::ResidentId(format!("birth date {} is not a date", &s[6..14])))?;
        if birth.year() < 1900 {
            return Err(IdError::ResidentId(format!(
                "birth date {} is before 1900",
                &s[6..14]
            )));
        }
        let expected = resident_id_check_char(first17).expect("17 digits");
        let got = s.as_bytes()[17] as char;
        if got != expected {
            return Err(IdError::ResidentId(format!(
                "check character is {got}, expected {expected}"
            )));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("checked at parse")
    }

    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Age in whole years on `today`.
    pub fn age_on(&self, today: NaiveDate) -> i64 {
        let b = self.birth_date();
        let mut age = i64::from(today.year() - b.year());
        if (today.month(), today.day()) < (b.month(), b.day()) {
            age -= 1;
        }
        age
    }

    /// Masked for screens and logs: `310101********4512`.
    pub fn masked(&self) -> String {
        mask_resident_shape(&self.0)
    }
}

impl TryFrom<String> for ResidentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<ResidentId> for String {
    fn from(v: ResidentId) -> String {
        v.0
    }
}
impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const CREDIT_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn credit_value(c: u8) -> Option<u32> {
    CREDIT_CHARSET
        .iter()
        .position(|&x| x == c)
        .map(|p| p as u32)
}

/// The check character of a unified social credit code given its first 17 characters.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.bytes().zip(CREDIT_WEIGHTS) {
        sum += credit_value(b)? * w;
    }
    Some(CREDIT_CHARSET[((31 - sum % 31) % 31) as usize] as char)
}

/// A valid 18-character unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(IdError::CreditCode(format!(
                "must be 18 characters, got {}",
                s.chars().count()
            )));
        }
        if let Some(bad) = s
            .chars()
            .find(|&c| !c.is_ascii() || credit_value(c as u8).is_none())
        {
            return Err(IdError::CreditCode(format!(
                "character {bad:?} is not allowed (digits and capital letters; I, O, S, V, Z \
                 never appear)"
            )));
        }
        let expected = credit_code_check_char(&s[..17]).expect("charset checked");
        let got = s.as_bytes()[17] as char;
        if got != expected {
            return Err(IdError::CreditCode(format!(
                "check character is {got}, expected {expected}"
            )));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CreditCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<CreditCode> for String {
    fn from(v: CreditCode) -> String {
        v.0
    }
}
impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mainland mobile number, normalised to 11 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Accepts `+86`, `86` and `0086` prefixes and spaces or dashes between digit groups.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let compact: String = s.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .or_else(|| {
                if compact.len() == 13 {
                    compact.strip_prefix("86")
                } else {
                    None
                }
            })
            .unwrap_or(&compact);
        let b = digits.as_bytes();
        if b.len() != 11 {
            return Err(IdError::Mobile(format!(
                "must be 11 digits, got {:?}",
                mask_any(s)
            )));
        }
        if !b.iter().all(u8::is_ascii_digit) || b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(IdError::Mobile(format!(
                "{} is not a mainland mobile number",
                mask_any(s)
            )));
        }
        Ok(Self(digits.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// E.164 form, as Tencent Cloud wants it.
    pub fn e164(&self) -> String {
        format!("+86{}", self.0)
    }

    /// Masked for screens and logs: `138****5678`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

/// Never prints the full number.
impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber({})", self.masked())
    }
}

impl TryFrom<String> for MobileNumber {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<MobileNumber> for String {
    fn from(v: MobileNumber) -> String {
        v.0
    }
}

/// A WeChat openid: 28 characters of `[A-Za-z0-9_-]` for official accounts; we accept
/// 6 to 64 such characters since other app types use other lengths.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OpenId(String);

impl OpenId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if !(6..=64).contains(&s.len()) {
            return Err(IdError::OpenId(format!(
                "must be 6 to 64 characters, got {}",
                s.len()
            )));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(IdError::OpenId(
                "only letters, digits, '_' and '-' are allowed".into(),
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_any(&self.0)
    }
}

impl fmt::Debug for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenId({})", self.masked())
    }
}

impl TryFrom<String> for OpenId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<OpenId> for String {
    fn from(v: OpenId) -> String {
        v.0
    }
}

fn mask_resident_shape(id: &str) -> String {
    format!("{}********{}", &id[..6], &id[14..])
}

/// Masks a stored subject id for viewers who may not see personal data: an id shaped
/// like a resident ID number (17 digits + check) is masked as [`ResidentId::masked`];
/// other ids (credit codes are public) are returned as they are.
pub fn mask_subject_id(id: &str) -> String {
    if id.len() == 18 && id.as_bytes()[..17].iter().all(u8::is_ascii_digit) {
        mask_resident_shape(id)
    } else {
        id.to_string()
    }
}

/// Masks any personal string for display: keeps a short head and tail.
pub fn mask_any(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    match chars.len() {
        0..=2 => "*".repeat(chars.len()),
        3..=6 => format!("{}{}", chars[0], "*".repeat(chars.len() - 1)),
        n => {
            let head: String = chars[..3].iter().collect();
            let tail: String = chars[n - 2..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(n - 5))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_known_answer() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.masked(), "110105********002X");
        // lower-case x is accepted and normalised
        assert_eq!(
            ResidentId::parse("11010519491231002x").unwrap().as_str(),
            "11010519491231002X"
        );
    }

    #[test]
    fn resident_id_rejects_bad_check_digit_date_and_length() {
        let e = ResidentId::parse("110105194912310021").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("invalid_resident_id: check character"));
        // 1990-02-30 does not exist; check char computed so only the date is wrong
        let first = "31010119900230451";
        let id = format!("{first}{}", resident_id_check_char(first).unwrap());
        assert!(ResidentId::parse(&id)
            .unwrap_err()
            .to_string()
            .contains("not a date"));
        assert!(ResidentId::parse("1101051949123100").is_err());
        assert!(ResidentId::parse("A1010519491231002X").is_err());
    }

    #[test]
    fn resident_id_age_counts_birthdays() {
        let first = "31010119900307451";
        let id = ResidentId::parse(&format!(
            "{first}{}",
            resident_id_check_char(first).unwrap()
        ))
        .unwrap();
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(2026, 3, 6).unwrap()), 35);
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()), 36);
    }

    #[test]
    fn credit_code_known_answer() {
        assert_eq!(credit_code_check_char("9144030071526726X"), Some('G'));
        CreditCode::parse("9144030071526726XG").unwrap();
        let e = CreditCode::parse("9144030071526726XA").unwrap_err();
        assert!(e.to_string().contains("expected G"));
        assert!(CreditCode::parse("9144030071526726IG")
            .unwrap_err()
            .to_string()
            .contains("not allowed"));
        assert!(CreditCode::parse("914403007152").is_err());
    }

    #[test]
    fn mobile_prefixes_and_masking() {
        for s in [
            "13812345678",
            "+8613812345678",
            "8613812345678",
            "008613812345678",
            "138 1234 5678",
        ] {
            assert_eq!(
                MobileNumber::parse(s).unwrap().as_str(),
                "13812345678",
                "{s}"
            );
        }
        let m = MobileNumber::parse("13812345678").unwrap();
        assert_eq!(m.masked(), "138****5678");
        assert_eq!(m.e164(), "+8613812345678");
        assert_eq!(format!("{m:?}"), "MobileNumber(138****5678)");
        for bad in [
            "12812345678",
            "1381234567",
            "23812345678",
            "1381234567a",
            "",
        ] {
            assert!(MobileNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subject_ids_mask_like_resident_ids() {
        assert_eq!(mask_subject_id("11010519491231002X"), "110105********002X");
        assert_eq!(mask_subject_id("9144030071526726XG"), "9144030071526726XG");
    }

    #[test]
    fn openid_shape() {
        OpenId::parse("oX1a2b3c4d5e6f7g8h9i0jklmnop").unwrap();
        assert!(OpenId::parse("abc").is_err());
        assert!(OpenId::parse("oX1a2b3c4d5e6f7g8h9i0jklm op").is_err());
    }
}
