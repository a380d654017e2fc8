//! Alibaba Cloud RPC signature V2 (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`).
//!
//! 1. Take every parameter except `Signature`, percent-encode names and values per
//!    RFC 3986 ([`percent_encode`]: unreserved `A-Z a-z 0-9 - _ . ~` kept, space → `%20`,
//!    `*` → `%2A`), sort by encoded name, join as `k=v&…` ([`canonical_query`]).
//! 2. `StringToSign = METHOD & pe("/") & pe(canonical)` ([`string_to_sign`]).
//! 3. `Signature = Base64(HMAC-SHA1(secret + "&", StringToSign))` ([`sign`]).
//!
//! Checked against the known-answer vector of Alibaba's SMS documentation (test below).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// RFC 3986 percent-encoding as Alibaba's V2 signature wants it.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Sorted, encoded `k=v&…` of every parameter except `Signature`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD & pe("/") & pe(canonical)`.
pub fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// The `Signature` value for `params` signed with `access_key_secret`.
pub fn sign(access_key_secret: &str, method: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{access_key_secret}&").as_bytes())
        .expect("HMAC takes any key length");
    mac.update(string_to_sign(method, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The common parameters of one RPC call.
#[derive(Debug, Clone)]
pub struct Common<'a> {
    pub access_key_id: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    pub region_id: &'a str,
    /// UTC `yyyy-MM-ddTHH:mm:ssZ`.
    pub timestamp: String,
    /// Unique per request.
    pub nonce: String,
}

impl Common<'_> {
    /// Now, with a fresh random nonce.
    pub fn now<'a>(
        access_key_id: &'a str,
        action: &'a str,
        version: &'a str,
        region_id: &'a str,
    ) -> Common<'a> {
        Common {
            access_key_id,
            action,
            version,
            region_id,
            timestamp: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            nonce: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// `business` plus the common parameters plus `Signature`: ready to send.
pub fn signed_params(
    method: &str,
    common: &Common<'_>,
    access_key_secret: &str,
    business: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut params = business;
    for (k, v) in [
        ("AccessKeyId", common.access_key_id),
        ("Action", common.action),
        ("Format", "JSON"),
        ("RegionId", common.region_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", &common.nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", &common.timestamp),
        ("Version", common.version),
    ] {
        params.push((k.to_string(), v.to_string()));
    }
    let signature = sign(access_key_secret, method, &params);
    params.push(("Signature".to_string(), signature));
    params
}

/// `k=v&…` with RFC 3986 encoding: a valid `application/x-www-form-urlencoded` body.
pub fn form_body(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// channels.md §2.1: the known-answer vector from Alibaba's SMS signing documentation.
    #[test]
    fn v2_known_answer_vector() {
        let params = p(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert_eq!(
            sign("testSecret", "GET", &params),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        // Order of the input does not matter; a Signature parameter is ignored.
        let mut shuffled = params.clone();
        shuffled.reverse();
        shuffled.push(("Signature".into(), "whatever".into()));
        assert_eq!(
            sign("testSecret", "get", &shuffled),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn percent_encoding_rules() {
        assert_eq!(percent_encode("a b*c~d/e+"), "a%20b%2Ac~d%2Fe%2B");
        assert_eq!(percent_encode("人"), "%E4%BA%BA");
    }

    #[test]
    fn signed_params_verify() {
        let common = Common {
            access_key_id: "k",
            action: "SendSms",
            version: "2017-05-25",
            region_id: "cn-hangzhou",
            timestamp: "2024-01-01T00:00:00Z".into(),
            nonce: "n1".into(),
        };
        let params = signed_params("POST", &common, "s", p(&[("PhoneNumbers", "13800000000")]));
        let sig = &params.iter().find(|(k, _)| k == "Signature").unwrap().1;
        assert_eq!(sig, &sign("s", "POST", &params));
        assert!(form_body(&params).contains("Format=JSON"));
    }
}
