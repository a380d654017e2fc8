//! What the simulators accept, how they answer, where they send receipts, and which faults
//! they inject. [`SimulatorConfig::default`] accepts the documented sandbox credentials
//! and any sign name, template and TTS code (the catch-all text `${content}` / `{1}`);
//! every recipient is delivered. Registered templates ([`SimulatorConfig::templates`], the
//! providers settings' form) make a provider accept exactly those, rendered exactly.
//!
//! Deserializes with defaults for missing keys; durations are milliseconds
//! (`receipt_delay_ms`, …).

use domain::provider_template::{Provider, ProviderTemplate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Serde for `Duration` as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Injected faults. Rates are probabilities in `[0, 1]` drawn from one RNG seeded with
/// `seed`, so a run with the same request order injects the same faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// A send is refused with the provider's system error (Alibaba HTTP 500
    /// `isp.SYSTEM_ERROR`, WeChat `-1`, Tencent `InternalError`); nothing is recorded.
    pub error_rate: f64,
    /// A send hangs for `timeout` before answering a system error; nothing is recorded
    /// (the client has given up long before).
    pub timeout_rate: f64,
    /// How long a `timeout` fault hangs.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// Extra latency added to every provider request.
    pub slow_ms: u64,
    /// A receipt is never delivered.
    pub receipt_loss_rate: f64,
    /// A receipt is delivered twice.
    pub receipt_duplicate_rate: f64,
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            timeout_rate: 0.0,
            timeout: Duration::from_secs(30),
            slow_ms: 0,
            receipt_loss_rate: 0.0,
            receipt_duplicate_rate: 0.0,
            seed: 0,
        }
    }
}

/// The simulators' configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulatorConfig {
    // --- credentials ---
    pub aliyun_access_key_id: String,
    pub aliyun_access_key_secret: String,
    pub tencent_secret_id: String,
    pub tencent_secret_key: String,
    pub wechat_app_id: String,
    pub wechat_app_secret: String,
    /// Lifetime of a WeChat access token.
    #[serde(rename = "wechat_token_ttl_ms", with = "millis")]
    pub wechat_token_ttl: Duration,
    /// Token used to sign event pushes (`signature`/`timestamp`/`nonce` query).
    pub wechat_callback_token: String,

    // --- registered signatures and templates (None: anything is accepted) ---
    /// Templates as registered with the providers, in the providers settings' form
    /// (`domain::provider_template::ProviderTemplate`). Where a provider has any, only its
    /// registered codes are accepted, each rendered exactly (unless the provider's own map
    /// below is set, which wins). The embedded server fills this from the providers
    /// settings when the simulator settings list none.
    pub templates: Vec<ProviderTemplate>,
    /// Alibaba / Tencent SMS sign names accepted.
    pub sms_sign_names: Option<Vec<String>>,
    /// Alibaba SMS template code → registered text with `${var}` placeholders.
    /// `None`: any code, text `${content}`.
    pub sms_templates: Option<HashMap<String, String>>,
    /// Tencent template id → registered text with `{1}`, `{2}`… `None`: any id, text `{1}`.
    pub tencent_templates: Option<HashMap<String, String>>,
    /// WeChat template ids accepted.
    pub wechat_template_ids: Option<Vec<String>>,
    /// Alibaba TTS code → registered text. `None`: any code, text `${content}`.
    pub voice_tts_codes: Option<HashMap<String, String>>,

    // --- recipients ---
    /// Numbers refused as blacklisted (`isv.BLACK_KEY_CONTROL_LIMIT`,
    /// `FailedOperation.PhoneNumberInBlacklist`).
    pub sms_blacklist: Vec<String>,
    /// Openids that do not follow / refused (43004 template, 43101 subscribe).
    pub wechat_unsubscribed: Vec<String>,
    /// Any openid ending with this is not subscribed.
    pub wechat_unsubscribed_suffix: Option<String>,
    /// Numbers / openids whose messages are accepted but reported failed in receipts.
    pub failing_recipients: Vec<String>,
    /// Any number / openid ending with this fails delivery.
    pub failing_suffix: Option<String>,
    /// Numbers whose calls ring busy (VoiceReport `200002`).
    pub voice_busy: Vec<String>,
    /// Keys "pressed" in every answered call's VoiceReport.
    pub voice_dtmf: Option<String>,

    // --- limits ---
    /// Per-number limits (SMS daily per sign+template, voice per callee, voice
    /// concurrency). Off: accept without limit (throughput benchmarks).
    pub enforce_limits: bool,
    /// SMS per number per sign + template in a rolling 24 h (Alibaba: 50).
    pub sms_daily_limit_per_number: u32,
    /// Calls in progress at once (a call lasts `receipt_delay`).
    pub voice_max_concurrent: usize,
    /// How long a used Alibaba `SignatureNonce` is remembered (Alibaba: 15 min)…
    #[serde(rename = "nonce_ttl_ms", with = "millis")]
    pub nonce_ttl: Duration,
    /// …and at most this many of them (memory bound at high request rates).
    pub nonce_capacity: usize,

    // --- receipts ---
    pub sms_report_url: Option<String>,
    pub tencent_sms_report_url: Option<String>,
    pub wechat_event_url: Option<String>,
    pub voice_report_url: Option<String>,
    /// Time from acceptance to the receipt (and, for voice, the call's length).
    #[serde(rename = "receipt_delay_ms", with = "millis")]
    pub receipt_delay: Duration,

    pub fault: FaultConfig,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            aliyun_access_key_id: "sim-access-key".into(),
            aliyun_access_key_secret: "sim-access-secret".into(),
            tencent_secret_id: "sim-secret-id".into(),
            tencent_secret_key: "sim-secret-key".into(),
            wechat_app_id: "wxsimulator00000001".into(),
            wechat_app_secret: "sim-app-secret".into(),
            wechat_token_ttl: Duration::from_secs(7200),
            wechat_callback_token: "sim-callback-token".into(),
            templates: Vec::new(),
            sms_sign_names: None,
            sms_templates: None,
            tencent_templates: None,
            wechat_template_ids: None,
            voice_tts_codes: None,
            sms_blacklist: Vec::new(),
            wechat_unsubscribed: Vec::new(),
            wechat_unsubscribed_suffix: None,
            failing_recipients: Vec::new(),
            failing_suffix: None,
            voice_busy: Vec::new(),
            voice_dtmf: None,
            enforce_limits: true,
            sms_daily_limit_per_number: 50,
            voice_max_concurrent: 200,
            nonce_ttl: Duration::from_secs(15 * 60),
            nonce_capacity: 1_000_000,
            sms_report_url: None,
            tencent_sms_report_url: None,
            wechat_event_url: None,
            voice_report_url: None,
            receipt_delay: Duration::from_millis(500),
            fault: FaultConfig::default(),
        }
    }
}

impl SimulatorConfig {
    /// Whether messages to `to` are reported failed.
    /// Points every receipt callback not configured explicitly at the policy-push API at
    /// `base` (`{base}/callbacks/...`).
    pub fn fill_callbacks(&mut self, base: &str) {
        let base = base.trim_end_matches('/');
        self.sms_report_url
            .get_or_insert_with(|| format!("{base}/callbacks/aliyun/sms-report"));
        self.tencent_sms_report_url
            .get_or_insert_with(|| format!("{base}/callbacks/tencent/sms-report"));
        self.wechat_event_url
            .get_or_insert_with(|| format!("{base}/callbacks/wechat/events"));
        self.voice_report_url
            .get_or_insert_with(|| format!("{base}/callbacks/aliyun/voice-report"));
    }

    pub fn fails(&self, to: &str) -> bool {
        self.failing_recipients.iter().any(|r| r == to)
            || self
                .failing_suffix
                .as_deref()
                .is_some_and(|s| !s.is_empty() && to.ends_with(s))
    }

    /// Whether `openid` does not follow the account.
    pub fn unsubscribed(&self, openid: &str) -> bool {
        self.wechat_unsubscribed.iter().any(|r| r == openid)
            || self
                .wechat_unsubscribed_suffix
                .as_deref()
                .is_some_and(|s| !s.is_empty() && openid.ends_with(s))
    }

    pub fn blacklisted(&self, mobile: &str) -> bool {
        self.sms_blacklist.iter().any(|r| r == mobile)
    }

    pub(crate) fn sign_allowed(&self, sign: &str) -> bool {
        self.sms_sign_names
            .as_ref()
            .is_none_or(|l| l.iter().any(|s| s == sign))
    }

    /// The registered text of an Alibaba SMS template, `None` if not registered.
    pub(crate) fn sms_template(&self, code: &str) -> Option<String> {
        self.registered(Provider::AliyunSms, &self.sms_templates, code, "${content}")
    }

    pub(crate) fn tencent_template(&self, id: &str) -> Option<String> {
        self.registered(Provider::TencentSms, &self.tencent_templates, id, "{1}")
    }

    pub(crate) fn tts_template(&self, code: &str) -> Option<String> {
        self.registered(
            Provider::AliyunVoice,
            &self.voice_tts_codes,
            code,
            "${content}",
        )
    }

    pub(crate) fn wechat_template_allowed(&self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        match &self.wechat_template_ids {
            Some(l) => l.iter().any(|s| s == id),
            None => !self.lists(Provider::Wechat) || self.template(Provider::Wechat, id).is_some(),
        }
    }

    /// The registration of `code` in [`Self::templates`].
    pub(crate) fn template(&self, provider: Provider, code: &str) -> Option<&ProviderTemplate> {
        self.templates
            .iter()
            .find(|t| t.provider == provider && t.code == code)
    }

    /// Whether [`Self::templates`] lists any template of `provider`.
    fn lists(&self, provider: Provider) -> bool {
        self.templates.iter().any(|t| t.provider == provider)
    }

    /// The text of `code`: from the provider's map when set, else from the registered
    /// templates when the provider has any, else `default` for any code.
    fn registered(
        &self,
        provider: Provider,
        map: &Option<HashMap<String, String>>,
        code: &str,
        default: &str,
    ) -> Option<String> {
        if code.is_empty() {
            return None;
        }
        match map {
            Some(m) => m.get(code).cloned(),
            None if self.lists(provider) => self.template(provider, code).map(|t| t.text.clone()),
            None => Some(default.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_file() {
        let c: SimulatorConfig = serde_json::from_str(
            r#"{"receipt_delay_ms": 50, "failing_suffix": "999", "fault": {"error_rate": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(c.receipt_delay, Duration::from_millis(50));
        assert_eq!(c.fault.error_rate, 0.5);
        assert_eq!(c.fault.timeout, Duration::from_secs(30));
        assert!(c.fails("13800000999"));
        assert!(!c.fails("13800000998"));
        assert_eq!(c.sms_template("ANY").as_deref(), Some("${content}"));
        assert_eq!(c.sms_template(""), None);
        assert_eq!(c.aliyun_access_key_id, "sim-access-key");
    }

    #[test]
    fn registered_templates_replace_the_catch_all() {
        let c: SimulatorConfig = serde_json::from_value(serde_json::json!({"templates": [
            {"provider": "aliyun_sms", "code": "SMS_1", "text": "您好${name}，请办理", "sign_name": "人社服务",
             "variables": [{"name": "name"}]},
            {"provider": "wechat", "code": "tmpl_1", "text": "事项：{{thing1.DATA}}",
             "variables": [{"name": "thing1"}]}
        ]}))
        .unwrap();
        assert_eq!(
            c.sms_template("SMS_1").as_deref(),
            Some("您好${name}，请办理")
        );
        assert_eq!(c.sms_template("SMS_POLICY_PUSH"), None);
        // Tencent and voice list nothing: any code, the catch-all text.
        assert_eq!(c.tencent_template("1").as_deref(), Some("{1}"));
        assert!(c.wechat_template_allowed("tmpl_1"));
        assert!(!c.wechat_template_allowed("other"));
    }
}
