//! Test support: the real `policy-push` binary started on port 0 with a temporary data
//! dir, an HTTP client for its API, and generators of valid identifiers.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token-0001";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts `policy-push serve` on 127.0.0.1:0 and waits until `/healthz` answers.
    pub fn start(data_dir: &Path, extra_env: &[(&str, String)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_policy-push"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("POLICY_PUSH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("POLICY_PUSH_LOG", "warn")
            .env("POLICY_PUSH_HOTLINE_HOURS", "always")
            .env("POLICY_PUSH_RETRY_SCALE", "0.002")
            .env_remove("POLICY_PUSH_DATABASE_URL")
            .env_remove("POLICY_PUSH_KAFKA_BROKERS")
            .env_remove("POLICY_PUSH_REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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
