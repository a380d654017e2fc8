//! Provider receipt callbacks. Each answers in the provider's own reply shape; a repeated
//! receipt changes nothing (the push already left `sent`).
//!
//! | path | provider callback |
//! |---|---|
//! | `POST /callbacks/aliyun/sms-report` | Alibaba Cloud SmsReport (JSON array) |
//! | `POST /callbacks/tencent/sms-report` | Tencent Cloud SMS status callback (JSON array) |
//! | `POST /callbacks/wechat/events` | WeChat `TEMPLATESENDJOBFINISH` / `subscribe_msg_sent_event` (XML) |
//! | `POST /callbacks/aliyun/voice-report` | Alibaba Cloud VoiceReport (JSON array) |

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use connectors::receipts::{self, Receipt, ReceiptError};
use store::ReceiptUpdate;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/callbacks/aliyun/sms-report", post(aliyun_sms))
        .route("/callbacks/tencent/sms-report", post(tencent_sms))
        .route("/callbacks/wechat/events", post(wechat))
        .route("/callbacks/aliyun/voice-report", post(aliyun_voice))
}

async fn apply(
    s: &AppState,
    parsed: Result<Vec<Receipt>, ReceiptError>,
    reply: &'static str,
    json: bool,
) -> Response {
    let receipts = match parsed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "refused a malformed receipt");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let now = chrono::Utc::now();
    let mut matched = 0usize;
    for r in &receipts {
        let retry_at = match call_retry(s, r, now).await {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the push of a call report; the provider will retry");
                return (StatusCode::INTERNAL_SERVER_ERROR, "retry").into_response();
            }
        };
        let update = ReceiptUpdate {
            provider_id: r.provider_id.clone(),
            push_id: r.push_id.clone(),
            delivered: r.delivered,
            error: r.error.clone(),
            retry_at,
        };
        match s.store.apply_receipt(&update, now).await {
            Ok(true) => matched += 1,
            Ok(false) => {
                if update.provider_id.is_some() {
                    tokio::spawn(apply_late(s.clone(), update));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record a receipt; the provider will retry");
                return (StatusCode::INTERNAL_SERVER_ERROR, "retry").into_response();
            }
        }
    }
    for r in receipts
        .iter()
        .filter(|r| r.dtmf.as_deref().is_some_and(|d| !d.is_empty()))
    {
        if let Err(e) = key_press(s, r).await {
            tracing::error!(error = %format!("{e:#}"), "cannot act on a key press; the provider will retry");
            return (StatusCode::INTERNAL_SERVER_ERROR, "retry").into_response();
        }
    }
    tracing::debug!(receipts = receipts.len(), matched, "receipts applied");
    let ct = if json {
        "application/json"
    } else {
        "text/plain"
    };
    ([(axum::http::header::CONTENT_TYPE, ct)], reply).into_response()
}

/// A receipt can overtake the provider's answer to the send: it names a provider id the
/// push does not carry yet. It is applied again for a few seconds after the provider has
/// had its reply; a duplicate of an applied receipt simply never matches.
async fn apply_late(s: AppState, update: ReceiptUpdate) {
    for _ in 0..25 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        match s.store.apply_receipt(&update, chrono::Utc::now()).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot record a late receipt");
                return;
            }
        }
    }
}

/// Alibaba call status codes worth calling again later: the line was busy, nobody answered.
const CALL_AGAIN: [&str; 2] = ["200002", "200003"];

/// When a call that found the line busy or went unanswered should be tried again, on the
/// hotline's retry schedule; `None` for every other receipt, and once the schedule's
/// deadline has passed (the push then fails with the call's status).
async fn call_retry(
    s: &AppState,
    r: &Receipt,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let busy = !r.delivered
        && r.error
            .as_deref()
            .is_some_and(|e| CALL_AGAIN.iter().any(|c| e.starts_with(c)));
    if !busy || r.provider_id.is_none() {
        return Ok(None);
    }
    let Some(push) = (match &r.push_id {
        Some(id) => s.store.get_push(id).await?,
        None => None,
    }) else {
        return Ok(None);
    };
    if push.channel != domain::Channel::Hotline {
        return Ok(None);
    }
    Ok(pipeline::retry::CALLS.next_attempt_scaled(
        push.attempts,
        push.created_at,
        now,
        None,
        s.pipeline.config.retry_scale,
    ))
}

/// Hotline key presses: 1 sends the recipient link by SMS, 0 opts out of our notices.
/// Both are idempotent, so a repeated report changes nothing.
async fn key_press(s: &AppState, r: &Receipt) -> anyhow::Result<()> {
    let keys = r.dtmf.as_deref().unwrap_or("");
    let push = match &r.push_id {
        Some(id) => s.store.get_push(id).await?,
        None => None,
    };
    let Some(push) = push else {
        tracing::warn!("key press for a call we cannot match");
        return Ok(());
    };
    if keys.contains('0') {
        pipeline::followup::opt_out(&s.pipeline, &push.subject_id, None, "hotline_dtmf_0").await?;
    } else if keys.contains('1') {
        pipeline::followup::link_by_sms(&s.pipeline, &push).await?;
    }
    Ok(())
}

async fn aliyun_sms(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_aliyun_sms_report(&body),
        receipts::ALIYUN_SMS_REPORT_REPLY,
        true,
    )
    .await
}

async fn tencent_sms(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_tencent_sms_report(&body),
        receipts::TENCENT_SMS_REPORT_REPLY,
        true,
    )
    .await
}

#[derive(serde::Deserialize)]
struct WechatSignature {
    #[serde(default)]
    signature: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    nonce: String,
}

async fn wechat(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<WechatSignature>,
    body: Bytes,
) -> Response {
    if !receipts::verify_wechat_signature(
        &s.config.wechat_callback_token,
        &q.timestamp,
        &q.nonce,
        &q.signature,
    ) {
        tracing::warn!("refused a WeChat event with a bad signature");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    apply(
        &s,
        receipts::parse_wechat_event(&body),
        receipts::WECHAT_EVENT_REPLY,
        false,
    )
    .await
}

async fn aliyun_voice(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_aliyun_voice_report(&body),
        receipts::ALIYUN_VOICE_REPORT_REPLY,
        true,
    )
    .await
}
