//! A push's record: `GET /api/v1/pushes/{id}/events`, every step of one push oldest
//! first (shared with the console's push page and the subject history).
//!
//! Events hold no recipient and no subject id; free text a provider answered (an error
//! message may quote a number) is masked for roles that may not see personal data.

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use domain::operator::Action;
use serde_json::{json, Value};
use store::{PushRecord, StoredEvent};

/// One event as the API answers it.
pub fn event_json(e: &StoredEvent, push: Option<&PushRecord>, personal: bool) -> Value {
    let ev = &e.event;
    let mut detail = ev.detail.clone();
    if !personal {
        if let Some(d) = detail.as_mut() {
            mask_value(d);
        }
    }
    // The planned event refers to the explanation the push row keeps.
    if ev.kind == domain::push_event::EventType::Planned {
        if let Some(p) = push {
            let mut d = detail.unwrap_or_else(|| json!({}));
            d["explanation"] = json!(p.explanation);
            detail = Some(d);
        }
    }
    json!({
        "at": ev.at,
        "type": ev.kind.as_str(),
        "channel": ev.channel.map(|c| c.as_str()),
        "actor": ev.actor,
        "detail": detail,
    })
}

/// The push (when it still exists) and its events; 404 when neither is known.
pub async fn push_trail(
    s: &AppState,
    id: &str,
    personal: bool,
) -> ApiResult<(Option<PushRecord>, Vec<Value>)> {
    let push = s.store.get_push(id).await?;
    let events = s.store.push_events(id).await?;
    if push.is_none() && events.is_empty() {
        return Err(ApiError::not_found(format!("push {id}")));
    }
    let items = events
        .iter()
        .map(|e| event_json(e, push.as_ref(), personal))
        .collect();
    Ok((push, items))
}

/// `GET /api/v1/pushes/{id}/events` → `{"items": [{"at", "type", "channel", "actor",
/// "detail"}]}`, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/pushes/{id}/events",
    operation_id = "pushes_events",
    tag = "pushes",
    summary = "A push's trail: every transition with its time and actor, oldest first",
    params(("id" = String, Path, description = "The push id")),
    responses(
        (status = 200, description = "`{\"items\": [{\"at\", \"type\", \"channel\", \"actor\", \"detail\"}]}`; digits that could be a mobile or ID number masked in `detail` unless the role may read personal data", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn events(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    op.require(Action::Read)?;
    let (_, items) = push_trail(&s, &id, op.may(Action::ReadPersonal)).await?;
    Ok(Json(json!({ "items": items })))
}

/// Masks, in every string of `v`, runs of digits long enough to be a mobile number or
/// an ID number (the head and tail kept).
pub fn mask_value(v: &mut Value) {
    match v {
        Value::String(s) => *s = mask_digits(s),
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        Value::Object(map) => map.values_mut().for_each(mask_value),
        _ => {}
    }
}

/// `s` with every run of 11 or more digits (or 17 digits and an `X`) masked.
fn mask_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 11 {
            out.push_str(&domain::ids::mask_any(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() || ((c == 'X' || c == 'x') && run.len() == 17) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_free_text_are_masked() {
        let mut v = json!({"answer": "isv.MOBILE_NUMBER_ILLEGAL: 13812345678 无效", "code": 43004,
                           "ids": ["11010519491231002X"]});
        mask_value(&mut v);
        let text = v.to_string();
        assert!(!text.contains("13812345678"), "{text}");
        assert!(!text.contains("11010519491231002X"), "{text}");
        assert!(text.contains("138"), "head kept: {text}");
        assert_eq!(v["code"], 43004, "numbers that are not text stay");
        assert_eq!(
            mask_digits("43004: require subscribe"),
            "43004: require subscribe"
        );
    }
}
