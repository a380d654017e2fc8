//! Campaigns: create (templates and filter checked), submit, approve (a different
//! reviewer), launch, status with counts, pushes with explanations.

use super::tags::invalid_rule;
use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::campaign::{CampaignDraft, CampaignError, CampaignStatus};
use domain::operator::Action;
use domain::policy::PolicyStatus;
use domain::rule::Explanation;
use serde::Deserialize;
use store::{CampaignChange, CampaignRecord};

fn campaign_error(e: CampaignError) -> ApiError {
    match e {
        CampaignError::Filter(r) => invalid_rule("audience_filter", &r),
        CampaignError::Template { channel, error } => {
            ApiError::bad_request("invalid_template", format!("templates.{channel}: {error}"))
        }
        CampaignError::Invalid(m) => ApiError::bad_request("invalid_campaign", m),
    }
}

async fn campaign_json(s: &AppState, c: &CampaignRecord) -> ApiResult<serde_json::Value> {
    let counts = s.store.campaign_counts(&c.id).await?;
    Ok(serde_json::json!({
        "id": c.id, "policy_id": c.policy_id, "name": c.name, "mode": c.mode.as_str(),
        "status": c.status.as_str(), "channels": c.draft.channels, "templates": c.draft.templates,
        "audience_filter": c.draft.audience_filter, "schedule": c.draft.schedule,
        "created_by": c.created_by, "approved_by": c.approved_by, "created_at": c.created_at,
        "launched_at": c.launched_at, "planned_at": c.planned_at, "completed_at": c.completed_at,
        "counts": {
            "eligible": counts.eligible, "unreachable": counts.unreachable,
            "queued": counts.queued + counts.sending, "sending": counts.sending,
            "sent": counts.sent, "delivered": counts.delivered, "failed": counts.failed,
            "clicked": counts.clicked,
            "opted_out": counts.opted_out,
        },
        "by_channel": counts.by_channel,
    }))
}

pub async fn create(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    op.require(Action::WriteCatalogue)?;
    let draft: CampaignDraft = parse_json(&body)?;
    let checked = draft.clone().check().map_err(campaign_error)?;
    if s.store.get_policy(&checked.policy_id).await?.is_none() {
        return Err(ApiError::bad_request(
            "invalid_campaign",
            format!("policy {} does not exist", checked.policy_id),
        ));
    }
    if checked.schedule.cron.is_some() {
        return Err(ApiError::bad_request(
            "unsupported_schedule",
            "recurring (cron) schedules are not available in this version; launch the campaign instead",
        ));
    }
    let rec = CampaignRecord {
        id: pipeline::codes::record_id("cmp"),
        policy_id: checked.policy_id.clone(),
        name: checked.name.clone(),
        mode: checked.mode,
        status: CampaignStatus::Draft,
        draft,
        created_by: op.id().to_string(),
        approved_by: None,
        created_at: chrono::Utc::now(),
        launched_at: None,
        planned_at: None,
        completed_at: None,
    };
    s.store.insert_campaign(&rec).await?;
    s.audit(
        &op,
        "campaign.create",
        &rec.id,
        serde_json::json!({"name": rec.name, "policy_id": rec.policy_id}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(campaign_json(&s, &rec).await?)))
}

async fn load(s: &AppState, id: &str) -> ApiResult<CampaignRecord> {
    s.store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("campaign {id}")))
}

pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let c = load(&s, &id).await?;
    Ok(Json(campaign_json(&s, &c).await?))
}

pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let mut items = Vec::new();
    for c in s.store.list_campaigns().await? {
        items.push(campaign_json(&s, &c).await?);
    }
    Ok(Json(serde_json::json!({"items": items})))
}

async fn transition(
    s: &AppState,
    op: &Operator,
    id: &str,
    from: &[CampaignStatus],
    to: CampaignStatus,
    change: CampaignChange,
    action: &str,
) -> ApiResult<Json<serde_json::Value>> {
    let before = load(s, id).await?;
    let after = s
        .store
        .transition_campaign(id, from, to, change)
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(m) => ApiError::conflict("invalid_state", m),
            other => other.into(),
        })?;
    s.audit(
        op,
        action,
        id,
        serde_json::json!({"before": before.status.as_str(), "after": after.status.as_str()}),
    )
    .await?;
    Ok(Json(campaign_json(s, &after).await?))
}

pub async fn submit(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::WriteCatalogue)?;
    transition(
        &s,
        &op,
        &id,
        &[CampaignStatus::Draft],
        CampaignStatus::Submitted,
        CampaignChange::default(),
        "campaign.submit",
    )
    .await
}

pub async fn approve(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Approve)?;
    let c = load(&s, &id).await?;
    if c.created_by == op.id() {
        return Err(ApiError::forbidden(
            "a campaign must be approved by someone other than its creator",
        ));
    }
    let change = CampaignChange {
        approved_by: Some(op.id().to_string()),
        ..Default::default()
    };
    transition(
        &s,
        &op,
        &id,
        &[CampaignStatus::Submitted],
        CampaignStatus::Approved,
        change,
        "campaign.approve",
    )
    .await
}

pub async fn launch(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Launch)?;
    let c = load(&s, &id).await?;
    let launchable: &[CampaignStatus] = match (c.status, s.config.require_approval) {
        (CampaignStatus::Approved, _) => &[CampaignStatus::Approved],
        (CampaignStatus::Draft, false) => &[CampaignStatus::Draft],
        (CampaignStatus::Draft | CampaignStatus::Submitted, _) => {
            return Err(ApiError::conflict(
                "not_approved",
                format!(
                    "campaign {id} is {}; it needs a reviewer's approval first",
                    c.status.as_str()
                ),
            ))
        }
        (other, _) => {
            return Err(ApiError::conflict(
                "invalid_state",
                format!("campaign {id} is {}; it cannot be launched", other.as_str()),
            ))
        }
    };
    let policy = s
        .store
        .get_policy(&c.policy_id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy"))?;
    if policy.status != PolicyStatus::Published {
        return Err(ApiError::conflict(
            "policy_not_published",
            format!(
                "policy {} is {}; publish it before launching",
                policy.id,
                policy.status.as_str()
            ),
        ));
    }
    let change = CampaignChange {
        launched_at: Some(chrono::Utc::now()),
        ..Default::default()
    };
    let out = transition(
        &s,
        &op,
        &id,
        launchable,
        CampaignStatus::Running,
        change,
        "campaign.launch",
    )
    .await?;
    s.pipeline.wake.notify_waiters();
    Ok(out)
}

pub async fn pause(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Launch)?;
    transition(
        &s,
        &op,
        &id,
        &[CampaignStatus::Running],
        CampaignStatus::Paused,
        CampaignChange::default(),
        "campaign.pause",
    )
    .await
}

pub async fn resume(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Launch)?;
    let out = transition(
        &s,
        &op,
        &id,
        &[CampaignStatus::Paused],
        CampaignStatus::Running,
        CampaignChange::default(),
        "campaign.resume",
    )
    .await?;
    s.pipeline.wake.notify_waiters();
    Ok(out)
}

#[derive(Deserialize)]
pub struct PushesQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn pushes(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<PushesQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    load(&s, &id).await?;
    let after: i64 = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse().map_err(|_| {
            ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
        })?,
    };
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let rows = s.store.campaign_pushes(&id, after, limit).await?;
    let personal = op.may(Action::ReadPersonal);
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            let explanation: Explanation = serde_json::from_str(&r.explanation).unwrap_or_default();
            let subject_id = if personal {
                r.subject_id.clone()
            } else {
                domain::ids::mask_subject_id(&r.subject_id)
            };
            serde_json::json!({
                "id": r.id, "subject_id": subject_id, "channel": r.channel, "status": r.status,
                "explanation": explanation.to_string(), "explanation_clauses": explanation.clauses,
                "benefit": r.benefit, "content": r.content, "error": r.error, "attempts": r.attempts,
                "created_at": r.created_at, "updated_at": r.updated_at,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next": next})))
}
