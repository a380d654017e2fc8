//! Operators (created by an admin, who is recorded as their creator; disabled; tokens
//! rotated) and the audit log.

use crate::auth::{token_hash, Operator};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::operator::{Action, Role};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;
use store::OperatorRecord;

#[derive(Deserialize, utoipa::ToSchema)]
struct NewOperator {
    name: String,
    role: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/operators",
    operation_id = "operators_create",
    tag = "operators",
    summary = "Create an operator (admin); the token is answered once",
    request_body = NewOperator,
    responses(
        (status = 201, description = "The new operator `{id, name, role, token}`; the token is shown only here", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_role` or `invalid_operator`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = crate::error::ErrorBody),
    )
)]
pub async fn create(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    op.require(Action::ManageOperators)?;
    let req: NewOperator = parse_json(&body)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_role",
            format!(
                "role {:?} is not admin, editor, reviewer or viewer",
                req.role
            ),
        )
    })?;
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_operator",
            "name is required",
        ));
    }
    let token = new_token();
    let rec = OperatorRecord {
        id: pipeline::codes::record_id("op"),
        name: name.to_string(),
        role,
        created_at: s.pipeline.now(),
        created_by: Some(op.id().to_string()),
        disabled_at: None,
    };
    s.store.insert_operator(&rec, &token_hash(&token)).await?;
    s.audit(
        &op,
        "operator.create",
        &rec.id,
        serde_json::json!({"name": rec.name, "role": role.as_str()}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            serde_json::json!({"id": rec.id, "name": rec.name, "role": role.as_str(), "token": token}),
        ),
    ))
}

/// A fresh operator token: 40 random alphanumeric characters.
fn new_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn operator_json(o: &OperatorRecord) -> serde_json::Value {
    serde_json::json!({
        "id": o.id, "name": o.name, "role": o.role.as_str(), "created_at": o.created_at,
        "created_by": o.created_by, "disabled_at": o.disabled_at,
    })
}

/// `GET /api/v1/operators` (admin): every operator, who created it, whether disabled.
#[utoipa::path(
    get,
    path = "/api/v1/operators",
    operation_id = "operators_list",
    tag = "operators",
    summary = "Every operator (admin)",
    responses(
        (status = 200, description = "`{items: [{id, name, role, created_at, created_by, disabled_at}]}`", body = serde_json::Value),
        (status = 403, description = "`forbidden`: not an admin", body = crate::error::ErrorBody),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::ManageOperators)?;
    let items: Vec<_> = s
        .store
        .list_operators()
        .await?
        .iter()
        .map(operator_json)
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}

/// `POST /api/v1/operators/{id}/disable` (admin, not oneself): the operator's token and
/// console sessions stop working at once (on other API replicas within
/// [`crate::auth::CACHE_TTL`]). Audited as `operator.disable`.
#[utoipa::path(
    post,
    path = "/api/v1/operators/{id}/disable",
    operation_id = "operators_disable",
    tag = "operators",
    summary = "Disable an operator (admin, not oneself)",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The operator, now with `disabled_at`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`invalid_state`: disabled already", body = crate::error::ErrorBody),
    )
)]
pub async fn disable(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::ManageOperators)?;
    if id == op.id() {
        return Err(ApiError::forbidden("an operator cannot disable itself"));
    }
    let before = s
        .store
        .get_operator(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("operator {id}")))?;
    let now = s.pipeline.now();
    if !s.store.disable_operator(&id, now).await? {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("operator {id} is disabled already"),
        ));
    }
    crate::auth::forget_cached(&s);
    s.audit(
        &op,
        "operator.disable",
        &id,
        serde_json::json!({"before": {"disabled_at": before.disabled_at}, "after": {"disabled_at": now}}),
    )
    .await?;
    let after = s
        .store
        .get_operator(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("operator {id}")))?;
    Ok(Json(operator_json(&after)))
}

/// `POST /api/v1/operators/{id}/token`: a new token for an enabled operator (an admin for
/// anyone, an operator for itself); the old one stops working. Answers the token once.
/// Audited as `operator.rotate_token` (without the token).
#[utoipa::path(
    post,
    path = "/api/v1/operators/{id}/token",
    operation_id = "operators_rotate_token",
    tag = "operators",
    summary = "A new token for an operator (admin, or the operator itself)",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "`{id, token}`; the old token stops working", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found` (or disabled)", body = crate::error::ErrorBody),
    )
)]
pub async fn rotate_token(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if id != op.id() {
        op.require(Action::ManageOperators)?;
    }
    let token = new_token();
    if !s.store.set_operator_token(&id, &token_hash(&token)).await? {
        return Err(ApiError::not_found(format!("enabled operator {id}")));
    }
    crate::auth::forget_cached(&s);
    s.audit(&op, "operator.rotate_token", &id, serde_json::json!({}))
        .await?;
    Ok(Json(serde_json::json!({"id": id, "token": token})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[serde(default)]
    cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "operators_audit_log",
    tag = "audit",
    summary = "The audit log: who, what, when, before/after",
    params(AuditQuery),
    responses(
        (status = 200, description = "`{items: [{id, operator_id, action, target, detail, at}], next}`", body = serde_json::Value),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 400, description = "`invalid_cursor`", body = crate::error::ErrorBody),
    )
)]
pub async fn audit_log(
    State(s): State<AppState>,
    op: Operator,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let rows = s.store.audit_log(q.cursor.unwrap_or(0), 200).await?;
    let next = (rows.len() == 200)
        .then(|| rows.last().map(|(id, _)| id.to_string()))
        .flatten();
    let items: Vec<_> = rows
        .into_iter()
        .map(|(id, e)| serde_json::json!({"id": id, "operator_id": e.operator_id, "action": e.action, "target": e.target, "detail": e.detail, "at": e.at}))
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next": next})))
}
