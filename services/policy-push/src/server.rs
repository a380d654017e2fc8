//! Assembles one running process: store, bus, limits, providers (with the built-in
//! simulators on the embedded default), the pipeline roles it runs and the HTTP surface:
//! the API (with the simulators when built in) for the api role, otherwise `/healthz`,
//! `/readyz` and `/metrics` only.

use crate::attribution::{Attributing, InFlight};
use crate::config::{Role, ServeConfig, SimulateArgs};
use anyhow::Context;
use api::routes::health;
use connectors::{ProviderSet, ProvidersConfig};
use pipeline::{Pipeline, PipelineConfig, RoleName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops taking work, drains in-flight work, and waits for everything to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.done.await.context("server task")?
    }
}

fn wrap(providers: ProviderSet, in_flight: &InFlight) -> ProviderSet {
    let w = |inner| -> Arc<dyn connectors::Provider> {
        Arc::new(Attributing {
            inner,
            in_flight: in_flight.clone(),
        })
    };
    ProviderSet {
        sms: w(providers.sms),
        wechat: w(providers.wechat),
        hotline: w(providers.hotline),
    }
}

/// `/healthz`, `/readyz` and `/metrics` of a process that runs no API (the same answers
/// as the API's).
fn role_router(backends: health::Backends) -> axum::Router {
    use axum::routing::get;
    let backends = Arc::new(backends);
    axum::Router::new()
        .route("/healthz", get(health::healthz))
        .route(
            "/readyz",
            get(move || {
                let backends = backends.clone();
                async move { health::readiness(&backends).await }
            }),
        )
        .route("/metrics", get(api::metrics::exposition))
}

pub async fn start(cfg: ServeConfig) -> anyhow::Result<Running> {
    let has_api = cfg.roles.contains(&Role::Api);
    crate::private::data_dir(&cfg.data_dir)?;
    let pseudonyms = crate::private::pseudonymizer(cfg.pseudonym_key.as_deref(), &cfg.data_dir)?;
    let store = store::open(&cfg.database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            crate::config::redact_url(&cfg.database_url)
        )
    })?;
    if has_api {
        if let Some(token) = &cfg.admin_token {
            if api::bootstrap_admin(store.as_ref(), token).await? {
                tracing::info!("created the bootstrap admin from POLICY_PUSH_ADMIN_TOKEN");
            }
        }
    }
    let bus = bus::open(cfg.kafka.clone()).context("cannot set up the Kafka bus")?;
    let limits = limits::open(cfg.redis_url.as_deref(), &cfg.redis_prefix)
        .context("cannot set up the Redis limits")?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let public_url = cfg.public_url.clone().unwrap_or_else(|| base.clone());

    // Real providers are a configuration change: base URLs and credentials.
    let providers_cfg = cfg
        .providers
        .clone()
        .unwrap_or_else(|| ProvidersConfig::simulator(&base));
    // The templates the providers settings register (the simulators' catch-alls by
    // default) join the registry campaigns bind.
    for t in &providers_cfg.templates {
        t.check().context("providers settings: templates")?;
        store
            .put_provider_template(t, chrono::Utc::now())
            .await
            .context("cannot register the providers' templates")?;
    }

    // The built-in simulators play the providers, on this server under their prefixes.
    let in_flight = InFlight::default();
    let mut simulators_here = None;
    if cfg.builtin_simulators {
        let sandbox = simulators::SandboxLog::open_in_dir(&cfg.data_dir)
            .await
            .context("cannot open the sandbox record")?;
        let mut sim_cfg = cfg.simulator.clone();
        // They accept the templates the providers settings register, unless their own
        // settings list others.
        if sim_cfg.templates.is_empty() {
            sim_cfg.templates = providers_cfg.templates.clone();
        }
        crate::config::fill_callbacks(
            &mut sim_cfg,
            &base,
            &cfg.callbacks.aliyun_secret,
            &cfg.callbacks.tencent_secret,
        );
        let attribution = in_flight.clone();
        let sim_state = simulators::SimulatorState::new(
            sim_cfg,
            sandbox.clone(),
            Arc::new(move |r: &str| attribution.attribute(r)),
        );
        simulators_here = Some((sandbox, sim_state));
    }
    // Replicas on Redis share the WeChat token; the embedded default keeps it in memory.
    let shared_cache = cfg.redis_url.is_some().then(|| limits.cache.clone());
    let providers = connectors::build_providers_with(&providers_cfg, shared_cache);
    let providers = if simulators_here.is_some() {
        wrap(providers, &in_flight)
    } else {
        providers
    };

    let mut pipeline = Pipeline::new(
        store.clone(),
        bus,
        limits.rate.clone(),
        providers,
        PipelineConfig {
            public_url,
            rate_per_second: cfg.rate_per_second,
            hotline_window: cfg.hotline_hours.clone(),
            sms_window: cfg.sms_hours.clone(),
            wechat_window: cfg.wechat_hours.clone(),
            frequency_cap: cfg.frequency_cap,
            frequency_window: cfg.frequency_window,
            retry_scale: cfg.retry_scale,
            sending_lease: cfg.sending_lease,
            // Split roles: this process's index follows other processes' writes over the
            // bus; a planner catches up from the store before planning a launch.
            index_catch_up: cfg.split.then_some(std::time::Duration::from_secs(60)),
            receipt_deadline: cfg.receipt_deadline,
            receipt_give_up: cfg.receipt_give_up,
            ..Default::default()
        },
    );
    pipeline.pseudonyms = pseudonyms;
    if cfg.split && cfg.redis_url.is_some() {
        // Connector processes side by side count frequency caps and de-duplication keys
        // in Redis (required for split connector roles); one process keeps them in
        // memory, seeded from the store at start.
        pipeline.counter = limits.counter.clone();
    }
    // The API answers audiences from the index; the planner's calendar sweep reads it.
    let needs_index = has_api || cfg.roles.contains(&Role::Planner);
    let indexed_since = chrono::Utc::now();
    if needs_index {
        pipeline
            .load_index()
            .await
            .context("cannot build the population index")?;
    }
    // What `/readyz` checks: the store, the bus when shared, Redis where connectors use it.
    let runs_connectors = cfg
        .roles
        .iter()
        .any(|r| matches!(r.pipeline_role(), Some(RoleName::Connector(_))));
    let backends = health::Backends {
        limits: (runs_connectors && cfg.redis_url.is_some()).then(|| limits.clone()),
        ..health::Backends::of(&pipeline)
    };
    let app = if has_api {
        let mut state = api::AppState::new(
            pipeline.clone(),
            api::ApiConfig {
                require_approval: cfg.require_approval,
                second_approval_above: cfg.second_approval_above,
                require_disclosure_review: cfg.require_review,
                wechat_callback_token: cfg.wechat_callback_token.clone(),
                console_secret: cfg.console_secret.clone(),
                callbacks: cfg.callbacks.clone(),
                ..Default::default()
            },
            simulators_here.as_ref().map(|(s, _)| Arc::new(s.clone())),
        )
        .await?;
        state.backends = Arc::new(backends);
        let app = api::router(state);
        match &simulators_here {
            Some((_, sim_state)) => app.merge(simulators::router(sim_state.clone())),
            None => app,
        }
    } else {
        role_router(backends)
    };

    let shutdown = CancellationToken::new();
    let http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        // The peer address feeds the rate limits and the callback allowlist.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
        .await
    });
    let roles: Vec<RoleName> = cfg.roles.iter().filter_map(|r| r.pipeline_role()).collect();
    let mut tasks = pipeline.spawn(&roles, shutdown.clone()).await?;
    if needs_index && pipeline.bus.durable() {
        // Other processes (API replicas) change subjects too: follow them into this index.
        tasks.spawn(pipeline::events::follow_subject_changes(
            pipeline.clone(),
            indexed_since,
            shutdown.clone(),
        ));
    }
    if cfg.roles.contains(&Role::Api) {
        // The record's chain heads, published daily by the process that serves the API.
        tasks.spawn(crate::record::publish_daily(
            pipeline.store.clone(),
            cfg.chain_heads_dir.clone(),
            pipeline.clock.clone(),
            shutdown.clone(),
        ));
    }
    let names: Vec<&str> = cfg.roles.iter().map(|r| r.name()).collect();
    tracing::info!(
        %addr,
        roles = %names.join(","),
        split = cfg.split,
        bus = if cfg.kafka.is_some() { "kafka" } else { "in-process" },
        limits = if cfg.redis_url.is_some() { "redis" } else { "in-memory" },
        "policy-push serving"
    );

    let done = tokio::spawn(async move {
        while let Some(r) = tasks.join_next().await {
            r.context("role task panicked")?;
        }
        http.await.context("http task")?.context("http server")?;
        if let Some((sandbox, _)) = simulators_here {
            sandbox.flush().await;
        }
        Ok(())
    });
    Ok(Running {
        addr,
        shutdown,
        done,
    })
}

pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub async fn serve_until_signal(cfg: ServeConfig) -> anyhow::Result<()> {
    let running = start(cfg).await?;
    println!("policy-push listening on http://{}", running.addr);
    wait_for_signal().await;
    tracing::info!("shutting down: draining in-flight work");
    running.stop().await
}

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let mut cfg = crate::config::simulator_config(args.config.as_deref())?;
    if let Some(url) = args.callbacks_url.as_deref().filter(|u| !u.is_empty()) {
        let secret = |s: &Option<String>| s.clone().unwrap_or_default();
        crate::config::fill_callbacks(
            &mut cfg,
            url,
            &secret(&args.secrets.aliyun_callback_secret),
            &secret(&args.secrets.tencent_callback_secret),
        );
    }
    crate::private::data_dir(&args.data_dir)?;
    let sandbox = simulators::SandboxLog::open_in_dir(&args.data_dir).await?;
    let state = simulators::SimulatorState::new(cfg, sandbox, Arc::new(simulators::NoAttribution));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "provider simulators listening on http://{}",
        listener.local_addr()?
    );
    simulators::serve(listener, state, wait_for_signal()).await?;
    Ok(())
}
