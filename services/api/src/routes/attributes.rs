//! The attribute catalogue (`domain::attribute`): each attribute's Chinese label, type,
//! unit, value labels and whether it is personal. Read by any operator, written by
//! admins only; explanations in plain words and imports read it.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::attribute::AttributeDef;
use domain::operator::Action;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_attribute", message)
}

#[utoipa::path(
    get,
    path = "/api/v1/attributes",
    operation_id = "attributes_list",
    tag = "attributes",
    summary = "The attribute catalogue",
    responses(
        (status = 200, description = "`{items: [attribute]}`", body = serde_json::Value),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(
        serde_json::json!({"items": s.store.list_attributes().await?}),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/attributes/{name}",
    operation_id = "attributes_get",
    tag = "attributes",
    summary = "One attribute definition",
    params(("name" = String, Path, description = "The name")),
    responses(
        (status = 200, description = "The attribute", body = domain::attribute::AttributeDef),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<AttributeDef>> {
    op.require(Action::Read)?;
    Ok(Json(s.store.get_attribute(&name).await?.ok_or_else(
        || ApiError::not_found(format!("attribute {name}")),
    )?))
}

/// Declares (or replaces) an attribute; the path gives the name (a body that repeats it
/// must agree).
#[utoipa::path(
    put,
    path = "/api/v1/attributes/{name}",
    operation_id = "attributes_put",
    tag = "attributes",
    summary = "Declare or replace an attribute (admin)",
    params(("name" = String, Path, description = "The name")),
    request_body = domain::attribute::AttributeDef,
    responses(
        (status = 200, description = "The attribute as stored", body = domain::attribute::AttributeDef),
        (status = 400, description = "`invalid_json` or `invalid_attribute`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AttributeDef>> {
    op.require(Action::WriteAttributes)?;
    let mut doc: serde_json::Value = parse_json(&body)?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(invalid("the body is a JSON object"));
    };
    match obj.get("name").and_then(|v| v.as_str()) {
        Some(given) if given != name => {
            return Err(invalid(format!(
                "name {given:?} differs from the path's {name:?}"
            )))
        }
        _ => {
            obj.insert("name".into(), name.clone().into());
        }
    }
    let d: AttributeDef = serde_json::from_value(doc).map_err(|e| invalid(e.to_string()))?;
    let d = d.check().map_err(|e| invalid(e.0))?;
    let before = s.store.get_attribute(&name).await?;
    s.store.put_attribute(&d, s.pipeline.now()).await?;
    s.audit(
        &op,
        "attribute.put",
        &name,
        serde_json::json!({"before": before, "after": d}),
    )
    .await?;
    Ok(Json(d))
}

#[utoipa::path(
    delete,
    path = "/api/v1/attributes/{name}",
    operation_id = "attributes_delete",
    tag = "attributes",
    summary = "Remove an attribute definition (admin)",
    params(("name" = String, Path, description = "The name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn delete(
    State(s): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op.require(Action::WriteAttributes)?;
    let before = s.store.get_attribute(&name).await?;
    if !s.store.delete_attribute(&name).await? {
        return Err(ApiError::not_found(format!("attribute {name}")));
    }
    s.audit(
        &op,
        "attribute.delete",
        &name,
        serde_json::json!({"before": before}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
