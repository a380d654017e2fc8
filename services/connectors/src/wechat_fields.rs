//! Turning rendered text into WeChat keyword data, and the value limits of each keyword
//! type (channels.md §1.3), checked before sending so a bad value never reaches WeChat.
//!
//! **Shape of `content`.** If every non-empty line is `keyword: value` (full-width `：`
//! also accepted) with a keyword named `<type><n>` (e.g. `thing1: 稳岗返还`,
//! `amount2: ¥12,345`, `time3: 2025-06-30 17:00`), each line becomes one data field, in
//! order. Otherwise the whole text (newlines → spaces) is cut into pieces of at most 20
//! characters placed in `thing1`, `thing2`, … — so a template meant for free text needs
//! that many `thing` fields.
//!
//! The limits of each keyword type (≤ 20 characters for `thing`, …) are
//! [`domain::wechat_keywords`]'s, re-exported here.

use domain::wechat_keywords::invalid;
pub use domain::wechat_keywords::{check, FieldError, KeywordType};

/// The data fields for `content` (see the module docs), each checked.
pub fn build_data(content: &str) -> Result<Vec<(String, String)>, FieldError> {
    let fields = keyword_lines(content).unwrap_or_else(|| chunked(content));
    if fields.is_empty() {
        return Err(invalid("thing1", "is empty"));
    }
    for (k, v) in &fields {
        check(k, v)?;
    }
    Ok(fields)
}

/// `Some` when every non-empty line is `keyword: value` with a known keyword, no repeats.
fn keyword_lines(content: &str) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once([':', '：'])?;
        let key = key.trim();
        KeywordType::of_key(key)?;
        if out.iter().any(|(k, _)| k == key) {
            return None;
        }
        out.push((key.to_string(), value.trim().to_string()));
    }
    (!out.is_empty()).then_some(out)
}

/// Free text in pieces of ≤ 20 chars: `thing1`, `thing2`, …
fn chunked(content: &str) -> Vec<(String, String)> {
    let flat: Vec<char> = content
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.chunks(20)
        .enumerate()
        .map(|(i, c)| (format!("thing{}", i + 1), c.iter().collect::<String>()))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_lines_become_fields_in_order() {
        let d =
            build_data("thing1: 稳岗返还\namount2: ¥12,345\ntime3：2025年6月30日 17:00\n").unwrap();
        assert_eq!(
            d,
            vec![
                ("thing1".into(), "稳岗返还".into()),
                ("amount2".into(), "¥12,345".into()),
                ("time3".into(), "2025年6月30日 17:00".into()),
            ]
        );
    }

    #[test]
    fn free_text_is_chunked_into_things() {
        let text = "您好，您可能符合一次性扩岗补助申领条件，请于6月30日前登录一网通办申请。";
        let d = build_data(text).unwrap();
        assert!(d.len() >= 2);
        assert_eq!(d[0].0, "thing1");
        assert_eq!(d[1].0, "thing2");
        assert!(d.iter().all(|(_, v)| v.chars().count() <= 20));
        assert_eq!(d.iter().map(|(_, v)| v.as_str()).collect::<String>(), text);
        // a line that is not `keyword: value` makes the whole text free text
        let d = build_data("thing1: a\nhello").unwrap();
        assert_eq!(d[0].1, "thing1: a hello");
    }
}
