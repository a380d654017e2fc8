//! Operators and the audit log.

use crate::auth::{token_hash, Operator};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::operator::{Action, Role};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;
use store::OperatorRecord;

#[derive(Deserialize)]
struct NewOperator {
    name: String,
    role: String,
}

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
    let token: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let rec = OperatorRecord {
        id: pipeline::codes::record_id("op"),
        name: name.to_string(),
        role,
        created_at: s.pipeline.now(),
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

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    cursor: Option<i64>,
}

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
