//! Liveness and readiness.
//!
//! `/readyz` checks every backend the process's roles need, each within a second, and
//! answers 200 when all answer, 503 otherwise, with each backend's status:
//! `{"status": "ready"|"unavailable", "backends": {"store": {"status": "up"},
//! "bus": {"status": "down", "error": "..."}, "redis": {...}}}` (`bus` only on Kafka,
//! `redis` only where the roles use it). `reason` repeats the first failure's error.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for one backend.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The backends a process needs, as `/readyz` checks them.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn store::Store>,
    /// The bus when it is shared (Kafka); the in-process bus is always there.
    pub bus: Option<Arc<dyn bus::Bus>>,
    /// The limits when the roles need them shared (Redis).
    pub limits: Option<limits::Limits>,
}

impl Backends {
    /// The store, and the bus when it is durable (Kafka).
    pub fn of(pipeline: &pipeline::Pipeline) -> Self {
        Self {
            store: pipeline.store.clone(),
            bus: pipeline.bus.durable().then(|| pipeline.bus.clone()),
            limits: None,
        }
    }
}

/// Ready when every backend the process needs answers.
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    readiness(&s.backends).await
}

/// The `/readyz` answer of any process.
pub async fn readiness(b: &Backends) -> (StatusCode, Json<Value>) {
    let store = async {
        match tokio::time::timeout(CHECK_TIMEOUT, b.store.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within a second".to_string()),
        }
    };
    let bus = async {
        let bus = b.bus.as_ref()?;
        Some(
            match tokio::time::timeout(CHECK_TIMEOUT, bus.check()).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("no answer within a second".to_string()),
            },
        )
    };
    let redis = async {
        let limits = b.limits.as_ref()?;
        Some(limits.check().await?.map_err(|e| e.to_string()))
    };
    let (store, bus, redis) = tokio::join!(store, bus, redis);
    let mut backends = Map::new();
    let mut reason = None;
    let checked = [("store", Some(store)), ("bus", bus), ("redis", redis)];
    for (name, result) in checked {
        let Some(result) = result else { continue };
        telemetry::metrics()
            .backend_up
            .with_label_values(&[name])
            .set(i64::from(result.is_ok()));
        let entry = match result {
            Ok(()) => json!({"status": "up"}),
            Err(e) => {
                reason.get_or_insert_with(|| format!("{name}: {e}"));
                json!({"status": "down", "error": e})
            }
        };
        backends.insert(name.to_string(), entry);
    }
    match reason {
        None => (
            StatusCode::OK,
            Json(json!({"status": "ready", "backends": backends})),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": reason, "backends": backends})),
        ),
    }
}
