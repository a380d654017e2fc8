//! Tags: named rules over attributes; membership recomputed for every subject on change.

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

#[derive(Deserialize)]
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

pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::WriteCatalogue)?;
    check_name(&name)?;
    let req: TagBody = parse_json(&body)?;
    Rule::parse(&req.rule).map_err(|e| invalid_rule("rule", &e))?;
    let before = s.store.get_tag(&name).await?;
    let tag = TagRecord {
        name: name.clone(),
        description: req.description,
        rule: req.rule,
        updated_at: chrono::Utc::now(),
    };
    s.store.put_tag(&tag).await?;
    s.reload_tag_rules().await?;
    let changed =
        pipeline::matching::recompute_all_tags(s.store.as_ref(), pipeline::matching::today())
            .await?;
    // Memberships changed across the population: the index is rebuilt from the store.
    s.pipeline.load_index().await?;
    s.audit(
        &op,
        "tag.put",
        &name,
        serde_json::json!({"before": before.map(|b| b.rule), "after": tag.rule}),
    )
    .await?;
    Ok(Json(serde_json::json!({
        "name": tag.name, "description": tag.description, "rule": tag.rule,
        "updated_at": tag.updated_at, "subjects_retagged": changed
    })))
}

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

pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(
        serde_json::json!({"items": s.store.list_tags().await?}),
    ))
}
