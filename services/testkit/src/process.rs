//! One process of the `policy-push` binary listening on `127.0.0.1:0`: started with the
//! settings every test and load run wants, its URL read from the first line it prints,
//! ready once `/healthz` (and, when asked, `/readyz`) answer 200; started again after a
//! `kill -9` by [`Proc::kill_and_restart`] (same data dir, log appended). Killed and reaped on
//! drop.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one process.
pub struct Launch<'a> {
    pub binary: &'a Path,
    /// Names the process in errors.
    pub name: &'a str,
    /// `serve`, `run <role>`, `simulate …`; `--data-dir` and `--listen` are added.
    pub args: &'a [&'a str],
    pub data_dir: &'a Path,
    pub admin_token: &'a str,
    /// Set after the defaults (so they win over them).
    pub env: Vec<(&'a str, String)>,
    /// Where stderr and stdout after the first line go; `None`: stderr is inherited and
    /// the rest of stdout read and dropped.
    pub log: Option<PathBuf>,
    /// Also wait for `/readyz`.
    pub ready: bool,
    /// How long to wait for readiness.
    pub within: Duration,
}

/// The environment every test or load process starts from: the admin token, quiet logs,
/// no quiet hours (runs happen at any hour), no approvals (one operator drives a test;
/// tests of approvals turn them on), and none of the caller's backend or secret settings.
const CLEARED: [&str; 7] = [
    "POLICY_PUSH_DATABASE_URL",
    "POLICY_PUSH_KAFKA_BROKERS",
    "POLICY_PUSH_REDIS_URL",
    "POLICY_PUSH_PSEUDONYM_KEY",
    "POLICY_PUSH_CONFIG",
    "POLICY_PUSH_ALIYUN_CALLBACK_SECRET",
    "POLICY_PUSH_TENCENT_CALLBACK_SECRET",
];

/// A [`Launch`] kept by its process, to start it again after a kill.
#[derive(Clone)]
struct Spec {
    binary: PathBuf,
    args: Vec<String>,
    admin_token: String,
    env: Vec<(String, String)>,
    ready: bool,
    within: Duration,
}

pub struct Proc {
    pub name: String,
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub data_dir: PathBuf,
    pub log: Option<PathBuf>,
    spec: Spec,
}

impl Proc {
    pub fn start(l: Launch<'_>) -> Result<Proc> {
        std::fs::create_dir_all(l.data_dir)?;
        let mut cmd = Command::new(l.binary);
        cmd.args(l.args)
            .arg("--data-dir")
            .arg(l.data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("POLICY_PUSH_ADMIN_TOKEN", l.admin_token)
            .env("POLICY_PUSH_LOG", "warn")
            .env("POLICY_PUSH_HOTLINE_HOURS", "always")
            .env("POLICY_PUSH_SMS_HOURS", "always")
            .env("POLICY_PUSH_WECHAT_HOURS", "always")
            .env("POLICY_PUSH_REQUIRE_APPROVAL", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for var in CLEARED {
            cmd.env_remove(var);
        }
        let log_file = match &l.log {
            Some(path) => {
                // Appended to: a process started again after a kill keeps its earlier log.
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stderr(Stdio::from(f.try_clone()?));
                Some(f)
            }
            None => {
                cmd.stderr(Stdio::inherit());
                None
            }
        };
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} {}", l.binary.display(), l.name))?;
        let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = log_file;
            let mut l = String::new();
            while reader.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
                if let Some(f) = sink.as_mut() {
                    let _ = f.write_all(l.as_bytes());
                }
                l.clear();
            }
        });
        let mut p = Proc {
            name: l.name.to_string(),
            child,
            base: String::new(),
            data_dir: l.data_dir.to_path_buf(),
            log: l.log,
            spec: Spec {
                binary: l.binary.to_path_buf(),
                args: l.args.iter().map(|a| a.to_string()).collect(),
                admin_token: l.admin_token.to_string(),
                env: l
                    .env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                ready: l.ready,
                within: l.within,
            },
        };
        let Some(base) = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
        else {
            bail!("{}: unexpected first line {line:?}{}", p.name, p.log_tail());
        };
        p.base = base.to_string();
        p.wait_ready(l.ready, l.within)?;
        Ok(p)
    }

    /// Polls `/healthz` (and `/readyz`) until 200; fails when the process exits first.
    fn wait_ready(&mut self, ready: bool, within: Duration) -> Result<()> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + within;
        let paths: &[&str] = if ready {
            &["/healthz", "/readyz"]
        } else {
            &["/healthz"]
        };
        for path in paths {
            loop {
                if let Ok(r) = http.get(format!("{}{path}", self.base)).send() {
                    if r.status().is_success() {
                        break;
                    }
                }
                if let Ok(Some(st)) = self.child.try_wait() {
                    bail!("{} exited ({st}){}", self.name, self.log_tail());
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{} did not answer {path} in {within:?}{}",
                        self.name,
                        self.log_tail()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// `; log:` and the last lines of the process log, when it has one.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "; log:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`, then the same command again on the same data dir and log, waiting until
    /// it is healthy (and ready, if it was started so).
    pub fn kill_and_restart(&mut self) -> Result<()> {
        // Already killed (and not yet reaped) is fine too.
        let _ = self.child.kill();
        self.child.wait()?;
        let spec = self.spec.clone();
        let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
        let env = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let fresh = Proc::start(Launch {
            binary: &spec.binary,
            name: &self.name.clone(),
            args: &args,
            data_dir: &self.data_dir.clone(),
            admin_token: &spec.admin_token,
            env,
            log: self.log.clone(),
            ready: spec.ready,
            within: spec.within,
        })?;
        // The old child is reaped; dropping it with `fresh`'s place taken does nothing.
        *self = fresh;
        Ok(())
    }

    /// kill -9, and reap.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
