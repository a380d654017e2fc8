//! The binary as the integration tests start it: `policy-push serve` with a temporary data
//! dir on the embedded default, or on a fresh [`Backends`] set when
//! `POLICY_PUSH_TEST_BACKENDS=production` (`.ci/run` runs the suite both ways). Servers
//! started on the same data dir (a restart) share their backends.

use crate::backends::Backends;
use crate::client::Api;
use crate::process::{Launch, Proc};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::Duration;

pub const ADMIN_TOKEN: &str = "test-admin-token-0001-abcdef";

/// Whether the tests' servers run on PostgreSQL + Kafka + Redis.
pub fn production_backends() -> bool {
    std::env::var("POLICY_PUSH_TEST_BACKENDS").is_ok_and(|b| b == "production")
}

/// The `policy-push` binary built for this test run: `NEXTEST_BIN_EXE_policy-push` when
/// nextest says where it is, else beside the test executable's `deps/` folder (where
/// cargo builds a package's binaries for its integration tests).
pub fn policy_push_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NEXTEST_BIN_EXE_policy-push") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    dir.join(format!("policy-push{}", std::env::consts::EXE_SUFFIX))
}

pub struct Server {
    pub proc: Proc,
    /// The production backends this server runs on, if any (kept alive with it).
    pub backends: Option<Rc<Backends>>,
}

impl std::ops::Deref for Server {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

thread_local! {
    /// Backends by data dir, so a restarted server finds its database and topics again.
    static BACKENDS: std::cell::RefCell<Vec<(PathBuf, Weak<Backends>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn backends_for(data_dir: &Path) -> Rc<Backends> {
    BACKENDS.with(|b| {
        let mut b = b.borrow_mut();
        b.retain(|(_, w)| w.strong_count() > 0);
        if let Some(found) = b
            .iter()
            .find(|(d, _)| d == data_dir)
            .and_then(|(_, w)| w.upgrade())
        {
            return found;
        }
        let fresh = Rc::new(Backends::for_test());
        b.push((data_dir.to_path_buf(), Rc::downgrade(&fresh)));
        fresh
    })
}

impl Server {
    /// Starts `policy-push serve` and waits until `/healthz` answers: on the embedded
    /// default, or on [`Backends`] when [`production_backends`].
    pub fn start(data_dir: &Path, extra_env: &[(&str, String)]) -> Server {
        let backends = production_backends().then(|| backends_for(data_dir));
        let mut s = Self::start_command(
            data_dir,
            &["serve"],
            extra_env,
            backends.as_deref().map(Backends::env).unwrap_or_default(),
        );
        s.backends = backends;
        s
    }

    /// Starts `policy-push <args>` with the test settings plus `backend_env` and
    /// `extra_env`, and waits until `/healthz` answers.
    pub fn start_command(
        data_dir: &Path,
        args: &[&str],
        extra_env: &[(&str, String)],
        backend_env: Vec<(&'static str, String)>,
    ) -> Server {
        let binary = policy_push_binary();
        // Retries 500 times faster than in production.
        let mut env = vec![("POLICY_PUSH_RETRY_SCALE", "0.002".to_string())];
        env.extend(backend_env);
        env.extend(extra_env.iter().cloned());
        let proc = Proc::start(Launch {
            binary: &binary,
            name: args.join(" ").as_str(),
            args,
            data_dir,
            admin_token: ADMIN_TOKEN,
            env,
            log: None,
            ready: false,
            within: Duration::from_secs(30),
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
        Server {
            proc,
            backends: None,
        }
    }

    /// The admin's client.
    pub fn api(&self) -> Api {
        Api::new(&self.base, ADMIN_TOKEN)
    }
}
