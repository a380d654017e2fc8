//! Tencent Cloud SMS (API 3.0 `SendSms`, version 2021-01-11, TC3-HMAC-SHA256).
//!
//! `TemplateParamSet` is shared by every number of one request and `SessionContext` is per
//! request, so messages with their own text and push id go one request each (issued
//! concurrently, like [`crate::AliyunSms`]): `PhoneNumberSet = ["+86…"]`,
//! `TemplateParamSet = [content]` against a template whose registered text is `{1}`,
//! `SessionContext = push_id`. The per-number `SendStatusSet[0].Code` (`Ok` or an error)
//! decides the outcome; `SerialNo` is the provider id (receipts carry it as `sid`).
//!
//! Lookup: Tencent's status pull APIs need pull mode and do not search by session context,
//! so [`Provider::lookup`] answers `Unknown`.

use crate::config::TencentSmsConfig;
use crate::tencent_sign::{authorization, CONTENT_TYPE};
use crate::{classify, http, Lookup, OutgoingMessage, Provider, SendOutcome};
use domain::ids::MobileNumber;
use futures::stream::{self, StreamExt};

const VERSION: &str = "2021-01-11";

/// The Tencent Cloud SMS connector.
pub struct TencentSms {
    cfg: TencentSmsConfig,
    client: reqwest::Client,
    url: String,
    /// `host[:port]` of `url`, as signed.
    host: String,
}

impl TencentSms {
    pub fn new(cfg: TencentSmsConfig, client: reqwest::Client) -> Self {
        let url = crate::config::with_slash(&cfg.base_url);
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| {
                let h = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                })
            })
            .unwrap_or_default();
        Self {
            cfg,
            client,
            url,
            host,
        }
    }

    async fn send_one(&self, msg: &OutgoingMessage) -> SendOutcome {
        let mobile = match MobileNumber::parse(&msg.to) {
            Ok(m) => m,
            Err(e) => return SendOutcome::permanent("invalid_mobile", e.to_string()),
        };
        let body = serde_json::json!({
            "PhoneNumberSet": [mobile.e164()],
            "SmsSdkAppId": self.cfg.sms_sdk_app_id,
            "SignName": self.cfg.sign_name,
            "TemplateId": self.cfg.template_id,
            "TemplateParamSet": [msg.content],
            "SessionContext": msg.push_id,
        })
        .to_string();
        let outcome = self.post(&body).await;
        tracing::debug!(push_id = %msg.push_id, to = %mobile.masked(), outcome = ?outcome.code(), "tencent SendSms");
        outcome
    }

    async fn post(&self, body: &str) -> SendOutcome {
        let ts = chrono::Utc::now().timestamp();
        let auth = authorization(
            &self.cfg.secret_id,
            self.cfg.secret_key.expose(),
            "sms",
            &self.host,
            ts,
            body,
        );
        let resp = match self
            .client
            .post(&self.url)
            .header("Authorization", auth)
            .header("Content-Type", CONTENT_TYPE)
            .header("Host", &self.host)
            .header("X-TC-Action", "SendSms")
            .header("X-TC-Version", VERSION)
            .header("X-TC-Region", &self.cfg.region)
            .header("X-TC-Timestamp", ts.to_string())
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return http::transport_outcome(&e),
        };
        let status = resp.status().as_u16();
        let reply: serde_json::Value = match resp.json().await {
            Ok(v) => v,
            Err(_) => return classify::http_status(status),
        };
        let r = &reply["Response"];
        if let Some(err) = r.get("Error") {
            return classify::tencent(
                err["Code"].as_str().unwrap_or(""),
                err["Message"].as_str().unwrap_or(""),
            );
        }
        let Some(st) = r["SendStatusSet"].get(0) else {
            return classify::http_status(status);
        };
        match st["Code"].as_str() {
            Some("Ok") => SendOutcome::Accepted {
                provider_id: st["SerialNo"].as_str().unwrap_or("").to_string(),
            },
            Some(code) => classify::tencent(code, st["Message"].as_str().unwrap_or("")),
            None => classify::http_status(status),
        }
    }
}

#[async_trait::async_trait]
impl Provider for TencentSms {
    fn channel(&self) -> domain::Channel {
        domain::Channel::Sms
    }

    fn max_batch(&self) -> usize {
        self.cfg.concurrency.max(1)
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        // Futures built first (not in a stream closure) so the async-trait future is Send.
        let calls: Vec<_> = batch.iter().map(|m| self.send_one(m)).collect();
        stream::iter(calls)
            .buffered(self.max_batch())
            .collect()
            .await
    }

    async fn lookup(&self, _msg: &OutgoingMessage, _sent_on: chrono::NaiveDate) -> Lookup {
        Lookup::Unknown
    }
}
