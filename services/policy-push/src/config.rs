//! Settings from command-line flags and `POLICY_PUSH_*` environment variables (flags
//! win), checked at start with clear messages.

use anyhow::{bail, Context};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Directory of the embedded database and the sandbox record.
    #[arg(long, env = "POLICY_PUSH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "POLICY_PUSH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database URL (`sqlite://...`); default: SQLite in the data dir.
    #[arg(long, env = "POLICY_PUSH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Kafka bootstrap servers; unset: the in-process bus.
    #[arg(long, env = "POLICY_PUSH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Redis URL; unset: in-memory limits and caches.
    #[arg(long, env = "POLICY_PUSH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Base of recipient links; default: `http://<listen address>`.
    #[arg(long, env = "POLICY_PUSH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Bearer token of the bootstrap admin, used when no operator exists yet.
    #[arg(long, env = "POLICY_PUSH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Campaigns need a second operator's approval before launch.
    #[arg(long, env = "POLICY_PUSH_REQUIRE_APPROVAL", default_value_t = false)]
    pub require_approval: bool,
    /// Provider sends per second per channel (0 = unlimited).
    #[arg(long, env = "POLICY_PUSH_RATE_PER_SECOND", default_value_t = 0.0)]
    pub rate_per_second: f64,
    /// Milliseconds from acceptance to a simulated delivery receipt.
    #[arg(long, env = "POLICY_PUSH_SIM_RECEIPT_DELAY_MS", default_value_t = 200)]
    pub sim_receipt_delay_ms: u64,
    /// When the 12333 hotline may call (Asia/Shanghai): `always` or e.g. `mon-fri 09:00-17:00`.
    #[arg(
        long,
        env = "POLICY_PUSH_HOTLINE_HOURS",
        default_value = "mon-fri 09:00-17:00"
    )]
    pub hotline_hours: String,
    /// Multiplies every retry delay (tests shrink it; 1 in production).
    #[arg(long, env = "POLICY_PUSH_RETRY_SCALE", default_value_t = 1.0)]
    pub retry_scale: f64,
    /// JSON file of provider settings (base URLs, credentials, sign name, template codes);
    /// unset: the built-in simulators. See docs/connectors.md.
    #[arg(long, env = "POLICY_PUSH_PROVIDERS_CONFIG")]
    pub providers_config: Option<PathBuf>,
    /// Token WeChat signs event pushes with (official account server settings).
    #[arg(
        long,
        env = "POLICY_PUSH_WECHAT_CALLBACK_TOKEN",
        hide_env_values = true
    )]
    pub wechat_callback_token: Option<String>,
    /// JSON file of built-in simulator settings (faults, unsubscribed openids, ...);
    /// see docs/connectors.md.
    #[arg(long, env = "POLICY_PUSH_SIMULATOR_CONFIG")]
    pub simulator_config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, env = "POLICY_PUSH_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct MigrateArgs {
    #[arg(long, env = "POLICY_PUSH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "POLICY_PUSH_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl MigrateArgs {
    pub fn database_url(&self) -> anyhow::Result<String> {
        database_url(self.database_url.clone(), &self.data_dir)
    }
}

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    #[arg(
        long,
        env = "POLICY_PUSH_SIMULATOR_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub listen: SocketAddr,
    /// Directory of the sandbox record.
    #[arg(long, default_value = "./sim-data")]
    pub data_dir: PathBuf,
    /// Simulator settings as JSON (credentials, faults, callback URLs); see docs/connectors.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Checked settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    pub public_url: Option<String>,
    pub admin_token: Option<String>,
    pub require_approval: bool,
    pub rate_per_second: f64,
    pub hotline_hours: domain::window::SendWindow,
    pub retry_scale: f64,
    /// `None`: the built-in simulators at this server's address.
    pub providers: Option<connectors::ProvidersConfig>,
    pub wechat_callback_token: String,
    pub simulator: simulators::SimulatorConfig,
}

/// Reads a simulator settings file (JSON); defaults when `None`.
pub fn simulator_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<simulators::SimulatorConfig> {
    match path {
        None => Ok(simulators::SimulatorConfig::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read simulator config {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("simulator config {} is not valid", p.display()))
        }
    }
}

fn database_url(explicit: Option<String>, data_dir: &std::path::Path) -> anyhow::Result<String> {
    match explicit.filter(|u| !u.is_empty()) {
        Some(u) => Ok(u),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
            Ok(format!(
                "sqlite://{}",
                data_dir.join("policy-push.db").display()
            ))
        }
    }
}

impl ServeConfig {
    pub fn from_args(a: ServeArgs) -> anyhow::Result<Self> {
        if a.kafka_brokers.as_deref().is_some_and(|b| !b.is_empty()) {
            bail!("POLICY_PUSH_KAFKA_BROKERS is set, but this build has only the in-process bus; unset it to run on the embedded default");
        }
        if a.redis_url.as_deref().is_some_and(|b| !b.is_empty()) {
            bail!("POLICY_PUSH_REDIS_URL is set, but this build has only in-memory limits; unset it to run on the embedded default");
        }
        if !(a.rate_per_second >= 0.0 && a.rate_per_second.is_finite()) {
            bail!("POLICY_PUSH_RATE_PER_SECOND must be a number ≥ 0 (0 = unlimited)");
        }
        if !(a.retry_scale >= 0.0 && a.retry_scale.is_finite()) {
            bail!("POLICY_PUSH_RETRY_SCALE must be a number ≥ 0");
        }
        if let Some(t) = &a.admin_token {
            if t.len() < 8 {
                bail!("POLICY_PUSH_ADMIN_TOKEN must be at least 8 characters");
            }
        }
        let mut simulator = simulator_config(a.simulator_config.as_deref())?;
        if a.simulator_config.is_none() {
            simulator.receipt_delay = std::time::Duration::from_millis(a.sim_receipt_delay_ms);
        }
        let providers =
            match &a.providers_config {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read providers config {}", p.display()))?;
                    Some(serde_json::from_str(&text).with_context(|| {
                        format!("providers config {} is not valid", p.display())
                    })?)
                }
            };
        let wechat_callback_token = a
            .wechat_callback_token
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| simulator.wechat_callback_token.clone());
        Ok(Self {
            providers,
            wechat_callback_token,
            simulator,
            database_url: database_url(a.database_url, &a.data_dir)?,
            data_dir: a.data_dir,
            listen: a.listen,
            public_url: a.public_url.filter(|u| !u.is_empty()),
            admin_token: a.admin_token.filter(|t| !t.is_empty()),
            require_approval: a.require_approval,
            rate_per_second: a.rate_per_second,
            hotline_hours: domain::window::SendWindow::parse(&a.hotline_hours)
                .map_err(|e| anyhow::anyhow!("POLICY_PUSH_HOTLINE_HOURS: {e}"))?,
            retry_scale: a.retry_scale,
        })
    }
}

/// A URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POLICY_PUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
