//! The HTTP surface of policy-push (axum): the operator REST API of `api-contract.md`,
//! recipient pages, provider receipt callbacks and, on the embedded default, the provider
//! simulators under their own path prefixes.
//!
//! # Layout
//! - [`error`]: JSON errors with stable codes.
//! - [`availability`]: 503 `store_unavailable` at once while the store does not answer
//!   (a watch on the store and a middleware), instead of requests hanging.
//! - [`guard`]: caught panics (500 JSON, message withheld), JSON 413 refusals.
//! - [`auth`]: bearer tokens (failures throttled per address), operators, role checks.
//! - [`routes`]: one module per resource (operators, opt-outs, subjects, tags, policies,
//!   campaigns, sandbox, callbacks, recipient pages, health), and `rereview`: approved
//!   campaigns back to review when a tag or parameter change may alter their audience;
//!   `openapi`: the OpenAPI 3.1 description of `/api/v1` (`utoipa`, from the handlers'
//!   annotations and types), served at `/api/v1/openapi.json`, and `openapi_page`: that
//!   description as a self-contained HTML page (`docs/api/openapi.html`).
//! - [`import`]: streaming NDJSON / CSV subject import.
//! - [`metrics`]: `GET /metrics` and the HTTP request metrics.
//! - [`receipts`]: the queue between the receipt callbacks and the store (batched writes).

pub mod auth;
pub mod availability;
pub mod error;
pub mod guard;
pub mod import;
pub mod metrics;
pub mod receipts;
#[cfg(test)]
mod robustness;
pub mod routes;

use axum::Router;
use pipeline::matching::TagRules;
use pipeline::Pipeline;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use store::{OperatorRecord, Store};

/// Settings of the API role.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Campaigns need a reviewer's approval before launch.
    pub require_approval: bool,
    /// Days a recipient link stays valid.
    pub link_days: i64,
    /// Token WeChat signs event pushes with (the server URL's token in the official
    /// account settings); events whose signature does not match are refused.
    pub wechat_callback_token: String,
    /// A campaign whose audience is larger than this needs a second approval by another
    /// reviewer; `None`: one approval is enough.
    pub second_approval_above: Option<i64>,
    /// Publishing a policy needs a passed disclosure review. Off by default (the API
    /// contract publishes a draft directly); a review that did not pass always blocks.
    pub require_disclosure_review: bool,
    /// Who may call the provider callbacks (secrets, source allowlist).
    pub callbacks: routes::callbacks::CallbackAuth,
    /// An SMS reply opts out only a number we texted within this window.
    pub sms_reply_window: chrono::Duration,
    /// Request rates per source address on the routes strangers reach.
    pub rate_limits: guard::RateLimits,
    /// Key of the console session cookies (`POLICY_PUSH_CONSOLE_SECRET`); `None`: that
    /// variable if set, else random per process. The first API state of a process fixes it.
    pub console_secret: Option<String>,
}

/// The simulators' public WeChat callback token: never accepted with real providers.
pub const SIMULATOR_WECHAT_TOKEN: &str = "sim-callback-token";

impl Default for ApiConfig {
    /// Secure defaults except approvals (the binary turns those on): random callback
    /// secrets, the simulators' WeChat token (the binary refuses it with real providers).
    fn default() -> Self {
        Self {
            require_approval: false,
            link_days: 90,
            wechat_callback_token: SIMULATOR_WECHAT_TOKEN.into(),
            second_approval_above: None,
            require_disclosure_review: false,
            callbacks: routes::callbacks::CallbackAuth::random(),
            sms_reply_window: chrono::Duration::days(7),
            rate_limits: guard::RateLimits::default(),
            console_secret: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
    pub config: ApiConfig,
    /// The built-in simulators' record, when they run in this process.
    pub sandbox: Option<Arc<simulators::SandboxLog>>,
    /// Operators by token hash, each with when it was read: trusted for
    /// [`auth::CACHE_TTL`], so a token rotated or an operator disabled on another replica
    /// stops working there within that time (at once on this one, which clears it).
    pub operators: Arc<Mutex<HashMap<String, (OperatorRecord, std::time::Instant)>>>,
    /// Compiled tag rules, replaced whenever a tag changes.
    pub tag_rules: Arc<RwLock<Arc<TagRules>>>,
    /// Rate limiters and the public concurrency bound.
    pub guard: Arc<guard::Guard>,
    /// Receipts the callbacks accepted, written in batches.
    pub receipts: Arc<receipts::ReceiptQueue>,
    /// The policies in force compiled together, for one subject's eligible policies
    /// (rebuilt when what it was built from changes).
    pub policy_set: Arc<Mutex<Option<Arc<pipeline::eligibility::PolicySet>>>>,
    /// Whether the store answers: requests fail fast with 503 while it does not.
    pub store_watch: Arc<availability::StoreWatch>,
    /// What `/readyz` checks (the store, and the bus when shared; the binary adds Redis
    /// where the roles need it).
    pub backends: Arc<routes::health::Backends>,
}

impl AppState {
    pub async fn new(
        pipeline: Pipeline,
        config: ApiConfig,
        sandbox: Option<Arc<simulators::SandboxLog>>,
    ) -> anyhow::Result<Self> {
        let store = pipeline.store.clone();
        let rules = TagRules::load(store.as_ref(), pipeline.today()).await?;
        routes::console_key(config.console_secret.as_deref());
        Ok(Self {
            receipts: receipts::ReceiptQueue::start(store.clone()),
            guard: Arc::new(guard::Guard::new(&config.rate_limits)),
            store_watch: availability::StoreWatch::start(store.clone()),
            backends: Arc::new(routes::health::Backends::of(&pipeline)),
            store,
            pipeline,
            config,
            sandbox,
            operators: Default::default(),
            tag_rules: Arc::new(RwLock::new(Arc::new(rules))),
            policy_set: Default::default(),
        })
    }

    pub fn tag_rules(&self) -> Arc<TagRules> {
        self.tag_rules.read().expect("tag rules lock").clone()
    }

    pub async fn reload_tag_rules(&self) -> anyhow::Result<()> {
        let rules = TagRules::load(self.store.as_ref(), self.pipeline.today()).await?;
        *self.tag_rules.write().expect("tag rules lock") = Arc::new(rules);
        Ok(())
    }

    /// The tag rules bound to today's parameter values: reloaded when the date has
    /// changed since they were compiled (parameter changes reload them at once).
    pub async fn current_tag_rules(&self) -> anyhow::Result<Arc<TagRules>> {
        let rules = self.tag_rules();
        if rules.bound_on() == Some(self.pipeline.today()) {
            return Ok(rules);
        }
        self.reload_tag_rules().await?;
        Ok(self.tag_rules())
    }

    /// Records an operator action in the audit log.
    pub async fn audit(
        &self,
        op: &auth::Operator,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> error::ApiResult<()> {
        self.store
            .audit(&store::AuditEntry {
                operator_id: op.id().to_string(),
                action: action.to_string(),
                target: target.to_string(),
                detail,
                at: self.pipeline.now(),
            })
            .await?;
        Ok(())
    }
}

/// Creates the bootstrap admin with `token` when no operator exists yet.
pub async fn bootstrap_admin(store: &dyn Store, token: &str) -> anyhow::Result<bool> {
    if store.count_operators().await? > 0 {
        return Ok(false);
    }
    let op = OperatorRecord {
        id: pipeline::codes::record_id("op"),
        name: "admin".into(),
        role: domain::operator::Role::Admin,
        created_at: chrono::Utc::now(),
        created_by: None,
        disabled_at: None,
    };
    store.insert_operator(&op, &auth::token_hash(token)).await?;
    Ok(true)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}
