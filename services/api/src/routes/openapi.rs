//! The OpenAPI 3.1 description of the operator API (`/api/v1`), derived with `utoipa` from
//! each handler's `#[utoipa::path]` annotation and the types it reads (request bodies,
//! query parameters, [`ErrorBody`]). Served at `GET /api/v1/openapi.json`; rendered for
//! reading without network by [`super::openapi_page`] into `docs/api/openapi.html`.
//!
//! Every operation gets, besides its own refusals, the ones any `/api/` call may answer:
//! 401 `unauthenticated`, 429 `rate_limited` and 500 `internal` (see [`Refusals`]).

use crate::auth::Operator;
use crate::error::ErrorBody;
use axum::Json;
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "policy-push",
        description = "The operator API of policy-push: subjects, tags, policies, campaigns, \
            reports and operations. Every call needs `Authorization: Bearer <token>`; \
            refusals are `{\"error\": {\"code\", \"message\"}}` with a stable code \
            (docs/api.md lists them)."
    ),
    paths(
        super::pushes::events,
        super::operators::create,
        super::operators::list,
        super::operators::disable,
        super::operators::rotate_token,
        super::operators::audit_log,
        super::subjects::import,
        super::subjects::put,
        super::subjects::get,
        super::subjects::eligible_policies,
        super::reports::history,
        super::tags::list,
        super::tags::get,
        super::tags::put,
        super::attributes::list,
        super::attributes::get,
        super::attributes::put,
        super::attributes::delete,
        super::params::list,
        super::params::get,
        super::params::put,
        super::provider_templates::list,
        super::provider_templates::get,
        super::provider_templates::put,
        super::provider_templates::delete,
        super::policies::list,
        super::policies::create,
        super::policies::get,
        super::policies::publish,
        super::policies::withdraw,
        super::operations::review_policy,
        super::operations::get_review,
        super::policies::audience,
        super::campaigns::list,
        super::campaigns::create,
        super::campaigns::get,
        super::campaigns::submit,
        super::campaigns::approve,
        super::campaigns::launch,
        super::campaigns::pause,
        super::campaigns::resume,
        super::campaigns::cancel,
        super::campaigns::pushes,
        super::reports::report,
        super::reports::report_csv,
        super::reports::applications,
        super::dead_letters::list,
        super::dead_letters::replay,
        super::sandbox::messages,
        super::opt_outs::list,
        super::opt_outs::undo,
        serve,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Refusals),
    security(("bearer" = [])),
    tags(
        (name = "operators", description = "Operator accounts and tokens"),
        (name = "audit", description = "The audit log of operator actions"),
        (name = "subjects", description = "Residents and enterprises: import, upsert, read, history"),
        (name = "tags", description = "Named rules over attributes"),
        (name = "attributes", description = "The attribute catalogue"),
        (name = "params", description = "Dated policy parameters rules read as `params.<name>`"),
        (name = "provider-templates", description = "Templates registered with the providers"),
        (name = "policies", description = "Policies, their review, publication and audience"),
        (name = "campaigns", description = "Campaigns: approval, launch, pushes"),
        (name = "reports", description = "Reach reports and applications"),
        (name = "dead-letters", description = "Pushes that failed for good"),
        (name = "sandbox", description = "What the built-in provider simulators received"),
        (name = "opt-outs", description = "Recipients' opt-outs"),
        (name = "openapi", description = "This description"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme and the refusals every `/api/` operation may answer.
pub struct Refusals;

/// `(status, component name, description)` of the refusals common to every operation.
const COMMON: [(&str, &str, &str); 3] = [
    (
        "401",
        "Unauthenticated",
        "`unauthenticated`: no valid bearer token",
    ),
    (
        "429",
        "RateLimited",
        "`rate_limited`: too many failed tokens from this address (`Retry-After` says when to retry)",
    ),
    (
        "500",
        "Internal",
        "`internal`: an internal error (details only in the server log)",
    ),
];

impl Modify for Refusals {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An operator's API token"))
                    .build(),
            ),
        );
        for (_, name, description) in COMMON {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            components.responses.insert(
                name.to_string(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/json", body)
                        .build(),
                ),
            );
        }
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for (status, name, _) in COMMON {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// The description, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The description as pretty JSON with a final newline (as checked in under `docs/api/`).
pub fn document_json() -> String {
    let mut s = serde_json::to_string_pretty(document()).expect("the description serialises");
    s.push('\n');
    s
}

/// `GET /api/v1/openapi.json`: this description (any operator).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_serve",
    tag = "openapi",
    summary = "The OpenAPI 3.1 description of every /api/v1 route",
    responses(
        (status = 200, description = "This document", body = Object, content_type = "application/json"),
    )
)]
pub async fn serve(_op: Operator) -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}
