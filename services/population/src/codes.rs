//! Identifier construction: resident ID numbers, unified social credit codes (with their
//! GB 11714 organisation codes), mobile numbers and openids. Each is built from a keyed
//! bijection of the subject's index, so two subjects never share one.

use crate::rng::mix64;

/// The GB 11714 check character of an 8-character organisation code body (`channels.md`
/// §4): weights 3 7 9 10 5 8 4 2 over the values (0–9, A–Z = 10–35); `c = 11 − Σ mod 11`,
/// 10 → `X`, 11 → `0`. `None` for a body that is not 8 characters of `[0-9A-Z]`.
pub fn org_code_check_char(body: &str) -> Option<char> {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in body.bytes().zip(WEIGHTS) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from(b'0' + c as u8),
    })
}

/// Characters of the unified social credit code (no I, O, S, V, Z).
const CREDIT_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const MA_SPACE: u64 = 31u64.pow(6);
const DIGIT_SPACE: u64 = 100_000_000;

/// The largest number of enterprises whose credit codes are guaranteed unique.
pub const MAX_ENTERPRISES: u64 = DIGIT_SPACE;

/// A unified social credit code `91` + division + organisation code + check character.
/// Enterprises registered since the unified code (October 2015) get an organisation code
/// `MA` + 6 characters, older ones an 8-digit organisation code, as in Shanghai's real
/// codes. Both are affine bijections of the index, so codes are unique per index.
pub(crate) fn credit_code(index: u64, division: &str, new_style: bool, seed: u64) -> Ascii<18> {
    let mut s = Ascii::<18>::new();
    s.push_str("91");
    s.push_str(division);
    if new_style {
        let mut v = (index.wrapping_mul(1_000_003) + mix64(seed ^ 0xa11a) % MA_SPACE) % MA_SPACE;
        let mut tail = [0u8; 6];
        for slot in tail.iter_mut().rev() {
            *slot = CREDIT_CHARSET[(v % 31) as usize];
            v /= 31;
        }
        s.push_str("MA");
        s.push_bytes(&tail);
    } else {
        let v = (index.wrapping_mul(73_939_133) + mix64(seed ^ 0xd161) % DIGIT_SPACE) % DIGIT_SPACE;
        s.push_digits(v, 8);
    }
    let check = org_code_check_char(&s.as_str()[8..16]).expect("valid body");
    s.push_char(check);
    let check = domain::ids::credit_code_check_char(s.as_str()).expect("valid charset");
    s.push_char(check);
    s
}

/// Number segments of the three mainland carriers.
const MOBILE_PREFIXES: [&str; 39] = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150", "151",
    "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
];

/// The mobile number of contact slot `slot` (residents use even slots, enterprises odd):
/// an affine bijection of the slot over the whole number space (39 prefixes × 10^8)
/// picks the prefix and the last 8 digits, so neighbours look unrelated and never collide.
pub(crate) fn mobile(slot: u64, seed: u64) -> Ascii<11> {
    let space = MOBILE_PREFIXES.len() as u64 * 100_000_000;
    // 2654435761 is prime, so coprime to 39 × 10^8 = 2^8 · 3 · 5^8 · 13
    let x = (slot % space * 2_654_435_761 + mix64(seed ^ 0x3ab1) % space) % space;
    let mut s = Ascii::<11>::new();
    s.push_str(MOBILE_PREFIXES[(x / 100_000_000) as usize]);
    s.push_digits(x % 100_000_000, 8);
    s
}

const OPENID_CHARSET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The openid of contact slot `slot` under the official account of `seed`: `o`, five
/// characters common to the account (as real openids of one account share a prefix), 11
/// characters of hash and 11 characters encoding a keyed bijection of the slot.
pub(crate) fn openid(slot: u64, seed: u64) -> Ascii<28> {
    let mut out = [0u8; 28];
    out[0] = b'o';
    let account = mix64(seed ^ 0x0b0b);
    for (i, c) in out[1..6].iter_mut().enumerate() {
        *c = OPENID_CHARSET[((account >> (6 * i)) & 63) as usize];
    }
    let unique = mix64(slot ^ mix64(seed ^ 0x1d1d));
    let noise = mix64(unique ^ 0x5eed);
    for i in 0..11 {
        out[6 + i] = OPENID_CHARSET[((noise >> (6 * i)) & 63) as usize];
        // 11 × 6 = 66 bits: the top character carries the last 4 bits only
        out[17 + i] = OPENID_CHARSET[((unique >> (6 * i)) & 63) as usize];
    }
    let mut s = Ascii::<28>::new();
    s.push_bytes(&out);
    s
}

/// A short ASCII string on the stack, to build identifiers without allocating.
#[derive(Clone, Copy)]
pub(crate) struct Ascii<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Ascii<N> {
    pub fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn push_bytes(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.is_ascii());
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    pub fn push_str(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    pub fn push_char(&mut self, c: char) {
        self.push_bytes(&[c as u8]);
    }

    /// Appends `value` as exactly `width` decimal digits (leading zeros; higher digits
    /// dropped).
    pub fn push_digits(&mut self, mut value: u64, width: usize) {
        for i in (0..width).rev() {
            self.buf[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("ascii")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::{CreditCode, MobileNumber, OpenId};
    use std::collections::HashSet;

    #[test]
    fn org_code_known_answer() {
        // channels.md §4: 71526726X is valid
        assert_eq!(org_code_check_char("71526726"), Some('X'));
        assert_eq!(org_code_check_char("7152672"), None);
        assert_eq!(org_code_check_char("7152672a"), None);
        // the organisation code inside the credit code example 9144030071526726XG
        assert_eq!(&"9144030071526726XG"[8..17], "71526726X");
    }

    #[test]
    fn credit_codes_parse_and_are_unique() {
        let mut seen = HashSet::new();
        for i in 0..20_000u64 {
            let code = credit_code(i, "310115", i % 3 == 0, 11)
                .as_str()
                .to_string();
            let parsed = CreditCode::parse(&code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(
                org_code_check_char(&code[8..16]),
                code[16..17].chars().next()
            );
            assert!(seen.insert(code[8..17].to_string()), "{code}");
            assert_eq!(parsed.as_str().len(), 18);
        }
    }

    #[test]
    fn mobiles_and_openids_parse_and_are_unique() {
        let mut mobiles = HashSet::new();
        let mut openids = HashSet::new();
        for slot in (0..40_000u64).chain(100_000_000..100_001_000) {
            let m = mobile(slot, 3).as_str().to_string();
            MobileNumber::parse(&m).unwrap();
            assert!(mobiles.insert(m));
            let o = openid(slot, 3).as_str().to_string();
            assert_eq!(o.len(), 28);
            OpenId::parse(&o).unwrap();
            assert!(openids.insert(o));
        }
    }
}
