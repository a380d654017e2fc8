//! Alibaba Cloud SMS (dysmsapi 2017-05-25): a batch goes out as `SendBatchSms` requests of
//! several numbers each (per-number `TemplateParamJson` and `SignNameJson`, one template
//! code), issued concurrently; a request of one number is a plain `SendSms`.
//!
//! **Ids.** Alibaba answers a request with one `BizId`; every number of it reports under
//! that `BizId` and its own `phone_number`. The provider id of a push is therefore
//! `"{BizId}:{phone}"` (11 digits, see [`provider_id`]), for `SendSms` too, and
//! [`crate::receipts::parse_aliyun_sms_report`] builds the same key from a report.
//!
//! **Finding a push again.** `OutId` is per request, so it names every push of the request:
//! their ids joined by `,` (`p1,p2,…`, in number order). `QuerySendDetails` (by number and
//! day) returns the request's `OutId` with each row, so [`Provider::lookup`] finds one
//! number of a batch by its push id after a crash, exactly. `OutId` must stay under 256
//! characters, which bounds a request to 16 of our 15-character push ids (Alibaba allows 100
//! numbers); see [`crate::pack`]. At 5000 requests/s per account that is still 80,000
//! messages/s. A single push keeps `OutId = push_id`, so its reports name it directly.
//!
//! **Refusals.** Alibaba validates a request as a whole: one illegal number, a blacklisted
//! keyword in one number's parameters or one number over its daily limit refuses the whole
//! request (`isv.MOBILE_NUMBER_ILLEGAL`, `isv.BLACK_KEY_CONTROL_LIMIT`,
//! `isv.BUSINESS_LIMIT_CONTROL`, `isv.PARAM_LENGTH_LIMIT`). Nothing of a refused request
//! was sent, so the connector splits it in halves and sends them again until the refusal is
//! pinned on single numbers ([`splits_on`]); every other number is sent. Numbers that fail
//! later (carrier blacklist, empty number) fail in their own delivery report. Errors that
//! concern every number alike (signature, template, credentials, system errors) are that
//! outcome for each message of the request.
//!
//! **Templates.** A push bound to a registered template ([`crate::bound`]) sends its
//! `TemplateCode`, its signature and `TemplateParam` = its variables by name; a request
//! carries pushes of one template only, each number with its own parameters
//! (`TemplateParamJson`), so a batch with per-number variables is one `SendBatchSms`. Free
//! text goes in the parameter as `{"content": "…"}` against the catch-all template whose
//! registered text is `${content}` (`template_code`, default `SMS_POLICY_PUSH`).

use crate::aliyun_rpc::{str_field, AliyunRpc};
use crate::config::AliyunSmsConfig;
use crate::pack::{self, Request};
use crate::receipts::Receipt;
use crate::{Lookup, OutgoingMessage, Provider, PullError, SendOutcome};
use chrono::{Datelike, NaiveDate};
use domain::ids::MobileNumber;
use domain::provider_template::{params_json, BoundContent, Provider as Registered};
use futures::stream::{self, StreamExt};

const VERSION: &str = "2017-05-25";
const PAGE_SIZE: u32 = 50;
/// Most numbers Alibaba takes in one `SendBatchSms`.
pub const MAX_NUMBERS: usize = 100;
/// `OutId`: "a string shorter than 256 characters".
pub const MAX_OUT_ID: usize = 255;

/// One message of a batch: its free text, or the template it is bound to.
struct Message<'a> {
    content: &'a str,
    bound: Option<BoundContent>,
}

/// The Alibaba Cloud SMS connector.
pub struct AliyunSms {
    cfg: AliyunSmsConfig,
    rpc: AliyunRpc,
}

/// One row of `QuerySendDetails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendDetail {
    /// The request's `OutId` (for a batch: every push id of the request, `,`-joined).
    pub out_id: Option<String>,
    /// 1 waiting for a receipt, 2 failed, 3 delivered.
    pub send_status: i64,
    pub err_code: Option<String>,
    pub content: Option<String>,
    /// Not in Alibaba's documented answer; read when a mirror adds it.
    pub biz_id: Option<String>,
}

/// A push's provider id: the request's `BizId` and the number (11 digits).
pub fn provider_id(biz_id: &str, phone: &str) -> String {
    let phone = MobileNumber::parse(phone.trim())
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|_| phone.trim().to_string());
    format!("{biz_id}:{phone}")
}

/// Whether a refusal of a multi-number request may be caused by one of its numbers (so
/// splitting the request isolates it) rather than by something all numbers share.
pub fn splits_on(code: &str) -> bool {
    matches!(
        code,
        "isv.MOBILE_NUMBER_ILLEGAL"
            | "isv.BLACK_KEY_CONTROL_LIMIT"
            | "isv.BUSINESS_LIMIT_CONTROL"
            | "isv.PARAM_LENGTH_LIMIT"
    )
}

impl AliyunSms {
    pub fn new(cfg: AliyunSmsConfig, client: reqwest::Client) -> Self {
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

    /// Template code, sign name and `TemplateParam` of one message.
    fn message(&self, msg: &Message<'_>) -> (String, String, serde_json::Value) {
        match &msg.bound {
            Some(b) => (
                b.template.clone(),
                b.sign_name
                    .clone()
                    .unwrap_or_else(|| self.cfg.sign_name.clone()),
                params_json(&b.params),
            ),
            None => (
                self.cfg.template_code.clone(),
                self.cfg.sign_name.clone(),
                serde_json::json!({ "content": msg.content }),
            ),
        }
    }

    /// One request (`SendSms` for one number, else `SendBatchSms`; every message of it has
    /// the same template): `Ok(BizId)` or the request's refusal.
    async fn send_request(
        &self,
        batch: &[OutgoingMessage],
        messages: &[Message<'_>],
        req: &Request,
    ) -> Result<String, SendOutcome> {
        let out_id = pack::joined_ref(req.iter().map(|(i, _)| batch[*i].push_id.as_str()));
        let parts: Vec<(String, String, serde_json::Value)> = req
            .iter()
            .map(|(i, _)| self.message(&messages[*i]))
            .collect();
        let code = parts[0].0.clone();
        let business = if let [(_, mobile)] = req.as_slice() {
            let (_, sign, param) = &parts[0];
            vec![
                ("PhoneNumbers".to_string(), mobile.as_str().to_string()),
                ("SignName".to_string(), sign.clone()),
                ("TemplateCode".to_string(), code),
                ("TemplateParam".to_string(), param.to_string()),
                ("OutId".to_string(), out_id),
            ]
        } else {
            let phones: Vec<&str> = req.iter().map(|(_, m)| m.as_str()).collect();
            let signs: Vec<&str> = parts.iter().map(|(_, s, _)| s.as_str()).collect();
            let params: Vec<&serde_json::Value> = parts.iter().map(|(_, _, p)| p).collect();
            vec![
                (
                    "PhoneNumberJson".to_string(),
                    serde_json::to_string(&phones).unwrap_or_default(),
                ),
                (
                    "SignNameJson".to_string(),
                    serde_json::to_string(&signs).unwrap_or_default(),
                ),
                ("TemplateCode".to_string(), code),
                (
                    "TemplateParamJson".to_string(),
                    serde_json::to_string(&params).unwrap_or_default(),
                ),
                ("OutId".to_string(), out_id),
            ]
        };
        let action = if req.len() == 1 {
            "SendSms"
        } else {
            "SendBatchSms"
        };
        let answer = self
            .rpc
            .call(action, business)
            .await
            .map(|body| str_field(&body, "BizId").unwrap_or_default());
        tracing::debug!(
            action,
            numbers = req.len(),
            first_push = %batch[req[0].0].push_id,
            outcome = ?answer.as_ref().err().and_then(SendOutcome::code),
            "aliyun send"
        );
        answer
    }

    /// One page of `QuerySendDetails` for `phone` on `date`: `(TotalCount, rows)`.
    pub async fn query_send_details(
        &self,
        phone: &MobileNumber,
        date: NaiveDate,
        page: u32,
    ) -> Result<(u64, Vec<SendDetail>), SendOutcome> {
        let business = vec![
            ("PhoneNumber".to_string(), phone.as_str().to_string()),
            (
                "SendDate".to_string(),
                format!("{:04}{:02}{:02}", date.year(), date.month(), date.day()),
            ),
            ("PageSize".to_string(), PAGE_SIZE.to_string()),
            ("CurrentPage".to_string(), page.to_string()),
        ];
        let body = self.rpc.call("QuerySendDetails", business).await?;
        let total = str_field(&body, "TotalCount")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        Ok((total, parse_details(&body)))
    }

    /// The `QuerySendDetails` row of `msg`: the number's sends on `sent_on` (and the next
    /// day, once it has begun in China: a send just before midnight) whose `OutId` names
    /// the push. `Ok(None)`: the provider has no such message.
    pub async fn find_detail(
        &self,
        msg: &OutgoingMessage,
        sent_on: NaiveDate,
    ) -> Result<Option<SendDetail>, SendOutcome> {
        let Ok(phone) = MobileNumber::parse(&msg.to) else {
            return Ok(None);
        };
        let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
        let mut days = vec![sent_on];
        if let Some(next) = sent_on.succ_opt().filter(|d| *d <= today) {
            days.push(next);
        }
        for day in days {
            let mut page = 1;
            loop {
                let (total, rows) = self.query_send_details(&phone, day, page).await?;
                if let Some(row) = rows.into_iter().find(|r| {
                    r.out_id
                        .as_deref()
                        .is_some_and(|o| pack::names(o, &msg.push_id))
                }) {
                    return Ok(Some(row));
                }
                if u64::from(page * PAGE_SIZE) >= total {
                    break;
                }
                page += 1;
            }
        }
        Ok(None)
    }
}

/// `SmsSendDetailDTOs` is `{"SmsSendDetailDTO": [...]}` in Alibaba's JSON (an XML-shaped
/// wrapper) and a bare array in some mirrors; accept both.
fn parse_details(body: &serde_json::Value) -> Vec<SendDetail> {
    let Some(dtos) = body.get("SmsSendDetailDTOs") else {
        return Vec::new();
    };
    let rows = match dtos {
        serde_json::Value::Array(a) => a.as_slice(),
        serde_json::Value::Object(o) => match o.get("SmsSendDetailDTO") {
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    rows.iter()
        .map(|r| SendDetail {
            out_id: str_field(r, "OutId"),
            send_status: str_field(r, "SendStatus")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            err_code: str_field(r, "ErrCode"),
            content: str_field(r, "Content"),
            biz_id: str_field(r, "BizId"),
        })
        .collect()
}

#[async_trait::async_trait]
impl Provider for AliyunSms {
    fn channel(&self) -> domain::Channel {
        domain::Channel::Sms
    }

    /// `concurrency` requests of up to 16 numbers each per [`Provider::send`] call.
    fn max_batch(&self) -> usize {
        self.cfg.concurrency.max(1) * 16
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        let mut refused: Vec<Option<SendOutcome>> = vec![None; batch.len()];
        let messages: Vec<Message<'_>> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| Message {
                content: &m.content,
                bound: crate::bound(m, Registered::AliyunSms).unwrap_or_else(|o| {
                    refused[i] = Some(o);
                    None
                }),
            })
            .collect();
        // One template per request; messages refused above go in no request.
        let keys: Vec<String> = messages
            .iter()
            .zip(&refused)
            .enumerate()
            .map(|(i, (m, r))| match (r, &m.bound) {
                (Some(_), _) => format!("refused:{i}"),
                (None, Some(b)) => b.template.clone(),
                (None, None) => String::new(),
            })
            .collect();
        let (mut outcomes, mut work) =
            pack::requests(batch, |i| keys[i].as_str(), MAX_NUMBERS, MAX_OUT_ID);
        for (i, r) in refused.into_iter().enumerate() {
            if let Some(o) = r {
                outcomes[i] = Some(o);
            }
        }
        work.retain(|req| req.iter().all(|(i, _)| outcomes[*i].is_none()));
        // Rounds: every request of a round in flight at once (bounded); a request refused
        // for what one of its numbers may have caused comes back as two halves.
        while !work.is_empty() {
            // Futures built first (not in a stream closure) so the async-trait future is Send.
            let calls: Vec<_> = work
                .iter()
                .map(|r| self.send_request(batch, &messages, r))
                .collect();
            let answers: Vec<_> = stream::iter(calls)
                .buffered(self.cfg.concurrency.max(1))
                .collect()
                .await;
            let mut next = Vec::new();
            for (req, answer) in work.into_iter().zip(answers) {
                match answer {
                    Ok(biz_id) => {
                        for (i, mobile) in &req {
                            outcomes[*i] = Some(SendOutcome::Accepted {
                                provider_id: provider_id(&biz_id, mobile.as_str()),
                            });
                        }
                    }
                    Err(o) if req.len() > 1 && o.code().is_some_and(splits_on) => {
                        let mut req = req;
                        let second = req.split_off(req.len() / 2);
                        next.push(req);
                        next.push(second);
                    }
                    Err(o) => {
                        for (i, _) in &req {
                            outcomes[*i] = Some(o.clone());
                        }
                    }
                }
            }
            work = next;
        }
        pack::finish(outcomes)
    }

    /// Finds the push with `QuerySendDetails` by number and day, the row whose `OutId`
    /// names it. The answer carries no `BizId`, so `provider_id` is empty: the push's
    /// delivery report then matches by push id (single sends) or is settled by asking
    /// again ([`Provider::query_receipt`]).
    async fn lookup(&self, msg: &OutgoingMessage, sent_on: NaiveDate) -> Lookup {
        match self.find_detail(msg, sent_on).await {
            Ok(Some(row)) => Lookup::Found {
                provider_id: row
                    .biz_id
                    .map(|b| provider_id(&b, &msg.to))
                    .unwrap_or_default(),
            },
            Ok(None) => Lookup::NotFound,
            Err(outcome) => {
                tracing::warn!(push_id = %msg.push_id, code = ?outcome.code(), "aliyun QuerySendDetails failed");
                Lookup::Unknown
            }
        }
    }

    /// The push's status by `QuerySendDetails`: `SendStatus` 3 delivered, 2 failed (with
    /// `ErrCode`), 1 still waiting (`None`), no row (`None`).
    async fn query_receipt(
        &self,
        msg: &OutgoingMessage,
        sent_on: NaiveDate,
    ) -> Result<Option<Receipt>, PullError> {
        let row = self
            .find_detail(msg, sent_on)
            .await
            .map_err(PullError::Failed)?;
        Ok(row.and_then(|r| {
            let delivered = match r.send_status {
                3 => true,
                2 => false,
                _ => return None,
            };
            Some(Receipt {
                provider_id: r.biz_id.map(|b| provider_id(&b, &msg.to)),
                push_id: Some(msg.push_id.clone()),
                delivered,
                error: (!delivered).then(|| r.err_code.unwrap_or_else(|| "failed".into())),
                dtmf: None,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_in_both_shapes() {
        let wrapped = serde_json::json!({"Code":"OK","TotalCount":1,"SmsSendDetailDTOs":{"SmsSendDetailDTO":[
            {"OutId":"p1","SendStatus":3,"ErrCode":"DELIVERED","Content":"【x】y"}]}});
        let bare = serde_json::json!({"Code":"OK","TotalCount":1,"SmsSendDetailDTOs":[{"OutId":123,"SendStatus":"1"}]});
        let a = parse_details(&wrapped);
        assert_eq!(a[0].out_id.as_deref(), Some("p1"));
        assert_eq!(a[0].send_status, 3);
        let b = parse_details(&bare);
        assert_eq!(b[0].out_id.as_deref(), Some("123"));
        assert_eq!(b[0].send_status, 1);
    }
}
