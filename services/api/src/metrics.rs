//! `GET /metrics` (Prometheus text format) and the HTTP request metrics: every matched
//! request is counted by method, route pattern (never the concrete path, which may carry
//! an id) and status, and timed. Label values come from fixed sets only: a method outside
//! the standard ones is counted as `other`, so a stranger cannot mint label values.

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
    let method = method_label(req.method()).to_owned();
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

/// The method as a metric label: one of the standard methods, else `other`.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The Prometheus exposition of this process's metrics.
pub async fn exposition() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let odd = axum::http::Method::from_bytes(b"X-HOSTILE-1234").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
    }
}
