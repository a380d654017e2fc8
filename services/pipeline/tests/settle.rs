//! The settling job against the provider simulators over HTTP, with no receipt callback
//! configured at all (every receipt lost): Alibaba pushes are settled by
//! `QuerySendDetails`, Tencent pushes by `PullSmsSendStatus`, and a WeChat push (no status
//! API) stays `sent` until the give-up deadline, then fails with "no receipt from
//! provider".

use chrono::{DateTime, Utc};
use domain::campaign::{CampaignMode, CampaignStatus};
use domain::policy::PolicyStatus;
use domain::push::{PushPurpose, PushStatus};
use domain::Channel;
use pipeline::delivery::outgoing;
use pipeline::settle::{self, Settled};
use pipeline::{Pipeline, PipelineConfig};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{CampaignChange, CampaignRecord, NewPush, PolicyRecord, PushOutcome, Store};

struct World {
    p: Pipeline,
    now: Arc<Mutex<DateTime<Utc>>>,
    _dir: tempfile::TempDir,
}

async fn world(sms: connectors::SmsProviderKind, failing: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = store::open(&url).await.unwrap();
    let sandbox = simulators::SandboxLog::open_in_memory().await.unwrap();
    let state = simulators::SimulatorState::new(
        simulators::SimulatorConfig {
            receipt_delay: Duration::ZERO,
            failing_recipients: vec![failing.to_string()],
            ..Default::default()
        },
        sandbox,
        Arc::new(simulators::NoAttribution),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, simulators::router(state))
            .await
            .unwrap();
    });
    let mut providers_cfg = connectors::ProvidersConfig::simulator(&base);
    providers_cfg.sms_provider = sms;
    let mut p = Pipeline::new(
        store,
        Arc::new(bus::memory::MemoryBus::new()),
        Arc::new(limits::MemoryRateLimiter::new()),
        connectors::build_providers(&providers_cfg),
        PipelineConfig {
            receipt_deadline: Duration::from_secs(60),
            receipt_give_up: Duration::from_secs(72 * 3600),
            ..Default::default()
        },
    );
    let now = Arc::new(Mutex::new(Utc::now()));
    let clock = now.clone();
    p.clock = Arc::new(move || *clock.lock().unwrap());
    World { p, now, _dir: dir }
}

impl World {
    fn store(&self) -> &dyn Store {
        self.p.store.as_ref()
    }

    fn later(&self, by: chrono::Duration) {
        *self.now.lock().unwrap() = Utc::now() + by;
    }

    /// A running campaign with one push per recipient on `channel`, sent through the
    /// provider and recorded as the connector would; returns the push ids.
    async fn sent(&self, channel: Channel, recipients: &[String], content: &str) -> Vec<String> {
        let cid = format!("c-{channel}");
        let policy = PolicyRecord {
            id: format!("pol-{channel}"),
            status: PolicyStatus::Published,
            draft: serde_json::from_value(json!({"title": "稳岗返还", "eligibility": "true"}))
                .unwrap(),
            created_by: "op-1".into(),
            created_at: Utc::now(),
            published_at: Some(Utc::now()),
        };
        self.store().insert_policy(&policy).await.unwrap();
        self.store()
            .insert_campaign(&CampaignRecord {
                id: cid.clone(),
                policy_id: policy.id.clone(),
                name: "c".into(),
                mode: CampaignMode::Once,
                status: CampaignStatus::Draft,
                draft: serde_json::from_value(json!({"policy_id": policy.id, "name": "c",
                    "channels": [channel.as_str()], "templates": {channel.as_str(): content}}))
                .unwrap(),
                created_by: "op-1".into(),
                approved_by: None,
                created_at: Utc::now(),
                launched_at: None,
                planned_at: None,
                completed_at: None,
            })
            .await
            .unwrap();
        self.store()
            .transition_campaign(
                &cid,
                &[CampaignStatus::Draft],
                CampaignStatus::Running,
                CampaignChange::default(),
            )
            .await
            .unwrap();
        let pushes: Vec<NewPush> = recipients
            .iter()
            .enumerate()
            .map(|(n, to)| NewPush {
                id: format!("p{channel}{n:04}"),
                subject_id: format!("s{n}"),
                purpose: PushPurpose::Notice,
                channel,
                recipient: to.clone(),
                content: content.to_string(),
                link_code: format!("l{channel}{n}"),
                explanation: "{}".into(),
                benefit: None,
                segments: None,
            })
            .collect();
        self.store()
            .insert_plan_batch(&cid, &pushes, &[], Utc::now())
            .await
            .unwrap();
        let ids: Vec<String> = pushes.iter().map(|x| x.id.clone()).collect();
        let claimed = self
            .store()
            .claim_for_sending(&ids, Utc::now())
            .await
            .unwrap();
        let msgs: Vec<_> = claimed
            .iter()
            .map(|r| outgoing(r, &self.p.config.public_url))
            .collect();
        let outcomes = self.p.providers.get(channel).send(&msgs).await;
        let recorded: Vec<PushOutcome> = msgs
            .iter()
            .zip(outcomes)
            .map(|(m, o)| match o {
                connectors::SendOutcome::Accepted { provider_id } => PushOutcome::Sent {
                    push_id: m.push_id.clone(),
                    provider_id,
                },
                other => panic!("the simulator refused a send: {other:?}"),
            })
            .collect();
        self.store()
            .record_outcomes(&recorded, Utc::now())
            .await
            .unwrap();
        ids
    }

    async fn status(&self, id: &str) -> (PushStatus, Option<String>) {
        let r = self.store().get_push(id).await.unwrap().unwrap();
        (r.status, r.error)
    }
}

fn mobiles(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("139{i:08}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_pushes_without_receipts_are_settled_by_status_query() {
    let to = mobiles(5);
    let w = world(connectors::SmsProviderKind::Aliyun, &to[2]).await;
    let ids = w.sent(Channel::Sms, &to, "【人社服务】稳岗返还").await;
    let mut carry = Vec::new();
    // Before the deadline nothing is asked.
    let none = settle::settle_channel(&w.p, Channel::Sms, &mut carry)
        .await
        .unwrap();
    assert_eq!(none, Settled::default());
    assert_eq!(w.status(&ids[0]).await.0, PushStatus::Sent);
    w.later(chrono::Duration::minutes(2));
    let done = settle::settle_channel(&w.p, Channel::Sms, &mut carry)
        .await
        .unwrap();
    assert_eq!((done.asked, done.given_up), (5, 0));
    for (n, id) in ids.iter().enumerate() {
        let (status, error) = w.status(id).await;
        if n == 2 {
            assert_eq!(
                (status, error.as_deref()),
                (PushStatus::Failed, Some("MK:0001"))
            );
        } else {
            assert_eq!(status, PushStatus::Delivered, "push {n}");
        }
    }
    // Nothing is left to ask.
    let again = settle::settle_channel(&w.p, Channel::Sms, &mut carry)
        .await
        .unwrap();
    assert_eq!(again, Settled::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_receipts_are_pulled() {
    let to = mobiles(4);
    let w = world(connectors::SmsProviderKind::Tencent, &to[1]).await;
    let ids = w.sent(Channel::Sms, &to, "稳岗返还").await;
    let mut carry = Vec::new();
    // Pulled every round, whatever the deadline: each status is handed out once.
    let done = settle::settle_channel(&w.p, Channel::Sms, &mut carry)
        .await
        .unwrap();
    assert_eq!((done.pulled, done.asked, done.given_up), (4, 0, 0));
    assert!(carry.is_empty());
    for (n, id) in ids.iter().enumerate() {
        let want = if n == 1 {
            PushStatus::Failed
        } else {
            PushStatus::Delivered
        };
        assert_eq!(w.status(id).await.0, want, "push {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_api_a_push_fails_at_the_give_up_deadline() {
    let w = world(connectors::SmsProviderKind::Aliyun, "none").await;
    let openids = vec!["oSim000000000000000000000001".to_string()];
    let ids = w.sent(Channel::Wechat, &openids, "thing1: 稳岗返还").await;
    let mut carry = Vec::new();
    // Past the receipt deadline, but WeChat cannot be asked: it waits.
    w.later(chrono::Duration::hours(71));
    let waiting = settle::settle_channel(&w.p, Channel::Wechat, &mut carry)
        .await
        .unwrap();
    assert_eq!(waiting, Settled::default());
    assert_eq!(w.status(&ids[0]).await.0, PushStatus::Sent);
    w.later(chrono::Duration::hours(73));
    let done = settle::settle_channel(&w.p, Channel::Wechat, &mut carry)
        .await
        .unwrap();
    assert_eq!(done.given_up, 1);
    let (status, error) = w.status(&ids[0]).await;
    assert_eq!(status, PushStatus::Failed);
    assert_eq!(
        error.as_deref(),
        Some("no receipt from provider within 72 h of sending")
    );
}
