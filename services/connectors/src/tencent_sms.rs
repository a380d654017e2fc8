//! Tencent Cloud SMS (API 3.0 `SendSms`, version 2021-01-11, TC3-HMAC-SHA256).
//!
//! `TemplateParamSet` is shared by every number of one request, so messages whose
//! template and parameters are identical go out together: up to 200 numbers per `SendSms`
//! (`PhoneNumberSet = ["+86…", …]`). A push bound to a registered template
//! ([`crate::bound`]) sends its `TemplateId`, signature and variables in the template's
//! order; free text goes as `TemplateParamSet = [content]` against the catch-all template
//! whose registered text is `{1}` (`template_id`). Messages with their own parameters go
//! one request per distinct set. Requests are issued concurrently (bounded by `concurrency`). `SessionContext`
//! (echoed back, under 512 bytes) names the pushes of the request, `,`-joined, which bounds
//! a request to about 30 of our push ids (see `pack`). Each number's own
//! `SendStatusSet[].Code` (`Ok` or an error, matched by `PhoneNumber`) decides its outcome;
//! `SerialNo` is the provider id (receipts carry it as `sid`, pulled ones as `SerialNo`).
//!
//! Lookup: Tencent's APIs do not search by session context, so [`Provider::lookup`] answers
//! `Unknown`. Receipts that never reached the callback are pulled with
//! `PullSmsSendStatus` ([`Provider::pull_receipts`]; each status is handed out once).

use crate::config::TencentSmsConfig;
use crate::pack::{self, Request};
use crate::receipts::Receipt;
use crate::tencent_sign::{authorization, CONTENT_TYPE};
use crate::{classify, http, Lookup, OutgoingMessage, Provider, PullError, SendOutcome};
use domain::ids::MobileNumber;
use domain::provider_template::Provider as Registered;
use futures::stream::{self, StreamExt};

const VERSION: &str = "2021-01-11";
/// Most numbers in one `SendSms`.
pub const MAX_NUMBERS: usize = 200;
/// `SessionContext` must be shorter than 512 bytes.
pub const MAX_SESSION_CONTEXT: usize = 511;
/// Most statuses one `PullSmsSendStatus` returns.
pub const MAX_PULL: usize = 100;

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

    /// One `SendSms` to the numbers `req` (indices into `batch`, all with the same text):
    /// one outcome per number, in `req` order.
    async fn send_request(&self, batch: &[OutgoingMessage], req: &Request) -> Vec<SendOutcome> {
        let first = &batch[req[0].0];
        let phones: Vec<String> = req.iter().map(|(_, m)| m.e164()).collect();
        // Every message of the request has the same content: the first one's says it all.
        let (sign, template, params) = match crate::bound(first, Registered::TencentSms) {
            Ok(Some(b)) => (
                b.sign_name
                    .clone()
                    .unwrap_or_else(|| self.cfg.sign_name.clone()),
                b.template.clone(),
                b.values().into_iter().map(str::to_string).collect(),
            ),
            Ok(None) => (
                self.cfg.sign_name.clone(),
                self.cfg.template_id.clone(),
                vec![first.content.clone()],
            ),
            Err(o) => return vec![o; req.len()],
        };
        let body = serde_json::json!({
            "PhoneNumberSet": phones,
            "SmsSdkAppId": self.cfg.sms_sdk_app_id,
            "SignName": sign,
            "TemplateId": template,
            "TemplateParamSet": params,
            "SessionContext": pack::joined_ref(req.iter().map(|(i, _)| batch[*i].push_id.as_str())),
        })
        .to_string();
        let reply = match self.call("SendSms", &body).await {
            Ok(r) => r,
            Err(o) => return vec![o; req.len()],
        };
        let empty = Vec::new();
        let set = reply["SendStatusSet"].as_array().unwrap_or(&empty);
        let outcomes: Vec<SendOutcome> = req
            .iter()
            .map(|(_, mobile)| {
                let st = set.iter().find(|st| {
                    st["PhoneNumber"]
                        .as_str()
                        .and_then(|p| MobileNumber::parse(p).ok())
                        .is_some_and(|p| p == *mobile)
                });
                match st.map(|st| (st, st["Code"].as_str())) {
                    Some((st, Some("Ok"))) => SendOutcome::Accepted {
                        provider_id: st["SerialNo"].as_str().unwrap_or("").to_string(),
                    },
                    Some((st, Some(code))) => {
                        classify::tencent(code, st["Message"].as_str().unwrap_or(""))
                    }
                    _ => SendOutcome::transient("no_status", "no SendStatus for this number"),
                }
            })
            .collect();
        tracing::debug!(
            numbers = req.len(),
            first_push = %first.push_id,
            accepted = outcomes.iter().filter(|o| o.is_accepted()).count(),
            "tencent SendSms"
        );
        outcomes
    }

    /// One signed call: `Ok(Response)` unless the answer is a request-level `Error` (then
    /// classified) or no answer at all.
    async fn call(&self, action: &str, body: &str) -> Result<serde_json::Value, SendOutcome> {
        let ts = chrono::Utc::now().timestamp();
        let auth = authorization(
            &self.cfg.secret_id,
            self.cfg.secret_key.expose(),
            "sms",
            &self.host,
            ts,
            body,
        );
        let resp = self
            .client
            .post(&self.url)
            .header("Authorization", auth)
            .header("Content-Type", CONTENT_TYPE)
            .header("Host", &self.host)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Region", &self.cfg.region)
            .header("X-TC-Timestamp", ts.to_string())
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| http::transport_outcome(&e))?;
        let status = resp.status().as_u16();
        let mut reply: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| classify::http_status(status))?;
        let r = reply["Response"].take();
        if let Some(err) = r.get("Error") {
            return Err(classify::tencent(
                err["Code"].as_str().unwrap_or(""),
                err["Message"].as_str().unwrap_or(""),
            ));
        }
        if !r.is_object() {
            return Err(classify::http_status(status));
        }
        Ok(r)
    }
}

/// One `PullSmsSendStatusSet` item as a [`Receipt`]: `SerialNo` is the provider id; the
/// push id when `SessionContext` names exactly one push.
pub fn pulled_receipt(it: &serde_json::Value) -> Option<Receipt> {
    let serial = it["SerialNo"].as_str().filter(|s| !s.is_empty())?;
    let delivered = it["ReportStatus"].as_str()? == "SUCCESS";
    Some(Receipt {
        provider_id: Some(serial.to_string()),
        push_id: it["SessionContext"]
            .as_str()
            .filter(|c| !c.is_empty() && !c.contains(','))
            .map(str::to_string),
        delivered,
        error: (!delivered).then(|| {
            it["Description"]
                .as_str()
                .filter(|d| !d.is_empty())
                .unwrap_or("FAIL")
                .to_string()
        }),
        dtmf: None,
    })
}

#[async_trait::async_trait]
impl Provider for TencentSms {
    fn channel(&self) -> domain::Channel {
        domain::Channel::Sms
    }

    /// Enough messages for same-text ones to meet in one request: `concurrency` requests
    /// of 16 on average per [`Provider::send`] call.
    fn max_batch(&self) -> usize {
        self.cfg.concurrency.max(1) * 16
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        let (mut outcomes, requests) = pack::requests(
            batch,
            |i| batch[i].content.as_str(),
            MAX_NUMBERS,
            MAX_SESSION_CONTEXT,
        );
        // Futures built first (not in a stream closure) so the async-trait future is Send.
        let calls: Vec<_> = requests
            .iter()
            .map(|r| self.send_request(batch, r))
            .collect();
        let answers: Vec<Vec<SendOutcome>> = stream::iter(calls)
            .buffered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        for (req, answer) in requests.iter().zip(answers) {
            for ((i, _), o) in req.iter().zip(answer) {
                outcomes[*i] = Some(o);
            }
        }
        pack::finish(outcomes)
    }

    /// `PullSmsSendStatus` (`Limit` ≤ 100 per call; repeated until `limit` or empty).
    async fn pull_receipts(&self, limit: usize) -> Result<Vec<Receipt>, PullError> {
        let mut out = Vec::new();
        while out.len() < limit {
            let n = (limit - out.len()).min(MAX_PULL);
            let body = serde_json::json!({ "Limit": n, "SmsSdkAppId": self.cfg.sms_sdk_app_id })
                .to_string();
            let reply = self
                .call("PullSmsSendStatus", &body)
                .await
                .map_err(PullError::Failed)?;
            let items = reply["PullSmsSendStatusSet"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let got = items.len();
            out.extend(items.iter().filter_map(pulled_receipt));
            if got < n {
                break;
            }
        }
        Ok(out)
    }

    async fn lookup(&self, _msg: &OutgoingMessage, _sent_on: chrono::NaiveDate) -> Lookup {
        Lookup::Unknown
    }
}
