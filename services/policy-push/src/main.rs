//! `policy-push`: the one binary of the targeted policy push service.
//!
//! # Layout
//! - [`config`]: settings from flags and `POLICY_PUSH_*` variables, checked at start.
//! - [`server`]: assembles the store, bus, limits, providers, simulators, pipeline roles
//!   and the HTTP API into one running process.
//! - [`attribution`]: tells the built-in simulators which campaign and subject a message
//!   belongs to (provider APIs do not carry them).
//! - [`demo`]: the demo: a synthetic Shanghai-like population, the bureau's policies and
//!   campaigns, launched with progress bars and summarised.

mod attribution;
mod bench;
mod config;
mod demo;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "policy-push",
    version,
    about = "Targeted policy push service: policy finds people."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (embedded default: SQLite in the data dir, in-process
    /// bus, in-memory limits, built-in provider simulators).
    Serve(Box<config::ServeArgs>),
    /// Run the demo: a fresh data dir, a synthetic population, the bureau's policies and
    /// campaigns launched with progress bars, a summary; then keep serving the API.
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate(config::MigrateArgs),
    /// Serve the provider simulators alone (Alibaba SMS and voice, Tencent SMS, WeChat).
    Simulate(config::SimulateArgs),
    /// Benchmarks of `docs/performance.md`: `bench match --residents 1000000`.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
            Command::Demo(args) => {
                config::init_logging(false);
                demo::run(args).await
            }
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
            Command::Bench(args) => bench::run(args),
        }
    })
}
