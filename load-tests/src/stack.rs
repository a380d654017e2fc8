//! The production deployment in miniature, as `services/policy-push/tests/split.rs` starts
//! it: a fresh PostgreSQL database, librdkafka's mock cluster hosted in this process (a
//! Kafka-protocol broker on loopback that the role processes reach over TCP), a fresh Redis
//! key prefix ([`testkit::Backends`]), a `policy-push simulate` process playing the
//! providers, and every role of the release binary as its own OS process
//! ([`testkit::Proc`]). Everything started here is stopped on drop (the processes are
//! killed, then the database is dropped and the Redis keys deleted).

use anyhow::{bail, Result};
use std::path::Path;
use std::time::Duration;
use testkit::{BackendSettings, Backends, Launch, Proc};

pub const ADMIN_TOKEN: &str = "loadgen-admin-token-0001";

/// The roles started besides the API, one process each.
pub const ROLES: [&str; 5] = [
    "planner",
    "relay",
    "connector-sms",
    "connector-wechat",
    "connector-hotline",
];

/// Starts `binary <args>` with its data dir `<work>/<name>`, logging to
/// `<work>/<name>.log`, and waits until `/healthz` (and, with `ready`, `/readyz`) answers.
fn start(
    binary: &Path,
    work: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready: bool,
) -> Result<Proc> {
    let mut all = vec![(
        // `LOADGEN_LOG` sets the processes' log filter (e.g.
        // `warn,pipeline::planner=debug` for the planner's batch timings).
        "POLICY_PUSH_LOG",
        std::env::var("LOADGEN_LOG").unwrap_or_else(|_| "warn".into()),
    )];
    all.extend(env.iter().cloned());
    Proc::start(Launch {
        binary,
        name,
        args,
        data_dir: &work.join(name),
        // One operator drives the load: the four-eyes approval (on by default) would
        // need a second; it is not what this measures. `Launch` turns it off.
        admin_token: ADMIN_TOKEN,
        env: all,
        log: Some(work.join(format!("{name}.log"))),
        ready,
        within: Duration::from_secs(60),
    })
}

/// The whole deployment. Fields drop in order: processes end before the database is
/// dropped and the mock cluster stops.
pub struct Stack {
    pub api: Proc,
    pub sim: Proc,
    pub roles: Vec<Proc>,
    pub backends: Backends,
}

pub struct StackSettings<'a> {
    pub binary: &'a Path,
    pub work: &'a Path,
    pub admin_url: &'a str,
    pub redis_url: &'a str,
    pub partitions: i32,
    pub receipt_delay_ms: u64,
    pub rate_per_second: f64,
}

impl Stack {
    pub fn start(s: &StackSettings<'_>) -> Result<Stack> {
        let backends = Backends::new(&BackendSettings {
            admin_url: s.admin_url.to_string(),
            redis_url: s.redis_url.to_string(),
            partitions: s.partitions,
            label: "load",
            kafka_brokers: 1,
        })?;
        // The API and the simulators share the callback secrets (receipts are refused
        // without them).
        let secrets = [
            (
                "POLICY_PUSH_ALIYUN_CALLBACK_SECRET",
                "loadgen-aliyun-secret".to_string(),
            ),
            (
                "POLICY_PUSH_TENCENT_CALLBACK_SECRET",
                "loadgen-tencent-secret".to_string(),
            ),
        ];
        let mut api_env = backends.env();
        api_env.extend(secrets.iter().cloned());
        let api = start(s.binary, s.work, "api", &["run", "api"], &api_env, true)?;
        // The providers accept without limit: no faults, no per-number limits.
        let sim_config = serde_json::json!({
            "enforce_limits": false,
            "receipt_delay_ms": s.receipt_delay_ms,
        });
        let sim_path = s.work.join("sim.json");
        std::fs::write(&sim_path, sim_config.to_string())?;
        let sim_path = sim_path.display().to_string();
        let sim = start(
            s.binary,
            s.work,
            "sim",
            &[
                "simulate",
                "--callbacks-url",
                &api.base,
                "--config",
                &sim_path,
            ],
            &secrets,
            false,
        )?;
        let mut env = backends.env();
        env.push(("POLICY_PUSH_SIMULATOR_URL", sim.base.clone()));
        env.push(("POLICY_PUSH_PUBLIC_URL", api.base.clone()));
        env.push(("POLICY_PUSH_RATE_PER_SECOND", s.rate_per_second.to_string()));
        let mut roles = Vec::new();
        for role in ROLES {
            roles.push(start(s.binary, s.work, role, &["run", role], &env, true)?);
        }
        Ok(Stack {
            api,
            sim,
            roles,
            backends,
        })
    }

    /// Pids of every process started (for CPU accounting).
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut out = vec![
            (self.api.name.clone(), self.api.pid()),
            (self.sim.name.clone(), self.sim.pid()),
        ];
        out.extend(self.roles.iter().map(|r| (r.name.clone(), r.pid())));
        out
    }

    /// `kill -9` of every role process (planner, relay, connectors) at once, then each
    /// started again; the API and the simulators keep running. Returns the pids killed.
    pub fn kill_and_restart_roles(&mut self) -> Result<Vec<u32>> {
        let pids: Vec<u32> = self.roles.iter().map(|r| r.pid()).collect();
        for r in &mut self.roles {
            let _ = r.child.kill();
        }
        for r in &mut self.roles {
            r.kill_and_restart()?;
        }
        Ok(pids)
    }

    /// Fails with the log tail of any process that exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let mut dead = Vec::new();
        for p in std::iter::once(&mut self.api)
            .chain(std::iter::once(&mut self.sim))
            .chain(self.roles.iter_mut())
        {
            if !p.alive() {
                dead.push(format!("{} exited{}", p.name, p.log_tail()));
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            bail!("{}", dead.join("\n"))
        }
    }
}
