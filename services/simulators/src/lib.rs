//! Provider simulators: the outside world of policy-push, speaking the providers' real
//! APIs so that a connector's base URL is the only thing that changes between a simulator
//! and the real provider.
//!
//! | prefix | provider API |
//! |---|---|
//! | `/aliyun/sms/` | Alibaba Cloud SMS (dysmsapi 2017-05-25 RPC: `SendSms`, `SendBatchSms`, `QuerySendDetails`; signature V2) |
//! | `/tencent/sms/` | Tencent Cloud SMS (API 3.0 `SendSms` 2021-01-11; TC3-HMAC-SHA256) |
//! | `/wechat/` | WeChat official account (`cgi-bin/stable_token`, `cgi-bin/message/template/send`, `cgi-bin/message/subscribe/bizsend`) |
//! | `/aliyun/voice/` | Alibaba Cloud voice (dyvmsapi 2017-05-25 `SingleCallByTts`) |
//!
//! They check credentials and signatures, enforce the providers' limits, answer with the
//! providers' own success shapes and error codes, record every accepted message in the
//! [`SandboxLog`] (SQLite, survives restarts), and send delivery receipts to configured
//! callback URLs asynchronously. Faults (errors, hangs, latency, lost or duplicated
//! receipts) can be injected ([`FaultConfig`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use simulators::{serve, NoAttribution, SandboxLog, SimulatorConfig, SimulatorState};
//! let sandbox = SandboxLog::open_in_dir(std::path::Path::new("data")).await?;
//! let state = SimulatorState::new(SimulatorConfig::default(), sandbox, std::sync::Arc::new(NoAttribution));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
//! serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: [`SimulatorConfig`], [`FaultConfig`].
//! - [`sandbox`]: [`SandboxLog`] (group-committed SQLite log), [`MessageAttribution`].
//! - `state`: [`SimulatorState`], shared by the handlers.
//! - `aliyun_rpc`: Alibaba RPC parameters, V2 signature check, nonce replay, error shape.
//! - `aliyun_sms`, `aliyun_voice`, `tencent_sms`, `wechat` (+ `wechat_values`): the APIs.
//! - `receipts`: asynchronous callback delivery (batched JSON, WeChat XML events).
//! - `faults`, `limits`, `ids`: fault injection, rolling-window limits and nonce memory,
//!   provider ids.

pub mod config;
pub mod replies;
pub mod sandbox;

mod aliyun_rpc;
mod aliyun_sms;
mod aliyun_voice;
mod faults;
mod ids;
mod limits;
mod receipts;
mod state;
mod tencent_sms;
mod wechat;
mod wechat_values;

pub use config::{FaultConfig, SimulatorConfig};
pub use sandbox::{MessageAttribution, NoAttribution, SandboxError, SandboxLog, SandboxMessage};
pub use state::SimulatorState;

use axum::routing::{any, post};
use axum::Router;
use std::future::Future;

/// A provider finishes what it started even when the caller hangs up: each request runs
/// in its own task, so a dropped connection (a connector killed mid-send) cannot cancel a
/// handler half-way, e.g. after a `client_msg_id` de-duplication claim but before the
/// message is recorded, which would leave the message claimed and never delivered.
async fn run_to_completion(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("simulator handler failed: {e}"),
        )
            .into_response(),
    }
}

/// Every simulator under its prefix.
pub fn router(state: SimulatorState) -> Router {
    Router::new()
        .route("/aliyun/sms", any(aliyun_sms::handle))
        .route("/aliyun/sms/", any(aliyun_sms::handle))
        .route("/aliyun/voice", any(aliyun_voice::handle))
        .route("/aliyun/voice/", any(aliyun_voice::handle))
        .route("/tencent/sms", post(tencent_sms::handle))
        .route("/tencent/sms/", post(tencent_sms::handle))
        .route("/wechat/cgi-bin/stable_token", any(wechat::stable_token))
        .route(
            "/wechat/cgi-bin/message/template/send",
            post(wechat::template_send),
        )
        .route(
            "/wechat/cgi-bin/message/subscribe/bizsend",
            post(wechat::bizsend),
        )
        .layer(axum::middleware::from_fn(run_to_completion))
        .with_state(state)
}

#[derive(serde::Deserialize)]
struct RecordQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /sandbox/messages?after=SEQ&limit=N` of a standalone simulator: what the providers
/// received, in order, with the provider-side reference of each message (`push_ref`: the
/// `OutId` / `client_msg_id` the connector sent, which is the push id).
async fn record(
    axum::extract::State(state): axum::extract::State<SimulatorState>,
    axum::extract::Query(q): axum::extract::Query<RecordQuery>,
) -> Result<axum::Json<serde_json::Value>, (axum::http::StatusCode, String)> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let items = state
        .sandbox()
        .try_list(None, q.after, limit)
        .await
        .map_err(|e| (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|m| m.seq))
        .flatten();
    Ok(axum::Json(
        serde_json::json!({"items": items, "next": next}),
    ))
}

/// [`router`] plus what a standalone simulator process serves besides the provider APIs:
/// `/healthz` and its record at `/sandbox/messages`.
pub fn standalone_router(state: SimulatorState) -> Router {
    let extra = Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/sandbox/messages", axum::routing::get(record))
        .with_state(state.clone());
    router(state).merge(extra)
}

/// Serves [`standalone_router`] on `listener` until `shutdown` completes, then drains
/// in-flight requests and flushes the sandbox log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SimulatorState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sandbox = state.sandbox().clone();
    let result = axum::serve(listener, standalone_router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sandbox.flush().await;
    result
}
