//! Keyed pseudonyms of subjects: what the bus (message keys, `subject.changed`), the
//! shared counters in Redis and the logs carry instead of an ID number.
//!
//! A pseudonym is HMAC-SHA256 of the subject id under a secret key
//! (`POLICY_PUSH_PSEUDONYM_KEY`, the same in every process of a deployment), cut to 128
//! bits and written in hex. Without the key, the roughly 10⁹ plausible ID numbers cannot
//! be hashed and compared, as an unsalted digest could be. The key is configuration
//! (bytes in, no I/O here): the binary reads or generates it.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the pseudonym key is {0} bytes; at least 32 are needed (e.g. `openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error("the pseudonym key is neither hex nor base64")]
    NotEncoded,
}

/// Computes the pseudonyms of one key. Cheap to clone; its `Debug` shows no key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(***)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer of raw key bytes (at least [`MIN_KEY_BYTES`]).
    pub fn from_key(key: &[u8]) -> Result<Self, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(key.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        Ok(Self { mac })
    }

    /// A key as configured: hex (tried first), else base64 (standard or URL-safe, with or
    /// without padding). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::from_key(&decode_key(text)?)
    }

    /// The pseudonym of a subject id: 32 hex digits.
    pub fn subject(&self, subject_id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"policy-push:subject:");
        mac.update(subject_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The bytes of a configured key (hex, else base64).
pub fn decode_key(text: &str) -> Result<Vec<u8>, KeyError> {
    let t = text.trim();
    if t.len().is_multiple_of(2) && !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(t).map_err(|_| KeyError::NotEncoded);
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
        .ok_or(KeyError::NotEncoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = Pseudonymizer::parse(KEY).unwrap();
        let p = a.subject("310115199001010011");
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
        // The same key (however written) gives the same pseudonym: processes agree.
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(KEY).unwrap());
        assert_eq!(
            Pseudonymizer::parse(&b64)
                .unwrap()
                .subject("310115199001010011"),
            p
        );
        assert_ne!(a.subject("310115199001010029"), p);
        // Another key, another pseudonym.
        let other = Pseudonymizer::from_key(&[7u8; 32]).unwrap();
        assert_ne!(other.subject("310115199001010011"), p);
        // Not an unsalted digest of the id.
        use sha2::Digest;
        let plain = hex::encode(sha2::Sha256::digest(b"310115199001010011"));
        assert!(!plain.starts_with(&p));
        assert!(!format!("{a:?}").contains(KEY));
    }

    #[test]
    fn short_or_garbled_keys_are_refused() {
        assert_eq!(
            Pseudonymizer::parse("00112233").unwrap_err(),
            KeyError::TooShort(4)
        );
        assert_eq!(
            Pseudonymizer::parse("not a key!").unwrap_err(),
            KeyError::NotEncoded
        );
        assert!(Pseudonymizer::from_key(&[0u8; 31]).is_err());
    }
}
