//! The compliance simulation: a simulated week of several campaigns (at a time, now,
//! daily cron, continuous), subject upserts and opt-outs, run through the real pipeline
//! roles (scheduler, planner, connector delivery with its send-time limits) on the
//! embedded SQLite store, with the built-in provider simulators serving the provider
//! APIs over HTTP. The test moves the pipeline's clock in half-hour ticks and drives each
//! role one step per tick, then checks what the simulators received:
//!
//! - never a send in quiet hours (SMS and WeChat: 08:00–21:00 Asia/Shanghai);
//! - never more than the cap (2 notices per 7 days) to one subject, across campaigns;
//! - never a send to a subject on a channel or category they opted out of before it;
//! - never the same policy twice to a subject;
//!
//! and that the limits did not simply stop everything: night pushes went out the next
//! morning, and each skip reason occurred. With the counter in Redis, every key under the
//! test prefix names subjects by keyed pseudonym only; and every message a campaign puts
//! on the bus does too (`the_bus_carries_keyed_pseudonyms_only`).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use domain::campaign::CampaignStatus;
use domain::ids::resident_id_check_char;
use domain::policy::PolicyStatus;
use domain::{Channel, Subject, SubjectDoc};
use pipeline::matching::TagRules;
use pipeline::{delivery, planner, schedule, Pipeline, PipelineConfig};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use store::{CampaignRecord, OptOut, PolicyRecord, Store};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

struct World {
    p: Pipeline,
    now: Arc<Mutex<DateTime<Utc>>>,
    sandbox: simulators::SandboxLog,
    _dir: tempfile::TempDir,
    /// Opt-outs as recorded: (subject, channel, category, at).
    opt_outs: Vec<OptOut>,
    /// Sends seen so far: (simulated time, push id, subject, campaign, channel).
    sends: Vec<Send>,
    seen_seq: i64,
}

#[derive(Debug, Clone)]
struct Send {
    at: DateTime<Utc>,
    subject: String,
    campaign: String,
    channel: Channel,
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    TZ.from_local_datetime(
        &NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap(),
    )
    .unwrap()
    .with_timezone(&Utc)
}

fn resident_id(n: u32) -> String {
    let first17 = format!("31011519900101{n:03}");
    format!("{first17}{}", resident_id_check_char(&first17).unwrap())
}

fn person(n: u32, attrs: serde_json::Value) -> Subject {
    Subject::from_doc(SubjectDoc {
        id: resident_id(n),
        kind: "person".into(),
        name: format!("居民{n}"),
        mobile: Some(format!("139{n:08}")),
        // Every third subject follows the official account.
        wechat_openid: n.is_multiple_of(3).then(|| format!("oSim{n:024}")),
        attributes: attrs.as_object().cloned().unwrap_or_default(),
    })
    .unwrap()
}

impl World {
    async fn new(start: DateTime<Utc>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = store::open(&url).await.unwrap();
        // The provider simulators, over HTTP on a local port.
        let sandbox = simulators::SandboxLog::open_in_memory().await.unwrap();
        let state = simulators::SimulatorState::new(
            simulators::SimulatorConfig::default(),
            sandbox.clone(),
            Arc::new(simulators::NoAttribution),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, simulators::router(state))
                .await
                .unwrap();
        });
        let providers =
            connectors::build_providers(&connectors::config::ProvidersConfig::simulator(&base));
        let mut p = Pipeline::new(
            store,
            Arc::new(bus::memory::MemoryBus::new()),
            Arc::new(limits::MemoryRateLimiter::new()),
            providers,
            PipelineConfig {
                retry_scale: 0.0,
                ..Default::default()
            },
        );
        let now = Arc::new(Mutex::new(start));
        let clock = now.clone();
        p.clock = Arc::new(move || *clock.lock().unwrap());
        World {
            p,
            now,
            sandbox,
            _dir: dir,
            opt_outs: Vec::new(),
            sends: Vec::new(),
            seen_seq: 0,
        }
    }

    fn store(&self) -> &dyn Store {
        self.p.store.as_ref()
    }

    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    /// Upserts subjects as the API does: stored, indexed, planned into running
    /// continuous campaigns.
    async fn upsert(&self, subjects: Vec<Subject>) {
        let rules = TagRules::load(self.store(), self.p.today()).await.unwrap();
        let tagged: Vec<_> = subjects
            .into_iter()
            .map(|s| {
                let tags = rules.tags_for(&s, self.p.today());
                (s, tags)
            })
            .collect();
        self.store().upsert_subjects(&tagged).await.unwrap();
        self.p.load_index().await.unwrap();
        planner::plan_subjects(&self.p, &tagged).await.unwrap();
    }

    async fn policy(&self, id: &str, category: &str, eligibility: &str) {
        let p = PolicyRecord {
            id: id.into(),
            status: PolicyStatus::Published,
            draft: serde_json::from_value(json!({
                "title": format!("政策{id}"), "category": category, "eligibility": eligibility,
                "apply_url": "https://ywtb.example.gov.cn/apply",
            }))
            .unwrap(),
            created_by: "op-1".into(),
            created_at: self.now(),
            published_at: Some(self.now()),
        };
        self.store().insert_policy(&p).await.unwrap();
    }

    /// Creates a campaign and launches it as the API does (now, at a time, or on cron).
    async fn launch(&self, id: &str, policy: &str, mode: &str, schedule: serde_json::Value) {
        let draft: domain::campaign::CampaignDraft = serde_json::from_value(json!({
            "policy_id": policy, "name": id, "mode": mode, "channels": ["wechat", "sms"],
            "templates": {
                "wechat": "thing1: {{ policy.title }}\nthing2: {{ subject.name }}",
                "sms": "{{ policy.title }}，详见 {{ link }} 拒收请回复R",
            },
            "schedule": schedule,
        }))
        .unwrap();
        draft.clone().check().unwrap();
        let c = CampaignRecord {
            id: id.into(),
            policy_id: policy.into(),
            name: id.into(),
            mode: domain::campaign::CampaignMode::parse(mode).unwrap(),
            status: CampaignStatus::Draft,
            draft: draft.clone(),
            created_by: "op-1".into(),
            approved_by: None,
            created_at: self.now(),
            launched_at: None,
            planned_at: None,
            completed_at: None,
        };
        self.store().insert_campaign(&c).await.unwrap();
        let plan = schedule::launch_plan(
            id,
            &draft.schedule.clone().unwrap_or_default(),
            None,
            self.now(),
        );
        if let Some(ops) = &plan.ops {
            self.store().put_campaign_ops(ops).await.unwrap();
        }
        self.store()
            .transition_campaign(
                id,
                &[CampaignStatus::Draft],
                plan.status,
                store::CampaignChange {
                    launched_at: (plan.status == CampaignStatus::Running).then_some(self.now()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    async fn opt_out(&mut self, n: u32, channel: Option<Channel>, category: Option<&str>) {
        let o = OptOut {
            subject_id: resident_id(n),
            channel,
            category: category.map(str::to_string),
            source: "recipient_page".into(),
            at: self.now(),
        };
        self.store().record_opt_out(&o).await.unwrap();
        self.opt_outs.push(o);
    }

    /// One step of every role at the current simulated time.
    async fn tick(&mut self) {
        schedule::step(&self.p).await.unwrap();
        for c in self.store().campaigns_to_plan().await.unwrap() {
            planner::plan(&self.p, c).await.unwrap();
        }
        loop {
            let handover = self.store().hand_over(self.now(), 2_000).await.unwrap();
            let due = handover.pushes().to_vec();
            handover.commit().await.unwrap();
            if due.is_empty() {
                break;
            }
            let mut by_channel: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for r in &due {
                by_channel
                    .entry(r.channel.as_str())
                    .or_default()
                    .push(r.id.clone());
            }
            for (channel, ids) in by_channel {
                delivery::deliver(&self.p, Channel::parse(channel).unwrap(), &ids)
                    .await
                    .unwrap();
            }
        }
        self.store()
            .complete_finished_campaigns(self.now())
            .await
            .unwrap();
        // What the simulators received during this tick.
        for m in self
            .sandbox
            .try_list(None, self.seen_seq, 10_000)
            .await
            .unwrap()
        {
            self.seen_seq = m.seq;
            let push = self.store().get_push(&m.push_ref).await.unwrap().unwrap();
            self.sends.push(Send {
                at: self.now(),
                subject: push.subject_id,
                campaign: push.campaign_id,
                channel: Channel::parse(&m.channel).unwrap(),
            });
        }
    }

    fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_respects_every_limit() {
    week(None).await;
}

/// The same week with the frequency counter in Redis (`POLICY_PUSH_TEST_REDIS_URL`,
/// default `redis://127.0.0.1:6379`), as when connectors run in several processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_respects_every_limit_with_the_counter_in_redis() {
    let url = std::env::var("POLICY_PUSH_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "pp-test:{}:",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let counter = limits::redis_backend::RedisLimits::new(&url, &prefix).unwrap();
    let w = week(Some(Arc::new(counter))).await;
    // What Redis holds names subjects by their keyed pseudonyms only: no ID number, no
    // unsalted digest of one.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut con)
        .await
        .unwrap();
    let subjects = all_subject_ids(w.store()).await;
    let mut named = 0;
    for k in &keys {
        assert_no_id_or_digest(k.as_bytes(), &subjects);
        if subjects
            .iter()
            .any(|id| k.contains(&w.p.pseudonyms.subject(id)))
        {
            named += 1;
        }
    }
    assert!(named > 0, "the counter's keys name subjects: {keys:?}");
}

/// Every subject id in the store.
async fn all_subject_ids(s: &dyn Store) -> Vec<String> {
    let page = s.subjects_page(None, 10_000).await.unwrap();
    page.into_iter()
        .map(|(p, _)| p.id.as_str().to_string())
        .collect()
}

/// `bytes` holds none of the ID numbers, nor a hex digest of one that needs no key
/// (SHA-256 of the id, or of the id with the old fixed prefix; any 16-digit piece).
fn assert_no_id_or_digest(bytes: &[u8], ids: &[String]) {
    use sha2::Digest;
    let text = String::from_utf8_lossy(bytes);
    for id in ids {
        assert!(!text.contains(id.as_str()), "ID number in {text:?}");
        for plain in [id.clone(), format!("policy-push:subject:{id}")] {
            let digest = hex::encode(sha2::Sha256::digest(plain.as_bytes()));
            assert!(
                !text.contains(&digest[..16]),
                "unsalted digest of an ID number in {text:?}"
            );
        }
    }
}

/// A durable in-process bus: the events that only a durable bus (Kafka) publishes are
/// kept here for the test to read.
struct DurableBus(bus::memory::MemoryBus);

#[async_trait::async_trait]
impl bus::Bus for DurableBus {
    async fn publish(
        &self,
        topic: &str,
        messages: Vec<(String, Vec<u8>)>,
    ) -> Result<(), bus::BusError> {
        self.0.publish(topic, messages).await
    }
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> Result<Box<dyn bus::Subscription>, bus::BusError> {
        self.0.subscribe(topic, group).await
    }
    fn durable(&self) -> bool {
        true
    }
}

/// Every message this process puts on the bus (subject changes, push tasks, delivery
/// events) carries the subject's keyed pseudonym, never the ID number nor an unsalted
/// digest of it; another process with the same key computes the same pseudonyms and
/// resolves the subject changes through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_carries_keyed_pseudonyms_only() {
    use bus::topics::{BusMessage, SubjectChanged};
    use bus::Bus as _;
    const KEY: &str = "9f1c0e7d6b5a49382716f5e4d3c2b1a0ffeeddccbbaa99887766554433221100";
    let mut w = World::new(local(2026, 11, 30, 10, 0)).await;
    let mem = bus::memory::MemoryBus::new();
    w.p.bus = Arc::new(DurableBus(mem.clone()));
    w.p.pseudonyms = domain::pseudonym::Pseudonymizer::parse(KEY).unwrap();
    // Another process of the deployment, configured with the same key.
    let other = domain::pseudonym::Pseudonymizer::parse(KEY).unwrap();
    let mut subs = BTreeMap::new();
    for topic in [
        bus::topics::SUBJECT_CHANGED.to_string(),
        bus::topics::push_topic("sms"),
        bus::topics::push_topic("wechat"),
        bus::topics::DELIVERY_EVENTS.to_string(),
    ] {
        subs.insert(topic.clone(), mem.subscribe(&topic, "audit").await.unwrap());
    }
    let subjects: Vec<Subject> = (0u32..12)
        .map(|n| person(n, json!({"district": "浦东新区"})))
        .collect();
    let ids: Vec<String> = subjects.iter().map(|s| s.id.as_str().to_string()).collect();
    let tagged: Vec<(Subject, Vec<String>)> =
        subjects.iter().map(|s| (s.clone(), Vec::new())).collect();
    w.upsert(subjects).await;
    let mut by_topic: BTreeMap<String, Vec<bus::Delivery>> = BTreeMap::new();
    pipeline::events::subjects_changed(&w.p, &tagged);
    drain(
        &mut subs,
        &mut by_topic,
        bus::topics::SUBJECT_CHANGED,
        ids.len(),
    )
    .await;
    w.policy("pol-a", "就业补贴", "true").await;
    w.launch("c1", "pol-a", "once", json!(null)).await;
    for c in w.store().campaigns_to_plan().await.unwrap() {
        planner::plan(&w.p, c).await.unwrap();
    }
    assert_eq!(pipeline::relay::relay_once(&w.p).await.unwrap(), ids.len());
    for channel in [Channel::Sms, Channel::Wechat] {
        let topic = bus::topics::push_topic(channel.as_str());
        drain(&mut subs, &mut by_topic, &topic, 0).await;
        // The connector's work, from the tasks on the bus: delivery events follow.
        let push_ids: Vec<String> = by_topic
            .get(&topic)
            .into_iter()
            .flatten()
            .map(|d| bus::topics::PushTask::decode(&d.payload).unwrap().push_id)
            .collect();
        delivery::deliver(&w.p, channel, &push_ids).await.unwrap();
    }
    drain(
        &mut subs,
        &mut by_topic,
        bus::topics::DELIVERY_EVENTS,
        ids.len(),
    )
    .await;

    let expected: BTreeMap<String, String> = ids
        .iter()
        .map(|id| (other.subject(id), id.clone()))
        .collect();
    let pushed: usize = by_topic
        .iter()
        .filter(|(t, _)| t.starts_with("push."))
        .map(|(_, d)| d.len())
        .sum();
    assert_eq!(pushed, ids.len());
    assert!(by_topic[bus::topics::DELIVERY_EVENTS].len() >= ids.len());
    assert_eq!(by_topic[bus::topics::SUBJECT_CHANGED].len(), ids.len());
    for (topic, deliveries) in &by_topic {
        for d in deliveries {
            assert!(expected.contains_key(&d.key), "{topic}: key {:?}", d.key);
            assert_no_id_or_digest(d.key.as_bytes(), &ids);
            assert_no_id_or_digest(&d.payload, &ids);
        }
    }
    // The subject changes name the subjects by the same pseudonyms, which the store
    // resolves for a follower.
    let changed: Vec<String> = by_topic[bus::topics::SUBJECT_CHANGED]
        .iter()
        .map(|d| {
            SubjectChanged::from_bytes(bus::topics::SUBJECT_CHANGED, &d.payload)
                .unwrap()
                .subject
        })
        .collect();
    let resolved: Vec<String> = w
        .store()
        .subjects_by_pseudonym(&changed)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.id.as_str().to_string())
        .collect();
    let mut resolved = resolved;
    resolved.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(resolved, want);
}

/// Reads `topic` into `into` until it holds at least `at_least` messages (10 s at most),
/// then whatever else is already there.
async fn drain(
    subs: &mut BTreeMap<String, Box<dyn bus::Subscription>>,
    into: &mut BTreeMap<String, Vec<bus::Delivery>>,
    topic: &str,
    at_least: usize,
) {
    let sub = subs.get_mut(topic).unwrap();
    let got = into.entry(topic.to_string()).or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let wait = if got.len() < at_least && std::time::Instant::now() < deadline {
            200
        } else {
            50
        };
        match tokio::time::timeout(std::time::Duration::from_millis(wait), sub.next_batch(100))
            .await
        {
            Ok(Some(batch)) => got.extend(batch),
            _ if got.len() >= at_least || std::time::Instant::now() >= deadline => return,
            _ => {}
        }
    }
}

async fn week(counter: Option<Arc<dyn limits::SendCounter>>) -> World {
    // Monday 2026-11-30 00:00 Shanghai.
    let start = local(2026, 11, 30, 0, 0);
    let mut w = World::new(start).await;
    if let Some(c) = counter {
        w.p.counter = c;
    }
    // 30 subjects, all in 浦东新区 except every fifth; a few registered unemployed.
    let subjects: Vec<Subject> = (0u32..30)
        .map(|n| {
            let district = if n.is_multiple_of(5) {
                "黄浦区"
            } else {
                "浦东新区"
            };
            person(
                n,
                json!({"district": district, "employment_status": "employed"}),
            )
        })
        .collect();
    w.upsert(subjects).await;
    w.policy("pol-a", "就业补贴", "true").await;
    w.policy("pol-b", "技能培训", "district == '浦东新区'")
        .await;
    w.policy("pol-c", "社会保险", "true").await;
    w.policy(
        "pol-d",
        "失业保险",
        "employment_status == 'registered_unemployed'",
    )
    .await;
    let categories: HashMap<&str, &str> = [
        ("a1", "就业补贴"),
        ("a2", "就业补贴"),
        ("b1", "技能培训"),
        ("c1", "社会保险"),
        ("d1", "失业保险"),
    ]
    .into_iter()
    .collect();
    let policy_of: HashMap<&str, &str> = [
        ("a1", "pol-a"),
        ("a2", "pol-a"),
        ("b1", "pol-b"),
        ("c1", "pol-c"),
        ("d1", "pol-d"),
    ]
    .into_iter()
    .collect();

    // A continuous campaign from the start of the week.
    w.launch("d1", "pol-d", "continuous", json!(null)).await;
    // A daily recurring campaign at 09:00.
    w.launch("b1", "pol-b", "once", json!({"cron": "0 9 * * *"}))
        .await;

    let ticks = 7 * 48;
    for i in 0..ticks {
        let t = w.now().with_timezone(&TZ);
        let (day, hour, min) = (i / 48, t.hour(), t.minute());
        match (day, hour, min) {
            // Monday 22:30: a one-shot campaign launched at night waits for the morning.
            (0, 22, 30) => w.launch("a1", "pol-a", "once", json!(null)).await,
            // Monday 23:00, after planning: opt-outs that must hold at send time.
            (0, 23, 0) => {
                for n in [1, 2, 4] {
                    w.opt_out(n, Some(Channel::Sms), None).await;
                }
                w.opt_out(7, None, Some("就业补贴")).await;
                // Planned on WeChat; falls back to SMS at send time.
                w.opt_out(6, Some(Channel::Wechat), None).await;
                w.opt_out(8, None, None).await;
            }
            // Tuesday 10:00: the same policy again: nobody gets it twice.
            (1, 10, 0) => w.launch("a2", "pol-a", "once", json!(null)).await,
            // Tuesday 15:00: subjects move to 浦东 (eligible for the next cron run) and
            // some become registered unemployed (the continuous campaign).
            (1, 15, 0) => {
                let moved: Vec<Subject> = (0u32..30)
                    .filter(|n: &u32| n.is_multiple_of(5))
                    .map(|n| {
                        let status = if n.is_multiple_of(2) {
                            "registered_unemployed"
                        } else {
                            "employed"
                        };
                        person(
                            n,
                            json!({"district": "浦东新区", "employment_status": status}),
                        )
                    })
                    .collect();
                w.upsert(moved).await;
            }
            // Wednesday 12:00: a campaign scheduled for Wednesday 20:45 (in the window,
            // just before quiet hours).
            (2, 12, 0) => {
                w.launch(
                    "c1",
                    "pol-c",
                    "once",
                    json!({"at": local(2026, 12, 2, 20, 45)}),
                )
                .await
            }
            // Thursday 02:00 (night): more unemployed subjects; they wait for 08:00.
            (3, 2, 0) => {
                let more: Vec<Subject> = (30..36)
                    .map(|n| {
                        person(n, json!({"district": "浦东新区", "employment_status": "registered_unemployed"}))
                    })
                    .collect();
                w.upsert(more).await;
            }
            // Friday 11:00: subject 3 unsubscribes from WeChat.
            (4, 11, 0) => w.opt_out(3, Some(Channel::Wechat), None).await,
            _ => {}
        }
        w.tick().await;
        w.advance(Duration::minutes(30));
    }

    let sends = w.sends.clone();
    let mut per_campaign: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sends {
        *per_campaign.entry(s.campaign.as_str()).or_default() += 1;
    }
    for c in ["a1", "b1", "c1", "d1"] {
        assert!(
            per_campaign.contains_key(c),
            "{c} sent nothing: {per_campaign:?}"
        );
    }
    assert!(!sends.is_empty(), "the week sent something");

    // 1. Never in quiet hours.
    for s in &sends {
        let h = s.at.with_timezone(&TZ).hour();
        assert!(
            (8..21).contains(&h),
            "{:?} sent at {} local",
            s.channel,
            s.at.with_timezone(&TZ)
        );
    }
    // 2. Never more than 2 notices to a subject in any 7 days.
    let mut by_subject: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for s in &sends {
        by_subject.entry(&s.subject).or_default().push(s.at);
    }
    for (subject, times) in &by_subject {
        for &t in times {
            let in_window = times
                .iter()
                .filter(|&&u| u <= t && u > t - Duration::days(7))
                .count();
            assert!(
                in_window <= 2,
                "subject {subject} got {in_window} in 7 days"
            );
        }
    }
    // 3. Never to an opted-out subject on that channel or category.
    for s in &sends {
        let category = categories[s.campaign.as_str()];
        for o in w
            .opt_outs
            .iter()
            .filter(|o| o.subject_id == s.subject && o.at <= s.at)
        {
            assert!(
                !o.forbids(s.channel, category),
                "sent {:?} to a subject who opted out ({:?}/{:?})",
                s.channel,
                o.channel,
                o.category
            );
        }
    }
    // 4. Never the same policy twice.
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for s in &sends {
        *pairs
            .entry((s.subject.as_str(), policy_of[s.campaign.as_str()]))
            .or_default() += 1;
    }
    assert!(
        pairs.values().all(|&n| n == 1),
        "a policy sent twice: {pairs:?}"
    );

    // The limits did their work without dropping what may go out.
    let a1: Vec<&Send> = sends.iter().filter(|s| s.campaign == "a1").collect();
    assert!(!a1.is_empty());
    assert!(
        a1.iter().all(|s| s.at >= local(2026, 12, 1, 8, 0)),
        "the night launch waited for 08:00"
    );
    assert_eq!(a1[0].at, local(2026, 12, 1, 8, 0), "and went out then");
    let six: Vec<&&Send> = a1.iter().filter(|s| s.subject == resident_id(6)).collect();
    assert_eq!(six.len(), 1);
    assert_eq!(
        six[0].channel,
        Channel::Sms,
        "opted out of WeChat after planning"
    );
    assert!(
        sends.iter().all(|s| s.campaign != "a2"),
        "a second campaign of the same policy sends nothing"
    );
    let skips = skip_reasons(w.store(), &["a1", "a2", "b1", "c1", "d1"]).await;
    for reason in ["opted_out", "duplicate", "capped"] {
        assert!(
            skips.get(reason).copied().unwrap_or(0) > 0,
            "no {reason} skip in {skips:?}"
        );
    }
    // Every push ended: nothing is left waiting at the end of the week except by design.
    let queued = w
        .store()
        .count_pushes(domain::push::PushStatus::Queued)
        .await
        .unwrap();
    let sending = w
        .store()
        .count_pushes(domain::push::PushStatus::Sending)
        .await
        .unwrap();
    assert_eq!((queued, sending), (0, 0));
    // The recurring campaign ran every day and reached the subjects who moved.
    let ops = w.store().get_campaign_ops("b1").await.unwrap().unwrap();
    assert_eq!(ops.runs, 7);
    let c1 = w.store().get_campaign("c1").await.unwrap().unwrap();
    assert_eq!(c1.status, CampaignStatus::Completed);

    // A restart with an in-memory counter: seeded from the store, it still refuses a
    // third notice within 7 days and a policy already sent.
    w.p.counter = Arc::new(limits::MemoryCounter::new());
    let seeded = pipeline::guard::seed_counter(&w.p).await.unwrap();
    assert!(seeded > 0);
    let now = w.now();
    let mut checked = 0;
    for (subject, times) in &by_subject {
        let recent = times
            .iter()
            .filter(|&&t| t > now - Duration::days(7))
            .count();
        let key = w.p.pseudonyms.subject(subject);
        let d =
            w.p.counter
                .try_count(&limits::CountRequest {
                    subject: &key,
                    token: "after-restart",
                    dedupe: None,
                    now_ms: now.timestamp_millis(),
                    window_ms: 7 * 86_400_000,
                    max: 2,
                })
                .await
                .unwrap();
        if recent >= 2 {
            assert!(matches!(d, limits::CountDecision::Capped { .. }), "{d:?}");
            checked += 1;
        }
        w.p.counter
            .release(&key, "after-restart", None)
            .await
            .unwrap();
    }
    assert!(checked > 0);
    for s in &sends {
        let d =
            w.p.counter
                .try_count(&limits::CountRequest {
                    subject: &w.p.pseudonyms.subject(&s.subject),
                    token: "again",
                    dedupe: Some(policy_of[s.campaign.as_str()]),
                    now_ms: now.timestamp_millis(),
                    window_ms: 7 * 86_400_000,
                    max: 0,
                })
                .await
                .unwrap();
        assert_eq!(d, limits::CountDecision::Duplicate);
    }
    w
}

/// Skips of the campaigns by reason (pushes ended at send time included).
async fn skip_reasons(s: &dyn Store, campaigns: &[&str]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for c in campaigns {
        for cell in s.report_cells(c).await.unwrap().skips {
            *out.entry(cell.reason).or_default() += cell.subjects;
        }
    }
    out
}
