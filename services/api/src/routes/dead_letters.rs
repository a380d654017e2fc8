//! Dead letters: pushes that failed for good, with their last error, and their replay.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use bytes::Bytes;
use domain::operator::Action;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    operation_id = "dead_letters_list",
    tag = "dead-letters",
    summary = "Pushes that failed for good, with their last error",
    params(ListQuery),
    responses(
        (status = 200, description = "`{items, next}`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn list(
    State(s): State<AppState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let campaign = q.campaign_id.as_deref().filter(|c| !c.is_empty());
    let rows = s
        .store
        .failed_pushes(campaign, q.cursor.unwrap_or(0), 500)
        .await?;
    let next = (campaign.is_some() && rows.len() == 500)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"id": r.id, "campaign_id": r.campaign_id, "channel": r.channel,
            "error": r.error, "attempts": r.attempts, "updated_at": r.updated_at})
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next": next})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ReplayBody {
    #[serde(default)]
    push_ids: Vec<String>,
    /// Every dead letter of this campaign.
    #[serde(default)]
    campaign_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    operation_id = "dead_letters_replay",
    tag = "dead-letters",
    summary = "Send failed pushes back to the queue",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "`{replayed}`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn replay(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Launch)?;
    let req: ReplayBody = parse_json(&body)?;
    let mut ids = req.push_ids;
    if let Some(c) = req.campaign_id.as_deref() {
        let mut after = 0;
        loop {
            let page = s.store.failed_pushes(Some(c), after, 5000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            ids.extend(page.into_iter().map(|r| r.id));
        }
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "nothing_to_replay",
            "give push_ids or a campaign_id with dead letters",
        ));
    }
    let moved = s.store.replay_failed(&ids, s.pipeline.now()).await?;
    s.audit(
        &op,
        "dead_letters.replay",
        req.campaign_id.as_deref().unwrap_or("pushes"),
        serde_json::json!({"requested": ids.len(), "replayed": moved}),
    )
    .await?;
    s.pipeline.wake.notify_waiters();
    Ok(Json(serde_json::json!({"replayed": moved})))
}
