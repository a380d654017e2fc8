//! Settings from command-line flags and `POLICY_PUSH_*` environment variables (flags
//! win), checked at start with clear messages.

use anyhow::{bail, Context};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The bootstrap admin's token, at least (`POLICY_PUSH_ADMIN_TOKEN`).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 24;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Directory of the embedded database and the sandbox record.
    #[arg(long, env = "POLICY_PUSH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Where the chain heads are published daily (default: `chain-heads` in the data
    /// dir); `audit verify` reads them back.
    #[arg(long, env = "POLICY_PUSH_CHAIN_HEADS_DIR")]
    pub chain_heads_dir: Option<PathBuf>,
    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "POLICY_PUSH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database URL (`sqlite://...`); default: SQLite in the data dir.
    #[arg(long, env = "POLICY_PUSH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Kafka bootstrap servers (`host:port,...`); unset: the in-process bus.
    #[arg(long, env = "POLICY_PUSH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Put before every Kafka topic name (e.g. `prod.`).
    #[arg(long, env = "POLICY_PUSH_KAFKA_TOPIC_PREFIX", default_value = "")]
    pub kafka_topic_prefix: String,
    /// Create missing Kafka topics at start (off where topics are provisioned).
    #[arg(long, env = "POLICY_PUSH_KAFKA_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub kafka_create_topics: bool,
    /// Partitions of the topics this process creates (the most consumers a group uses).
    #[arg(long, env = "POLICY_PUSH_KAFKA_PARTITIONS", default_value_t = 12)]
    pub kafka_partitions: i32,
    /// Redis URL; unset: in-memory limits and caches.
    #[arg(long, env = "POLICY_PUSH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Put before every Redis key (several deployments can share one Redis).
    #[arg(long, env = "POLICY_PUSH_REDIS_PREFIX", default_value = "policy-push:")]
    pub redis_prefix: String,
    /// Base URL of a `policy-push simulate` process: connectors send to its provider APIs
    /// with the sandbox credentials (split deployments without real providers).
    #[arg(long, env = "POLICY_PUSH_SIMULATOR_URL")]
    pub simulator_url: Option<String>,
    /// Seconds after which a push claimed for sending by a connector that went silent is
    /// settled with the provider (split deployments: longer than any send takes).
    #[arg(long, env = "POLICY_PUSH_SENDING_LEASE_SECS", default_value_t = 60)]
    pub sending_lease_secs: u64,
    /// Seconds a push may wait in `sent` for its delivery receipt before the provider is
    /// asked for its status (a lost callback); see docs/connectors.md.
    #[arg(long, env = "POLICY_PUSH_RECEIPT_DEADLINE_SECS", default_value_t = 600)]
    pub receipt_deadline_secs: u64,
    /// Hours after sending at which a push still without a final status is failed ("no
    /// receipt from provider"); providers keep receipts about 72 hours.
    #[arg(long, env = "POLICY_PUSH_RECEIPT_GIVE_UP_HOURS", default_value_t = 72)]
    pub receipt_give_up_hours: u64,
    /// Base of recipient links; default: `http://<listen address>`.
    #[arg(long, env = "POLICY_PUSH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Bearer token of the bootstrap admin, used when no operator exists yet.
    #[arg(long, env = "POLICY_PUSH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Campaigns need a second operator's approval before launch (on by default; the
    /// demo and tests turn it off with `false`).
    #[arg(long, env = "POLICY_PUSH_REQUIRE_APPROVAL", default_value_t = true, action = clap::ArgAction::Set)]
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
    /// When SMS may be sent (quiet hours outside; due pushes wait for the window).
    #[arg(
        long,
        env = "POLICY_PUSH_SMS_HOURS",
        default_value = "mon-sun 08:00-21:00"
    )]
    pub sms_hours: String,
    /// When WeChat messages may be sent.
    #[arg(
        long,
        env = "POLICY_PUSH_WECHAT_HOURS",
        default_value = "mon-sun 08:00-21:00"
    )]
    pub wechat_hours: String,
    /// Notices a subject may receive per frequency window across all campaigns, counted at
    /// send time (0 = no cap).
    #[arg(long, env = "POLICY_PUSH_FREQUENCY_CAP", default_value_t = 2)]
    pub frequency_cap: u32,
    /// The frequency cap's window in days.
    #[arg(long, env = "POLICY_PUSH_FREQUENCY_WINDOW_DAYS", default_value_t = 7)]
    pub frequency_window_days: u32,
    /// Campaigns whose audience is larger than this need a second reviewer's approval
    /// (unset: one approval suffices).
    #[arg(long, env = "POLICY_PUSH_SECOND_APPROVAL_ABOVE")]
    pub second_approval_above: Option<i64>,
    /// Policies need a passed disclosure review by a reviewer before they can be published.
    #[arg(long, env = "POLICY_PUSH_REQUIRE_REVIEW", default_value_t = false)]
    pub require_review: bool,
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
    /// Key of the console session cookies' HMAC and CSRF tokens; the same on every API
    /// replica (unset: random per process). Required with real providers.
    #[arg(long, env = "POLICY_PUSH_CONSOLE_SECRET", hide_env_values = true)]
    pub console_secret: Option<String>,
    #[command(flatten)]
    pub secrets: CallbackSecrets,
    /// Key of the subjects' pseudonyms on the bus, in Redis and in logs (HMAC-SHA256; hex
    /// or base64, at least 32 bytes, e.g. `openssl rand -hex 32`); the same in every
    /// process of a deployment. Required on PostgreSQL, Kafka or Redis; unset on the
    /// embedded default: generated into `<data dir>/pseudonym.key` at the first start.
    #[arg(long, env = "POLICY_PUSH_PSEUDONYM_KEY", hide_env_values = true)]
    pub pseudonym_key: Option<String>,
    /// Source addresses allowed to call the provider callbacks: comma-separated IPs or
    /// CIDR networks (unset: any address that has the secret).
    #[arg(long, env = "POLICY_PUSH_CALLBACK_ALLOW_FROM")]
    pub callback_allow_from: Option<String>,
    /// JSON file of built-in simulator settings (faults, unsubscribed openids, ...);
    /// see docs/connectors.md.
    #[arg(long, env = "POLICY_PUSH_SIMULATOR_CONFIG")]
    pub simulator_config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, env = "POLICY_PUSH_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// The secrets in the provider callback URLs: the API checks them, the simulators
/// (built in, or `simulate --callbacks-url`) put them in the URLs they call.
#[derive(Args, Debug, Clone, Default)]
pub struct CallbackSecrets {
    /// Secret in every Alibaba Cloud callback URL (`?token=`; SmsReport, SmsUp,
    /// VoiceReport). Required with real providers; unset otherwise: a random one per
    /// process, which the built-in simulators use.
    #[arg(
        long,
        env = "POLICY_PUSH_ALIYUN_CALLBACK_SECRET",
        hide_env_values = true
    )]
    pub aliyun_callback_secret: Option<String>,
    /// Secret in every Tencent Cloud callback URL (`?token=`; SMS status and replies).
    #[arg(
        long,
        env = "POLICY_PUSH_TENCENT_CALLBACK_SECRET",
        hide_env_values = true
    )]
    pub tencent_callback_secret: Option<String>,
}

/// A role a process can run (`policy-push run <role>...`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API: operators, subjects, policies, campaigns, receipts, recipient pages.
    Api,
    /// Turns launched campaigns into push rows in the outbox.
    Planner,
    /// Moves committed push rows from the outbox onto the bus.
    Relay,
    /// Sends SMS through the SMS provider.
    ConnectorSms,
    /// Sends WeChat template / subscription messages.
    ConnectorWechat,
    /// Places 12333 hotline calls.
    ConnectorHotline,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Api,
        Role::Planner,
        Role::Relay,
        Role::ConnectorSms,
        Role::ConnectorWechat,
        Role::ConnectorHotline,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Planner => "planner",
            Role::Relay => "relay",
            Role::ConnectorSms => "connector-sms",
            Role::ConnectorWechat => "connector-wechat",
            Role::ConnectorHotline => "connector-hotline",
        }
    }
    /// The pipeline role behind this one (`None` for the API).
    pub fn pipeline_role(self) -> Option<pipeline::RoleName> {
        use domain::Channel;
        match self {
            Role::Api => None,
            Role::Planner => Some(pipeline::RoleName::Planner),
            Role::Relay => Some(pipeline::RoleName::Relay),
            Role::ConnectorSms => Some(pipeline::RoleName::Connector(Channel::Sms)),
            Role::ConnectorWechat => Some(pipeline::RoleName::Connector(Channel::Wechat)),
            Role::ConnectorHotline => Some(pipeline::RoleName::Connector(Channel::Hotline)),
        }
    }
    pub fn is_connector(self) -> bool {
        matches!(
            self,
            Role::ConnectorSms | Role::ConnectorWechat | Role::ConnectorHotline
        )
    }
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The roles this process runs (one or more).
    #[arg(required = true, value_enum)]
    pub roles: Vec<Role>,
    #[command(flatten)]
    pub serve: ServeArgs,
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
    #[arg(
        long,
        env = "POLICY_PUSH_SIMULATOR_DATA_DIR",
        default_value = "./sim-data"
    )]
    pub data_dir: PathBuf,
    /// Base URL of the policy-push API whose receipt callbacks the simulators call
    /// (`{url}/callbacks/...`); unset: the URLs in the settings file, if any.
    #[arg(long, env = "POLICY_PUSH_SIMULATOR_CALLBACKS_URL")]
    pub callbacks_url: Option<String>,
    /// Simulator settings as JSON (credentials, faults, callback URLs); see docs/connectors.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The API's callback secrets, put in the callback URLs built from `--callbacks-url`.
    #[command(flatten)]
    pub secrets: CallbackSecrets,
}

/// Points the simulators' callbacks not set in their settings at the API at `base`,
/// with the providers' secrets in the URLs.
pub fn fill_callbacks(
    sim: &mut simulators::SimulatorConfig,
    base: &str,
    aliyun_secret: &str,
    tencent_secret: &str,
) {
    let base = base.trim_end_matches('/');
    let with = |path: &str, secret: &str| {
        format!(
            "{base}{path}?token={}",
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    sim.sms_report_url
        .get_or_insert_with(|| with("/callbacks/aliyun/sms-report", aliyun_secret));
    sim.voice_report_url
        .get_or_insert_with(|| with("/callbacks/aliyun/voice-report", aliyun_secret));
    sim.tencent_sms_report_url
        .get_or_insert_with(|| with("/callbacks/tencent/sms-report", tencent_secret));
    sim.fill_callbacks(base);
}

/// Checked settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The roles this process runs (every role for `serve`).
    pub roles: Vec<Role>,
    /// Other processes run the remaining roles.
    pub split: bool,
    pub kafka: Option<bus::kafka::KafkaConfig>,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    /// Serve the built-in provider simulators (no providers config, no simulator URL).
    pub builtin_simulators: bool,
    pub sending_lease: Option<std::time::Duration>,
    /// A push `sent` this long without a receipt is asked about at the provider.
    pub receipt_deadline: std::time::Duration,
    /// A push without a final status this long after sending is failed.
    pub receipt_give_up: std::time::Duration,
    pub data_dir: PathBuf,
    /// Where the chain heads are published daily (`crate::record`).
    pub chain_heads_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    pub public_url: Option<String>,
    pub admin_token: Option<String>,
    pub require_approval: bool,
    pub rate_per_second: f64,
    pub hotline_hours: domain::window::SendWindow,
    pub sms_hours: domain::window::SendWindow,
    pub wechat_hours: domain::window::SendWindow,
    pub frequency_cap: u32,
    pub frequency_window: std::time::Duration,
    pub second_approval_above: Option<i64>,
    pub require_review: bool,
    pub retry_scale: f64,
    /// `None`: the built-in simulators at this server's address.
    pub providers: Option<connectors::ProvidersConfig>,
    pub wechat_callback_token: String,
    /// The console session key; `None`: random per process.
    pub console_secret: Option<String>,
    /// Who may call the provider callbacks.
    pub callbacks: api::routes::callbacks::CallbackAuth,
    pub simulator: simulators::SimulatorConfig,
    /// The pseudonym key as configured (checked); `None`: the data dir's key file
    /// (`crate::private::pseudonymizer`), only on the embedded default.
    pub pseudonym_key: Option<String>,
}

/// Production (PostgreSQL, Kafka or Redis) needs a configured pseudonym key, shared by
/// every process; a configured key must be a valid one.
fn check_pseudonym_key(key: Option<&str>, production: bool) -> anyhow::Result<()> {
    match key {
        Some(k) => domain::pseudonym::Pseudonymizer::parse(k)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("POLICY_PUSH_PSEUDONYM_KEY: {e}")),
        None if production => bail!(
            "PostgreSQL, Kafka or Redis is configured: set POLICY_PUSH_PSEUDONYM_KEY (e.g. \
             `openssl rand -hex 32`), the same in every process of the deployment; subjects \
             are named by keyed pseudonyms on the bus and in Redis (docs/deployment.md)"
        ),
        None => Ok(()),
    }
}

/// With real providers the console's session key must be set, long, and not one of the
/// samples shipped in `deploy/` (anything saying "change me").
fn check_console_secret(secret: Option<&str>) -> anyhow::Result<()> {
    let Some(s) = secret else {
        bail!(
            "real providers are configured: set POLICY_PUSH_CONSOLE_SECRET (e.g. `openssl rand -hex 32`), the same on every API replica"
        );
    };
    if s.chars().count() < 32 {
        bail!("POLICY_PUSH_CONSOLE_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)");
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("change-me") || lower.contains("changeme") || lower.contains("sample") {
        bail!("POLICY_PUSH_CONSOLE_SECRET is a sample value; with real providers set a random one");
    }
    Ok(())
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

pub fn database_url(
    explicit: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<String> {
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
    /// `serve`: every role in this process.
    pub fn from_args(a: ServeArgs) -> anyhow::Result<Self> {
        Self::for_roles(a, Role::ALL.to_vec())
    }

    /// `run <role>...`: the given roles; the others run elsewhere and the checks make
    /// sure the backends can connect them.
    pub fn for_roles(a: ServeArgs, mut roles: Vec<Role>) -> anyhow::Result<Self> {
        roles.sort_by_key(|r| Role::ALL.iter().position(|x| x == r));
        roles.dedup();
        let split = roles.len() < Role::ALL.len();
        let kafka_brokers = a.kafka_brokers.clone().filter(|b| !b.trim().is_empty());
        let redis_url = a.redis_url.clone().filter(|u| !u.trim().is_empty());
        let names = || roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(" ");
        if split && kafka_brokers.is_none() {
            bail!(
                "roles `{}` run without the others, but the in-process bus connects roles only \
                 inside one process: set POLICY_PUSH_KAFKA_BROKERS (Kafka) or run every role \
                 with `policy-push serve`",
                names()
            );
        }
        let connectors = roles.iter().any(|r| r.is_connector());
        if split && connectors && redis_url.is_none() {
            bail!(
                "connector roles in their own processes share provider rate limits, frequency \
                 caps and the WeChat token through Redis: set POLICY_PUSH_REDIS_URL"
            );
        }
        let providers_given = a.providers_config.is_some()
            || a.simulator_url.as_deref().is_some_and(|u| !u.is_empty());
        if split && connectors && !providers_given {
            bail!(
                "connector roles in their own processes need the providers: set \
                 POLICY_PUSH_PROVIDERS_CONFIG (real providers) or POLICY_PUSH_SIMULATOR_URL \
                 (a `policy-push simulate` process)"
            );
        }
        if a.kafka_partitions < 1 {
            bail!("POLICY_PUSH_KAFKA_PARTITIONS must be at least 1");
        }
        if a.sending_lease_secs < 5 {
            bail!("POLICY_PUSH_SENDING_LEASE_SECS must be at least 5 (longer than any send)");
        }
        let kafka = kafka_brokers.map(|brokers| bus::kafka::KafkaConfig {
            topic_prefix: a.kafka_topic_prefix.clone(),
            partitions: a.kafka_partitions,
            create_topics: a.kafka_create_topics,
            ..bus::kafka::KafkaConfig::new(brokers)
        });
        // Connector processes side by side settle only claims older than the lease;
        // the one process of `serve` settles every claim left at start.
        let sending_lease = split.then(|| std::time::Duration::from_secs(a.sending_lease_secs));
        if a.receipt_deadline_secs < 1 {
            bail!("POLICY_PUSH_RECEIPT_DEADLINE_SECS must be at least 1");
        }
        if a.receipt_give_up_hours.saturating_mul(3600) <= a.receipt_deadline_secs {
            bail!("POLICY_PUSH_RECEIPT_GIVE_UP_HOURS must be longer than the receipt deadline");
        }
        if !(a.rate_per_second >= 0.0 && a.rate_per_second.is_finite()) {
            bail!("POLICY_PUSH_RATE_PER_SECOND must be a number ≥ 0 (0 = unlimited)");
        }
        if !(a.retry_scale >= 0.0 && a.retry_scale.is_finite()) {
            bail!("POLICY_PUSH_RETRY_SCALE must be a number ≥ 0");
        }
        if let Some(t) = &a.admin_token {
            if t.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                bail!(
                    "POLICY_PUSH_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 16`)"
                );
            }
        }
        let mut simulator = simulator_config(a.simulator_config.as_deref())?;
        if a.simulator_config.is_none() {
            simulator.receipt_delay = std::time::Duration::from_millis(a.sim_receipt_delay_ms);
        }
        let providers =
            match &a.providers_config {
                None => a
                    .simulator_url
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .map(connectors::ProvidersConfig::simulator),
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read providers config {}", p.display()))?;
                    Some(serde_json::from_str(&text).with_context(|| {
                        format!("providers config {} is not valid", p.display())
                    })?)
                }
            };
        let real_providers = a.providers_config.is_some();
        let has_api = roles.contains(&Role::Api);
        let wechat_callback_token = a.wechat_callback_token.filter(|t| !t.is_empty());
        if real_providers && has_api {
            match wechat_callback_token.as_deref() {
                None => bail!(
                    "real providers are configured: set POLICY_PUSH_WECHAT_CALLBACK_TOKEN to the \
                     token of the official account's server settings"
                ),
                Some(t)
                    if t == api::SIMULATOR_WECHAT_TOKEN || t == simulator.wechat_callback_token =>
                {
                    bail!(
                    "POLICY_PUSH_WECHAT_CALLBACK_TOKEN is the simulators' public token; with real \
                     providers set the official account's own token"
                )
                }
                Some(_) => {}
            }
        }
        let wechat_callback_token =
            wechat_callback_token.unwrap_or_else(|| simulator.wechat_callback_token.clone());
        let secret = |v: Option<String>, var: &str| -> anyhow::Result<String> {
            match v.filter(|t| !t.is_empty()) {
                Some(t) if t.chars().count() < 16 => {
                    bail!("{var} must be at least 16 characters (a random string)")
                }
                Some(t) => Ok(t),
                None if real_providers && has_api => bail!(
                    "real providers are configured: set {var} and register the callback URLs \
                     with it (docs/security.md)"
                ),
                None => Ok(api::routes::callbacks::random_secret()),
            }
        };
        let callbacks = api::routes::callbacks::CallbackAuth {
            aliyun_secret: secret(
                a.secrets.aliyun_callback_secret,
                "POLICY_PUSH_ALIYUN_CALLBACK_SECRET",
            )?,
            tencent_secret: secret(
                a.secrets.tencent_callback_secret,
                "POLICY_PUSH_TENCENT_CALLBACK_SECRET",
            )?,
            allow_from: parse_allow_from(a.callback_allow_from.as_deref().unwrap_or(""))?,
        };
        let pseudonym_key = a.pseudonym_key.filter(|k| !k.trim().is_empty());
        let database_url = database_url(a.database_url, &a.data_dir)?;
        let production =
            database_url.starts_with("postgres") || kafka.is_some() || redis_url.is_some();
        check_pseudonym_key(pseudonym_key.as_deref(), production)?;
        let console_secret = a.console_secret.filter(|t| !t.is_empty());
        if real_providers && has_api {
            check_console_secret(console_secret.as_deref())?;
        }
        // The simulators' receipts call the API's callbacks, so they live with the API.
        let builtin_simulators = providers.is_none() && roles.contains(&Role::Api);
        Ok(Self {
            roles,
            split,
            kafka,
            redis_url,
            redis_prefix: a.redis_prefix,
            builtin_simulators,
            sending_lease,
            receipt_deadline: std::time::Duration::from_secs(a.receipt_deadline_secs),
            receipt_give_up: std::time::Duration::from_secs(
                a.receipt_give_up_hours.saturating_mul(3600),
            ),
            providers,
            wechat_callback_token,
            console_secret,
            callbacks,
            simulator,
            pseudonym_key,
            database_url,
            chain_heads_dir: crate::record::heads_dir(a.chain_heads_dir, &a.data_dir),
            data_dir: a.data_dir,
            listen: a.listen,
            public_url: a.public_url.filter(|u| !u.is_empty()),
            admin_token: a.admin_token.filter(|t| !t.is_empty()),
            require_approval: a.require_approval,
            rate_per_second: a.rate_per_second,
            hotline_hours: domain::window::SendWindow::parse(&a.hotline_hours)
                .map_err(|e| anyhow::anyhow!("POLICY_PUSH_HOTLINE_HOURS: {e}"))?,
            sms_hours: domain::window::SendWindow::parse(&a.sms_hours)
                .map_err(|e| anyhow::anyhow!("POLICY_PUSH_SMS_HOURS: {e}"))?,
            wechat_hours: domain::window::SendWindow::parse(&a.wechat_hours)
                .map_err(|e| anyhow::anyhow!("POLICY_PUSH_WECHAT_HOURS: {e}"))?,
            frequency_cap: a.frequency_cap,
            require_review: a.require_review,
            frequency_window: std::time::Duration::from_secs(
                u64::from(a.frequency_window_days.max(1)) * 24 * 3600,
            ),
            second_approval_above: match a.second_approval_above {
                Some(n) if n < 1 => bail!("POLICY_PUSH_SECOND_APPROVAL_ABOVE must be at least 1"),
                other => other,
            },
            retry_scale: a.retry_scale,
        })
    }
}

/// `POLICY_PUSH_CALLBACK_ALLOW_FROM`: comma-separated IPs or CIDR networks.
pub fn parse_allow_from(text: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "POLICY_PUSH_CALLBACK_ALLOW_FROM: {t:?} is neither an IP address nor a \
                         CIDR network"
                    )
                })
        })
        .collect()
}

/// A URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("POLICY_PUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"))
}

pub fn init_logging(json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Logs to `file` (appended), leaving the terminal to progress bars and summaries.
pub fn init_logging_to_file(file: &std::path::Path) -> anyhow::Result<()> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot open the log file {}", file.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(out))
        .init();
    Ok(())
}

/// Reads the settings file (`--config-file FILE` or `POLICY_PUSH_CONFIG`): TOML whose keys
/// are the `POLICY_PUSH_*` variable names in lower case without the prefix, e.g.
/// `kafka_brokers = "kafka-0:9092"`. A value applies only where the variable is not set
/// (flags win over variables, variables over the file). Unknown keys are refused, so a
/// typo does not silently fall back to a default. Call before any thread starts.
pub fn apply_config_file(known_env: &[String]) -> anyhow::Result<Option<PathBuf>> {
    let args: Vec<String> = std::env::args().collect();
    let from_flag = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--config-file" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--config-file=").map(str::to_string)
        }
    });
    let Some(path) = from_flag.or_else(|| {
        std::env::var("POLICY_PUSH_CONFIG")
            .ok()
            .filter(|p| !p.is_empty())
    }) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the settings file {}", path.display()))?;
    for (var, value) in settings_from_toml(&text, known_env)
        .with_context(|| format!("settings file {}", path.display()))?
    {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(Some(path))
}

/// The `(POLICY_PUSH_VARIABLE, value)` pairs of a settings file.
pub fn settings_from_toml(
    text: &str,
    known_env: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
    let mut out = Vec::new();
    for (key, value) in table {
        let var = format!("POLICY_PUSH_{}", key.to_ascii_uppercase().replace('-', "_"));
        if !known_env.contains(&var) {
            let mut known: Vec<String> = known_env
                .iter()
                .filter_map(|v| v.strip_prefix("POLICY_PUSH_"))
                .map(|v| v.to_ascii_lowercase())
                .collect();
            known.sort();
            known.dedup();
            bail!(
                "unknown setting `{key}`; known settings: {}",
                known.join(", ")
            );
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "setting `{key}` must be a string, number or boolean, not {}",
                other.type_str()
            ),
        };
        out.push((var, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "POLICY_PUSH_KAFKA_BROKERS",
            "POLICY_PUSH_RATE_PER_SECOND",
            "POLICY_PUSH_REQUIRE_APPROVAL",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn settings_file_maps_keys_to_variables() {
        let got = settings_from_toml(
            "kafka_brokers = \"k1:9092,k2:9092\"\nrate_per_second = 50\nrequire_approval = true\n",
            &known(),
        )
        .unwrap();
        assert!(got.contains(&("POLICY_PUSH_KAFKA_BROKERS".into(), "k1:9092,k2:9092".into())));
        assert!(got.contains(&("POLICY_PUSH_RATE_PER_SECOND".into(), "50".into())));
        assert!(got.contains(&("POLICY_PUSH_REQUIRE_APPROVAL".into(), "true".into())));
    }

    #[test]
    fn settings_file_refuses_unknown_keys_and_tables() {
        let e = settings_from_toml("kafka_broker = \"x\"", &known()).unwrap_err();
        assert!(
            e.to_string().contains("unknown setting `kafka_broker`"),
            "{e}"
        );
        assert!(e.to_string().contains("kafka_brokers"), "{e}");
        let e = settings_from_toml("kafka_brokers = [1]", &known()).unwrap_err();
        assert!(e.to_string().contains("must be a string"), "{e}");
        assert!(settings_from_toml("not toml ===", &known()).is_err());
    }

    fn args(extra: &[(&str, &str)]) -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: ServeArgs,
        }
        let mut argv = vec!["t".to_string()];
        for (k, v) in extra {
            argv.push(format!("--{k}={v}"));
        }
        T::parse_from(argv).a
    }

    #[test]
    fn production_needs_a_pseudonym_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").display().to_string();
        let with = |extra: &[(&str, &str)]| {
            let mut a = vec![("data-dir", data.as_str())];
            a.extend_from_slice(extra);
            ServeConfig::from_args(args(&a))
        };
        // The embedded default generates its key into the data dir at start.
        assert!(with(&[]).unwrap().pseudonym_key.is_none());
        for backend in [
            ("database-url", "postgres://pp@db.internal/pp"),
            ("redis-url", "redis://127.0.0.1:6379"),
            ("kafka-brokers", "kafka-0:9092"),
        ] {
            let e = with(&[backend]).unwrap_err().to_string();
            assert!(e.contains("POLICY_PUSH_PSEUDONYM_KEY"), "{e}");
        }
        let key = "ab".repeat(32);
        let cfg = with(&[
            ("database-url", "postgres://pp@db.internal/pp"),
            ("pseudonym-key", key.as_str()),
        ])
        .unwrap();
        assert_eq!(cfg.pseudonym_key.as_deref(), Some(key.as_str()));
        let e = with(&[("pseudonym-key", "abcd")]).unwrap_err().to_string();
        assert!(e.contains("at least 32"), "{e}");
    }

    #[test]
    fn real_providers_need_callback_secrets_and_a_real_wechat_token() {
        let dir = tempfile::tempdir().unwrap();
        let providers = dir.path().join("providers.json");
        std::fs::write(
            &providers,
            serde_json::to_string(&connectors::ProvidersConfig::simulator(
                "http://127.0.0.1:9",
            ))
            .unwrap(),
        )
        .unwrap();
        let p = providers.display().to_string();
        let data = dir.path().join("data").display().to_string();
        let base = [
            ("providers-config", p.as_str()),
            ("data-dir", data.as_str()),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut a: Vec<(&str, &str)> = base.to_vec();
            a.extend_from_slice(extra);
            ServeConfig::from_args(args(&a))
        };
        let e = with(&[]).unwrap_err().to_string();
        assert!(e.contains("POLICY_PUSH_WECHAT_CALLBACK_TOKEN"), "{e}");
        let e = with(&[("wechat-callback-token", "sim-callback-token")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("public token"), "{e}");
        let token = ("wechat-callback-token", "the-official-account-token");
        let e = with(&[token]).unwrap_err().to_string();
        assert!(e.contains("POLICY_PUSH_ALIYUN_CALLBACK_SECRET"), "{e}");
        let e = with(&[token, ("aliyun-callback-secret", "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16"), "{e}");
        let aliyun = ("aliyun-callback-secret", "0123456789abcdef-aliyun");
        let e = with(&[token, aliyun]).unwrap_err().to_string();
        assert!(e.contains("POLICY_PUSH_TENCENT_CALLBACK_SECRET"), "{e}");
        let tencent = ("tencent-callback-secret", "0123456789abcdef-tencent");
        let e = with(&[
            token,
            aliyun,
            tencent,
            ("callback-allow-from", "10.0.0.0/8, nonsense"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("nonsense"), "{e}");
        let allow = ("callback-allow-from", "10.0.0.0/8, 192.0.2.7");
        let e = with(&[token, aliyun, tencent, allow])
            .unwrap_err()
            .to_string();
        assert!(e.contains("POLICY_PUSH_CONSOLE_SECRET"), "{e}");
        for sample in [
            "CHANGE-ME-32-random-bytes-hex-xxxxxxxxxx",
            "sandbox-console-secret-change-me",
            "short",
        ] {
            let e = with(&[token, aliyun, tencent, allow, ("console-secret", sample)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("POLICY_PUSH_CONSOLE_SECRET"), "{sample}: {e}");
        }
        let console = (
            "console-secret",
            "5f0c1e9a7b3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c",
        );
        let ok = with(&[token, aliyun, tencent, allow, console]).unwrap();
        assert_eq!(ok.callbacks.aliyun_secret, "0123456789abcdef-aliyun");
        assert_eq!(ok.callbacks.allow_from.len(), 2);
        assert!(ok.require_approval, "approvals are on by default");
    }

    #[test]
    fn simulators_get_random_secrets_and_approvals_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").display().to_string();
        let a = ServeConfig::from_args(args(&[("data-dir", data.as_str())])).unwrap();
        let b = ServeConfig::from_args(args(&[("data-dir", data.as_str())])).unwrap();
        assert_eq!(a.callbacks.aliyun_secret.len(), 64);
        assert_ne!(a.callbacks.aliyun_secret, b.callbacks.aliyun_secret);
        assert_ne!(a.callbacks.aliyun_secret, a.callbacks.tencent_secret);
        assert!(a.require_approval);
        let off = ServeConfig::from_args(args(&[
            ("data-dir", data.as_str()),
            ("require-approval", "false"),
        ]))
        .unwrap();
        assert!(!off.require_approval);
        // The built-in simulators call the callbacks with the secrets in the URLs.
        let mut sim = simulators::SimulatorConfig::default();
        fill_callbacks(&mut sim, "http://127.0.0.1:8080/", "s3cret/+", "t0ken");
        assert_eq!(
            sim.sms_report_url.as_deref(),
            Some("http://127.0.0.1:8080/callbacks/aliyun/sms-report?token=s3cret%2F%2B")
        );
        assert_eq!(
            sim.tencent_sms_report_url.as_deref(),
            Some("http://127.0.0.1:8080/callbacks/tencent/sms-report?token=t0ken")
        );
        assert_eq!(
            sim.voice_report_url.as_deref(),
            Some("http://127.0.0.1:8080/callbacks/aliyun/voice-report?token=s3cret%2F%2B")
        );
    }

    #[test]
    fn the_bootstrap_token_needs_24_characters() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").display().to_string();
        let with = |t: &str| {
            ServeConfig::from_args(args(&[("data-dir", data.as_str()), ("admin-token", t)]))
        };
        let e = with("twenty-three-characters").unwrap_err().to_string();
        assert!(e.contains("at least 24"), "{e}");
        let ok = with("twenty-four-characters-x").unwrap();
        assert_eq!(ok.admin_token.as_deref(), Some("twenty-four-characters-x"));
    }

    #[test]
    fn split_roles_refuse_the_in_process_bus_and_memory_limits() {
        let e = ServeConfig::for_roles(args(&[]), vec![Role::Relay]).unwrap_err();
        assert!(e.to_string().contains("POLICY_PUSH_KAFKA_BROKERS"), "{e}");
        let e = ServeConfig::for_roles(
            args(&[("kafka-brokers", "127.0.0.1:9092")]),
            vec![Role::ConnectorSms],
        )
        .unwrap_err();
        assert!(e.to_string().contains("POLICY_PUSH_REDIS_URL"), "{e}");
        let e = ServeConfig::for_roles(
            args(&[
                ("kafka-brokers", "127.0.0.1:9092"),
                ("redis-url", "redis://127.0.0.1"),
            ]),
            vec![Role::ConnectorSms],
        )
        .unwrap_err();
        assert!(e.to_string().contains("POLICY_PUSH_SIMULATOR_URL"), "{e}");
        let key = "ab".repeat(32);
        let ok = ServeConfig::for_roles(
            args(&[
                ("kafka-brokers", "127.0.0.1:9092"),
                ("redis-url", "redis://127.0.0.1"),
                ("simulator-url", "http://127.0.0.1:9090"),
                // Production backends: the deployment's pseudonym key.
                ("pseudonym-key", key.as_str()),
            ]),
            vec![Role::ConnectorSms, Role::ConnectorSms],
        )
        .unwrap();
        assert_eq!(ok.roles, vec![Role::ConnectorSms]);
        assert!(ok.split && !ok.builtin_simulators);
        assert!(ok.sending_lease.is_some());
        // Every role in one process needs nothing outside.
        let all = ServeConfig::from_args(args(&[])).unwrap();
        assert!(!all.split && all.builtin_simulators && all.sending_lease.is_none());
    }
}
