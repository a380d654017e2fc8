//! Alibaba Cloud voice (dyvmsapi 2017-05-25 `SingleCallByTts`) for the 12333 hotline
//! channel: one call per message, same V2 signing as SMS.
//!
//! Parameters: `CalledNumber` (11 digits), `TtsCode` and `TtsParam`: a push bound to a
//! registered template ([`crate::bound`]) sends its code and variables by name; free text
//! goes to the catch-all `tts_code` (default `TTS_POLICY_PUSH`, registered text
//! `${content}`) as `TtsParam` = `{"content": "…"}` (Alibaba wants
//! the whole JSON under 250 characters: longer is refused here as
//! `Permanent { code: "tts_too_long" }`), `PlayTimes` (default 2), optional
//! `CalledShowNumber`, and `OutId`.
//!
//! **`OutId` is 1–15 bytes.** [`voice_out_id`] maps a push id to it deterministically: a push
//! id of at most 15 ASCII letters, digits, `-` or `_` is used as it is; anything else is
//! hashed (SHA-256, base32 lowercase, first 15 characters). The mapping is a pure function,
//! so whoever needs to match a `VoiceReport`'s `out_id` (or a sandbox record's push ref) to
//! a push can compute it from the push id; receipts also carry the `CallId` returned in
//! [`SendOutcome::Accepted`].
//!
//! Per-callee limits (1/min, 5/h, 20/24 h) and the concurrency limit come back as
//! `isv.BUSINESS_LIMIT_CONTROL` and are `Transient` with a `retry_after`. There is no query
//! by `OutId`: [`Provider::lookup`] answers `Unknown`.

use crate::aliyun_rpc::{str_field, AliyunRpc};
use crate::config::AliyunVoiceConfig;
use crate::{Lookup, OutgoingMessage, Provider, SendOutcome};
use domain::ids::MobileNumber;
use domain::provider_template::{params_json, Provider as Registered};
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

const VERSION: &str = "2017-05-25";
/// `TtsParam` must be shorter than this (characters of the whole JSON string).
pub const TTS_PARAM_MAX_CHARS: usize = 250;
/// `OutId` is at most this many bytes.
pub const OUT_ID_MAX: usize = 15;

/// The `OutId` sent for `push_id` (see the module docs).
pub fn voice_out_id(push_id: &str) -> String {
    let plain = !push_id.is_empty()
        && push_id.len() <= OUT_ID_MAX
        && push_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        return push_id.to_string();
    }
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha256::digest(push_id.as_bytes());
    let mut out = String::with_capacity(OUT_ID_MAX);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in digest.iter() {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 && out.len() < OUT_ID_MAX {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
        if out.len() == OUT_ID_MAX {
            break;
        }
    }
    out
}

/// The Alibaba Cloud voice connector.
pub struct AliyunVoice {
    cfg: AliyunVoiceConfig,
    rpc: AliyunRpc,
}

impl AliyunVoice {
    pub fn new(cfg: AliyunVoiceConfig, client: reqwest::Client) -> Self {
        let rpc = AliyunRpc::new(
            client,
            &cfg.base_url,
            &cfg.access_key_id,
            &cfg.access_key_secret,
            &cfg.region_id,
            VERSION,
        );
        Self { cfg, rpc }
    }

    async fn call_one(&self, msg: &OutgoingMessage) -> SendOutcome {
        let mobile = match MobileNumber::parse(&msg.to) {
            Ok(m) => m,
            Err(e) => return SendOutcome::permanent("invalid_mobile", e.to_string()),
        };
        let (code, param) = match crate::bound(msg, Registered::AliyunVoice) {
            Ok(Some(b)) => (b.template, params_json(&b.params).to_string()),
            Ok(None) => (
                self.cfg.tts_code.clone(),
                serde_json::json!({ "content": msg.content }).to_string(),
            ),
            Err(o) => return o,
        };
        let chars = param.chars().count();
        if chars >= TTS_PARAM_MAX_CHARS {
            return SendOutcome::permanent(
                "tts_too_long",
                format!("TtsParam has {chars} chars (must be under {TTS_PARAM_MAX_CHARS})"),
            );
        }
        let mut business = vec![
            ("CalledNumber".to_string(), mobile.as_str().to_string()),
            ("TtsCode".to_string(), code),
            ("TtsParam".to_string(), param),
            ("PlayTimes".to_string(), self.cfg.play_times.to_string()),
            ("OutId".to_string(), voice_out_id(&msg.push_id)),
        ];
        if let Some(show) = &self.cfg.called_show_number {
            business.push(("CalledShowNumber".to_string(), show.clone()));
        }
        let outcome = match self.rpc.call("SingleCallByTts", business).await {
            Ok(body) => SendOutcome::Accepted {
                provider_id: str_field(&body, "CallId").unwrap_or_default(),
            },
            Err(o) => o,
        };
        tracing::debug!(
            push_id = %msg.push_id,
            to = %mobile.masked(),
            outcome = ?outcome.code(),
            "aliyun SingleCallByTts"
        );
        outcome
    }
}

#[async_trait::async_trait]
impl Provider for AliyunVoice {
    fn channel(&self) -> domain::Channel {
        domain::Channel::Hotline
    }

    fn max_batch(&self) -> usize {
        self.cfg.concurrency.max(1)
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        // Futures built first (not in a stream closure) so the async-trait future is Send.
        let calls: Vec<_> = batch.iter().map(|m| self.call_one(m)).collect();
        stream::iter(calls)
            .buffered(self.max_batch())
            .collect()
            .await
    }

    async fn lookup(&self, _msg: &OutgoingMessage, _sent_on: chrono::NaiveDate) -> Lookup {
        Lookup::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_id_mapping() {
        assert_eq!(voice_out_id("p-0123456789ab"), "p-0123456789ab");
        assert_eq!(voice_out_id("123456789012345"), "123456789012345");
        let long = voice_out_id("push-0123456789abcdef");
        assert_eq!(long.len(), 15);
        assert!(long
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(long, voice_out_id("push-0123456789abcdef"));
        assert_ne!(long, voice_out_id("push-0123456789abcdeg"));
        assert_eq!(voice_out_id("推送1").len(), 15);
    }
}
