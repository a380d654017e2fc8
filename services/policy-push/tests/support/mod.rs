//! Test support: the real `policy-push` binary started on port 0 with a temporary data
//! dir, an HTTP client for its API, and generators of valid identifiers.

#![allow(dead_code)]

pub mod faults;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token-0001-abcdef";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    /// The production backends this server runs on, if any (kept alive with it).
    pub backends: Option<std::rc::Rc<ProductionBackends>>,
}

/// The production backend set of one test: a fresh PostgreSQL database, topics under a
/// fresh prefix on librdkafka's mock cluster (a Kafka-protocol broker on loopback inside
/// this test process, which the binary connects to over TCP) and a fresh Redis key prefix.
/// Servers started on the same data dir (a restart) share it; the database is dropped
/// when the last of them is.
pub struct ProductionBackends {
    pub database_url: String,
    admin_url: String,
    database: String,
    pub kafka: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub topic_prefix: String,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The pseudonym key every process of the deployment shares (random per backends).
    pub pseudonym_key: String,
}

/// The servers a [`ProductionBackends`] makes its database, topics and keys on.
pub struct BackendServers {
    /// A superuser URL of the PostgreSQL server the test database is created on.
    pub database_admin_url: String,
    pub redis_url: String,
    /// Brokers of the Kafka mock cluster (more than one for leader changes).
    pub kafka_brokers: i32,
}

impl BackendServers {
    /// The machine's shared PostgreSQL and Redis (`POLICY_PUSH_TEST_*`), one mock broker.
    pub fn shared() -> Self {
        Self {
            database_admin_url: std::env::var("POLICY_PUSH_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            redis_url: std::env::var("POLICY_PUSH_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            kafka_brokers: 1,
        }
    }
}

/// Partitions of every test topic.
pub const TEST_PARTITIONS: i32 = 4;

impl ProductionBackends {
    pub fn new() -> Self {
        Self::on(BackendServers::shared())
    }

    /// The backends on the given servers (e.g. [`faults::PrivatePostgres`] and
    /// [`faults::PrivateRedis`], which a test may stop).
    pub fn on(servers: BackendServers) -> Self {
        let admin_url = servers.database_admin_url;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("pp_e2e_{}", &unique[..16]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(store::postgres::admin::create_database(
            &admin_url, &database,
        ))
        .expect("create a test database (is PostgreSQL running? see README)");
        let database_url = store::postgres::admin::url_for_database(&admin_url, &database).unwrap();
        let kafka = rdkafka::mocking::MockCluster::new(servers.kafka_brokers)
            .expect("start the Kafka mock cluster");
        let topic_prefix = format!("t{}.", &unique[..12]);
        for t in bus::topics::all() {
            kafka
                .create_topic(&format!("{topic_prefix}{t}"), TEST_PARTITIONS, 1)
                .expect("create a topic on the mock cluster");
        }
        Self {
            database_url,
            admin_url,
            database,
            kafka,
            topic_prefix,
            redis_url: servers.redis_url,
            redis_prefix: format!("pp-test-{}", &unique[..12]),
            pseudonym_key: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }

    /// The variables that point the binary at these backends.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("POLICY_PUSH_DATABASE_URL", self.database_url.clone()),
            ("POLICY_PUSH_KAFKA_BROKERS", self.kafka.bootstrap_servers()),
            ("POLICY_PUSH_KAFKA_TOPIC_PREFIX", self.topic_prefix.clone()),
            ("POLICY_PUSH_KAFKA_CREATE_TOPICS", "false".into()),
            ("POLICY_PUSH_REDIS_URL", self.redis_url.clone()),
            ("POLICY_PUSH_REDIS_PREFIX", self.redis_prefix.clone()),
            ("POLICY_PUSH_PSEUDONYM_KEY", self.pseudonym_key.clone()),
        ]
    }
}

impl Default for ProductionBackends {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ProductionBackends {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(store::postgres::admin::drop_database(
            &self.admin_url,
            &self.database,
        ));
    }
}

/// `POLICY_PUSH_TEST_BACKENDS=production` runs every test server on PostgreSQL + Kafka +
/// Redis instead of the embedded default (`.ci/run` runs the suite both ways).
pub fn production_backends() -> bool {
    std::env::var("POLICY_PUSH_TEST_BACKENDS").is_ok_and(|b| b == "production")
}

thread_local! {
    /// Backends by data dir, so a restarted server finds its database and topics again.
    static BACKENDS: std::cell::RefCell<Vec<(PathBuf, std::rc::Weak<ProductionBackends>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn backends_for(data_dir: &Path) -> std::rc::Rc<ProductionBackends> {
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
        let fresh = std::rc::Rc::new(ProductionBackends::new());
        b.push((data_dir.to_path_buf(), std::rc::Rc::downgrade(&fresh)));
        fresh
    })
}

impl Server {
    /// Starts `policy-push serve` on 127.0.0.1:0 and waits until `/healthz` answers: on the
    /// embedded default, or on [`ProductionBackends`] when [`production_backends`].
    pub fn start(data_dir: &Path, extra_env: &[(&str, String)]) -> Server {
        let backends = production_backends().then(|| backends_for(data_dir));
        let mut s = Self::start_command(
            data_dir,
            &["serve"],
            extra_env,
            backends.as_deref().map(|b| b.env()).unwrap_or_default(),
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_policy-push"));
        cmd.args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("POLICY_PUSH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("POLICY_PUSH_LOG", "warn")
            .env("POLICY_PUSH_HOTLINE_HOURS", "always")
            // Tests run at any hour: no quiet hours for SMS and WeChat either.
            .env("POLICY_PUSH_SMS_HOURS", "always")
            .env("POLICY_PUSH_WECHAT_HOURS", "always")
            .env("POLICY_PUSH_RETRY_SCALE", "0.002")
            // `serve` requires approvals by default; tests that exercise them say so.
            .env("POLICY_PUSH_REQUIRE_APPROVAL", "false")
            .env_remove("POLICY_PUSH_ALIYUN_CALLBACK_SECRET")
            .env_remove("POLICY_PUSH_TENCENT_CALLBACK_SECRET")
            .env_remove("POLICY_PUSH_DATABASE_URL")
            .env_remove("POLICY_PUSH_KAFKA_BROKERS")
            .env_remove("POLICY_PUSH_REDIS_URL")
            .env_remove("POLICY_PUSH_PSEUDONYM_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in backend_env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start policy-push");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let s = Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            backends: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(format!("{}/healthz", s.base)) {
                if r.status().is_success() {
                    return s;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become healthy");
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }

    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            token: ADMIN_TOKEN.to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
}

impl Api {
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_string(),
            http: self.http.clone(),
        }
    }

    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None)
    }
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body))
    }
    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body))
    }
    pub fn import(&self, content_type: &str, body: String) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/subjects/import", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("import");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Every sandbox message of a campaign, following cursors.
    pub fn sandbox(&self, campaign_id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let (st, v) = self.get(&format!(
                "/api/v1/sandbox/messages?campaign_id={campaign_id}&cursor={cursor}"
            ));
            assert_eq!(st, 200, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next"].as_str() {
                Some(n) => cursor = n.to_string(),
                None => return out,
            }
        }
    }

    /// Every push of a campaign, following cursors.
    pub fn pushes(&self, campaign_id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let (st, v) = self.get(&format!(
                "/api/v1/campaigns/{campaign_id}/pushes?cursor={cursor}"
            ));
            assert_eq!(st, 200, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next"].as_str() {
                Some(n) => cursor = n.to_string(),
                None => return out,
            }
        }
    }

    /// Waits until the campaign completes and every push has left `queued`/`sending`.
    pub fn wait_completed(&self, campaign_id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (st, c) = self.get(&format!("/api/v1/campaigns/{campaign_id}"));
            assert_eq!(st, 200, "{c}");
            if c["status"] == "completed" && c["counts"]["queued"] == 0 {
                return c;
            }
            if Instant::now() >= deadline {
                let open: Vec<Value> = self
                    .pushes(campaign_id)
                    .into_iter()
                    .filter(|p| p["status"] == "queued" || p["status"] == "sending")
                    .take(5)
                    .collect();
                panic!("campaign did not complete in time: {c}\nunfinished pushes: {open:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A valid resident ID number: Shanghai address code, birth date, sequence number.
pub fn resident_id(birth: &str, seq: u32) -> String {
    let first = format!("310115{birth}{:03}", seq % 1000);
    let c = domain::ids::resident_id_check_char(&first).unwrap();
    format!("{first}{c}")
}

/// A valid unified social credit code from a number.
pub fn credit_code(n: u32) -> String {
    let first = format!("91310115{:08}A", n);
    let c = domain::ids::credit_code_check_char(&first).unwrap();
    format!("{first}{c}")
}

pub fn mobile(n: u32) -> String {
    format!("139{:08}", n)
}

pub fn openid(n: u32) -> String {
    format!("oTest{:023}", n)
}

pub fn person(
    id: &str,
    name: &str,
    mobile: Option<String>,
    openid: Option<String>,
    attrs: Value,
) -> Value {
    let mut v = json!({"id": id, "kind": "person", "name": name, "attributes": attrs});
    if let Some(m) = mobile {
        v["mobile"] = m.into();
    }
    if let Some(o) = openid {
        v["wechat_openid"] = o.into();
    }
    v
}
