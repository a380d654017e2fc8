//! Connector configuration: base URLs, credentials, sign name, template codes.
//!
//! [`ProvidersConfig::default`] points every connector at the built-in simulators on the
//! default listen address (`http://127.0.0.1:8080`) with the simulators' documented
//! sandbox credentials; [`ProvidersConfig::simulator`] does the same for another address.
//! Going live means setting each `base_url` to the provider's endpoint and the real
//! credentials; nothing else changes. All structs deserialize with defaults for missing
//! keys, so a config file only lists what differs — except `templates`: a settings file
//! lists the templates its accounts registered, and has none otherwise (the catch-alls
//! are the simulators' alone).

use domain::provider_template::{
    Provider as Registered, ProviderTemplate, TemplateVariable, VarKind,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A credential that never prints (`Debug` and `Display` show `***`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// Which SMS provider serves the `sms` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProviderKind {
    #[default]
    Aliyun,
    Tencent,
}

/// Which WeChat API carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WechatApi {
    /// `cgi-bin/message/template/send` (has `client_msg_id` de-duplication).
    #[default]
    Template,
    /// `cgi-bin/message/subscribe/bizsend` (subscription notification; `page` = link).
    Subscribe,
}

/// HTTP client settings shared by every connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            pool_max_idle_per_host: 128,
        }
    }
}

/// Alibaba Cloud SMS (dysmsapi 2017-05-25). Real `base_url`: `https://dysmsapi.aliyuncs.com/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AliyunSmsConfig {
    pub base_url: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub region_id: String,
    /// Signature name without brackets; the provider adds `【…】`.
    pub sign_name: String,
    /// A template whose registered text is `${content}`.
    pub template_code: String,
    /// Messages per `send` call and requests in flight per call (one `SendSms` each).
    pub concurrency: usize,
}

impl Default for AliyunSmsConfig {
    fn default() -> Self {
        Self {
            base_url: format!("{DEFAULT_SIMULATOR}/aliyun/sms/"),
            access_key_id: "sim-access-key".into(),
            access_key_secret: "sim-access-secret".into(),
            region_id: "cn-hangzhou".into(),
            sign_name: "人社服务".into(),
            template_code: "SMS_POLICY_PUSH".into(),
            concurrency: 32,
        }
    }
}

/// Tencent Cloud SMS (API 3.0, 2021-01-11). Real `base_url`: `https://sms.tencentcloudapi.com/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TencentSmsConfig {
    pub base_url: String,
    pub secret_id: String,
    pub secret_key: Secret,
    pub region: String,
    pub sms_sdk_app_id: String,
    pub sign_name: String,
    /// A template whose registered text is `{1}`.
    pub template_id: String,
    pub concurrency: usize,
}

impl Default for TencentSmsConfig {
    fn default() -> Self {
        Self {
            base_url: format!("{DEFAULT_SIMULATOR}/tencent/sms/"),
            secret_id: "sim-secret-id".into(),
            secret_key: "sim-secret-key".into(),
            region: "ap-guangzhou".into(),
            sms_sdk_app_id: "1400000000".into(),
            sign_name: "人社服务".into(),
            template_id: "1000001".into(),
            concurrency: 32,
        }
    }
}

/// WeChat official account. Real `base_url`: `https://api.weixin.qq.com/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WechatConfig {
    pub base_url: String,
    pub app_id: String,
    pub app_secret: Secret,
    pub template_id: String,
    pub api: WechatApi,
    pub concurrency: usize,
}

impl Default for WechatConfig {
    fn default() -> Self {
        Self {
            base_url: format!("{DEFAULT_SIMULATOR}/wechat/"),
            app_id: "wxsimulator00000001".into(),
            app_secret: "sim-app-secret".into(),
            template_id: "policy_push_notice".into(),
            api: WechatApi::Template,
            concurrency: 32,
        }
    }
}

/// Alibaba Cloud voice (dyvmsapi 2017-05-25). Real `base_url`: `https://dyvmsapi.aliyuncs.com/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AliyunVoiceConfig {
    pub base_url: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub region_id: String,
    /// A TTS template whose registered text is `${content}`.
    pub tts_code: String,
    /// Caller number shown; `None` uses the public number pool.
    pub called_show_number: Option<String>,
    pub play_times: u8,
    pub concurrency: usize,
}

impl Default for AliyunVoiceConfig {
    fn default() -> Self {
        Self {
            base_url: format!("{DEFAULT_SIMULATOR}/aliyun/voice/"),
            access_key_id: "sim-access-key".into(),
            access_key_secret: "sim-access-secret".into(),
            region_id: "cn-hangzhou".into(),
            tts_code: "TTS_POLICY_PUSH".into(),
            called_show_number: None,
            play_times: 2,
            concurrency: 16,
        }
    }
}

const DEFAULT_SIMULATOR: &str = "http://127.0.0.1:8080";

/// Everything [`crate::build_providers`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvidersConfig {
    pub sms_provider: SmsProviderKind,
    pub aliyun_sms: AliyunSmsConfig,
    pub tencent_sms: TencentSmsConfig,
    pub wechat: WechatConfig,
    pub aliyun_voice: AliyunVoiceConfig,
    pub http: HttpConfig,
    /// The templates registered with the providers (loaded into the product's registry at
    /// start, and given to the built-in simulators). A settings file lists its own; none
    /// when it lists none. [`ProvidersConfig::default`] (the simulators) registers only the
    /// catch-all templates of [`catch_all_templates`].
    #[serde(default)]
    pub templates: Vec<ProviderTemplate>,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        let mut cfg = Self {
            sms_provider: SmsProviderKind::default(),
            aliyun_sms: AliyunSmsConfig::default(),
            tencent_sms: TencentSmsConfig::default(),
            wechat: WechatConfig::default(),
            aliyun_voice: AliyunVoiceConfig::default(),
            http: HttpConfig::default(),
            templates: Vec::new(),
        };
        cfg.templates = catch_all_templates(&cfg);
        cfg
    }
}

/// The simulators' catch-all templates (a whole rendered message in one variable) under
/// the configured codes: `${content}` for Alibaba SMS and voice, `{1}` for Tencent, and
/// `thing1`…`thing5` for WeChat free text cut into 20-character keywords. No real
/// account has them: the providers' review refuses a template that is only a variable.
pub fn catch_all_templates(cfg: &ProvidersConfig) -> Vec<ProviderTemplate> {
    let one = |provider, code: &str, text: &str, var: &str, sign: Option<&str>| ProviderTemplate {
        provider,
        code: code.to_string(),
        name: "catch-all (simulators)".into(),
        text: text.to_string(),
        sign_name: sign.map(str::to_string),
        variables: vec![TemplateVariable {
            name: var.to_string(),
            kind: VarKind::Text,
            max_chars: None,
        }],
        catch_all: true,
        enterprise: false,
    };
    vec![
        one(
            Registered::AliyunSms,
            &cfg.aliyun_sms.template_code,
            "${content}",
            "content",
            Some(&cfg.aliyun_sms.sign_name),
        ),
        one(
            Registered::TencentSms,
            &cfg.tencent_sms.template_id,
            "{1}",
            "1",
            Some(&cfg.tencent_sms.sign_name),
        ),
        one(
            Registered::Wechat,
            &cfg.wechat.template_id,
            "{{thing1.DATA}}",
            "thing1",
            None,
        ),
        one(
            Registered::AliyunVoice,
            &cfg.aliyun_voice.tts_code,
            "${content}",
            "content",
            None,
        ),
    ]
}

impl ProvidersConfig {
    /// The simulators' sandbox credentials with every base URL under `base`
    /// (e.g. `http://127.0.0.1:8080`): `{base}/aliyun/sms/`, `{base}/tencent/sms/`,
    /// `{base}/wechat/`, `{base}/aliyun/voice/`.
    pub fn simulator(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let mut cfg = Self::default();
        cfg.aliyun_sms.base_url = format!("{base}/aliyun/sms/");
        cfg.tencent_sms.base_url = format!("{base}/tencent/sms/");
        cfg.wechat.base_url = format!("{base}/wechat/");
        cfg.aliyun_voice.base_url = format!("{base}/aliyun/voice/");
        cfg
    }
}

/// `base` with exactly one trailing slash, so `join(base, "cgi-bin/x")` is a plain append.
pub(crate) fn with_slash(base: &str) -> String {
    format!("{}/", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let cfg = ProvidersConfig::default();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sim-access-secret"));
        assert!(!shown.contains("sim-app-secret"));
        assert!(shown.contains("Secret(***)"));
    }

    #[test]
    fn simulator_base_urls_and_partial_file() {
        let cfg = ProvidersConfig::simulator("http://10.0.0.1:9000/");
        assert_eq!(cfg.wechat.base_url, "http://10.0.0.1:9000/wechat/");
        assert_eq!(
            cfg.aliyun_voice.base_url,
            "http://10.0.0.1:9000/aliyun/voice/"
        );
        let cfg: ProvidersConfig =
            serde_json::from_str(r#"{"sms_provider":"tencent","wechat":{"template_id":"T1"}}"#)
                .unwrap();
        assert_eq!(cfg.sms_provider, SmsProviderKind::Tencent);
        assert_eq!(cfg.wechat.template_id, "T1");
        assert_eq!(cfg.wechat.app_id, "wxsimulator00000001");
        // A settings file registers only what it lists; the simulators have catch-alls.
        assert!(cfg.templates.is_empty());
        let sim = ProvidersConfig::simulator("http://10.0.0.1:9000");
        assert_eq!(sim.templates.len(), 4);
        assert!(sim
            .templates
            .iter()
            .all(|t| t.catch_all && t.check().is_ok()));
        assert_eq!(sim.templates[0].code, "SMS_POLICY_PUSH");
    }
}
