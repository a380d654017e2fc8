//! Assembles one running process: store, bus, limits, providers (with the built-in
//! simulators on the embedded default), the pipeline roles and the HTTP API.

use crate::attribution::{Attributing, InFlight};
use crate::config::{ServeConfig, SimulateArgs};
use anyhow::Context;
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

pub async fn start(cfg: ServeConfig) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    let store = store::open(&cfg.database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            crate::config::redact_url(&cfg.database_url)
        )
    })?;
    if let Some(token) = &cfg.admin_token {
        if api::bootstrap_admin(store.as_ref(), token).await? {
            tracing::info!("created the bootstrap admin from POLICY_PUSH_ADMIN_TOKEN");
        }
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let public_url = cfg.public_url.clone().unwrap_or_else(|| base.clone());

    // The built-in simulators play the providers, on this server under their prefixes.
    let sandbox = simulators::SandboxLog::open_in_dir(&cfg.data_dir)
        .await
        .context("cannot open the sandbox record")?;
    let in_flight = InFlight::default();
    let mut sim_cfg = cfg.simulator.clone();
    sim_cfg
        .sms_report_url
        .get_or_insert_with(|| format!("{base}/callbacks/aliyun/sms-report"));
    sim_cfg
        .tencent_sms_report_url
        .get_or_insert_with(|| format!("{base}/callbacks/tencent/sms-report"));
    sim_cfg
        .wechat_event_url
        .get_or_insert_with(|| format!("{base}/callbacks/wechat/events"));
    sim_cfg
        .voice_report_url
        .get_or_insert_with(|| format!("{base}/callbacks/aliyun/voice-report"));
    let attribution = in_flight.clone();
    let sim_state = simulators::SimulatorState::new(
        sim_cfg,
        sandbox.clone(),
        Arc::new(move |r: &str| attribution.attribute(r)),
    );
    // Real providers are a configuration change: base URLs and credentials.
    let providers_cfg = cfg
        .providers
        .clone()
        .unwrap_or_else(|| ProvidersConfig::simulator(&base));
    let providers = wrap(connectors::build_providers(&providers_cfg), &in_flight);

    let pipeline = Pipeline::new(
        store,
        Arc::new(bus::memory::MemoryBus::new()),
        Arc::new(limits::MemoryRateLimiter::new()),
        providers,
        PipelineConfig {
            public_url,
            rate_per_second: cfg.rate_per_second,
            hotline_window: cfg.hotline_hours.clone(),
            retry_scale: cfg.retry_scale,
            ..Default::default()
        },
    );
    pipeline
        .load_index()
        .await
        .context("cannot build the population index")?;
    let state = api::AppState::new(
        pipeline.clone(),
        api::ApiConfig {
            require_approval: cfg.require_approval,
            wechat_callback_token: cfg.wechat_callback_token.clone(),
            ..Default::default()
        },
        Some(Arc::new(sandbox.clone())),
    )
    .await?;
    let app = api::router(state).merge(simulators::router(sim_state));

    let shutdown = CancellationToken::new();
    let http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
    });
    let mut roles = vec![RoleName::Planner, RoleName::Relay];
    roles.extend(domain::Channel::ALL.map(RoleName::Connector));
    let mut tasks = pipeline.spawn(&roles, shutdown.clone()).await?;
    tracing::info!(%addr, "policy-push serving (embedded default)");

    let done = tokio::spawn(async move {
        while let Some(r) = tasks.join_next().await {
            r.context("role task panicked")?;
        }
        http.await.context("http task")?.context("http server")?;
        sandbox.flush().await;
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
    let cfg = crate::config::simulator_config(args.config.as_deref())?;
    std::fs::create_dir_all(&args.data_dir)?;
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
