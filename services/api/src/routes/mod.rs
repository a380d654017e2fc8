//! Routes, one module per resource; `openapi` describes the `/api/v1` ones (OpenAPI 3.1)
//! and `openapi_page` renders that description as a self-contained HTML page.

mod attributes;
pub mod callbacks;
mod campaigns;
mod console;
mod dead_letters;
pub mod health;
pub mod openapi;
pub mod openapi_page;
pub(crate) mod operations;
mod operators;
mod opt_outs;
mod params;
mod policies;
mod provider_templates;
pub(crate) mod pushes;
mod recipient;
mod reports;
pub(crate) mod rereview;
mod sandbox;
mod subjects;
mod tags;

use crate::guard;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, post, put};
use axum::Router;

pub use crate::guard::peer_ip;

/// Fixes the console session key (see `console::session`); later calls change nothing.
pub fn console_key(secret: Option<&str>) {
    console::session::init_key(secret);
}

/// Body limits per route: small wherever a stranger can reach, large only for the
/// authenticated import (streamed, with a limit per line instead).
pub mod body_limits {
    /// Anything not listed below: recipient pages, sign-in, health, metrics.
    pub const DEFAULT: usize = 16 * 1024;
    /// Provider callbacks (a batch of 100 receipts is ~30 KiB).
    pub const CALLBACKS: usize = 256 * 1024;
    /// The authenticated JSON API and console forms (policies, campaigns, templates).
    pub const OPERATOR: usize = 2 * 1024 * 1024;
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/operators", post(operators::create).get(operators::list))
        .route("/operators/{id}/disable", post(operators::disable))
        .route("/operators/{id}/token", post(operators::rotate_token))
        .route("/subjects/{id}", put(subjects::put).get(subjects::get))
        .route("/provider-templates", get(provider_templates::list))
        .route(
            "/provider-templates/{provider}/{code}",
            put(provider_templates::put)
                .get(provider_templates::get)
                .delete(provider_templates::delete),
        )
        .route("/tags", get(tags::list))
        .route("/tags/{name}", put(tags::put).get(tags::get))
        .route("/attributes", get(attributes::list))
        .route(
            "/attributes/{name}",
            put(attributes::put)
                .get(attributes::get)
                .delete(attributes::delete),
        )
        .route("/params", get(params::list))
        .route("/params/{name}", put(params::put).get(params::get))
        .route("/policies", post(policies::create).get(policies::list))
        .route("/policies/{id}", get(policies::get))
        .route("/policies/{id}/publish", post(policies::publish))
        .route("/policies/{id}/withdraw", post(policies::withdraw))
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
        .route("/pushes/{id}/events", get(pushes::events))
        .route(
            "/subjects/{id}/eligible-policies",
            get(subjects::eligible_policies),
        )
        .route("/applications", post(reports::applications))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/replay", post(dead_letters::replay))
        .route("/sandbox/messages", get(sandbox::messages))
        .route("/opt-outs", get(opt_outs::list))
        .route("/opt-outs/undo", post(opt_outs::undo))
        .route("/audit", get(operators::audit_log))
        .route("/openapi.json", get(openapi::serve))
        .layer(DefaultBodyLimit::max(body_limits::OPERATOR))
        // The import streams its body (no extractor limit applies) and limits each line.
        .route("/subjects/import", post(subjects::import));
    let public_pages = Router::new()
        .route("/l/{code}", get(recipient::show))
        .route("/l/{code}/unsubscribe", post(operations::unsubscribe))
        .route_layer(from_fn_with_state(state.clone(), guard::limit_public_pages));
    let callbacks =
        callbacks::router(state.clone()).layer(DefaultBodyLimit::max(body_limits::CALLBACKS));
    let console =
        console::router(state.clone()).layer(DefaultBodyLimit::max(body_limits::OPERATOR));
    // Strangers reach these; their handlers run at most so many at once.
    let public = Router::new()
        .merge(public_pages)
        .merge(callbacks)
        .route_layer(from_fn_with_state(state.clone(), guard::limit_concurrency));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(public)
        .merge(console)
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .route("/metrics", get(crate::metrics::exposition))
        .route_layer(from_fn_with_state(
            state.clone(),
            crate::availability::fail_fast,
        ))
        .route_layer(from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(body_limits::DEFAULT))
        .layer(map_response(guard::json_refusals))
        .layer(guard::catch_panic())
        .with_state(state)
}
