//! Policy parameters: thresholds rules read as `params.<name>`, with values by effective
//! date and their legal references. A change takes effect for every rule at once: tags
//! are recomputed and continuous campaigns pick up the subjects it makes eligible (the
//! calendar sweep, run now rather than at midnight).

use super::tags::invalid_rule;
use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use chrono::NaiveDate;
use domain::operator::Action;
use domain::param::{ParamValue, PolicyParam};
use domain::rule::Rule;
use domain::ParamValues;
use serde::Deserialize;
use store::ParamRecord;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ParamBody {
    #[serde(default)]
    description: String,
    #[serde(default)]
    unit: String,
    values: Vec<ParamValue>,
}

/// Refuses a rule that reads a parameter no one has defined (`invalid_rule`, naming it).
pub async fn check_rule_params(s: &AppState, what: &str, rule: &Rule) -> ApiResult<()> {
    if rule.params().is_empty() {
        return Ok(());
    }
    let known: Vec<String> = s
        .store
        .list_params()
        .await?
        .into_iter()
        .map(|r| r.param.name)
        .collect();
    rule.check_params(&|n| known.iter().any(|k| k == n))
        .map_err(|e| invalid_rule(what, &e))
}

/// Today's date (Shanghai) and the parameter values in force on it.
pub async fn today_params(s: &AppState) -> ApiResult<(NaiveDate, ParamValues)> {
    let today = s.pipeline.today();
    let params = pipeline::matching::params_on(s.store.as_ref(), today).await?;
    Ok((today, params))
}

fn param_json(r: &ParamRecord, today: NaiveDate) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("parameter serialises");
    v["in_force"] = serde_json::to_value(r.param.value_on(today)).expect("value serialises");
    v
}

#[utoipa::path(
    put,
    path = "/api/v1/params/{name}",
    operation_id = "params_put",
    tag = "params",
    summary = "Define or change a policy parameter",
    params(("name" = String, Path, description = "The name")),
    request_body = ParamBody,
    responses(
        (status = 200, description = "The parameter with `new_pushes` and `returned_to_review`", body = serde_json::Value),
        (status = 400, description = "`invalid_json` or `invalid_param`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 409, description = "`campaign_running`", body = crate::error::ErrorBody),
    )
)]
pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::WriteCatalogue)?;
    let req: ParamBody = parse_json(&body)?;
    let param = PolicyParam {
        name: name.clone(),
        description: req.description,
        unit: req.unit,
        values: req.values,
    }
    .check()
    .map_err(|e| ApiError::bad_request("invalid_param", e.0))?;
    let before = s.store.get_param(&name).await?;
    let change = super::rereview::Change::Param(&name);
    let unchanged = before
        .as_ref()
        .is_some_and(|b| b.param.values == param.values);
    let to_review = if unchanged {
        Vec::new()
    } else {
        super::rereview::check(&s, change).await?
    };
    let rec = ParamRecord {
        param,
        updated_at: s.pipeline.now(),
    };
    s.store.put_param(&rec).await?;
    s.audit(
        &op,
        "param.put",
        &name,
        serde_json::json!({"before": before.map(|b| b.param), "after": rec.param}),
    )
    .await?;
    // Every rule reading the parameter sees the new values from now on.
    s.reload_tag_rules().await?;
    let report = pipeline::sweep::sweep(&s.pipeline).await?;
    let mut v = param_json(&rec, s.pipeline.today());
    v["subjects_retagged"] = report.retagged.into();
    v["new_pushes"] = serde_json::json!(report.campaigns);
    v["returned_to_review"] =
        serde_json::json!(super::rereview::return_to_review(&s, &op, to_review, change).await?);
    Ok(Json(v))
}

#[utoipa::path(
    get,
    path = "/api/v1/params/{name}",
    operation_id = "params_get",
    tag = "params",
    summary = "One policy parameter with its dated values",
    params(("name" = String, Path, description = "The name")),
    responses(
        (status = 200, description = "The parameter with `value_today`", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let rec = s
        .store
        .get_param(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("parameter {name}")))?;
    Ok(Json(param_json(&rec, s.pipeline.today())))
}

#[utoipa::path(
    get,
    path = "/api/v1/params",
    operation_id = "params_list",
    tag = "params",
    summary = "Every policy parameter with its value today",
    responses(
        (status = 200, description = "`{items: [parameter]}`", body = serde_json::Value),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let today = s.pipeline.today();
    let items: Vec<_> = s
        .store
        .list_params()
        .await?
        .iter()
        .map(|r| param_json(r, today))
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}
