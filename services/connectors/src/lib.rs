//! Connectors: clients of the providers' real APIs, one per channel, behind one trait.
//!
//! The pipeline hands a connector a batch of [`OutgoingMessage`]s and gets one
//! [`SendOutcome`] per message back; after a crash it asks [`Provider::lookup`] whether the
//! provider already took a push before sending it again. Delivery receipts arrive later on
//! the server's callback routes and are parsed by [`receipts`]; a receipt that never came
//! can be asked for ([`Provider::query_receipt`], [`Provider::pull_receipts`]).
//!
//! A push bound to a registered provider template ([`bound`]) goes out as the template's
//! code and variables (Alibaba `TemplateParam` by name, Tencent `TemplateParamSet` in
//! order, WeChat `data` keywords, Alibaba voice `TtsParam`); free text goes through the
//! catch-all template configured in [`ProvidersConfig`].
//!
//! Every connector speaks the provider's own wire protocol (paths, signatures, error
//! codes), so switching between the built-in simulators and the real provider is a change
//! of base URL and credentials in [`ProvidersConfig`], nothing else.
//!
//! # Layout
//! - [`config`]: [`ProvidersConfig`] (base URLs, credentials, sign name, template codes).
//! - [`aliyun_sign`]: Alibaba Cloud RPC signature V2 (HMAC-SHA1) and percent-encoding.
//! - `aliyun_rpc`: the signed POST shared by Alibaba SMS and voice.
//! - [`aliyun_sms`]: [`AliyunSms`] (`SendBatchSms` of several numbers, `SendSms` for one;
//!   `QuerySendDetails` for lookup and receipts).
//! - `pack`: packing a batch into multi-number requests (number limit, one number once,
//!   the push ids in one reference field).
//! - [`tencent_sign`]: Tencent Cloud API 3.0 signature TC3-HMAC-SHA256.
//! - [`tencent_sms`]: [`TencentSms`] (`SendSms` 2021-01-11 of up to 200 numbers sharing
//!   their template parameters; `PullSmsSendStatus` for receipts).
//! - [`wechat`]: [`WechatOfficial`] (stable access token cache, template / subscribe send).
//! - [`wechat_fields`]: turning rendered text into keyword data and checking value limits.
//! - [`aliyun_voice`]: [`AliyunVoice`] (`SingleCallByTts`), with the short `OutId` mapping.
//! - [`classify`]: every provider error code → [`SendOutcome`], in one place.
//! - [`receipts`]: parsers of the providers' delivery callbacks and the replies they expect.
//! - `http`: the shared HTTP client (timeouts, pooling) and transport-error mapping.
//!
//! Personal data (mobile numbers, openids, subject ids) is never logged: log lines carry
//! the push id and masked recipients only ([`domain::ids::mask_any`]).

pub mod aliyun_sign;
pub mod aliyun_sms;
pub mod aliyun_voice;
pub mod classify;
pub mod config;
pub mod receipts;
pub mod tencent_sign;
pub mod tencent_sms;
pub mod wechat;
pub mod wechat_fields;

mod aliyun_rpc;
mod http;
mod pack;

use std::sync::Arc;
use std::time::Duration;

pub use aliyun_sms::AliyunSms;
pub use aliyun_voice::AliyunVoice;
pub use config::{
    AliyunSmsConfig, AliyunVoiceConfig, HttpConfig, ProvidersConfig, SmsProviderKind,
    TencentSmsConfig, WechatApi, WechatConfig,
};
pub use receipts::Receipt;
pub use tencent_sms::TencentSms;
pub use wechat::WechatOfficial;

/// One message for one recipient, as the pipeline hands it to a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Our id, unique; goes into `OutId` / `client_msg_id` / `SessionContext`.
    pub push_id: String,
    pub campaign_id: String,
    /// Never logged.
    pub subject_id: String,
    /// 11-digit mobile (sms / hotline) or openid (wechat). Never logged unmasked.
    pub to: String,
    /// What the planner rendered for this channel. A push bound to a registered provider
    /// template holds [`domain::provider_template::BoundContent`] JSON: the code and the
    /// variables go out as the provider's template parameters ([`bound`]). Otherwise free
    /// text for the configured catch-all template: for WeChat `keyword: value` lines (see
    /// [`wechat_fields`]); for SMS the whole body (it already contains the link); for the
    /// hotline the TTS text.
    pub content: String,
    /// Absolute recipient-page URL (WeChat `url`).
    pub link: String,
}

/// What the provider said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider took it (`BizId` / `msgid` / `CallId` / `SerialNo`).
    Accepted { provider_id: String },
    /// The recipient cannot be reached on this channel (WeChat 43101/43004, blacklisted
    /// number): the pipeline falls back to the next channel.
    Unreachable { code: String, message: String },
    /// Retrying will not help (invalid number, template or signature error, credentials).
    /// `code` is the provider's code (or ours, e.g. `field_too_long`), kept so the pipeline
    /// can stop a campaign whose template or signature is refused.
    Permanent { code: String, message: String },
    /// Try again later (rate limit, timeout, 5xx, system error). `retry_after` when the
    /// provider's answer says how long.
    Transient {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl SendOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, SendOutcome::Accepted { .. })
    }

    /// The provider's (or our) code, `None` for `Accepted`.
    pub fn code(&self) -> Option<&str> {
        match self {
            SendOutcome::Accepted { .. } => None,
            SendOutcome::Unreachable { code, .. }
            | SendOutcome::Permanent { code, .. }
            | SendOutcome::Transient { code, .. } => Some(code),
        }
    }

    pub(crate) fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendOutcome::Permanent {
            code: code.into(),
            message: message.into(),
        }
    }

    pub(crate) fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendOutcome::Transient {
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The registered template `msg` is bound to, if any. A template registered with another
/// provider than the connector's (the settings switched provider after planning) is
/// `Permanent { code: "template_provider_mismatch" }`: it cannot be sent here.
pub fn bound(
    msg: &OutgoingMessage,
    provider: domain::provider_template::Provider,
) -> Result<Option<domain::provider_template::BoundContent>, SendOutcome> {
    match domain::provider_template::BoundContent::from_content(&msg.content) {
        Some(b) if b.provider != provider => Err(SendOutcome::permanent(
            "template_provider_mismatch",
            format!(
                "template {} is registered with {}, this connector is {provider}",
                b.template, b.provider
            ),
        )),
        other => Ok(other),
    }
}

/// Did the provider already accept a push? Used after a crash to avoid sending twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Yes. `provider_id` is the provider's id when its query API returns one, otherwise
    /// empty (Alibaba `QuerySendDetails` has no `BizId`; its receipts carry `out_id`).
    Found { provider_id: String },
    /// The provider answered and has no such message.
    NotFound,
    /// The provider has no query API (WeChat, voice) or the query failed.
    Unknown,
}

/// Why receipts could not be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullError {
    /// The provider has no such API (or not this one).
    Unsupported,
    /// The provider's answer, classified like a send.
    Failed(SendOutcome),
}

/// A client of one provider for one channel.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    fn channel(&self) -> domain::Channel;
    /// How many messages one [`Provider::send`] call should carry.
    fn max_batch(&self) -> usize;
    /// One outcome per message, in the same order.
    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome>;
    /// Whether the provider already accepted `msg.push_id` (sent on `sent_on`, a date in
    /// China Standard Time).
    async fn lookup(&self, msg: &OutgoingMessage, sent_on: chrono::NaiveDate) -> Lookup;

    /// The final status of one accepted push, asked of the provider (sent on `sent_on`,
    /// China Standard Time): `Ok(None)` while it is still pending or unknown there. The
    /// [`Receipt`] has the form the callbacks produce, with `push_id` set.
    async fn query_receipt(
        &self,
        _msg: &OutgoingMessage,
        _sent_on: chrono::NaiveDate,
    ) -> Result<Option<Receipt>, PullError> {
        Err(PullError::Unsupported)
    }

    /// Receipts the provider holds and has not handed out yet, at most `limit` (Tencent
    /// `PullSmsSendStatus`); each is handed out once, in the form the callbacks produce.
    async fn pull_receipts(&self, _limit: usize) -> Result<Vec<Receipt>, PullError> {
        Err(PullError::Unsupported)
    }
}

/// One provider per channel, chosen from configuration.
#[derive(Clone)]
pub struct ProviderSet {
    pub sms: Arc<dyn Provider>,
    pub wechat: Arc<dyn Provider>,
    pub hotline: Arc<dyn Provider>,
}

impl ProviderSet {
    pub fn get(&self, channel: domain::Channel) -> &Arc<dyn Provider> {
        match channel {
            domain::Channel::Sms => &self.sms,
            domain::Channel::Wechat => &self.wechat,
            domain::Channel::Hotline => &self.hotline,
        }
    }
}

impl std::fmt::Debug for ProviderSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSet").finish_non_exhaustive()
    }
}

/// Builds the three providers (one shared HTTP connection pool). The SMS provider is
/// Alibaba or Tencent per [`ProvidersConfig::sms_provider`].
pub fn build_providers(cfg: &ProvidersConfig) -> ProviderSet {
    build_providers_with(cfg, None)
}

/// [`build_providers`] whose WeChat access token lives in `shared` (Redis when connector
/// processes run side by side: one refresher for all, see `channels.md` §1.1).
pub fn build_providers_with(
    cfg: &ProvidersConfig,
    shared: Option<Arc<dyn limits::SharedCache>>,
) -> ProviderSet {
    let client = http::client(&cfg.http);
    let sms: Arc<dyn Provider> = match cfg.sms_provider {
        SmsProviderKind::Aliyun => Arc::new(AliyunSms::new(cfg.aliyun_sms.clone(), client.clone())),
        SmsProviderKind::Tencent => {
            Arc::new(TencentSms::new(cfg.tencent_sms.clone(), client.clone()))
        }
    };
    ProviderSet {
        sms,
        wechat: Arc::new(match shared {
            Some(cache) => {
                WechatOfficial::new(cfg.wechat.clone(), client.clone()).with_shared_token(cache)
            }
            None => WechatOfficial::new(cfg.wechat.clone(), client.clone()),
        }),
        hotline: Arc::new(AliyunVoice::new(cfg.aliyun_voice.clone(), client)),
    }
}
