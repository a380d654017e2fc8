//! Campaign operations on the HTTP surface:
//!
//! | path | what |
//! |---|---|
//! | `POST /l/{code}/unsubscribe` | the recipient page's controls: opt out of the push's channel (`channel=sms`, or `all`) or of the policy's category (`category=1`); form or JSON |
//! | `POST /callbacks/aliyun/sms-up` | Alibaba Cloud SmsUp (upstream messages, JSON array); `TD`/`T`/`N`/`R`/`退订` opts the number out of SMS |
//! | `POST /callbacks/tencent/sms-reply` | Tencent Cloud SMS reply callback (one JSON object, or an array) |
//! | `POST /api/v1/policies/{id}/review` | a reviewer's disclosure review (public / public_on_request / not_public + confidentiality check) |
//! | `GET /api/v1/policies/{id}/review` | the latest review |

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use domain::operator::Action;
use domain::push::PushStatus;
use domain::review::ReviewDecision;
use domain::Channel;
use serde::Deserialize;
use store::{OptOut, PolicyReview};

/// What the recipient page's controls post (form fields or JSON).
#[derive(Debug, Default, Deserialize)]
pub struct UnsubscribeForm {
    /// `sms`, `wechat`, `hotline`, or `all` (every channel).
    #[serde(default)]
    pub channel: Option<String>,
    /// Any non-empty value other than `0`/`false`: the policy's category.
    #[serde(default)]
    pub category: Option<serde_json::Value>,
    /// Everything.
    #[serde(default)]
    pub all: Option<serde_json::Value>,
}

fn truthy(v: &Option<serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => !matches!(s.trim(), "" | "0" | "false" | "no"),
        Some(serde_json::Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em\">\
         <h1 id=\"unsubscribed\">{title}</h1><p>{body}</p></body></html>"
    );
    (status, Html(html)).into_response()
}

/// `POST /l/{code}/unsubscribe`: records the opt-outs the recipient asked for. Answers a
/// short page to a form post, JSON otherwise.
pub async fn unsubscribe(
    State(s): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: UnsubscribeForm = if is_form {
        let pairs: Vec<(String, String)> = url_pairs(&body);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        UnsubscribeForm {
            channel: get("channel"),
            category: get("category").map(serde_json::Value::String),
            all: get("all").map(serde_json::Value::String),
        }
    } else if body.iter().all(u8::is_ascii_whitespace) {
        UnsubscribeForm::default()
    } else {
        parse_json(&body)?
    };
    let Some(push) = s.store.push_by_link(&code).await? else {
        return Ok(if is_form {
            page(StatusCode::NOT_FOUND, "链接无效", "该链接不存在或已失效。")
        } else {
            ApiError::not_found("link").into_response()
        });
    };
    let now = s.pipeline.now();
    if now > push.created_at + chrono::Duration::days(s.config.link_days) {
        return Ok(if is_form {
            page(StatusCode::GONE, "链接已过期", "请拨打 12333 办理退订。")
        } else {
            ApiError::new(StatusCode::GONE, "link_expired", "the link has expired").into_response()
        });
    }
    let campaign = s
        .store
        .get_campaign(&push.campaign_id)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let policy = s
        .store
        .get_policy(&campaign.policy_id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy"))?;
    let mut wanted: Vec<(Option<Channel>, Option<String>)> = Vec::new();
    if truthy(&form.all) {
        wanted.push((None, None));
    }
    match form.channel.as_deref().map(str::trim) {
        None | Some("") => {}
        Some("all") => wanted.push((None, None)),
        Some(c) => {
            let ch = Channel::parse(c).ok_or_else(|| {
                ApiError::bad_request("invalid_channel", format!("unknown channel {c:?}"))
            })?;
            wanted.push((Some(ch), None));
        }
    }
    if truthy(&form.category) {
        if policy.draft.category.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_category",
                "this policy has no category to unsubscribe from",
            ));
        }
        wanted.push((None, Some(policy.draft.category.clone())));
    }
    if wanted.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_unsubscribe",
            "say what to unsubscribe from: channel (sms, wechat, hotline, all) or category",
        ));
    }
    let mut recorded = 0;
    let mut items = Vec::new();
    for (channel, category) in wanted {
        let o = OptOut {
            subject_id: push.subject_id.clone(),
            channel,
            category: category.clone(),
            source: "recipient_page".into(),
            at: now,
        };
        if s.store.record_opt_out(&o).await? {
            recorded += 1;
        }
        items.push(serde_json::json!({"channel": channel, "category": category}));
    }
    tracing::info!(push = %push.id, recorded, "recipient unsubscribed from the page");
    if is_form {
        return Ok(page(
            StatusCode::OK,
            "已退订",
            "您的退订已生效，此后将不再通过所选方式向您推送此类通知。如需办理业务，请登录“一网通办”或拨打 12333。",
        ));
    }
    Ok(Json(serde_json::json!({"opted_out": items, "recorded": recorded})).into_response())
}

/// `application/x-www-form-urlencoded` pairs (undecodable bodies give none).
fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// Whether an SMS reply asks to stop (TD / T / N / R / 退订 / 拒收, as the providers'
/// unsubscribe rules accept them).
pub fn is_unsubscribe_reply(text: &str) -> bool {
    let t: String = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || "。！，".contains(c))
        .to_ascii_uppercase();
    matches!(
        t.as_str(),
        "TD" | "T" | "N" | "R" | "退订" | "拒收" | "退订短信" | "取消订阅"
    )
}

/// Records an SMS opt-out for the subjects we texted at this number (under our
/// signature, when the provider names it) within the reply window; false when the reply
/// is not an unsubscribe or answers nothing we sent. Errors mean "try again" (the
/// provider redelivers).
async fn sms_reply(s: &AppState, reply: &SmsReply, source: &str) -> anyhow::Result<bool> {
    if !is_unsubscribe_reply(&reply.text) {
        return Ok(false);
    }
    let Ok(mobile) = domain::ids::MobileNumber::parse(&reply.mobile) else {
        tracing::warn!("SMS reply from a number that is not a mainland mobile; ignored");
        return Ok(false);
    };
    if let Some(sign) = reply.sign.as_deref() {
        let ours = s.pipeline.config.sms_sign_name.as_str();
        if sign.trim_matches(|c| c == '【' || c == '】') != ours {
            tracing::warn!(mobile = %mobile.masked(), "SMS reply to another signature; ignored");
            return Ok(false);
        }
    }
    let since = chrono::Utc::now() - s.config.sms_reply_window;
    let mut texted = Vec::new();
    for id in s.store.subjects_by_mobile(mobile.as_str()).await? {
        let history = s.store.subject_history(&id, 50).await?;
        let recent = history.pushes.iter().any(|p| {
            p.channel == Channel::Sms.as_str()
                && p.recipient == mobile.as_str()
                && matches!(p.status, PushStatus::Sent | PushStatus::Delivered)
                && p.updated_at >= since
        });
        if recent {
            texted.push(id);
        }
    }
    if texted.is_empty() {
        tracing::warn!(
            mobile = %mobile.masked(),
            "SMS unsubscribe reply from a number we did not text recently; ignored"
        );
        return Ok(false);
    }
    for id in &texted {
        pipeline::followup::opt_out(&s.pipeline, id, Some(Channel::Sms), source).await?;
    }
    tracing::info!(
        mobile = %mobile.masked(),
        subjects = texted.len(),
        "SMS unsubscribe reply recorded"
    );
    Ok(true)
}

/// One SMS reply as the providers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReply {
    pub mobile: String,
    pub text: String,
    /// The signature the reply answered, when the provider says.
    pub sign: Option<String>,
}

/// One Alibaba SmsUp message.
#[derive(Debug, Deserialize)]
struct AliyunSmsUp {
    phone_number: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    sign_name: Option<String>,
}

/// The body of an Alibaba SmsUp callback: a JSON array of messages.
pub fn parse_aliyun_sms_up(body: &[u8]) -> Result<Vec<SmsReply>, String> {
    let msgs: Vec<AliyunSmsUp> =
        serde_json::from_slice(body).map_err(|e| format!("invalid_json: {e}"))?;
    Ok(msgs
        .into_iter()
        .map(|m| SmsReply {
            mobile: m.phone_number,
            text: m.content,
            sign: m.sign_name.filter(|s| !s.is_empty()),
        })
        .collect())
}

/// One Tencent SMS reply.
#[derive(Debug, Deserialize)]
struct TencentReply {
    mobile: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    sign: Option<String>,
}

/// The body of a Tencent SMS reply callback: one JSON object or an array; items that
/// are not replies are left out.
pub fn parse_tencent_sms_reply(body: &[u8]) -> Result<Vec<SmsReply>, String> {
    let items = match serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|e| format!("invalid_json: {e}"))?
    {
        serde_json::Value::Array(a) => a,
        v => vec![v],
    };
    Ok(items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<TencentReply>(v).ok())
        .map(|m| SmsReply {
            mobile: m.mobile,
            text: m.text,
            sign: m.sign.filter(|s| !s.is_empty()),
        })
        .collect())
}

/// `POST /callbacks/aliyun/sms-up`: Alibaba Cloud upstream messages (a JSON array of
/// `{phone_number, send_time, content, sign_name, dest_code, sequence_id}`); answers
/// `{"code":0,"msg":"接收成功"}`.
pub async fn aliyun_sms_up(State(s): State<AppState>, body: Bytes) -> Response {
    let msgs = match parse_aliyun_sms_up(&body) {
        Ok(m) => m,
        Err(_) => {
            // The reason may quote the body (numbers): not logged.
            tracing::warn!("refused a malformed SmsUp callback");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"code": 1, "msg": "bad request"})),
            )
                .into_response();
        }
    };
    for m in &msgs {
        if let Err(e) = sms_reply(&s, m, "sms_reply").await {
            tracing::error!(error = %format!("{e:#}"), "cannot record an SMS reply; the provider will retry");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"code": 1, "msg": "retry"})),
            )
                .into_response();
        }
    }
    Json(serde_json::json!({"code": 0, "msg": "接收成功"})).into_response()
}

/// `POST /callbacks/tencent/sms-reply`: Tencent Cloud SMS replies
/// (`{extend, mobile, nationcode, sign, text, time}`, one object or an array); answers
/// `{"result":0,"errmsg":"OK"}`.
pub async fn tencent_sms_reply(State(s): State<AppState>, body: Bytes) -> Response {
    let msgs = match parse_tencent_sms_reply(&body) {
        Ok(m) => m,
        Err(_) => {
            tracing::warn!("refused a malformed Tencent reply callback");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"result": 1, "errmsg": "bad request"})),
            )
                .into_response();
        }
    };
    for m in &msgs {
        if let Err(e) = sms_reply(&s, m, "sms_reply").await {
            tracing::error!(error = %format!("{e:#}"), "cannot record an SMS reply; the provider will retry");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"result": 1, "errmsg": "retry"})),
            )
                .into_response();
        }
    }
    Json(serde_json::json!({"result": 0, "errmsg": "OK"})).into_response()
}

pub fn review_json(r: &PolicyReview) -> serde_json::Value {
    serde_json::json!({
        "policy_id": r.policy_id, "disclosure": r.disclosure.as_str(),
        "confidentiality_checked": r.confidentiality_checked, "passed": r.passed,
        "note": r.note, "reviewed_by": r.reviewed_by, "at": r.at,
    })
}

/// `POST /api/v1/policies/{id}/review`: a reviewer (not the policy's author) records the
/// disclosure review. A passed review lets the policy be published; the policy moves to
/// `review` status while unpublished.
#[utoipa::path(
    post,
    path = "/api/v1/policies/{id}/review",
    operation_id = "operations_review_policy",
    tag = "policies",
    summary = "Record a policy's disclosure review (a reviewer, not its author)",
    params(("id" = String, Path, description = "The id")),
    request_body = domain::review::ReviewDecision,
    responses(
        (status = 201, description = "The review with `passed` and `refusal`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn review_policy(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    op.require(Action::Approve)?;
    let decision: ReviewDecision = parse_json(&body)?;
    let policy = s
        .store
        .get_policy(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("policy {id}")))?;
    if policy.created_by == op.id() {
        return Err(ApiError::forbidden(
            "a policy's disclosure review must be done by someone other than its author",
        ));
    }
    let before = s.store.latest_policy_review(&id).await?;
    let review = PolicyReview {
        policy_id: id.clone(),
        disclosure: decision.disclosure,
        confidentiality_checked: decision.confidentiality_checked,
        passed: decision.passed(),
        note: decision.note.clone(),
        reviewed_by: op.id().to_string(),
        at: s.pipeline.now(),
    };
    s.store.insert_policy_review(&review).await?;
    if policy.status == domain::policy::PolicyStatus::Draft {
        s.store
            .set_policy_status(&id, domain::policy::PolicyStatus::Review, review.at)
            .await?;
    }
    s.audit(
        &op,
        "policy.review",
        &id,
        serde_json::json!({
            "before": before.as_ref().map(review_json),
            "after": review_json(&review),
            "status_before": policy.status.as_str(),
        }),
    )
    .await?;
    let mut v = review_json(&review);
    v["refusal"] = decision.refusal().into();
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /api/v1/policies/{id}/review`: the latest review (404 when none).
#[utoipa::path(
    get,
    path = "/api/v1/policies/{id}/review",
    operation_id = "operations_get_review",
    tag = "policies",
    summary = "The latest disclosure review of a policy",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The review", body = serde_json::Value),
        (status = 404, description = "`not_found`: no policy or no review", body = crate::error::ErrorBody),
    )
)]
pub async fn get_review(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let r = s
        .store
        .latest_policy_review(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("review of policy {id}")))?;
    Ok(Json(review_json(&r)))
}

/// Refuses publication without a passed review: always when the latest review did not
/// pass, and when there is none if reviews are required.
pub async fn check_publishable(s: &AppState, policy_id: &str) -> ApiResult<()> {
    match s.store.latest_policy_review(policy_id).await? {
        Some(r) if r.passed => Ok(()),
        Some(r) => Err(ApiError::conflict(
            "review_not_passed",
            format!(
                "policy {policy_id} did not pass its disclosure review ({}{}); it cannot be published",
                r.disclosure.as_str(),
                if r.confidentiality_checked { "" } else { ", confidentiality check not confirmed" }
            ),
        )),
        None if s.config.require_disclosure_review => Err(ApiError::conflict(
            "review_required",
            format!(
                "policy {policy_id} has no disclosure review; a reviewer must pass it (POST /api/v1/policies/{policy_id}/review) before publication"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_replies() {
        for t in ["TD", "td", " R ", "退订", "N", "t", "拒收", "TD。"] {
            assert!(is_unsubscribe_reply(t), "{t}");
        }
        for t in ["谢谢", "RR", "", "报名", "1"] {
            assert!(!is_unsubscribe_reply(t), "{t}");
        }
    }

    #[test]
    fn form_pairs() {
        assert_eq!(
            url_pairs(b"channel=sms&category=1&x=%E9%80%80+a"),
            vec![
                ("channel".to_string(), "sms".to_string()),
                ("category".to_string(), "1".to_string()),
                ("x".to_string(), "退 a".to_string()),
            ]
        );
    }
}
