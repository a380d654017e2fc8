//! Tags: named rules over attributes; membership recomputed over the population index on
//! change.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use domain::operator::Action;
use domain::rule::Rule;
use serde::Deserialize;
use store::TagRecord;

#[derive(Deserialize, utoipa::ToSchema)]
struct TagBody {
    #[serde(default)]
    description: String,
    rule: String,
}

/// Tag names are identifiers: `[a-z_][a-z0-9_]*`, at most 64 characters.
fn check_name(name: &str) -> ApiResult<()> {
    if domain::subject::is_identifier(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_tag_name",
            format!("tag name {name:?} must match [a-z_][a-z0-9_]*"),
        ))
    }
}

pub fn invalid_rule(what: &str, e: &domain::RuleError) -> ApiError {
    ApiError::bad_request("invalid_rule", format!("{what}: {e}"))
}

#[utoipa::path(
    put,
    path = "/api/v1/tags/{name}",
    operation_id = "tags_put",
    tag = "tags",
    summary = "Define or change a tag; membership is recomputed",
    params(("name" = String, Path, description = "The name")),
    request_body = TagBody,
    responses(
        (status = 200, description = "The tag with `subjects_retagged`, `new_pushes` and `returned_to_review`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_tag_name` or `invalid_rule`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 409, description = "`campaign_running`: a running campaign reads this tag", body = crate::error::ErrorBody),
    )
)]
pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::WriteCatalogue)?;
    check_name(&name)?;
    let req: TagBody = parse_json(&body)?;
    let rule = Rule::parse(&req.rule).map_err(|e| invalid_rule("rule", &e))?;
    super::params::check_rule_params(&s, "rule", &rule).await?;
    let before = s.store.get_tag(&name).await?;
    let change = super::rereview::Change::Tag(&name);
    let unchanged = before.as_ref().is_some_and(|b| b.rule == req.rule);
    let to_review = if unchanged {
        Vec::new()
    } else {
        super::rereview::check(&s, change).await?
    };
    let tag = TagRecord {
        name: name.clone(),
        description: req.description,
        rule: req.rule,
        updated_at: s.pipeline.now(),
    };
    s.store.put_tag(&tag).await?;
    s.reload_tag_rules().await?;
    // New memberships from the population index (bitmap plans), written for the
    // subjects whose tags changed; the index's tag bitmaps are updated in place.
    let changed = pipeline::matching::retag_from_index(
        s.store.as_ref(),
        &s.pipeline.index,
        &s.tag_rules(),
        s.pipeline.today(),
    )
    .await?;
    // Continuous campaigns whose audience reads the tag plan those it now admits.
    let (_, campaigns) =
        pipeline::sweep::plan_continuous(&s.pipeline, &s.pipeline.index, s.pipeline.today())
            .await?;
    s.audit(
        &op,
        "tag.put",
        &name,
        serde_json::json!({"before": before.map(|b| b.rule), "after": tag.rule}),
    )
    .await?;
    let returned = super::rereview::return_to_review(&s, &op, to_review, change).await?;
    Ok(Json(serde_json::json!({
        "name": tag.name, "description": tag.description, "rule": tag.rule,
        "updated_at": tag.updated_at, "subjects_retagged": changed,
        "new_pushes": campaigns, "returned_to_review": returned
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/tags/{name}",
    operation_id = "tags_get",
    tag = "tags",
    summary = "One tag definition",
    params(("name" = String, Path, description = "The name")),
    responses(
        (status = 200, description = "The tag", body = store::TagRecord),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<TagRecord>> {
    op.require(Action::Read)?;
    Ok(Json(s.store.get_tag(&name).await?.ok_or_else(|| {
        ApiError::not_found(format!("tag {name}"))
    })?))
}

#[utoipa::path(
    get,
    path = "/api/v1/tags",
    operation_id = "tags_list",
    tag = "tags",
    summary = "Every tag definition",
    responses(
        (status = 200, description = "`{items: [tag]}`", body = serde_json::Value),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(
        serde_json::json!({"items": s.store.list_tags().await?}),
    ))
}
