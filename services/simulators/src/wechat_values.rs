//! Keyword value rules WeChat applies to template / subscription data (channels.md §1.3);
//! a value that breaks them is refused with 47003. Written independently of the
//! connectors' own pre-send check, so each catches the other's mistakes.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Whether `value` is acceptable for keyword `key` (`thing1`, `amount2`, …).
pub(crate) fn valid(key: &str, value: &str) -> bool {
    let ty = key.trim_end_matches(|c: char| c.is_ascii_digit());
    if ty.len() == key.len() || value.is_empty() || value.chars().any(char::is_control) {
        return false;
    }
    let n = value.chars().count();
    match ty {
        "thing" => n <= 20,
        "number" => {
            n <= 32
                && value.chars().all(|c| c.is_ascii_digit() || c == '.')
                && value.matches('.').count() <= 1
        }
        "letter" => n <= 32 && value.chars().all(|c| c.is_ascii_alphabetic()),
        "symbol" => n <= 5,
        "character_string" => n <= 32 && value.is_ascii(),
        "time" => value.split('~').count() <= 2 && value.split('~').all(|p| time(p.trim())),
        "date" => value.split('~').count() <= 2 && value.split('~').all(|p| date(p.trim())),
        "amount" => amount(value),
        "phone_number" => {
            n <= 17
                && value
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+-() ".contains(c))
        }
        "car_number" => n <= 8,
        "name" => n <= if value.is_ascii() { 20 } else { 10 },
        "phrase" => {
            n <= 5
                && value
                    .chars()
                    .all(|c| ('\u{3400}'..='\u{9FFF}').contains(&c))
        }
        _ => false,
    }
}

fn datetime(s: &str) -> bool {
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y年%m月%d日 %H:%M",
        "%Y年%m月%d日 %H:%M:%S",
    ]
    .iter()
    .any(|f| NaiveDateTime::parse_from_str(s, f).is_ok())
}

fn time(s: &str) -> bool {
    ["%H:%M", "%H:%M:%S"]
        .iter()
        .any(|f| NaiveTime::parse_from_str(s, f).is_ok())
        || datetime(s)
}

fn date(s: &str) -> bool {
    ["%Y-%m-%d", "%Y年%m月%d日"]
        .iter()
        .any(|f| NaiveDate::parse_from_str(s, f).is_ok())
        || datetime(s)
}

/// Optional currency symbol, digits (with `,` and one `.`), optional `元`; 1–10 digits.
fn amount(s: &str) -> bool {
    let mut v = s.trim();
    for sym in ["¥", "￥", "$", "€", "£"] {
        if let Some(rest) = v.strip_prefix(sym) {
            v = rest.trim_start();
            break;
        }
    }
    let v = v.strip_suffix('元').unwrap_or(v);
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (1..=10).contains(&digits)
        && v.matches('.').count() <= 1
        && v.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn rules() {
        assert!(valid("thing1", "稳岗返还"));
        assert!(!valid(
            "thing1",
            "一二三四五六七八九十一二三四五六七八九十一"
        ));
        assert!(valid("amount2", "¥12,345"));
        assert!(!valid("amount2", "¥12,345,678,901"));
        assert!(valid("time3", "2025年6月30日 17:00"));
        assert!(!valid("time3", "soon"));
        assert!(valid("date4", "2025-06-30"));
        assert!(valid("phrase5", "已受理"));
        assert!(!valid("phrase5", "已经受理完毕了"));
        assert!(!valid("thing6", "a\nb"));
        assert!(!valid("unknown1", "x"));
        assert!(!valid("thing", "x"));
    }
}
