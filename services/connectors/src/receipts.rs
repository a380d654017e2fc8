//! Parsers of the providers' delivery callbacks, and the exact reply body each provider
//! expects (anything else makes it retry).
//!
//! | provider callback | parser | reply |
//! |---|---|---|
//! | Alibaba SMS `SmsReport` (JSON array) | [`parse_aliyun_sms_report`] | [`ALIYUN_SMS_REPORT_REPLY`] |
//! | Alibaba voice `VoiceReport` (JSON array) | [`parse_aliyun_voice_report`] | [`ALIYUN_VOICE_REPORT_REPLY`] |
//! | WeChat event push (XML: `TEMPLATESENDJOBFINISH`, `subscribe_msg_sent_event`) | [`parse_wechat_event`] (+ [`verify_wechat_signature`] on the query) | [`WECHAT_EVENT_REPLY`] |
//! | Tencent SMS status callback (JSON array) | [`parse_tencent_sms_report`] | [`TENCENT_SMS_REPORT_REPLY`] |
//!
//! Callbacks can repeat: handlers must be idempotent (a receipt for a push that already
//! has its final status changes nothing). Matching a receipt to a push: by `push_id` when
//! the provider echoes it (Alibaba `out_id` of a single send; for voice it is the short
//! `OutId`, see [`crate::aliyun_voice::voice_out_id`]), otherwise by `provider_id`
//! (Alibaba `biz_id:phone_number`, WeChat `MsgID`, Tencent `sid`), which
//! [`crate::SendOutcome::Accepted`] returned.

use serde::Deserialize;
use sha1::{Digest, Sha1};

/// One delivery report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// `BizId` / WeChat `MsgID` / `CallId` / Tencent `sid`.
    pub provider_id: Option<String>,
    /// Our push id when the provider echoes it (`out_id`).
    pub push_id: Option<String>,
    /// Reached the handset / account / was answered.
    pub delivered: bool,
    /// The provider's failure code and text when not delivered.
    pub error: Option<String>,
    /// Keys pressed during a call.
    pub dtmf: Option<String>,
}

/// A callback body that is not what the provider sends.
#[derive(Debug, thiserror::Error)]
#[error("invalid_receipt: {0}")]
pub struct ReceiptError(String);

pub const ALIYUN_SMS_REPORT_REPLY: &str = r#"{"code":0,"msg":"接收成功"}"#;
pub const ALIYUN_VOICE_REPORT_REPLY: &str = r#"{"code":0,"msg":"接收成功"}"#;
/// WeChat accepts `success` (or an empty body) for an event it should not resend.
pub const WECHAT_EVENT_REPLY: &str = "success";
pub const TENCENT_SMS_REPORT_REPLY: &str = r#"{"result":0,"errmsg":"OK"}"#;

fn json_items(body: &[u8]) -> Result<Vec<serde_json::Value>, ReceiptError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(a)) => Ok(a),
        Ok(v @ serde_json::Value::Object(_)) => Ok(vec![v]),
        Ok(_) => Err(ReceiptError("expected a JSON array".into())),
        Err(e) => Err(ReceiptError(format!("not JSON: {e}"))),
    }
}

fn s(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn error_text(code: Option<String>, msg: Option<String>) -> String {
    match (code, msg) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => "failed".to_string(),
    }
}

/// Alibaba `SmsReport`: `[{phone_number, send_time, report_time, success, err_code,
/// err_msg, sms_size, biz_id, out_id}]`. Delivered iff `success` is true.
///
/// `provider_id` is `"{biz_id}:{phone_number}"` (see [`crate::aliyun_sms::provider_id`]):
/// one `BizId` covers every number of a request. `out_id` is the request's `OutId`: it is
/// the push id only when it names one push; a `SendBatchSms` lists several (`p1,p2`) and
/// its reports match by provider id alone.
pub fn parse_aliyun_sms_report(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    json_items(body)?
        .iter()
        .map(|it| {
            let delivered = match it.get("success") {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::String(s)) => s == "true",
                _ => return Err(ReceiptError("SmsReport item without success".into())),
            };
            let provider_id = match (s(it, "biz_id"), s(it, "phone_number")) {
                (Some(biz), Some(phone)) => Some(crate::aliyun_sms::provider_id(&biz, &phone)),
                (biz, _) => biz,
            };
            Ok(Receipt {
                provider_id,
                push_id: s(it, "out_id").filter(|o| !o.contains(',')),
                delivered,
                error: (!delivered).then(|| error_text(s(it, "err_code"), s(it, "err_msg"))),
                dtmf: None,
            })
        })
        .collect()
}

/// Voice status codes that mean the call was answered (listened fully, hung up early,
/// no key pressed in time): the message reached the person, so it counts as delivered and
/// is not called again.
pub const VOICE_ANSWERED: [&str; 3] = ["200000", "200001", "200008"];

/// Alibaba `VoiceReport`: `[{call_id, status_code, status_msg, out_id, dtmf, duration, …}]`.
pub fn parse_aliyun_voice_report(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    json_items(body)?
        .iter()
        .map(|it| {
            let code = s(it, "status_code")
                .ok_or_else(|| ReceiptError("VoiceReport item without status_code".into()))?;
            let delivered = VOICE_ANSWERED.contains(&code.as_str());
            Ok(Receipt {
                provider_id: s(it, "call_id"),
                push_id: s(it, "out_id"),
                delivered,
                error: (!delivered).then(|| error_text(Some(code.clone()), s(it, "status_msg"))),
                dtmf: s(it, "dtmf"),
            })
        })
        .collect()
}

/// Tencent SMS status callback: `[{user_receive_time, nationcode, mobile, report_status:
/// "SUCCESS"|"FAIL", errmsg, description, sid}]`.
pub fn parse_tencent_sms_report(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    json_items(body)?
        .iter()
        .map(|it| {
            let status = s(it, "report_status")
                .ok_or_else(|| ReceiptError("item without report_status".into()))?;
            let delivered = status == "SUCCESS";
            Ok(Receipt {
                provider_id: s(it, "sid"),
                push_id: None,
                delivered,
                error: (!delivered).then(|| error_text(s(it, "errmsg"), s(it, "description"))),
                dtmf: None,
            })
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct XmlEvent {
    #[serde(rename = "MsgType")]
    msg_type: String,
    #[serde(rename = "Event")]
    event: String,
    #[serde(rename = "MsgID")]
    msg_id: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "SubscribeMsgSentEvent")]
    sent: Option<SentList>,
    #[serde(rename = "List")]
    list: Vec<SentItem>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SentList {
    #[serde(rename = "List")]
    list: Vec<SentItem>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SentItem {
    #[serde(rename = "MsgID")]
    msg_id: Option<String>,
    #[serde(rename = "ErrorCode")]
    error_code: Option<String>,
    #[serde(rename = "ErrorStatus")]
    error_status: Option<String>,
}

/// A WeChat event push. `TEMPLATESENDJOBFINISH`: `Status` `success` → delivered;
/// `failed:user block` / `failed: system failed` → not, with the status as error.
/// `subscribe_msg_sent_event`: one receipt per `List` item (`ErrorCode` 0 → delivered).
/// Other events (subscribe, clicks…) give no receipts.
pub fn parse_wechat_event(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    let text = std::str::from_utf8(body).map_err(|_| ReceiptError("not UTF-8".into()))?;
    let ev: XmlEvent =
        quick_xml::de::from_str(text).map_err(|e| ReceiptError(format!("not WeChat XML: {e}")))?;
    if ev.msg_type != "event" {
        return Ok(Vec::new());
    }
    match ev.event.as_str() {
        "TEMPLATESENDJOBFINISH" => {
            let status = ev.status.unwrap_or_default();
            let delivered = status == "success";
            Ok(vec![Receipt {
                provider_id: ev.msg_id,
                push_id: None,
                delivered,
                error: (!delivered).then_some(status),
                dtmf: None,
            }])
        }
        "subscribe_msg_sent_event" => {
            let items = ev.sent.map(|s| s.list).unwrap_or_default();
            Ok(items
                .into_iter()
                .chain(ev.list)
                .map(|it| {
                    let delivered = it.error_code.as_deref() == Some("0");
                    Receipt {
                        provider_id: it.msg_id,
                        push_id: None,
                        delivered,
                        error: (!delivered).then(|| error_text(it.error_code, it.error_status)),
                        dtmf: None,
                    }
                })
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// WeChat signs each push to the server URL with query `signature`, `timestamp`, `nonce`:
/// `signature = hex(sha1(sorted([token, timestamp, nonce]).concat()))`.
pub fn verify_wechat_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    wechat_signature(token, timestamp, nonce).eq_ignore_ascii_case(signature)
}

/// The `signature` WeChat computes (see [`verify_wechat_signature`]).
pub fn wechat_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}
