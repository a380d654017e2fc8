//! A blocking client of the operator API with a bearer token: one call answers the status
//! and the JSON body; lists follow their cursors; a campaign's states are waited for.

use serde_json::Value;
use std::time::{Duration, Instant};

pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_string(),
            http: self.http.clone(),
        }
    }

    /// `method` `path` (from the server's root) with `body` as JSON; answers the status and
    /// the body (JSON, else its text as a JSON string).
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

    /// Every item of a paged list (`{items, next}`), following `cursor=`.
    fn all_pages(&self, path_with_query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let (st, v) = self.get(&format!("{path_with_query}cursor={cursor}"));
            assert_eq!(st, 200, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next"].as_str() {
                Some(n) => cursor = n.to_string(),
                None => return out,
            }
        }
    }

    /// Every sandbox message of a campaign.
    pub fn sandbox(&self, campaign_id: &str) -> Vec<Value> {
        self.all_pages(&format!(
            "/api/v1/sandbox/messages?campaign_id={campaign_id}&"
        ))
    }

    /// Every push of a campaign.
    pub fn pushes(&self, campaign_id: &str) -> Vec<Value> {
        self.all_pages(&format!("/api/v1/campaigns/{campaign_id}/pushes?"))
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

    /// Waits until at least `at_least` pushes of the campaign are sent or delivered, and
    /// fails if all `total` already are (a test that kills a process mid-campaign needs the
    /// campaign still running).
    pub fn wait_part_sent(&self, campaign_id: &str, at_least: u64, total: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            // A refusal (e.g. 503 while a backend is down) is read again.
            let (st, c) = self.get(&format!("/api/v1/campaigns/{campaign_id}"));
            if st == 200 {
                let settled = c["counts"]["sent"].as_u64().unwrap()
                    + c["counts"]["delivered"].as_u64().unwrap();
                if settled >= at_least {
                    assert!(
                        settled < total,
                        "the campaign finished before the kill or fault; slow it down"
                    );
                    return;
                }
            }
            assert!(Instant::now() < deadline, "nothing more was sent: {c}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
