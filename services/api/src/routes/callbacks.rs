//! Provider receipt callbacks. Each answers in the provider's own reply shape; a repeated
//! receipt changes nothing (the push already left `sent`).
//!
//! A callback checks its receipts (one store read for the pushes they name), queues them
//! ([`crate::receipts::ReceiptQueue`], written in batches by one applier task) and
//! answers at once; with the queue full it answers 503 and the provider sends again.
//!
//! | path | provider callback |
//! |---|---|
//! | `POST /callbacks/aliyun/sms-report?token=…` | Alibaba Cloud SmsReport (JSON array) |
//! | `POST /callbacks/aliyun/sms-up?token=…` | Alibaba Cloud SmsUp (handled in `operations`) |
//! | `POST /callbacks/aliyun/voice-report?token=…` | Alibaba Cloud VoiceReport (JSON array) |
//! | `POST /callbacks/tencent/sms-report?token=…` | Tencent Cloud SMS status callback (JSON array) |
//! | `POST /callbacks/tencent/sms-reply?token=…` | Tencent Cloud SMS reply (handled in `operations`) |
//! | `POST /callbacks/wechat/events` | WeChat `TEMPLATESENDJOBFINISH` / `subscribe_msg_sent_event` (XML, signed) |
//!
//! Who may call: every Alibaba and Tencent callback URL carries that provider's secret
//! (`?token=`, compared in constant time); WeChat signs each event with the server
//! token. With a source allowlist configured, only those addresses may call at all.
//! Anything else is answered 401 and changes nothing; repeated failures from one address
//! are answered 429.
//!
//! What a caller may change: a receipt only a push of the route's channel that is still
//! `sending`/`sent` (and, when the push already has the provider's id, only with that
//! id); a key press only a hotline push whose call id matches. A receipt that names a
//! provider id no push carries yet waits (bounded) for the send to be recorded, then
//! expires; the settling job asks the provider about a push whose receipt never came.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use connectors::receipts::{self, Receipt, ReceiptError};
use domain::push::PushStatus;
use domain::Channel;
use std::collections::HashMap;
use std::net::IpAddr;
use store::ReceiptUpdate;

/// Who may call the provider callbacks.
#[derive(Clone)]
pub struct CallbackAuth {
    /// The secret in every Alibaba callback URL (`?token=`).
    pub aliyun_secret: String,
    /// The secret in every Tencent callback URL (`?token=`).
    pub tencent_secret: String,
    /// Source networks allowed to call (the TCP peer); empty: any address.
    pub allow_from: Vec<ipnet::IpNet>,
}

/// Never prints the secrets.
impl std::fmt::Debug for CallbackAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackAuth")
            .field("allow_from", &self.allow_from)
            .finish_non_exhaustive()
    }
}

impl CallbackAuth {
    /// Fresh random secrets (the embedded default: the built-in simulators learn them
    /// in-process, nobody else can).
    pub fn random() -> Self {
        Self {
            aliyun_secret: random_secret(),
            tencent_secret: random_secret(),
            allow_from: Vec::new(),
        }
    }

    /// The provider's secret for a callback path (`None`: WeChat, which signs instead).
    fn secret_for(&self, path: &str) -> Option<&str> {
        if path.starts_with("/callbacks/aliyun/") {
            Some(&self.aliyun_secret)
        } else if path.starts_with("/callbacks/tencent/") {
            Some(&self.tencent_secret)
        } else {
            None
        }
    }

    fn allows(&self, peer: Option<IpAddr>) -> bool {
        if self.allow_from.is_empty() {
            return true;
        }
        let Some(ip) = peer else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow_from.iter().any(|n| n.contains(&ip))
    }
}

/// 32 random bytes, hex.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Equal strings, compared in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let (x, y) = (
        sha2::Sha256::digest(a.as_bytes()),
        sha2::Sha256::digest(b.as_bytes()),
    );
    bool::from(x.as_slice().ct_eq(y.as_slice()))
}

/// The callback routes, behind [`authenticate`].
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/callbacks/aliyun/sms-report", post(aliyun_sms))
        .route("/callbacks/tencent/sms-report", post(tencent_sms))
        .route("/callbacks/wechat/events", post(wechat))
        .route("/callbacks/aliyun/voice-report", post(aliyun_voice))
        .route(
            "/callbacks/aliyun/sms-up",
            post(super::operations::aliyun_sms_up),
        )
        .route(
            "/callbacks/tencent/sms-reply",
            post(super::operations::tencent_sms_reply),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
}

fn refused() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "this callback URL needs the provider's secret (?token=) from an allowed address",
    )
    .into_response()
}

/// Refuses (401) a callback from outside the allowlist or without its provider's secret;
/// an address that keeps failing is answered 429 until it slows down.
pub async fn authenticate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let peer = crate::guard::peer_ip(&req);
    let auth = &s.config.callbacks;
    let ok = auth.allows(peer)
        && match auth.secret_for(req.uri().path()) {
            None => true,
            Some(secret) => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
                pairs
                    .iter()
                    .find(|(k, _)| k == "token")
                    .is_some_and(|(_, t)| same_secret(t, secret))
            }
        };
    if ok {
        return next.run(req).await;
    }
    if !s.guard.failed_callbacks.check(peer) {
        return crate::guard::too_many_requests();
    }
    tracing::warn!("refused a provider callback without its secret or from an address not allowed");
    refused()
}

/// Whether a receipt may touch its push: the push (`push`, read when the receipt names
/// one) is of the route's channel, still waiting for a receipt, and carries no other
/// provider id.
fn may_apply(r: &Receipt, push: Option<&store::PushRecord>, channel: Channel) -> bool {
    if r.push_id.is_none() {
        return true;
    }
    let Some(push) = push else {
        return r.provider_id.is_some();
    };
    let state_ok = matches!(push.status, PushStatus::Sending | PushStatus::Sent);
    let id_ok = match (&push.provider_id, &r.provider_id) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    };
    push.channel == channel && state_ok && id_ok
}

async fn apply(
    s: &AppState,
    parsed: Result<Vec<Receipt>, ReceiptError>,
    channel: Channel,
    reply: &'static str,
    json: bool,
) -> Response {
    let receipts = match parsed {
        Ok(r) => r,
        Err(e) => {
            // The parser's reason may quote the body; the caller gets it, the log not.
            tracing::warn!("refused a malformed receipt");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let now = chrono::Utc::now();
    // The pushes the receipts name, read once: the checks below and key presses go by them.
    let ids: Vec<String> = receipts.iter().filter_map(|r| r.push_id.clone()).collect();
    let pushes: HashMap<String, store::PushRecord> = if ids.is_empty() {
        HashMap::new()
    } else {
        match s.store.get_pushes(&ids).await {
            Ok(found) => found.into_iter().map(|p| (p.id.clone(), p)).collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pushes of receipts; the provider will retry");
                return (StatusCode::INTERNAL_SERVER_ERROR, "retry").into_response();
            }
        }
    };
    let push_of = |r: &Receipt| r.push_id.as_ref().and_then(|id| pushes.get(id));
    let mut updates = Vec::with_capacity(receipts.len());
    for r in &receipts {
        let push = push_of(r);
        if !may_apply(r, push, channel) {
            continue;
        }
        updates.push(ReceiptUpdate {
            provider_id: r.provider_id.clone(),
            push_id: r.push_id.clone(),
            delivered: r.delivered,
            error: r.error.clone(),
            retry_at: call_retry(s, r, push, now),
        });
    }
    let ignored = receipts.len() - updates.len();
    let queued = updates.len();
    if !updates.is_empty() && !s.receipts.offer(updates) {
        tracing::warn!(
            receipts = queued,
            "receipt queue full; the provider is asked to send again"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "retry").into_response();
    }
    for r in receipts
        .iter()
        .filter(|r| r.dtmf.as_deref().is_some_and(|d| !d.is_empty()))
    {
        if let Err(e) = key_press(s, r, push_of(r)).await {
            tracing::error!(error = %format!("{e:#}"), "cannot act on a key press; the provider will retry");
            return (StatusCode::INTERNAL_SERVER_ERROR, "retry").into_response();
        }
    }
    if ignored > 0 {
        // Repeats of applied receipts land here too, so not a warning.
        tracing::debug!(
            ignored,
            "receipts for pushes that cannot take them were ignored"
        );
    }
    tracing::debug!(receipts = receipts.len(), queued, "receipts queued");
    let ct = if json {
        "application/json"
    } else {
        "text/plain"
    };
    ([(axum::http::header::CONTENT_TYPE, ct)], reply).into_response()
}

/// Alibaba call status codes worth calling again later: the line was busy, nobody answered.
const CALL_AGAIN: [&str; 2] = ["200002", "200003"];

/// When a call that found the line busy or went unanswered should be tried again, on the
/// hotline's retry schedule; `None` for every other receipt, and once the schedule's
/// deadline has passed (the push then fails with the call's status).
fn call_retry(
    s: &AppState,
    r: &Receipt,
    push: Option<&store::PushRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let busy = !r.delivered
        && r.error
            .as_deref()
            .is_some_and(|e| CALL_AGAIN.iter().any(|c| e.starts_with(c)));
    if !busy || r.provider_id.is_none() {
        return None;
    }
    let push = push.filter(|p| p.channel == domain::Channel::Hotline)?;
    pipeline::retry::CALLS.next_attempt_scaled(
        push.attempts,
        push.created_at,
        now,
        None,
        s.pipeline.config.retry_scale,
    )
}

/// Hotline key presses: 1 sends the recipient link by SMS, 0 opts out of our notices.
/// Both are idempotent, so a repeated report changes nothing. Only for a hotline push
/// that was called (sent or delivered) under the reported call id.
async fn key_press(
    s: &AppState,
    r: &Receipt,
    push: Option<&store::PushRecord>,
) -> anyhow::Result<()> {
    let keys = r.dtmf.as_deref().unwrap_or("");
    let Some(push) = push.filter(|p| key_press_matches(p, r)) else {
        tracing::warn!("key press for a call we cannot match; ignored");
        return Ok(());
    };
    if keys.contains('0') {
        pipeline::followup::opt_out(&s.pipeline, &push.subject_id, None, "hotline_dtmf_0").await?;
    } else if keys.contains('1') {
        pipeline::followup::link_by_sms(&s.pipeline, push).await?;
    }
    Ok(())
}

/// A key press belongs to a hotline push that was called, under the same call id.
fn key_press_matches(push: &store::PushRecord, r: &Receipt) -> bool {
    push.channel == Channel::Hotline
        && matches!(push.status, PushStatus::Sent | PushStatus::Delivered)
        && push.provider_id.is_some()
        && push.provider_id == r.provider_id
}

async fn aliyun_sms(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_aliyun_sms_report(&body),
        Channel::Sms,
        receipts::ALIYUN_SMS_REPORT_REPLY,
        true,
    )
    .await
}

async fn tencent_sms(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_tencent_sms_report(&body),
        Channel::Sms,
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
    let expected =
        receipts::wechat_signature(&s.config.wechat_callback_token, &q.timestamp, &q.nonce);
    if !same_secret(&expected, &q.signature.to_ascii_lowercase()) {
        tracing::warn!("refused a WeChat event with a bad signature");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    apply(
        &s,
        receipts::parse_wechat_event(&body),
        Channel::Wechat,
        receipts::WECHAT_EVENT_REPLY,
        false,
    )
    .await
}

async fn aliyun_voice(State(s): State<AppState>, body: Bytes) -> Response {
    apply(
        &s,
        receipts::parse_aliyun_voice_report(&body),
        Channel::Hotline,
        receipts::ALIYUN_VOICE_REPORT_REPLY,
        true,
    )
    .await
}
