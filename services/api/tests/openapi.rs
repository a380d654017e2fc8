//! The OpenAPI description against the router it describes:
//!
//! - every route the router serves under `/api/v1` (its paths read from the router itself,
//!   each method probed over HTTP) is in the description with that method, and the
//!   description has no operation the router lacks; each answers 401 without a token, as
//!   the description's bearer scheme says;
//! - every operation lists its refusals with the error body, every `$ref` resolves;
//! - `GET /api/v1/openapi.json` serves the description, and the copies checked in under
//!   `docs/api/` (JSON and the HTML page) are current. `POLICY_PUSH_UPDATE_OPENAPI=1`
//!   rewrites them.

use api::routes::{openapi, openapi_page};
use domain::operator::Role;
use serde_json::Value;
use std::collections::BTreeSet;
use testkit::{InProcess, Setup};

const ADMIN: &str = "t-admin";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The paths the router serves under `/api/v1`, as it reports them (`Debug` lists every
/// registered path; nothing else in it is a string starting with `/api/v1/`).
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    format!("{router:?}")
        .split('"')
        .filter(|s| s.starts_with("/api/v1/"))
        .map(str::to_string)
        .collect()
}

/// `METHOD path` of every operation in the description.
fn described(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    out
}

/// `/campaigns/{id}/pushes` → `/campaigns/x/pushes`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_router_and_the_description_have_the_same_operations() {
    let app = InProcess::start(Setup::new(&[(ADMIN, Role::Admin)])).await;
    let paths = routed_paths(&app.router);
    assert!(
        paths.len() > 30,
        "the router's paths were not found: {paths:?}"
    );
    let http = reqwest::Client::new();
    let mut routed = BTreeSet::new();
    let mut not_401 = Vec::new();
    for path in &paths {
        for m in METHODS {
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let resp = http
                .request(method, format!("{}{}", app.base, concrete(path)))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            if status == 405 {
                continue;
            }
            routed.insert(format!("{} {path}", m.to_uppercase()));
            if status != 401 {
                not_401.push(format!("{} {path}: {status}", m.to_uppercase()));
            }
        }
    }
    let doc = serde_json::to_value(openapi::document()).unwrap();
    let described = described(&doc);
    let missing: Vec<_> = routed.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes the description lacks (annotate the handler with #[utoipa::path] and list it \
         in api::routes::openapi): {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "operations described that the router does not serve: {extra:?}"
    );
    assert!(
        not_401.is_empty(),
        "operations that answer without a token: {not_401:?}"
    );
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_operation_states_its_refusals_and_every_reference_resolves() {
    let doc = serde_json::to_value(openapi::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_string()),
                "{m} {path}: operationId {id:?} twice"
            );
            let responses = op["responses"].as_object().unwrap();
            assert_eq!(
                responses["401"]["$ref"], "#/components/responses/Unauthenticated",
                "{m} {path}"
            );
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{m} {path} has no success response"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {path} has no summary"
            );
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for name in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = name.trim_end_matches('}');
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{m} {path} does not describe its path parameter {name}"
                );
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Request bodies and query parameters come from the handlers' types.
    let campaign = &doc["components"]["schemas"]["CampaignDraft"];
    assert!(campaign["properties"]["channels"].is_object(), "{campaign}");
    let pushes = &doc["paths"]["/api/v1/campaigns/{id}/pushes"]["get"]["parameters"];
    assert!(
        pushes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cursor" && p["in"] == "query"),
        "{pushes}"
    );
}

#[tokio::test]
async fn the_description_is_served_and_the_checked_in_copies_are_current() {
    let app = InProcess::start(Setup::new(&[(ADMIN, Role::Admin)])).await;
    let (status, served) = app.call("GET", ADMIN, "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200, "{served}");
    let doc = serde_json::to_value(openapi::document()).unwrap();
    assert_eq!(served, doc);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api");
    let files = [
        ("openapi.json", openapi::document_json()),
        ("openapi.html", openapi_page::html(&doc)),
    ];
    let update = std::env::var("POLICY_PUSH_UPDATE_OPENAPI").is_ok_and(|v| v == "1");
    for (name, fresh) in files {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == fresh,
            "docs/api/{name} is not current: run \
             POLICY_PUSH_UPDATE_OPENAPI=1 cargo nextest run -p api --test openapi"
        );
    }
}
