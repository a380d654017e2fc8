//! What the built-in provider simulators received (`GET /api/v1/sandbox/messages`).

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use domain::operator::Action;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SandboxQuery {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/sandbox/messages",
    operation_id = "sandbox_messages",
    tag = "sandbox",
    summary = "What the built-in provider simulators received, in order",
    params(SandboxQuery),
    responses(
        (status = 200, description = "`{items: [{channel, to, content, campaign_id, subject_id}], next}`", body = serde_json::Value),
        (status = 400, description = "`invalid_cursor`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no simulators in this process", body = crate::error::ErrorBody),
    )
)]
pub async fn messages(
    State(s): State<AppState>,
    op: Operator,
    Query(q): Query<SandboxQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::ReadPersonal)?;
    let sandbox = s.sandbox.as_ref().ok_or_else(|| {
        ApiError::not_found("the sandbox (this process runs no provider simulators)")
    })?;
    let after: i64 = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse().map_err(|_| {
            ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
        })?,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let campaign = q.campaign_id.as_deref().filter(|c| !c.is_empty());
    let items = sandbox
        .try_list(campaign, after, limit)
        .await
        .map_err(|e| anyhow::anyhow!("sandbox: {e}"))?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|m| m.seq.to_string()))
        .flatten();
    Ok(Json(serde_json::json!({"items": items, "next": next})))
}
