//! Alibaba Cloud SMS (dysmsapi 2017-05-25): one `SendSms` per message, issued concurrently.
//!
//! Why not `SendBatchSms` (≤100 numbers a request)? It has no per-number `OutId`, so a
//! message could not be found again by push id after a crash, and its receipts would carry
//! one `BizId` for the whole batch with no `out_id`. `SendSms` with `OutId = push_id` keeps
//! both: [`Provider::lookup`] finds the push with `QuerySendDetails` by `OutId`, and every
//! `SmsReport` names the push. Throughput comes from concurrency instead: one
//! [`Provider::send`] call carries up to `concurrency` messages (default 32), all in flight
//! at once over pooled keep-alive connections (Alibaba allows 5000 QPS per account).
//!
//! The rendered text goes in `TemplateParam` as `{"content": "…"}` against a template
//! whose registered text is `${content}` (`template_code`, default `SMS_POLICY_PUSH`).

use crate::aliyun_rpc::{str_field, AliyunRpc};
use crate::config::AliyunSmsConfig;
use crate::{Lookup, OutgoingMessage, Provider, SendOutcome};
use chrono::{Datelike, NaiveDate};
use domain::ids::MobileNumber;
use futures::stream::{self, StreamExt};

const VERSION: &str = "2017-05-25";
const PAGE_SIZE: u32 = 50;

/// The Alibaba Cloud SMS connector.
pub struct AliyunSms {
    cfg: AliyunSmsConfig,
    rpc: AliyunRpc,
}

/// One row of `QuerySendDetails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendDetail {
    pub out_id: Option<String>,
    /// 1 waiting for a receipt, 2 failed, 3 delivered.
    pub send_status: i64,
    pub err_code: Option<String>,
    pub content: Option<String>,
    pub biz_id: Option<String>,
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

    async fn send_one(&self, msg: &OutgoingMessage) -> SendOutcome {
        let mobile = match MobileNumber::parse(&msg.to) {
            Ok(m) => m,
            Err(e) => return SendOutcome::permanent("invalid_mobile", e.to_string()),
        };
        let param = serde_json::json!({ "content": msg.content }).to_string();
        let business = vec![
            ("PhoneNumbers".to_string(), mobile.as_str().to_string()),
            ("SignName".to_string(), self.cfg.sign_name.clone()),
            ("TemplateCode".to_string(), self.cfg.template_code.clone()),
            ("TemplateParam".to_string(), param),
            ("OutId".to_string(), msg.push_id.clone()),
        ];
        let outcome = match self.rpc.call("SendSms", business).await {
            Ok(body) => SendOutcome::Accepted {
                provider_id: str_field(&body, "BizId").unwrap_or_default(),
            },
            Err(outcome) => outcome,
        };
        tracing::debug!(
            push_id = %msg.push_id,
            to = %mobile.masked(),
            outcome = ?outcome.code(),
            "aliyun SendSms"
        );
        outcome
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

    /// Searches `QuerySendDetails` of the number on `sent_on` and, if that finds nothing and
    /// the next day has begun in China, the next day too (a send just before midnight).
    async fn lookup(&self, msg: &OutgoingMessage, sent_on: NaiveDate) -> Lookup {
        let Ok(phone) = MobileNumber::parse(&msg.to) else {
            return Lookup::NotFound;
        };
        let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
        let mut days = vec![sent_on];
        if let Some(next) = sent_on.succ_opt().filter(|d| *d <= today) {
            days.push(next);
        }
        for day in days {
            let mut page = 1;
            loop {
                let (total, rows) = match self.query_send_details(&phone, day, page).await {
                    Ok(r) => r,
                    Err(outcome) => {
                        tracing::warn!(push_id = %msg.push_id, code = ?outcome.code(), "aliyun QuerySendDetails failed");
                        return Lookup::Unknown;
                    }
                };
                if let Some(row) = rows
                    .iter()
                    .find(|r| r.out_id.as_deref() == Some(msg.push_id.as_str()))
                {
                    return Lookup::Found {
                        provider_id: row.biz_id.clone().unwrap_or_default(),
                    };
                }
                if rows.is_empty() || u64::from(page * PAGE_SIZE) >= total {
                    break;
                }
                page += 1;
            }
        }
        Lookup::NotFound
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
