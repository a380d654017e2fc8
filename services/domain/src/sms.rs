//! SMS length rules of mainland carriers: the signature `【...】` counts; up to 70
//! characters is one message, longer is billed in parts of 67.
//!
//! Every character counts 1, whatever it is (Chinese character, letter, digit,
//! punctuation, emoji): we count Unicode scalar values.

/// The most characters one message may have (signature included): Alibaba's limit.
pub const MAX_CHARS: usize = 500;

/// Up to this many characters, a message is one part.
pub const SINGLE_PART_CHARS: usize = 70;

/// Characters per part of a long message.
pub const LONG_PART_CHARS: usize = 67;

/// The characters counted for billing: `【` + sign + `】` + body.
pub fn total_chars(sign_name: &str, body: &str) -> usize {
    sign_name.chars().count() + body.chars().count() + 2
}

/// The number of billed parts of an SMS whose body is `body` under signature `sign_name`
/// (without brackets; they are added and counted).
pub fn segments(sign_name: &str, body: &str) -> u32 {
    let n = total_chars(sign_name, body);
    let parts = if n <= SINGLE_PART_CHARS {
        1
    } else {
        n.div_ceil(LONG_PART_CHARS)
    };
    u32::try_from(parts).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that makes `total` characters under a 4-character signature.
    fn body(total: usize) -> String {
        "政".repeat(total - 6)
    }

    const SIGN: &str = "上海人社";

    #[test]
    fn counts_brackets_sign_and_body() {
        assert_eq!(total_chars(SIGN, "您好"), 8);
        assert_eq!(total_chars("", ""), 2);
        assert_eq!(total_chars("ab", "1,2。😀"), 9);
    }

    #[test]
    fn boundaries() {
        for (total, parts) in [
            (8, 1),
            (70, 1),
            (71, 2),
            (134, 2),
            (135, 3),
            (160, 3),
            (201, 3),
            (202, 4),
            (500, 8),
        ] {
            let b = body(total);
            assert_eq!(total_chars(SIGN, &b), total);
            assert_eq!(segments(SIGN, &b), parts, "{total} characters");
        }
    }

    #[test]
    fn latin_text_counts_the_same() {
        let b = "a".repeat(64);
        assert_eq!(segments(SIGN, &b), 1);
        assert_eq!(segments(SIGN, &format!("{b}b")), 2);
    }
}
