//! The production deployment in miniature, as `services/policy-push/tests/split.rs` starts
//! it: a fresh PostgreSQL database, librdkafka's mock cluster hosted in this process (a
//! Kafka-protocol broker on loopback that the role processes reach over TCP), a fresh Redis
//! key prefix, a `policy-push simulate` process playing the providers, and every role of the
//! release binary as its own OS process. Everything started here is stopped on drop (the
//! processes are killed, then the database is dropped).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "loadgen-admin-token-0001";

/// The roles started besides the API, one process each.
pub const ROLES: [&str; 5] = [
    "planner",
    "relay",
    "connector-sms",
    "connector-wechat",
    "connector-hotline",
];

/// A fresh database, topics under a fresh prefix on a mock cluster, a fresh Redis prefix.
pub struct Backends {
    pub database_url: String,
    admin_url: String,
    database: String,
    pub kafka: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub topic_prefix: String,
    pub partitions: i32,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The pseudonym key every process of the deployment shares (random per backends).
    pub pseudonym_key: String,
}

impl Backends {
    pub fn new(admin_url: &str, redis_url: &str, partitions: i32) -> Result<Self> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("pp_load_{}", &unique[..16]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(store::postgres::admin::create_database(
            admin_url, &database,
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("creating database {database} via {admin_url}"))?;
        let database_url = store::postgres::admin::url_for_database(admin_url, &database)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let kafka =
            rdkafka::mocking::MockCluster::new(1).context("start the Kafka mock cluster")?;
        let topic_prefix = format!("l{}.", &unique[..12]);
        let b = Self {
            database_url,
            admin_url: admin_url.to_string(),
            database,
            kafka,
            topic_prefix,
            partitions,
            redis_url: redis_url.to_string(),
            redis_prefix: format!("pp-load-{}:", &unique[..12]),
            pseudonym_key: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        for t in bus::topics::all() {
            b.create_topic(&t)?;
        }
        Ok(b)
    }

    /// Creates `prefix + topic` on the mock cluster.
    pub fn create_topic(&self, topic: &str) -> Result<()> {
        self.kafka
            .create_topic(&format!("{}{topic}", self.topic_prefix), self.partitions, 1)
            .with_context(|| format!("creating topic {topic} on the mock cluster"))
    }

    /// The variables that point the binary at these backends.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("POLICY_PUSH_DATABASE_URL", self.database_url.clone()),
            ("POLICY_PUSH_KAFKA_BROKERS", self.kafka.bootstrap_servers()),
            ("POLICY_PUSH_KAFKA_TOPIC_PREFIX", self.topic_prefix.clone()),
            ("POLICY_PUSH_KAFKA_CREATE_TOPICS", "false".into()),
            ("POLICY_PUSH_KAFKA_PARTITIONS", self.partitions.to_string()),
            ("POLICY_PUSH_REDIS_URL", self.redis_url.clone()),
            ("POLICY_PUSH_REDIS_PREFIX", self.redis_prefix.clone()),
            ("POLICY_PUSH_PSEUDONYM_KEY", self.pseudonym_key.clone()),
        ]
    }

    /// The bus of this process on the same cluster and prefix as the roles.
    pub fn kafka_config(&self) -> bus::kafka::KafkaConfig {
        bus::kafka::KafkaConfig {
            topic_prefix: self.topic_prefix.clone(),
            partitions: self.partitions,
            create_topics: false,
            ..bus::kafka::KafkaConfig::new(self.kafka.bootstrap_servers())
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if let Err(e) = rt.block_on(store::postgres::admin::drop_database(
            &self.admin_url,
            &self.database,
        )) {
            eprintln!("loadgen: could not drop database {}: {e}", self.database);
        }
        if let Err(e) = rt.block_on(delete_redis_prefix(&self.redis_url, &self.redis_prefix)) {
            eprintln!(
                "loadgen: could not delete Redis keys {}*: {e}",
                self.redis_prefix
            );
        }
    }
}

/// Deletes every Redis key under `prefix` (frequency counters, claims, rate buckets of the
/// run), by SCAN in bounded rounds.
async fn delete_redis_prefix(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    for _ in 0..100_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut con)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(())
}

/// One process of the binary: killed (and reaped) on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    /// How it was started, to start it again after a kill.
    spec: ProcSpec,
}

#[derive(Clone)]
struct ProcSpec {
    binary: PathBuf,
    work: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready: bool,
}

impl Proc {
    /// Starts `binary <args> --data-dir <work>/<name> --listen 127.0.0.1:0`, logs to
    /// `<work>/<name>.log`, reads the listening URL from the first stdout line and waits
    /// until `/healthz` (and, with `ready`, `/readyz`) answers 200.
    pub fn start(
        binary: &Path,
        work: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, String)],
        ready: bool,
    ) -> Result<Proc> {
        let spec = ProcSpec {
            binary: binary.to_path_buf(),
            work: work.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ready,
        };
        let data_dir = work.join(name);
        std::fs::create_dir_all(&data_dir)?;
        let log = work.join(format!("{name}.log"));
        // Appended to: a process started again after a kill keeps its earlier log.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("POLICY_PUSH_ADMIN_TOKEN", ADMIN_TOKEN)
            // `LOADGEN_LOG` sets the processes' log filter (e.g.
            // `warn,pipeline::planner=debug` for the planner's batch timings).
            .env(
                "POLICY_PUSH_LOG",
                std::env::var("LOADGEN_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // One operator drives the load: the four-eyes approval (on by default) would
            // need a second; it is not what this measures.
            .env("POLICY_PUSH_REQUIRE_APPROVAL", "false")
            .env("POLICY_PUSH_HOTLINE_HOURS", "always")
            .env("POLICY_PUSH_SMS_HOURS", "always")
            .env("POLICY_PUSH_WECHAT_HOURS", "always")
            .env_remove("POLICY_PUSH_DATABASE_URL")
            .env_remove("POLICY_PUSH_KAFKA_BROKERS")
            .env_remove("POLICY_PUSH_REDIS_URL")
            .env_remove("POLICY_PUSH_PSEUDONYM_KEY")
            .env_remove("POLICY_PUSH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} {name}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // Keep draining stdout into the log so the process never blocks on a full pipe.
        let mut sink = log_file;
        std::thread::spawn(move || {
            let mut l = String::new();
            while reader.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
                let _ = sink.write_all(l.as_bytes());
                l.clear();
            }
        });
        let mut p = Proc {
            name: name.to_string(),
            child,
            base: String::new(),
            log,
            spec,
        };
        let Some(base) = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
        else {
            bail!(
                "{name}: unexpected first line {line:?}; log:\n{}",
                p.log_tail()
            );
        };
        p.base = base.to_string();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        for path in ["/healthz", "/readyz"]
            .iter()
            .take(if ready { 2 } else { 1 })
        {
            loop {
                if let Ok(r) = http.get(format!("{}{path}", p.base)).send() {
                    if r.status().is_success() {
                        break;
                    }
                }
                if let Ok(Some(st)) = p.child.try_wait() {
                    bail!("{name} exited ({st}); log:\n{}", p.log_tail());
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{name} did not answer {path} in 60 s; log:\n{}",
                        p.log_tail()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(p)
    }

    /// The last lines of the process log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then the same command again (waiting until it is healthy and ready).
    pub fn kill_and_restart(&mut self) -> Result<()> {
        // Already killed (and not yet reaped) is fine too.
        let _ = self.child.kill();
        self.child.wait()?;
        let (spec, name) = (self.spec.clone(), self.name.clone());
        let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, String)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        *self = Proc::start(&spec.binary, &spec.work, &name, &args, &env, spec.ready)?;
        Ok(())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let backends = Backends::new(s.admin_url, s.redis_url, s.partitions)?;
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
        let api = Proc::start(s.binary, s.work, "api", &["run", "api"], &api_env, true)?;
        // The providers accept without limit: no faults, no per-number limits.
        let sim_config = serde_json::json!({
            "enforce_limits": false,
            "receipt_delay_ms": s.receipt_delay_ms,
        });
        let sim_path = s.work.join("sim.json");
        std::fs::write(&sim_path, sim_config.to_string())?;
        let sim_path = sim_path.display().to_string();
        let sim = Proc::start(
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
            roles.push(Proc::start(
                s.binary,
                s.work,
                role,
                &["run", role],
                &env,
                true,
            )?);
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
        let pids: Vec<u32> = self.roles.iter().map(Proc::pid).collect();
        for r in &mut self.roles {
            r.child.kill()?;
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
                dead.push(format!("{} exited; log:\n{}", p.name, p.log_tail()));
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            bail!("{}", dead.join("\n"))
        }
    }
}
