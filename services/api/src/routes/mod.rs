//! Routes, one module per resource.

mod callbacks;
mod campaigns;
mod console;
mod dead_letters;
pub mod health;
mod operations;
mod operators;
mod params;
mod policies;
mod recipient;
mod reports;
mod sandbox;
mod subjects;
mod tags;

use crate::AppState;
use axum::routing::{get, post, put};
use axum::Router;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/operators", post(operators::create))
        .route("/subjects/import", post(subjects::import))
        .route("/subjects/{id}", put(subjects::put).get(subjects::get))
        .route("/tags", get(tags::list))
        .route("/tags/{name}", put(tags::put).get(tags::get))
        .route("/params", get(params::list))
        .route("/params/{name}", put(params::put).get(params::get))
        .route("/policies", post(policies::create).get(policies::list))
        .route("/policies/{id}", get(policies::get))
        .route("/policies/{id}/publish", post(policies::publish))
        .route(
            "/policies/{id}/review",
            post(operations::review_policy).get(operations::get_review),
        )
        .route("/policies/{id}/audience", get(policies::audience))
        .route("/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/campaigns/{id}", get(campaigns::get))
        .route("/campaigns/{id}/submit", post(campaigns::submit))
        .route("/campaigns/{id}/approve", post(campaigns::approve))
        .route("/campaigns/{id}/launch", post(campaigns::launch))
        .route("/campaigns/{id}/pushes", get(campaigns::pushes))
        .route("/campaigns/{id}/pause", post(campaigns::pause))
        .route("/campaigns/{id}/resume", post(campaigns::resume))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/campaigns/{id}/report", get(reports::report))
        .route("/campaigns/{id}/report.csv", get(reports::report_csv))
        .route("/subjects/{id}/history", get(reports::history))
        .route("/applications", post(reports::applications))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/replay", post(dead_letters::replay))
        .route("/sandbox/messages", get(sandbox::messages))
        .route("/audit", get(operators::audit_log));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/l/{code}", get(recipient::show))
        .route("/l/{code}/unsubscribe", post(operations::unsubscribe))
        .route("/callbacks/aliyun/sms-up", post(operations::aliyun_sms_up))
        .route(
            "/callbacks/tencent/sms-reply",
            post(operations::tencent_sms_reply),
        )
        .merge(console::router())
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .merge(callbacks::router())
        .route("/metrics", get(crate::metrics::exposition))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}
