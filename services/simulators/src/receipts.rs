//! Asynchronous delivery receipts to the configured callback URLs, `receipt_delay` after a
//! message is accepted.
//!
//! - Alibaba `SmsReport`, Alibaba `VoiceReport`, Tencent SMS status: JSON arrays, batched —
//!   a POST leaves when 100 receipts are due or 200 ms after the oldest became due; up to
//!   [`POSTS_IN_FLIGHT`] POSTs at once.
//! - WeChat event pushes: one XML POST per message (as WeChat does), signed with
//!   `signature`/`timestamp`/`nonce` in the query, up to [`POSTS_IN_FLIGHT`] at once.
//!
//! A POST that fails (connection error or non-2xx) is retried 3 times (0.5 s, 1 s, 2 s), as
//! providers retry. Faults may drop a receipt or deliver it twice. Receipts still queued
//! when the simulators stop are lost, as they would be for a real provider's outage.

use crate::config::SimulatorConfig;
use crate::faults::Faults;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Receipts per JSON POST.
pub const BATCH: usize = 100;
/// How long a due receipt waits for others to fill its batch.
pub const LINGER: Duration = Duration::from_millis(200);
/// Concurrent callback POSTs per receipt stream.
pub const POSTS_IN_FLIGHT: usize = 16;

struct Due<T> {
    at: Instant,
    item: T,
}

type JsonTx = mpsc::UnboundedSender<Due<serde_json::Value>>;

/// Queues receipts to the tasks that deliver them.
pub(crate) struct Dispatcher {
    aliyun_sms: Option<JsonTx>,
    aliyun_voice: Option<JsonTx>,
    tencent_sms: Option<JsonTx>,
    wechat: Option<mpsc::UnboundedSender<Due<String>>>,
    faults: Arc<Faults>,
    delay: Duration,
}

impl Dispatcher {
    /// Spawns one delivery task per configured callback URL.
    pub fn new(cfg: &SimulatorConfig, faults: Arc<Faults>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("reqwest client builds");
        let json = |url: &Option<String>| {
            url.as_ref().map(|u| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(json_task(client.clone(), u.clone(), rx));
                tx
            })
        };
        let wechat = cfg.wechat_event_url.as_ref().map(|u| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(xml_task(
                client.clone(),
                u.clone(),
                cfg.wechat_callback_token.clone(),
                rx,
            ));
            tx
        });
        Self {
            aliyun_sms: json(&cfg.sms_report_url),
            aliyun_voice: json(&cfg.voice_report_url),
            tencent_sms: json(&cfg.tencent_sms_report_url),
            wechat,
            faults,
            delay: cfg.receipt_delay,
        }
    }

    fn push<T: Clone>(&self, tx: &Option<mpsc::UnboundedSender<Due<T>>>, item: T) {
        let Some(tx) = tx else { return };
        let at = Instant::now() + self.delay;
        for _ in 0..self.faults.receipt_copies() {
            let _ = tx.send(Due {
                at,
                item: item.clone(),
            });
        }
    }

    pub fn wants_aliyun_sms(&self) -> bool {
        self.aliyun_sms.is_some()
    }
    pub fn wants_aliyun_voice(&self) -> bool {
        self.aliyun_voice.is_some()
    }
    pub fn wants_tencent_sms(&self) -> bool {
        self.tencent_sms.is_some()
    }
    pub fn wants_wechat(&self) -> bool {
        self.wechat.is_some()
    }

    pub fn aliyun_sms(&self, item: serde_json::Value) {
        self.push(&self.aliyun_sms, item);
    }
    pub fn aliyun_voice(&self, item: serde_json::Value) {
        self.push(&self.aliyun_voice, item);
    }
    pub fn tencent_sms(&self, item: serde_json::Value) {
        self.push(&self.tencent_sms, item);
    }
    pub fn wechat(&self, xml: String) {
        self.push(&self.wechat, xml);
    }
}

/// POSTs `body` with up to 3 retries.
async fn post(client: &reqwest::Client, url: &str, content_type: &str, body: String) {
    let mut backoff = Duration::from_millis(500);
    for attempt in 0..4 {
        let res = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::debug!(status = %r.status(), attempt, "receipt callback refused"),
            Err(e) => tracing::debug!(error = %e, attempt, "receipt callback failed"),
        }
        if attempt < 3 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::warn!("receipt callback given up after retries");
}

async fn json_task(
    client: reqwest::Client,
    url: String,
    mut rx: mpsc::UnboundedReceiver<Due<serde_json::Value>>,
) {
    let permits = Arc::new(Semaphore::new(POSTS_IN_FLIGHT));
    let mut queue: VecDeque<Due<serde_json::Value>> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(d) => queue.push_back(d),
                None => return,
            }
        }
        while let Ok(d) = rx.try_recv() {
            queue.push_back(d);
        }
        let now = Instant::now();
        let head = queue.front().expect("not empty").at;
        let due = queue.iter().take_while(|d| d.at <= now).count();
        if due >= BATCH || (due > 0 && now >= head + LINGER) {
            let batch: Vec<serde_json::Value> =
                queue.drain(..due.min(BATCH)).map(|d| d.item).collect();
            let body = serde_json::Value::Array(batch).to_string();
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                post(&client, &url, "application/json", body).await;
                drop(permit);
            });
            continue;
        }
        let wake = if due > 0 { head + LINGER } else { head };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            more = rx.recv() => match more {
                Some(d) => queue.push_back(d),
                None => {
                    // Senders gone: deliver what is left when due, then stop.
                    tokio::time::sleep_until(queue.back().map_or(now, |d| d.at)).await;
                    let rest: Vec<serde_json::Value> = queue.drain(..).map(|d| d.item).collect();
                    for chunk in rest.chunks(BATCH) {
                        post(&client, &url, "application/json", serde_json::Value::Array(chunk.to_vec()).to_string()).await;
                    }
                    return;
                }
            },
        }
    }
}

async fn xml_task(
    client: reqwest::Client,
    url: String,
    token: String,
    mut rx: mpsc::UnboundedReceiver<Due<String>>,
) {
    let permits = Arc::new(Semaphore::new(POSTS_IN_FLIGHT));
    while let Some(d) = rx.recv().await {
        tokio::time::sleep_until(d.at).await;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let nonce = (rand::random::<u32>() % 1_000_000_000).to_string();
        let mut parts = [token.as_str(), timestamp.as_str(), nonce.as_str()];
        parts.sort_unstable();
        let signature = {
            use sha1::Digest;
            hex::encode(sha1::Sha1::digest(parts.concat().as_bytes()))
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{sep}signature={signature}&timestamp={timestamp}&nonce={nonce}");
        let client = client.clone();
        tokio::spawn(async move {
            post(&client, &full, "text/xml", d.item).await;
            drop(permit);
        });
    }
}

/// XML text with `]]>` split so it fits in CDATA.
pub(crate) fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}
