//! Policies: create (rules checked), publish, audience preview.

use super::tags::invalid_rule;
use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::operator::Action;
use domain::policy::{PolicyDraft, PolicyError, PolicyStatus};
use domain::rule::Rule;
use pipeline::matching::{audience_from_index, Criteria};
use serde::Deserialize;
use store::PolicyRecord;

pub fn policy_json(p: &PolicyRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(&p.draft).expect("policy serialises");
    v["id"] = p.id.clone().into();
    v["status"] = p.status.as_str().into();
    v["created_by"] = p.created_by.clone().into();
    v["created_at"] = serde_json::json!(p.created_at);
    v["published_at"] = serde_json::json!(p.published_at);
    v
}

pub fn policy_error(e: PolicyError) -> ApiError {
    match e {
        PolicyError::Eligibility(r) => invalid_rule("eligibility", &r),
        PolicyError::Benefit(r) => invalid_rule("benefit", &r),
        PolicyError::Invalid(m) => ApiError::bad_request("invalid_policy", m),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/policies",
    operation_id = "policies_create",
    tag = "policies",
    summary = "Create a draft policy (rules checked)",
    request_body = domain::policy::PolicyDraft,
    responses(
        (status = 201, description = "The policy with `id`, `status: draft`, `created_by`, `created_at`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_policy`, `invalid_rule` or `invalid_param`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn create(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    op.require(Action::WriteCatalogue)?;
    let draft: PolicyDraft = parse_json(&body)?;
    let checked = draft.check().map_err(policy_error)?;
    super::params::check_rule_params(&s, "eligibility", &checked.eligibility).await?;
    if let Some(b) = &checked.benefit {
        super::params::check_rule_params(&s, "benefit", b).await?;
    }
    let rec = PolicyRecord {
        id: pipeline::codes::record_id("pol"),
        status: PolicyStatus::Draft,
        draft: checked.draft,
        created_by: op.id().to_string(),
        created_at: s.pipeline.now(),
        published_at: None,
    };
    s.store.insert_policy(&rec).await?;
    s.audit(
        &op,
        "policy.create",
        &rec.id,
        serde_json::json!({"title": rec.draft.title}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(policy_json(&rec))))
}

async fn load(s: &AppState, id: &str) -> ApiResult<PolicyRecord> {
    s.store
        .get_policy(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("policy {id}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/policies/{id}",
    operation_id = "policies_get",
    tag = "policies",
    summary = "One policy",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The policy with `id` and `status`", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(policy_json(&load(&s, &id).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/policies",
    operation_id = "policies_list",
    tag = "policies",
    summary = "Every policy",
    responses(
        (status = 200, description = "`{items: [policy]}`", body = serde_json::Value),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let items: Vec<_> = s
        .store
        .list_policies()
        .await?
        .iter()
        .map(policy_json)
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}

/// `POST /policies/{id}/withdraw`: the policy is withdrawn (reviewer or admin): its
/// campaigns are cancelled and their queued pushes skipped (`policy_ended`), audited;
/// nothing more of it is sent (`pipeline::lifecycle`).
#[utoipa::path(
    post,
    path = "/api/v1/policies/{id}/withdraw",
    operation_id = "policies_withdraw",
    tag = "policies",
    summary = "Withdraw a policy; its campaigns are cancelled",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The policy with `cancelled_campaigns` and `skipped_pushes`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`", body = crate::error::ErrorBody),
    )
)]
pub async fn withdraw(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Publish)?;
    let p = load(&s, &id).await?;
    if matches!(p.status, PolicyStatus::Withdrawn | PolicyStatus::Expired) {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("policy {id} is already {}", p.status.as_str()),
        ));
    }
    let ended =
        pipeline::lifecycle::end_policy(&s.pipeline, &id, PolicyStatus::Withdrawn, op.id()).await?;
    let mut v = policy_json(&load(&s, &id).await?);
    v["cancelled_campaigns"] = serde_json::json!(ended.campaigns);
    v["skipped_pushes"] = ended.skipped.into();
    Ok(Json(v))
}

#[utoipa::path(
    post,
    path = "/api/v1/policies/{id}/publish",
    operation_id = "policies_publish",
    tag = "policies",
    summary = "Publish a policy",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The policy, `status: published`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`, `review_required` or `review_not_passed`", body = crate::error::ErrorBody),
    )
)]
pub async fn publish(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Publish)?;
    let p = load(&s, &id).await?;
    match p.status {
        PolicyStatus::Draft | PolicyStatus::Review => {}
        PolicyStatus::Published => return Ok(Json(policy_json(&p))),
        other => {
            return Err(ApiError::conflict(
                "invalid_state",
                format!(
                    "policy {id} is {}; only a draft can be published",
                    other.as_str()
                ),
            ))
        }
    }
    // Disclosure review (公开属性认定, 保密审查) before publication.
    super::operations::check_publishable(&s, &id).await?;
    s.store
        .set_policy_status(&id, PolicyStatus::Published, s.pipeline.now())
        .await?;
    s.audit(
        &op,
        "policy.publish",
        &id,
        serde_json::json!({"before": p.status.as_str(), "after": "published"}),
    )
    .await?;
    let mut v = policy_json(&load(&s, &id).await?);
    // The eligible audience at publication, from the population index.
    if let Ok(checked) = p.draft.check() {
        let (today, params) = super::params::today_params(&s).await?;
        let criteria = Criteria {
            eligibility: checked.eligibility,
            filter: None,
        }
        .bind(&params);
        let started = std::time::Instant::now();
        let a = {
            let index = s.pipeline.index.read().expect("population index lock");
            audience_from_index(&index, &criteria, today, 0)
        };
        v["audience"] = serde_json::json!({
            "count": a.count, "by_kind": a.by_kind, "by_district": a.by_district,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        });
    }
    Ok(Json(v))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudienceQuery {
    /// An extra audience filter rule, as a campaign would add.
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    sample: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/policies/{id}/audience",
    operation_id = "policies_audience",
    tag = "policies",
    summary = "Preview a policy's eligible audience",
    params(("id" = String, Path, description = "The id"), AudienceQuery),
    responses(
        (status = 200, description = "`{count, sample, by_kind, by_district, reachable, evaluated, elapsed_ms}`", body = serde_json::Value),
        (status = 400, description = "`invalid_rule`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn audience(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<AudienceQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let p = load(&s, &id).await?;
    let checked = p.draft.check().map_err(policy_error)?;
    let filter = match q.filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(f) => Some(Rule::parse(f).map_err(|e| invalid_rule("filter", &e))?),
    };
    if let Some(f) = &filter {
        super::params::check_rule_params(&s, "filter", f).await?;
    }
    let (today, params) = super::params::today_params(&s).await?;
    let criteria = Criteria {
        eligibility: checked.eligibility,
        filter,
    }
    .bind(&params);
    let started = std::time::Instant::now();
    let mut a = {
        let index = s.pipeline.index.read().expect("population index lock");
        audience_from_index(&index, &criteria, today, q.sample.unwrap_or(20).min(1000))
    };
    if !op.may(Action::ReadPersonal) {
        for id in &mut a.sample {
            *id = domain::ids::mask_subject_id(id);
        }
    }
    let mut v = serde_json::to_value(&a).expect("audience serialises");
    v["elapsed_ms"] = serde_json::json!(started.elapsed().as_secs_f64() * 1000.0);
    Ok(Json(v))
}
