//! Opt-outs reviewed and undone by operators: `GET /api/v1/opt-outs` (any operator; the
//! subject masked unless the role may see personal data) and
//! `POST /api/v1/opt-outs/undo` (roles that manage subjects), audited as `opt_out.undo`
//! with who, when, the reason and before/after.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::operator::Action;
use domain::Channel;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{OptOut, OptOutFilter};

/// Opt-outs per page, at most.
const PAGE: u32 = 200;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    subject_id: Option<String>,
    /// `sms`, `wechat`, `hotline`, or `all` for opt-outs of every channel.
    channel: Option<String>,
    source: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<i64>,
    limit: Option<u32>,
}

/// An opt-out as operators see it: the subject masked unless `personal`.
pub fn opt_out_json(o: &OptOut, personal: bool) -> Value {
    json!({
        "subject_id": if personal { o.subject_id.clone() } else { domain::ids::mask_subject_id(&o.subject_id) },
        "channel": o.channel.map(|c| c.as_str()),
        "category": o.category,
        "source": o.source,
        "at": o.at,
    })
}

fn channel_name(c: Option<&str>) -> ApiResult<Option<String>> {
    match c {
        None | Some("") => Ok(None),
        Some("all") => Ok(Some("all".into())),
        Some(c) => Channel::parse(c)
            .map(|ch| Some(ch.as_str().to_string()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_channel",
                    format!("channel {c:?} is not sms, wechat, hotline or all"),
                )
            }),
    }
}

/// The opt-outs a query selects, and the next cursor (shared by the API and the console).
pub async fn list_page(s: &AppState, q: &ListQuery) -> ApiResult<(Vec<OptOut>, Option<i64>)> {
    let filter = OptOutFilter {
        subject_id: q.subject_id.clone().filter(|x| !x.is_empty()),
        channel: channel_name(q.channel.as_deref())?,
        source: q.source.clone().filter(|x| !x.is_empty()),
        since: q.since,
        until: q.until,
    };
    let offset = q.cursor.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let items = s.store.list_opt_outs(&filter, offset, limit).await?;
    let next = (items.len() == limit as usize).then_some(offset + i64::from(limit));
    Ok((items, next))
}

/// `GET /api/v1/opt-outs?subject_id=&channel=&source=&since=&until=&cursor=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/opt-outs",
    operation_id = "opt_outs_list",
    tag = "opt-outs",
    summary = "Opt-outs, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "`{items: [{subject_id, channel, category, source, at}], next}`", body = serde_json::Value),
        (status = 400, description = "`invalid_cursor` or `invalid_channel`", body = crate::error::ErrorBody),
    )
)]
pub async fn list(
    State(s): State<AppState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    op.require(Action::Read)?;
    let (items, next) = list_page(&s, &q).await?;
    let personal = op.may(Action::ReadPersonal);
    let items: Vec<Value> = items.iter().map(|o| opt_out_json(o, personal)).collect();
    Ok(Json(
        json!({"items": items, "next": next.map(|n| n.to_string()), "masked": !personal}),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Undo {
    pub subject_id: String,
    /// The opt-out's channel; absent or null for a category opt-out or one of everything.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub reason: String,
}

/// Undoes one opt-out (shared by the API and the console): the subject may be sent to
/// again on that channel or category.
pub async fn undo_one(s: &AppState, op: &Operator, req: Undo) -> ApiResult<Value> {
    op.require(Action::WriteSubjects)?;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_opt_out",
            "a reason is required to undo an opt-out",
        ));
    }
    let channel = match channel_name(req.channel.as_deref())? {
        None => None,
        Some(c) if c == "all" => None,
        Some(c) => Channel::parse(&c),
    };
    let category = req.category.as_deref().filter(|c| !c.is_empty());
    let removed = s
        .store
        .remove_opt_out(&req.subject_id, channel, category)
        .await?
        .ok_or_else(|| ApiError::not_found("that opt-out"))?;
    let before = opt_out_json(&removed, false);
    s.audit(
        op,
        "opt_out.undo",
        &domain::ids::mask_subject_id(&removed.subject_id),
        json!({"before": before, "after": null, "reason": reason}),
    )
    .await?;
    Ok(json!({"undone": opt_out_json(&removed, op.may(Action::ReadPersonal)), "reason": reason}))
}

/// `POST /api/v1/opt-outs/undo` `{"subject_id", "channel", "category", "reason"}`.
#[utoipa::path(
    post,
    path = "/api/v1/opt-outs/undo",
    operation_id = "opt_outs_undo",
    tag = "opt-outs",
    summary = "Remove exactly one opt-out (editor or admin), with a reason",
    request_body = Undo,
    responses(
        (status = 200, description = "`{undone, reason}`", body = serde_json::Value),
        (status = 400, description = "`invalid_json` or `invalid_opt_out`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn undo(State(s): State<AppState>, op: Operator, body: Bytes) -> ApiResult<Json<Value>> {
    let req: Undo = parse_json(&body)?;
    Ok(Json(undo_one(&s, &op, req).await?))
}
