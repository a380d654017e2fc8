//! `GET /metrics` (Prometheus text format) and the HTTP request metrics: every matched
//! request is counted by method, route pattern (never the concrete path, which may carry
//! an id) and status, and timed.

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Counts and times one request (installed with `route_layer`, so the route is known).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let m = telemetry::metrics();
    let timer = m
        .http_seconds
        .with_label_values(&[method.as_str(), route.as_str()])
        .start_timer();
    let response = next.run(req).await;
    timer.observe_duration();
    m.http_requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    response
}

/// The Prometheus exposition of this process's metrics.
pub async fn exposition() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
}
