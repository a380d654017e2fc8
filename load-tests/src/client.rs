//! HTTP clients of the policy-push API and of the simulator's record, and the subjects the
//! load test imports and upserts.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Ok(Self {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .pool_max_idle_per_host(256)
                .build()?,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("request {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// POST expecting one of the `ok` statuses.
    pub async fn post_ok(&self, path: &str, body: Value, ok: &[u16]) -> Result<Value> {
        let (st, v) = self.call(reqwest::Method::POST, path, Some(&body)).await?;
        if !ok.contains(&st) {
            bail!("POST {path} answered {st}: {v}");
        }
        Ok(v)
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// NDJSON import; returns the number accepted.
    pub async fn import(&self, ndjson: String) -> Result<u64> {
        let resp = self
            .http
            .post(format!("{}/api/v1/subjects/import", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(ndjson)
            .send()
            .await
            .context("import request")?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 200 {
            bail!("import answered {status}: {v}");
        }
        v["accepted"]
            .as_u64()
            .with_context(|| format!("import answer without `accepted`: {v}"))
    }

    /// Publishes a policy with this eligibility rule; returns its id.
    pub async fn published_policy(&self, title: &str, eligibility: &str) -> Result<String> {
        let p = self
            .post_ok(
                "/api/v1/policies",
                json!({"title": title, "eligibility": eligibility}),
                &[201],
            )
            .await?;
        let pid = p["id"].as_str().context("policy id")?.to_string();
        self.post_ok(
            &format!("/api/v1/policies/{pid}/publish"),
            json!({}),
            &[200],
        )
        .await?;
        Ok(pid)
    }

    /// Creates a campaign (body fields besides `policy_id`); returns its id.
    pub async fn campaign(&self, pid: &str, mut body: Value) -> Result<String> {
        body["policy_id"] = pid.into();
        let c = self.post_ok("/api/v1/campaigns", body, &[201]).await?;
        Ok(c["id"].as_str().context("campaign id")?.to_string())
    }

    pub async fn launch(&self, cid: &str) -> Result<()> {
        self.post_ok(
            &format!("/api/v1/campaigns/{cid}/launch"),
            json!({}),
            &[200],
        )
        .await
        .map(|_| ())
    }

    pub async fn campaign_state(&self, cid: &str) -> Result<Value> {
        let (st, c) = self.get(&format!("/api/v1/campaigns/{cid}")).await?;
        if st != 200 {
            bail!("GET campaign {cid} answered {st}: {c}");
        }
        Ok(c)
    }
}

/// One message in the simulator's record.
pub struct SimMessage {
    pub seq: i64,
    pub channel: String,
    pub to: String,
    pub push_ref: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// The `policy-push simulate` process's record (`GET /sandbox/messages`).
#[derive(Clone)]
pub struct Simulator {
    base: String,
    http: reqwest::Client,
}

impl Simulator {
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    /// Up to `limit` messages after `after`; and whether more follow.
    pub async fn page(&self, after: i64, limit: usize) -> Result<(Vec<SimMessage>, bool)> {
        let v: Value = self
            .http
            .get(format!(
                "{}/sandbox/messages?after={after}&limit={limit}",
                self.base
            ))
            .send()
            .await?
            .json()
            .await?;
        let items = v["items"]
            .as_array()
            .with_context(|| format!("simulator record: {v}"))?;
        let mut out = Vec::with_capacity(items.len());
        for m in items {
            let received_at = m["received_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .with_context(|| format!("received_at of {m}"))?
                .with_timezone(&chrono::Utc);
            out.push(SimMessage {
                seq: m["seq"].as_i64().context("seq")?,
                channel: m["channel"].as_str().unwrap_or_default().to_string(),
                to: m["to"].as_str().unwrap_or_default().to_string(),
                push_ref: m["push_ref"].as_str().unwrap_or_default().to_string(),
                received_at,
            });
        }
        Ok((out, v["next"].as_i64().is_some()))
    }
}

/// A valid resident id for subject number `i`: Shanghai Pudong address code, a birth date
/// (one per 1,000 subjects, from 1960-01-01) and a sequence number.
pub fn resident_id(i: u64) -> String {
    let birth =
        chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("date") + chrono::Days::new(i / 1000);
    let first = format!("310115{}{:03}", birth.format("%Y%m%d"), i % 1000);
    let c = domain::ids::resident_id_check_char(&first).expect("17 digits");
    format!("{first}{c}")
}

/// B3 recipient `i`: every one has a mobile, three in five also a WeChat openid.
pub fn b3_subject(i: u64) -> Value {
    let mut v = json!({
        "id": resident_id(i), "kind": "person", "name": "居民",
        "mobile": format!("139{i:08}"),
        "attributes": {"employment_status": "registered_unemployed"},
    });
    if i % 5 < 3 {
        v["wechat_openid"] = format!("oLoad{i:023}").into();
    }
    v
}

/// The mobile of B5 subject `j`.
pub fn b5_mobile(j: u64) -> String {
    format!("137{j:08}")
}

/// B5 subject `j` (numbered after the B3 recipients), with this employment status.
pub fn b5_subject(recipients: u64, j: u64, status: &str) -> Value {
    json!({
        "id": resident_id(recipients + j), "kind": "person", "name": "居民",
        "mobile": b5_mobile(j),
        "attributes": {"employment_status": status},
    })
}
