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
        CampaignError::Schedule(m) => ApiError::bad_request("invalid_schedule", m),
        e @ CampaignError::Binding { .. } => {
            ApiError::bad_request("invalid_binding", e.to_string())
        }
    }
}

/// The benefit of the sample recipient a binding is checked with, when the policy has one.
const SAMPLE_BENEFIT: f64 = 12_345.0;

/// The provider templates a campaign names, checked against the registry: each binding
/// finds its registered template and every value a sample recipient of this policy would
/// get passes the provider's rules; free text needs a registered catch-all.
pub(crate) async fn check_provider_templates(
    s: &AppState,
    checked: &mut domain::campaign::CheckedCampaign,
    policy: &domain::policy::PolicyDraft,
) -> ApiResult<()> {
    let registry = s.store.list_provider_templates().await?;
    checked
        .require_catch_all(&registry)
        .map_err(campaign_error)?;
    checked.attach(&registry).map_err(campaign_error)?;
    let code = pipeline::codes::link_code();
    let link = format!(
        "{}/l/{code}",
        s.pipeline.config.public_url.trim_end_matches('/')
    );
    checked
        .check_samples(
            &domain::template::RenderContext::policy_values(policy),
            policy.benefit.as_ref().map(|_| SAMPLE_BENEFIT),
            &link,
            &code,
        )
        .map_err(campaign_error)
}

async fn campaign_json(s: &AppState, c: &CampaignRecord) -> ApiResult<serde_json::Value> {
    let counts = s.store.campaign_counts(&c.id).await?;
    let ops = s.store.get_campaign_ops(&c.id).await?;
    let mut v = campaign_json_base(c, &counts);
    // Skips decided at send time (frequency cap, de-duplication) by reason.
    for reason in ["capped", "duplicate"] {
        v["counts"][reason] = counts.skipped.get(reason).copied().unwrap_or(0).into();
    }
    v["throttle_per_second"] = serde_json::json!(c.draft.throttle_per_second);
    v["approvals_needed"] = serde_json::json!(ops.as_ref().map_or(1, |o| o.approvals_needed));
    v["second_approved_by"] =
        serde_json::json!(ops.as_ref().and_then(|o| o.second_approved_by.clone()));
    v["next_run_at"] = serde_json::json!(ops.as_ref().and_then(|o| o.next_run_at));
    v["runs"] = serde_json::json!(ops.as_ref().map_or(0, |o| o.runs));
    v["ends_at"] = serde_json::json!(ops.as_ref().and_then(|o| o.ends_at));
    Ok(v)
}

fn campaign_json_base(c: &CampaignRecord, counts: &store::CampaignCounts) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "policy_id": c.policy_id, "name": c.name, "mode": c.mode.as_str(),
        "status": c.status.as_str(), "channels": c.draft.channels, "templates": c.draft.templates,
        "bindings": c.draft.bindings,
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
    })
}

/// The campaign's audience now (policy eligibility and the campaign's filter), from the
/// population index.
async fn audience_count(s: &AppState, c: &CampaignRecord) -> ApiResult<i64> {
    let policy = s
        .store
        .get_policy(&c.policy_id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy"))?;
    let policy = policy.draft.check().map_err(|e| {
        ApiError::conflict(
            "invalid_policy",
            format!("stored policy no longer checks: {e}"),
        )
    })?;
    let checked = c.draft.clone().check().map_err(campaign_error)?;
    let (today, params) = super::params::today_params(s).await?;
    let criteria = pipeline::matching::Criteria {
        eligibility: policy.eligibility,
        filter: checked.audience_filter,
    }
    .bind(&params);
    let index = s.pipeline.index.read().expect("population index lock");
    let a = pipeline::matching::audience_from_index(&index, &criteria, today, 0);
    Ok(a.count as i64)
}

/// Whether the audience needs a second approval (over `POLICY_PUSH_SECOND_APPROVAL_ABOVE`).
async fn needs_second_approval(s: &AppState, c: &CampaignRecord) -> ApiResult<Option<i64>> {
    let Some(limit) = s.config.second_approval_above else {
        return Ok(None);
    };
    let n = audience_count(s, c).await?;
    Ok((n > limit).then_some(n))
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    operation_id = "campaigns_create",
    tag = "campaigns",
    summary = "Create a draft campaign (templates, rules and bindings checked)",
    request_body = domain::campaign::CampaignDraft,
    responses(
        (status = 201, description = "The campaign with `id` and `status: draft`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_campaign`, `invalid_rule`, `invalid_template`, `invalid_channel`, `invalid_schedule`, `invalid_binding` or `invalid_param`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn create(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    op.require(Action::WriteCatalogue)?;
    let draft: CampaignDraft = parse_json(&body)?;
    let mut checked = draft.clone().check().map_err(campaign_error)?;
    if let Some(f) = &checked.audience_filter {
        super::params::check_rule_params(&s, "audience_filter", f).await?;
    }
    let Some(policy) = s.store.get_policy(&checked.policy_id).await? else {
        return Err(ApiError::bad_request(
            "invalid_campaign",
            format!("policy {} does not exist", checked.policy_id),
        ));
    };
    check_provider_templates(&s, &mut checked, &policy.draft).await?;
    let rec = CampaignRecord {
        id: pipeline::codes::record_id("cmp"),
        policy_id: checked.policy_id.clone(),
        name: checked.name.clone(),
        mode: checked.mode,
        status: CampaignStatus::Draft,
        draft,
        created_by: op.id().to_string(),
        approved_by: None,
        created_at: s.pipeline.now(),
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

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}",
    operation_id = "campaigns_get",
    tag = "campaigns",
    summary = "One campaign with its counts",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "`{id, status, counts: {eligible, unreachable, queued, sending, sent, delivered, failed, clicked}, by_channel, ...}`", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let c = load(&s, &id).await?;
    Ok(Json(campaign_json(&s, &c).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    operation_id = "campaigns_list",
    tag = "campaigns",
    summary = "Every campaign with its counts",
    responses(
        (status = 200, description = "`{items: [campaign]}`", body = serde_json::Value),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/submit",
    operation_id = "campaigns_submit",
    tag = "campaigns",
    summary = "Submit a campaign for approval (editor)",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, `status: submitted`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/approve",
    operation_id = "campaigns_approve",
    tag = "campaigns",
    summary = "Approve a campaign (a reviewer who did not create it)",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, `status: approved` (or still `submitted` awaiting a second approval)", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
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
    // Nor by an operator its creator made: an admin could otherwise approve their own
    // campaign through a reviewer they created.
    if op.0.created_by.as_deref() == Some(c.created_by.as_str()) {
        return Err(ApiError::forbidden(
            "a campaign cannot be approved by an operator its creator created",
        ));
    }
    if c.status == CampaignStatus::Submitted {
        let mut ops = s
            .store
            .get_campaign_ops(&id)
            .await?
            .unwrap_or_else(|| store::CampaignOps {
                campaign_id: id.clone(),
                approvals_needed: 1,
                ..Default::default()
            });
        match &c.approved_by {
            // A first approval; a large audience needs another reviewer's too.
            None => {
                if let Some(audience) = needs_second_approval(&s, &c).await? {
                    ops.approvals_needed = 2;
                    ops.audience = Some(audience);
                    s.store.put_campaign_ops(&ops).await?;
                    let change = CampaignChange {
                        approved_by: Some(op.id().to_string()),
                        ..Default::default()
                    };
                    let after = s
                        .store
                        .transition_campaign(
                            &id,
                            &[CampaignStatus::Submitted],
                            CampaignStatus::Submitted,
                            change,
                        )
                        .await
                        .map_err(|e| match e {
                            store::StoreError::Conflict(m) => {
                                ApiError::conflict("invalid_state", m)
                            }
                            other => other.into(),
                        })?;
                    s.audit(
                        &op,
                        "campaign.approve",
                        &id,
                        serde_json::json!({
                            "before": "submitted", "after": "submitted", "approval": 1,
                            "approvals_needed": 2, "audience": audience,
                        }),
                    )
                    .await?;
                    return Ok(Json(campaign_json(&s, &after).await?));
                }
            }
            // The second approval, by yet another reviewer.
            Some(first) if ops.approvals_needed > 1 => {
                if first == op.id() {
                    return Err(ApiError::forbidden(
                        "the second approval must come from a reviewer other than the first",
                    ));
                }
                ops.second_approved_by = Some(op.id().to_string());
                s.store.put_campaign_ops(&ops).await?;
                return transition(
                    &s,
                    &op,
                    &id,
                    &[CampaignStatus::Submitted],
                    CampaignStatus::Approved,
                    CampaignChange::default(),
                    "campaign.approve",
                )
                .await;
            }
            Some(_) => {}
        }
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

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/launch",
    operation_id = "campaigns_launch",
    tag = "campaigns",
    summary = "Launch a campaign",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, `status: running` or `scheduled`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`not_approved`, `policy_not_published` or `invalid_state`", body = crate::error::ErrorBody),
    )
)]
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
    let existing = s.store.get_campaign_ops(&id).await?;
    if c.status == CampaignStatus::Draft {
        // Launching without approvals is allowed only for audiences under the threshold.
        if let Some(audience) = needs_second_approval(&s, &c).await? {
            return Err(ApiError::conflict(
                "not_approved",
                format!("campaign {id} reaches {audience} subjects; it needs two reviewers' approvals first"),
            ));
        }
    }
    // Now, at a time (`schedule.at`), or on a cron expression: a later start is
    // `scheduled` and the scheduler starts it.
    let now = s.pipeline.now();
    let schedule = c.draft.schedule.clone().unwrap_or_default();
    let plan = pipeline::schedule::launch_plan(&id, &schedule, existing, now);
    if let Some(ops) = &plan.ops {
        s.store.put_campaign_ops(ops).await?;
    }
    let change = CampaignChange {
        launched_at: (plan.status == CampaignStatus::Running).then_some(now),
        ..Default::default()
    };
    let out = transition(
        &s,
        &op,
        &id,
        launchable,
        plan.status,
        change,
        "campaign.launch",
    )
    .await?;
    s.pipeline.wake.notify_waiters();
    Ok(out)
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/pause",
    operation_id = "campaigns_pause",
    tag = "campaigns",
    summary = "Pause a running campaign",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, `status: paused`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/resume",
    operation_id = "campaigns_resume",
    tag = "campaigns",
    summary = "Resume a paused campaign",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, running again", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
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

/// `POST /api/v1/campaigns/{id}/cancel`: stops a campaign for good (any state but
/// completed or cancelled); its queued pushes are never sent and no scheduled run starts.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/cancel",
    operation_id = "campaigns_cancel",
    tag = "campaigns",
    summary = "Cancel a campaign for good",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The campaign, `status: cancelled`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
pub async fn cancel(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Launch)?;
    let c = load(&s, &id).await?;
    if !matches!(
        c.status,
        CampaignStatus::Completed | CampaignStatus::Cancelled
    ) {
        if let Some(mut ops) = s.store.get_campaign_ops(&id).await? {
            ops.next_run_at = None;
            s.store.put_campaign_ops(&ops).await?;
        }
    }
    let out = transition(
        &s,
        &op,
        &id,
        &CampaignStatus::NOT_OVER,
        CampaignStatus::Cancelled,
        CampaignChange::default(),
        "campaign.cancel",
    )
    .await?;
    Ok(out)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushesQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/pushes",
    operation_id = "campaigns_pushes",
    tag = "campaigns",
    summary = "A campaign's pushes, a page at a time",
    params(("id" = String, Path, description = "The id"), PushesQuery),
    responses(
        (status = 200, description = "`{items: [{id, subject_id, channel, status, explanation, explanation_clauses, why, benefit, content, error, attempts}], next}`", body = serde_json::Value),
        (status = 400, description = "`invalid_cursor`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
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
                "why": explanation.why(),
                // The content names the subject and carries their live link: personal
                // data, shown only to roles that may see it (as in the subject history).
                "benefit": r.benefit, "content": personal.then(|| r.content.clone()),
                "error": r.error, "attempts": r.attempts,
                "created_at": r.created_at, "updated_at": r.updated_at,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next": next})))
}
