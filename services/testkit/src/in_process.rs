//! The API in the test's own runtime: a SQLite store in a temporary dir with one operator
//! per token, the pipeline on the in-process bus and in-memory limits, the API router
//! (plus, when asked, the provider simulators and pipeline roles) served on port 0.
//! Everything stops when the [`InProcess`] is dropped.

use api::{ApiConfig, AppState};
use domain::operator::Role;
use pipeline::{Pipeline, RoleName};
use serde_json::Value;
use std::sync::Arc;
use store::{OperatorRecord, Store};
use tokio_util::sync::CancellationToken;

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
pub fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> CancellationToken {
    let shutdown = CancellationToken::new();
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
            .insert_operator(&op, &api::auth::token_hash(token))
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
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = http.request(method, url).bearer_auth(token);
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

/// What an [`InProcess`] app runs with.
pub struct Setup {
    /// `(token, role)` of each operator.
    pub operators: Vec<(&'static str, Role)>,
    pub config: ApiConfig,
    /// Serve the provider simulators (with an in-memory sandbox record) beside the API,
    /// with these settings; the providers' catch-all templates are added to theirs.
    pub simulators: Option<simulators::SimulatorConfig>,
    /// Pipeline roles to run in process (none: the test drives the pipeline itself).
    pub roles: Vec<RoleName>,
    /// The pipeline's clock (default: the wall clock).
    pub clock: Option<pipeline::Clock>,
    /// Put before the paths given to [`InProcess::call`] and [`InProcess::ok`] (`/api/v1`
    /// for a test that only calls the API; default none).
    pub prefix: &'static str,
}

impl Setup {
    /// The API alone with these operators and the default settings.
    pub fn new(operators: &[(&'static str, Role)]) -> Setup {
        Setup {
            operators: operators.to_vec(),
            config: ApiConfig::default(),
            simulators: None,
            roles: Vec::new(),
            clock: None,
            prefix: "",
        }
    }
}

pub struct InProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
    pub state: AppState,
    /// The API router as served (without the simulators).
    pub router: axum::Router,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    prefix: &'static str,
    _dir: tempfile::TempDir,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl InProcess {
    pub async fn start(setup: Setup) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_operators(&dir, &setup.operators).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // As the server does: the providers settings' templates (the simulators'
        // catch-alls) join the registry.
        let providers_cfg = connectors::config::ProvidersConfig::simulator(&base);
        for t in &providers_cfg.templates {
            store
                .put_provider_template(t, chrono::Utc::now())
                .await
                .unwrap();
        }
        let mut pipeline = Pipeline::new(
            store.clone(),
            Arc::new(bus::memory::MemoryBus::new()),
            Arc::new(limits::MemoryRateLimiter::new()),
            connectors::build_providers(&providers_cfg),
            pipeline_config(&base),
        );
        if let Some(clock) = setup.clock {
            pipeline.clock = clock;
        }
        let (sandbox, sim) = match setup.simulators {
            Some(mut config) => {
                let sandbox = simulators::SandboxLog::open_in_memory().await.unwrap();
                let mut templates = providers_cfg.templates.clone();
                templates.append(&mut config.templates);
                config.templates = templates;
                let sim = simulators::SimulatorState::new(
                    config,
                    sandbox.clone(),
                    Arc::new(simulators::NoAttribution),
                );
                (Some(Arc::new(sandbox)), Some(sim))
            }
            None => (None, None),
        };
        let state = AppState::new(pipeline.clone(), setup.config, sandbox)
            .await
            .unwrap();
        let router = api::router(state.clone());
        let app = match sim {
            Some(sim) => router.clone().merge(simulators::router(sim)),
            None => router.clone(),
        };
        let shutdown = serve(listener, app);
        if !setup.roles.is_empty() {
            let tasks = pipeline
                .spawn(&setup.roles, shutdown.clone())
                .await
                .unwrap();
            std::mem::forget(tasks); // they stop with `shutdown`
        }
        InProcess {
            base,
            store,
            pipeline,
            state,
            router,
            http: reqwest::Client::new(),
            shutdown,
            prefix: setup.prefix,
            _dir: dir,
        }
    }

    /// `method` `path` (after [`Setup::prefix`]) with `token` and `body` as JSON.
    pub async fn call(
        &self,
        method: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(
            &self.http,
            method,
            token,
            format!("{}{}{path}", self.base, self.prefix),
            body,
        )
        .await
    }

    /// As [`Self::call`], failing unless the answer is 2xx; answers the body.
    pub async fn ok(&self, method: &str, token: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, token, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// `POST /api/v1/subjects/import` with `content_type`; answers the status and report.
    pub async fn import(&self, token: &str, content_type: &str, body: String) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/subjects/import", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}
