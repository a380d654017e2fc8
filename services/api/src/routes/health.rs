//! Liveness and readiness.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the store answers.
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    store_readiness(s.store.as_ref()).await
}

/// The `/readyz` answer of any process: ready when the store answers.
pub async fn store_readiness(store: &dyn store::Store) -> (StatusCode, Json<serde_json::Value>) {
    match store.count_operators().await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "reason": e.to_string()})),
        ),
    }
}
