//! What the API's integration tests share: a SQLite store with operators, one JSON
//! call with a bearer token.

use api::auth::token_hash;
use domain::operator::Role;
use serde_json::Value;
use std::sync::Arc;
use store::{OperatorRecord, Store};

/// The pipeline settings of the tests: links under `base`, quick polls, and no quiet
/// hours (tests run at any hour; the compliance simulation covers the windows).
pub fn pipeline_config(base: &str) -> pipeline::PipelineConfig {
    use domain::window::SendWindow;
    pipeline::PipelineConfig {
        public_url: base.to_string(),
        poll_interval: std::time::Duration::from_millis(50),
        sms_window: SendWindow::always(),
        wechat_window: SendWindow::always(),
        hotline_window: SendWindow::always(),
        ..Default::default()
    }
}

/// Serves `app` on `listener` until the answered token is cancelled.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> tokio_util::sync::CancellationToken {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
            .unwrap();
    });
    shutdown
}

/// A fresh SQLite store in `dir` with one operator per `(token, role)` (id `op-<token>`).
pub async fn store_with_operators(dir: &tempfile::TempDir, ops: &[(&str, Role)]) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = store::open(&url).await.unwrap();
    for (token, role) in ops {
        let op = OperatorRecord {
            id: format!("op-{token}"),
            name: token.to_string(),
            role: *role,
            created_at: chrono::Utc::now(),
            created_by: None,
            disabled_at: None,
        };
        store
            .insert_operator(&op, &token_hash(token))
            .await
            .unwrap();
    }
    store
}

/// `method` `url` with `token`, and `body` as JSON; answers the status and the body (JSON,
/// else its text as a JSON string).
pub async fn call(
    http: &reqwest::Client,
    method: &str,
    token: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => http.get(url),
        "PUT" => http.put(url),
        "DELETE" => http.delete(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
