//! `policy-push`: the one binary of the targeted policy push service.
//!
//! # Layout
//! - [`config`]: settings from flags, `POLICY_PUSH_*` variables and a settings file,
//!   checked at start; the roles a process runs.
//! - [`server`]: assembles the store, bus, limits, providers, simulators, pipeline roles
//!   and the HTTP API into one running process: every role (`serve`) or some
//!   (`run <role>...`).
//! - [`attribution`]: tells the built-in simulators which campaign and subject a message
//!   belongs to (provider APIs do not carry them).
//! - [`private`]: files private to the process's user (umask `077`, the data dir
//!   `0700`) and the subjects' pseudonym key (configured, or generated into the data dir).
//! - [`record`]: `audit verify` / `audit publish` and the daily publication of the
//!   chain heads of the tamper-evident record.
//! - [`demo`]: the demo: a synthetic Shanghai-like population, the bureau's policies and
//!   campaigns, launched with progress bars and summarised.

mod attribution;
mod config;
mod demo;
mod private;
mod record;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "policy-push",
    version,
    about = "Targeted policy push service: policy finds people."
)]
struct Cli {
    /// Settings file (TOML; keys are the POLICY_PUSH_* variables in lower case without the
    /// prefix). Variables and flags win over it. See deploy/policy-push.example.toml.
    #[arg(long, global = true, env = "POLICY_PUSH_CONFIG")]
    config_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Every `POLICY_PUSH_*` variable the commands read: the keys a settings file may use.
fn known_env() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if let Some(e) = a.get_env() {
                out.push(e.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut out);
    out.retain(|v| v != "POLICY_PUSH_CONFIG");
    out.sort();
    out.dedup();
    out
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (embedded default: SQLite in the data dir, in-process
    /// bus, in-memory limits, built-in provider simulators).
    Serve(Box<config::ServeArgs>),
    /// Run some roles in this process (api, planner, relay, connector-sms,
    /// connector-wechat, connector-hotline); the others run in other processes, connected
    /// by Kafka, PostgreSQL and Redis. Each process serves /metrics, /healthz and /readyz.
    Run(Box<config::RunArgs>),
    /// Run the demo: a fresh data dir, a synthetic population, the bureau's policies and
    /// campaigns launched with progress bars, a summary; then keep serving the API.
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate(config::MigrateArgs),
    /// Serve the provider simulators alone (Alibaba SMS and voice, Tencent SMS, WeChat).
    Simulate(config::SimulateArgs),
    /// Moved: the benchmarks are the `policy-push-bench` binary (says how to run it).
    #[command(hide = true, disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The tamper-evident record: `audit verify` checks the audit log's and the push
    /// events' hash chains (exit 1 naming the first broken entry); `audit publish`
    /// publishes their heads now.
    Audit {
        #[command(subcommand)]
        command: record::AuditCommand,
    },
}

fn main() -> anyhow::Result<()> {
    // Every file and directory this process creates is its user's alone.
    private::restrict_new_files();
    // Before clap reads the variables, and before any thread exists.
    config::apply_config_file(&known_env())?;
    let cli = Cli::parse();
    // Panic messages may quote personal data: log where, not what.
    api::guard::install_panic_hook();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                config::init_logging(args.log_json);
                let cfg = config::ServeConfig::from_args(*args)?;
                server::serve_until_signal(cfg).await
            }
            Command::Run(args) => {
                let args = *args;
                config::init_logging(args.serve.log_json);
                let cfg = config::ServeConfig::for_roles(args.serve, args.roles)?;
                server::serve_until_signal(cfg).await
            }
            // The demo sets up its logging once its data dir is ready.
            Command::Demo(args) => demo::run(args).await,
            Command::Migrate(args) => {
                config::init_logging(false);
                let url = args.database_url()?;
                store::open(&url).await?;
                println!("migrations applied to {}", config::redact_url(&url));
                Ok(())
            }
            Command::Simulate(args) => {
                config::init_logging(false);
                server::simulate(args).await
            }
            Command::Bench { args } => anyhow::bail!(
                "the benchmarks moved to their own binary: \
                 cargo build --release -p policy-push-bench && \
                 ./target/release/policy-push-bench {} (docs/performance.md)",
                if args.is_empty() {
                    "match --residents 1000000".to_string()
                } else {
                    args.join(" ")
                }
            ),
            Command::Audit { command } => {
                config::init_logging(false);
                let code = record::run(command).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
        }
    })
}
