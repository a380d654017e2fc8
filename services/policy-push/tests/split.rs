//! The production deployment in miniature: every role in its own OS process on loopback
//! (api, planner, relay, one process per connector) plus a `policy-push simulate` process
//! playing the providers, connected only by PostgreSQL, Kafka (librdkafka's mock cluster,
//! a Kafka-protocol broker inside this test process) and Redis. A campaign is delivered
//! end to end; then the dispatcher (relay) and connectors are killed with SIGKILL
//! mid-campaign and restarted: every eligible subject ends with exactly one message at
//! the provider. The outage tests (issue 18, `support::faults`) take the backends away
//! mid-campaign instead: PostgreSQL then Redis stopped (a private server of each), Redis
//! restarted empty between two campaigns, a Kafka broker down and the leaders moved, a
//! connector frozen with SIGSTOP past its lease.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::faults;
use support::*;

/// Fields drop in order: the processes end before their database is dropped.
struct Deployment {
    root: PathBuf,
    env: Vec<(&'static str, String)>,
    api: Server,
    api2: Server,
    sim: Server,
    roles: HashMap<&'static str, Server>,
    /// Kept alive (and dropped last) for the processes above.
    _backends: Backends,
}

impl Deployment {
    /// Starts the api, the simulators, then every other role.
    fn start(root: &Path, sim_config: Option<Value>, rate_per_second: u32) -> Deployment {
        Self::start_on(root, sim_config, rate_per_second, Backends::for_test(), &[])
    }

    /// [`Deployment::start`] on the given backends (e.g. on a private PostgreSQL and
    /// Redis that the test stops: `support::faults`), with `role_env` added to the
    /// settings of the roles other than the api.
    fn start_on(
        root: &Path,
        sim_config: Option<Value>,
        rate_per_second: u32,
        backends: Backends,
        role_env: &[(&'static str, String)],
    ) -> Deployment {
        // Every API replica and the simulators share the callback secrets.
        let secrets = vec![
            (
                "POLICY_PUSH_ALIYUN_CALLBACK_SECRET",
                "split-test-aliyun-secret".to_string(),
            ),
            (
                "POLICY_PUSH_TENCENT_CALLBACK_SECRET",
                "split-test-tencent-secret".to_string(),
            ),
        ];
        let api_env = || {
            let mut e = backends.env();
            e.extend(secrets.clone());
            e
        };
        let api = Server::start_command(&root.join("api"), &["run", "api"], &[], api_env());
        let mut sim_args = vec![
            "simulate".to_string(),
            "--callbacks-url".to_string(),
            api.base.clone(),
        ];
        if let Some(cfg) = sim_config {
            let path = root.join("sim.json");
            std::fs::write(&path, cfg.to_string()).unwrap();
            sim_args.push("--config".into());
            sim_args.push(path.display().to_string());
        }
        let sim_args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
        let sim = Server::start_command(&root.join("sim"), &sim_args, &[], secrets.clone());
        // A second API replica: subjects imported through the first reach its index
        // through `subject.changed`.
        let api2 = Server::start_command(&root.join("api2"), &["run", "api"], &[], api_env());
        let mut env = backends.env();
        env.push(("POLICY_PUSH_SIMULATOR_URL", sim.base.clone()));
        env.push(("POLICY_PUSH_PUBLIC_URL", api.base.clone()));
        env.push(("POLICY_PUSH_SENDING_LEASE_SECS", "5".into()));
        env.push(("POLICY_PUSH_RATE_PER_SECOND", rate_per_second.to_string()));
        env.extend(role_env.iter().cloned());
        let mut d = Deployment {
            _backends: backends,
            root: root.to_path_buf(),
            env,
            api,
            api2,
            sim,
            roles: HashMap::new(),
        };
        for role in [
            "planner",
            "relay",
            "connector-sms",
            "connector-wechat",
            "connector-hotline",
        ] {
            d.start_role(role);
        }
        d
    }

    fn start_role(&mut self, role: &'static str) {
        let s = Server::start_command(&self.root.join(role), &["run", role], &[], self.env.clone());
        // A role process serves its metrics and readiness.
        let (st, body) = get_text(&format!("{}/readyz", s.base));
        assert_eq!(st, 200, "{role} not ready: {body}");
        self.roles.insert(role, s);
    }

    fn kill(&mut self, role: &str) {
        let mut s = self.roles.remove(role).expect("role running");
        s.kill();
    }

    /// Everything the simulators received: push id (the provider-side reference) → count.
    fn received(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        let mut after = 0i64;
        loop {
            let v: Value = reqwest::blocking::get(format!(
                "{}/sandbox/messages?after={after}&limit=5000",
                self.sim.base
            ))
            .unwrap()
            .json()
            .unwrap();
            for m in v["items"].as_array().unwrap() {
                *out.entry(m["push_ref"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            match v["next"].as_i64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }
}

fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Imports `n` registered-unemployed residents (even ones on WeChat, all with a mobile),
/// publishes a policy for them and launches a campaign on WeChat then SMS.
fn launch_campaign(api: &Api, n: u32) -> String {
    let mut lines = String::new();
    for i in 0..n {
        let p = person(
            &resident_id(if i < 1000 { "19900101" } else { "19910101" }, i % 1000),
            "居民",
            Some(mobile(i)),
            (i % 2 == 0).then(|| openid(i)),
            json!({"employment_status": "registered_unemployed"}),
        );
        lines.push_str(&p.to_string());
        lines.push('\n');
    }
    let (st, r) = api.import("application/x-ndjson", lines);
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["accepted"], n, "{r}");
    let (st, p) = api.post(
        "/api/v1/policies",
        json!({"title": "失业补助", "eligibility": "employment_status == 'registered_unemployed'"}),
    );
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    assert_eq!(st, 200, "{v}");
    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "split", "channels": ["wechat", "sms"],
               "templates": {"wechat": "thing1: {{ policy.title }}", "sms": "{{ policy.title }} {{ link }}"}}),
    );
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    cid
}

/// Every subject of the campaign got exactly one message at the provider, and nothing
/// else arrived.
fn assert_exactly_once(d: &Deployment, api: &Api, cid: &str, n: u32) {
    let done = api.wait_completed(cid, Duration::from_secs(180));
    assert_eq!(done["counts"]["eligible"], n, "{done}");
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    let pushes = api.pushes(cid);
    assert_eq!(pushes.len() as u32, n);
    let received = d.received();
    let channel_of: HashMap<&str, &str> = pushes
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["channel"].as_str().unwrap()))
        .collect();
    let twice: Vec<_> = received
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(id, c)| (id, c, channel_of.get(id.as_str())))
        .collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let missing: Vec<String> = pushes
        .iter()
        .filter(|p| !received.contains_key(p["id"].as_str().unwrap()))
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["id"], p["channel"], p["status"], p["error"]
            )
        })
        .collect();
    assert!(missing.is_empty(), "never sent: {missing:?}");
    assert_eq!(received.len() as u32, n, "messages for unknown pushes");
    let mut subjects: Vec<&str> = pushes
        .iter()
        .map(|p| p["subject_id"].as_str().unwrap())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len() as u32, n, "one push per subject");
}

#[test]
fn roles_in_separate_processes_deliver_a_campaign_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::start(dir.path(), None, 0);
    let api = d.api.api();
    const N: u32 = 300;
    let cid = launch_campaign(&api, N);
    assert_exactly_once(&d, &api, &cid, N);
    // The other API replica sees the subjects imported through the first.
    let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
    let pid = c["policy_id"].as_str().unwrap().to_string();
    let api2 = d.api2.api();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, a) = api2.get(&format!("/api/v1/policies/{pid}/audience"));
        assert_eq!(st, 200, "{a}");
        if a["count"] == N {
            break;
        }
        if Instant::now() >= deadline {
            let bus = |base: &str| {
                get_text(&format!("{base}/metrics"))
                    .1
                    .lines()
                    .filter(|l| l.contains("bus_messages"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "replica index not current: {a}\nfirst: {}\nsecond: {}",
                bus(&d.api.base),
                bus(&d.api2.base)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Receipts came back from the simulator process to the api process.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        if c["counts"]["delivered"] == N {
            break;
        }
        assert!(Instant::now() < deadline, "receipts missing: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each role process exports its own metrics.
    let (st, text) = get_text(&format!("{}/metrics", d.roles["connector-sms"].base));
    assert_eq!(st, 200);
    assert!(
        text.contains(r#"policy_push_pushes_total{channel="sms",status="sent"} 150"#),
        "{text}"
    );
    let (_, text) = get_text(&format!("{}/metrics", d.api.base));
    assert!(text.contains("policy_push_http_requests_total"), "{text}");
    let (_, text) = get_text(&format!("{}/metrics", d.roles["relay"].base));
    assert!(text.contains("policy_push_outbox_depth"), "{text}");
}

#[test]
fn killed_relay_and_connectors_restart_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Deployment::start(
        dir.path(),
        Some(json!({"fault": {"slow_ms": 5}, "receipt_delay_ms": 50})),
        300,
    );
    let api = d.api.api();
    const N: u32 = 2_000;
    let cid = launch_campaign(&api, N);
    api.wait_part_sent(&cid, 300, u64::from(N), Duration::from_secs(120));
    for role in ["relay", "connector-sms", "connector-wechat"] {
        d.kill(role);
    }
    std::thread::sleep(Duration::from_millis(500));
    for role in ["relay", "connector-sms", "connector-wechat"] {
        d.start_role(role);
    }
    assert_exactly_once(&d, &api, &cid, N);
}

/// Subjects of the outage tests' campaigns.
const OUTAGE_N: u32 = 1_200;

/// A deployment on `backends` in the middle of a campaign to [`OUTAGE_N`] subjects at 150
/// sends/s (the simulators a little slow): some sent, most not yet.
fn mid_campaign(root: &Path, backends: Backends) -> (Deployment, String) {
    let d = Deployment::start_on(
        root,
        Some(json!({"fault": {"slow_ms": 5}, "receipt_delay_ms": 50})),
        150,
        backends,
        &[],
    );
    let api = d.api.api();
    let cid = launch_campaign(&api, OUTAGE_N);
    api.wait_part_sent(&cid, 150, u64::from(OUTAGE_N), Duration::from_secs(120));
    (d, cid)
}

/// The issue's stuck campaign (issue 18), at small scale: PostgreSQL stops in the middle
/// of a campaign, then Redis. While the store is down the API answers 503
/// `store_unavailable` at once and `/readyz` names the store; once both are back the
/// campaign completes with every push sent exactly once at the provider simulators.
#[test]
fn a_campaign_survives_postgres_then_redis_stopping() {
    let pg = faults::PrivatePostgres::start();
    let redis = faults::PrivateRedis::start();
    let backends = Backends::new(&BackendSettings {
        admin_url: pg.admin_url(),
        redis_url: redis.url(),
        ..BackendSettings::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (d, cid) = mid_campaign(dir.path(), backends);
    let api = d.api.api();
    const N: u32 = OUTAGE_N;

    pg.stop();
    let down_at = Instant::now();
    // Within a few seconds every request fails fast with a clear JSON error.
    let quick = Client::new(Duration::from_secs(10));
    loop {
        let started = Instant::now();
        let (st, body) = quick.get(&api, &format!("/api/v1/campaigns/{cid}"));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "a request hung for {took:?} while the store was down"
        );
        if st == 503 {
            assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
            assert!(took < Duration::from_secs(1), "503 took {took:?}");
            break;
        }
        assert!(
            down_at.elapsed() < Duration::from_secs(10),
            "the API never said the store is down: {st} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..5 {
        let started = Instant::now();
        let (st, body) = quick.get(&api, "/api/v1/campaigns");
        assert_eq!(st, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let (st, ready) = get_json(&format!("{}/readyz", d.api.base));
    assert_eq!(st, 503, "{ready}");
    assert_eq!(ready["backends"]["store"]["status"], "down", "{ready}");
    assert_eq!(ready["backends"]["bus"]["status"], "up", "{ready}");
    let (st, ready) = get_json(&format!("{}/readyz", d.roles["connector-sms"].base));
    assert_eq!(st, 503, "{ready}");
    assert_eq!(ready["backends"]["redis"]["status"], "up", "{ready}");
    std::thread::sleep(Duration::from_secs(4));
    pg.start_again();

    // The roles resume on their own.
    let (_, before) = api_get_retrying(&api, &format!("/api/v1/campaigns/{cid}"));
    let sent_before = before["counts"]["sent"].as_u64().unwrap()
        + before["counts"]["delivered"].as_u64().unwrap();
    api.wait_part_sent(
        &cid,
        sent_before + 100,
        u64::from(N),
        Duration::from_secs(120),
    );
    redis.stop();
    std::thread::sleep(Duration::from_secs(1));
    let (st, ready) = get_json(&format!("{}/readyz", d.roles["connector-wechat"].base));
    assert_eq!(st, 503, "{ready}");
    assert_eq!(ready["backends"]["redis"]["status"], "down", "{ready}");
    std::thread::sleep(Duration::from_secs(4));
    redis.start_again();

    assert_exactly_once(&d, &api, &cid, N);
    // The roles that met the outage counted the errors and the time they waited (which
    // ones did depends on what each was doing when the store went).
    let paused: Vec<&str> = ["planner", "relay", "connector-sms", "connector-wechat"]
        .into_iter()
        .filter(|role| {
            let (_, text) = get_text(&format!("{}/metrics", d.roles[role].base));
            text.contains(&format!(
                r#"policy_push_backend_errors_total{{backend="store",role="{role}"}}"#
            )) && text.contains(&format!(
                r#"policy_push_paused_seconds_total{{role="{role}"}}"#
            ))
        })
        .collect();
    assert!(!paused.is_empty(), "no role counted the store's absence");
}

/// GET through an API client, waiting out a 503 (the store just came back).
fn api_get_retrying(api: &Api, path: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, v) = api.get(path);
        if st != 503 || Instant::now() >= deadline {
            return (st, v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(url: &str) -> (u16, Value) {
    let (st, text) = get_text(url);
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An HTTP client with a short timeout, so a hanging request fails the test.
struct Client(reqwest::blocking::Client);

impl Client {
    fn new(timeout: Duration) -> Self {
        Self(
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap(),
        )
    }

    fn get(&self, api: &Api, path: &str) -> (u16, Value) {
        let r = self
            .0
            .get(format!("{}{path}", api.base))
            .bearer_auth(&api.token)
            .send()
            .expect("the API answers while the store is down");
        let st = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Redis restarted empty (no persistence) between two campaigns to the same subjects:
/// the connectors rebuild the frequency counts from the store before counting again, so
/// with a cap of one notice per window nobody gets the second one.
#[test]
fn redis_restarted_empty_rebuilds_the_frequency_caps_from_the_store() {
    let redis = faults::PrivateRedis::start();
    let backends = Backends::new(&BackendSettings {
        redis_url: redis.url(),
        ..BackendSettings::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::start_on(
        dir.path(),
        None,
        0,
        backends,
        &[("POLICY_PUSH_FREQUENCY_CAP", "1".to_string())],
    );
    let api = d.api.api();
    const N: u32 = 100;
    let first = launch_campaign(&api, N);
    assert_exactly_once(&d, &api, &first, N);
    assert!(redis.keys() > 0, "the counts live in Redis");
    redis.restart_empty();
    assert_eq!(redis.keys(), 0);

    let second = launch_campaign(&api, N);
    let done = api.wait_completed(&second, Duration::from_secs(120));
    assert_eq!(done["counts"]["eligible"], N, "{done}");
    let received = d.received();
    assert_eq!(
        received.len() as u32,
        N,
        "a subject got a second notice past the cap of one: {done}"
    );
    // Capped pushes end skipped (they leave the push list for the campaign's skips).
    let sent: Vec<Value> = api
        .pushes(&second)
        .into_iter()
        .filter(|p| p["status"] == "sent" || p["status"] == "delivered")
        .collect();
    assert!(sent.is_empty(), "{:?}", &sent[..sent.len().min(3)]);
}

/// A Kafka broker down for a few seconds, then every partition's leader moved, in the
/// middle of a campaign (the mock cluster's fault injection, three brokers): the relay
/// keeps its rows until the bus acknowledged them and the consumers resume from their
/// committed offsets, so every push is sent exactly once.
#[test]
fn a_campaign_survives_a_broker_outage_and_a_leader_change() {
    let backends = Backends::new(&BackendSettings {
        kafka_brokers: 3,
        ..BackendSettings::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (d, cid) = mid_campaign(dir.path(), backends);
    let api = d.api.api();
    const N: u32 = OUTAGE_N;
    let kafka = faults::KafkaFaults {
        cluster: &d._backends.kafka,
        topic_prefix: &d._backends.topic_prefix,
        partitions: d._backends.partitions,
    };
    kafka.broker_down(1);
    std::thread::sleep(Duration::from_secs(4));
    kafka.broker_up(1);
    kafka.move_leaders(2);
    assert_exactly_once(&d, &api, &cid, N);
}
