//! Starting a simulator and a callback catcher; building connectors and messages.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::post;
use connectors::{build_providers, OutgoingMessage, ProviderSet, ProvidersConfig};
use simulators::{SandboxLog, SandboxMessage, SimulatorConfig, SimulatorState};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub struct Sim {
    pub base: String,
    pub state: SimulatorState,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Campaign `camp-A`; the subject names the push ref it came from.
pub fn attribution(push_ref: &str) -> Option<(String, String)> {
    Some(("camp-A".to_string(), format!("subj-{push_ref}")))
}

impl Sim {
    pub async fn start(cfg: SimulatorConfig) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(cfg, dir).await
    }

    pub async fn start_in(cfg: SimulatorConfig, dir: tempfile::TempDir) -> Sim {
        let sandbox = SandboxLog::open_in_dir(dir.path()).await.unwrap();
        let state = SimulatorState::new(cfg, sandbox, Arc::new(attribution));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(simulators::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Sim {
            base,
            state,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving (graceful, sandbox flushed) and hands back the data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir
    }

    pub fn config(&self) -> ProvidersConfig {
        ProvidersConfig::simulator(&self.base)
    }

    pub fn providers(&self) -> ProviderSet {
        build_providers(&self.config())
    }

    pub async fn messages(&self) -> Vec<SandboxMessage> {
        self.state.sandbox().list(None, 0, 10_000).await
    }
}

pub fn msg(push_id: &str, to: &str, content: &str) -> OutgoingMessage {
    OutgoingMessage {
        push_id: push_id.to_string(),
        campaign_id: "camp-A".to_string(),
        subject_id: format!("subj-{push_id}"),
        to: to.to_string(),
        content: content.to_string(),
        link: format!("https://policy.example.gov.cn/p/{push_id}"),
    }
}

/// One callback: kind, query string, body.
type Caught = (String, Option<String>, Bytes);

/// Callback bodies received, by kind (`sms`, `wechat`, `voice`, `tencent`).
#[derive(Clone, Default)]
pub struct Catcher {
    pub got: Arc<Mutex<Vec<Caught>>>,
    pub base: String,
}

async fn catch(
    State(c): State<Catcher>,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> &'static str {
    c.got.lock().unwrap().push((kind.clone(), q, body));
    match kind.as_str() {
        "wechat" => connectors::receipts::WECHAT_EVENT_REPLY,
        "tencent" => connectors::receipts::TENCENT_SMS_REPORT_REPLY,
        "voice" => connectors::receipts::ALIYUN_VOICE_REPORT_REPLY,
        _ => connectors::receipts::ALIYUN_SMS_REPORT_REPLY,
    }
}

impl Catcher {
    pub async fn start() -> Catcher {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Catcher {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Catcher::default()
        };
        let app = axum::Router::new()
            .route("/cb/{kind}", post(catch))
            .with_state(c.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        c
    }

    pub fn url(&self, kind: &str) -> String {
        format!("{}/cb/{kind}", self.base)
    }

    pub fn bodies(&self, kind: &str) -> Vec<(Option<String>, Bytes)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, q, b)| (q.clone(), b.clone()))
            .collect()
    }

    /// Waits until `pred` holds over the bodies of `kind` (at most 10 s).
    pub async fn wait_for(&self, kind: &str, pred: impl Fn(&[(Option<String>, Bytes)]) -> bool) {
        for _ in 0..200 {
            if pred(&self.bodies(kind)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "callbacks of kind {kind} never matched; got {}",
            self.bodies(kind).len()
        );
    }
}

/// A signed Alibaba RPC POST made by hand (for requests the connectors never make).
pub async fn aliyun_raw(
    url: &str,
    secret: &str,
    action: &str,
    nonce: &str,
    business: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    use connectors::aliyun_sign::{form_body, signed_params, Common};
    let mut common = Common::now("sim-access-key", action, "2017-05-25", "cn-hangzhou");
    common.nonce = nonce.to_string();
    let params = signed_params(
        "POST",
        &common,
        secret,
        business
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&params))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}
