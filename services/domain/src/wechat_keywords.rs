//! The value limits of WeChat template / subscription keywords (channels.md §1.3): what
//! WeChat refuses with 47003. Checked when a campaign binds a registered template (at
//! save, on sample values) and by the connector before every send.
//!
//! | type | rule |
//! |---|---|
//! | `thing` | ≤ 20 chars |
//! | `number` | ≤ 32 chars, digits (one `.` allowed) |
//! | `letter` | ≤ 32 chars, ASCII letters |
//! | `symbol` | ≤ 5 chars |
//! | `character_string` | ≤ 32 chars, ASCII only |
//! | `time` | `15:01`, `2019年10月1日 15:01`, `2019-10-01 15:01[:05]`; a range joined by `~` |
//! | `date` | `2019年10月1日`, `2019-10-01`, optionally followed by a time; a range joined by `~` |
//! | `amount` | optional currency symbol, ≤ 10 digits (`,` and one `.` allowed), optional `元` |
//! | `phone_number` | ≤ 17 chars of digits, `+`, `-`, spaces, parentheses |
//! | `car_number` | ≤ 8 chars |
//! | `name` | ≤ 10 chars if any is non-ASCII, else ≤ 20 |
//! | `phrase` | ≤ 5 Chinese characters |
//!
//! No value may be empty or hold control characters (newlines included).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use std::fmt;

/// The type of a keyword, from its name without the trailing digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordType {
    Thing,
    Number,
    Letter,
    Symbol,
    CharacterString,
    Time,
    Date,
    Amount,
    PhoneNumber,
    CarNumber,
    Name,
    Phrase,
}

impl KeywordType {
    /// `thing1` → `Thing`; `None` for a name that is not `<known type><digits>`.
    pub fn of_key(key: &str) -> Option<Self> {
        let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
        if base.len() == key.len() {
            return None;
        }
        Some(match base {
            "thing" => Self::Thing,
            "number" => Self::Number,
            "letter" => Self::Letter,
            "symbol" => Self::Symbol,
            "character_string" => Self::CharacterString,
            "time" => Self::Time,
            "date" => Self::Date,
            "amount" => Self::Amount,
            "phone_number" => Self::PhoneNumber,
            "car_number" => Self::CarNumber,
            "name" => Self::Name,
            "phrase" => Self::Phrase,
            _ => return None,
        })
    }
}

/// A value WeChat would refuse with 47003. `code` is `field_too_long` or `field_invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub key: String,
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.code, self.key, self.detail)
    }
}

/// Checks one value against the limits of its keyword's type.
pub fn check(key: &str, value: &str) -> Result<(), FieldError> {
    let Some(ty) = KeywordType::of_key(key) else {
        return Err(invalid(key, "is not a known keyword type"));
    };
    if value.is_empty() {
        return Err(invalid(key, "is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(key, "contains control characters"));
    }
    let n = value.chars().count();
    let max = |limit: usize| {
        if n > limit {
            Err(FieldError {
                code: "field_too_long",
                key: key.to_string(),
                detail: format!("has {n} chars (max {limit})"),
            })
        } else {
            Ok(())
        }
    };
    match ty {
        KeywordType::Thing => max(20),
        KeywordType::Number => {
            max(32)?;
            let dots = value.matches('.').count();
            if dots > 1 || !value.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(invalid(key, "must be a number"));
            }
            Ok(())
        }
        KeywordType::Letter => {
            max(32)?;
            if !value.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(invalid(key, "must be letters"));
            }
            Ok(())
        }
        KeywordType::Symbol => max(5),
        KeywordType::CharacterString => {
            max(32)?;
            if !value.is_ascii() {
                return Err(invalid(key, "must be ASCII letters, digits or symbols"));
            }
            Ok(())
        }
        KeywordType::Time => ranged(value, is_time).ok_or_else(|| invalid(key, "is not a time")),
        KeywordType::Date => ranged(value, is_date).ok_or_else(|| invalid(key, "is not a date")),
        KeywordType::Amount => match amount_digits(value) {
            None | Some(0) => Err(invalid(key, "must be a currency symbol and an amount")),
            Some(d) if d > 10 => Err(FieldError {
                code: "field_too_long",
                key: key.to_string(),
                detail: format!("has {d} digits (max 10)"),
            }),
            Some(_) => Ok(()),
        },
        KeywordType::PhoneNumber => {
            max(17)?;
            if !value
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
            {
                return Err(invalid(key, "must be a phone number"));
            }
            Ok(())
        }
        KeywordType::CarNumber => max(8),
        KeywordType::Name => {
            if value.is_ascii() {
                max(20)
            } else {
                max(10)
            }
        }
        KeywordType::Phrase => {
            max(5)?;
            if !value.chars().all(is_cjk) {
                return Err(invalid(key, "must be Chinese characters"));
            }
            Ok(())
        }
    }
}

/// A `field_invalid` error of `key`.
pub fn invalid(key: &str, detail: &str) -> FieldError {
    FieldError {
        code: "field_invalid",
        key: key.to_string(),
        detail: detail.to_string(),
    }
}

fn is_cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c) || ('\u{3400}'..='\u{4DBF}').contains(&c)
}

fn ranged(value: &str, one: fn(&str) -> bool) -> Option<()> {
    let parts: Vec<&str> = value.split('~').map(str::trim).collect();
    (parts.len() <= 2 && parts.iter().all(|p| one(p))).then_some(())
}

const DATETIME_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
];

fn is_datetime(s: &str) -> bool {
    DATETIME_FORMATS
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(s, f).is_ok())
}

fn is_time(s: &str) -> bool {
    NaiveTime::parse_from_str(s, "%H:%M").is_ok()
        || NaiveTime::parse_from_str(s, "%H:%M:%S").is_ok()
        || is_datetime(s)
}

fn is_date(s: &str) -> bool {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || NaiveDate::parse_from_str(s, "%Y年%m月%d日").is_ok()
        || is_datetime(s)
}

/// Digits of an amount like `¥12,345.00` / `12345元`; `None` if it is not one.
fn amount_digits(value: &str) -> Option<usize> {
    let v = value.trim();
    let v = v
        .strip_prefix(['¥', '￥', '$', '€', '£'])
        .unwrap_or(v)
        .trim_start();
    let v = v.strip_suffix('元').unwrap_or(v);
    if v.matches('.').count() > 1
        || !v
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
    {
        return None;
    }
    Some(v.chars().filter(char::is_ascii_digit).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let e = check("thing1", "一二三四五六七八九十一二三四五六七八九十一").unwrap_err();
        assert_eq!(e.code, "field_too_long");
        assert_eq!(
            e.to_string(),
            "field_too_long: thing1 has 21 chars (max 20)"
        );
        assert!(check("amount1", "¥12,345,678,901").is_err());
        assert!(check("amount1", "¥1,234,567,890").is_ok());
        assert!(check("amount1", "12345元").is_ok());
        assert!(check("amount1", "abc").is_err());
        assert!(check("phrase1", "已通过").is_ok());
        assert!(check("phrase1", "已经审核通过了").is_err());
        assert!(check("phrase1", "ok").is_err());
        assert!(check("name1", "张三").is_ok());
        assert!(check("name1", "欧阳一二三四五六七八九").is_err());
        assert!(check("name1", "Alexander Hamilton").is_ok());
        assert!(check("number1", "12.5").is_ok());
        assert!(check("number1", "12a").is_err());
        assert!(check("letter1", "abc").is_ok());
        assert!(check("symbol1", "+-*/%!").is_err());
        assert!(check("character_string1", "ABC-123").is_ok());
        assert!(check("character_string1", "编号").is_err());
        assert!(check("phone_number1", "+86 138-1234-5678").is_ok());
        assert!(check("phone_number1", "+86 138-1234-5678-9").is_err());
        assert!(check("time1", "15:01").is_ok());
        assert!(check("time1", "2019年10月1日 15:01").is_ok());
        assert!(check("time1", "2019-10-01 15:01~2019-10-01 16:00").is_ok());
        assert!(check("time1", "tomorrow").is_err());
        assert!(check("date1", "2019年10月1日").is_ok());
        assert!(check("date1", "2025-06-30").is_ok());
        assert!(check("date1", "2025-02-30").is_err());
        assert!(check("thing1", "a\nb").is_err());
        assert!(check("thing1", "").is_err());
        assert!(check("unknown1", "x").is_err());
    }
}
