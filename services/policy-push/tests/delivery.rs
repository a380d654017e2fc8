//! Delivery behaviour through the real binary and its provider simulators: injected faults
//! (errors, duplicated and lost receipts) still end with exactly one message per subject;
//! fallback on a blacklisted number records an opt-out; hotline hours defer calls; key
//! presses send the link by SMS (1) or opt out (0); a signature the provider refuses pauses
//! the campaign with an alert; dead letters can be replayed; receipts the provider never
//! sent are asked for once the receipt deadline passes.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

fn start(dir: &Path, sim: Value, extra: &[(&str, String)]) -> Server {
    let sim_cfg = dir.join("sim.json");
    std::fs::write(&sim_cfg, sim.to_string()).unwrap();
    let mut env = vec![(
        "POLICY_PUSH_SIMULATOR_CONFIG",
        sim_cfg.display().to_string(),
    )];
    env.extend(extra.iter().cloned());
    Server::start(&dir.join("data"), &env)
}

/// Imports `n` registered-unemployed persons; `contact(i)` gives (mobile, openid).
fn import(
    api: &Api,
    n: u32,
    contact: impl Fn(u32) -> (Option<String>, Option<String>),
) -> Vec<String> {
    let mut body = String::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = resident_id("19850505", i);
        let (m, o) = contact(i);
        body.push_str(
            &person(
                &id,
                "居民",
                m,
                o,
                json!({"employment_status": "registered_unemployed"}),
            )
            .to_string(),
        );
        body.push('\n');
        ids.push(id);
    }
    let (st, r) = api.import("application/x-ndjson", body);
    assert_eq!(
        (st, r["accepted"].as_u64()),
        (200, Some(u64::from(n))),
        "{r}"
    );
    ids
}

fn campaign(api: &Api, channels: Value, templates: Value) -> String {
    let (_, p) = api.post("/api/v1/policies", json!({"title": "就业补贴", "category": "employment", "eligibility": "employment_status == 'registered_unemployed'"}));
    let pid = p["id"].as_str().unwrap().to_string();
    api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "c", "channels": channels, "templates": templates}),
    );
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    cid
}

fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn per_subject(msgs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for x in msgs {
        *m.entry(x["subject_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

#[test]
fn injected_faults_still_deliver_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    // Per-number limits off: the simulator counts refused attempts against a number's
    // minute window, as Alibaba does, which would stretch the retries past the test's time.
    let sim = json!({"fault": {"error_rate": 0.3, "receipt_duplicate_rate": 0.3, "seed": 7}, "receipt_delay_ms": 20, "enforce_limits": false});
    let server = start(dir.path(), sim, &[]);
    let api = server.api();
    let ids = import(&api, 300, |i| {
        (Some(mobile(i)), (i % 2 == 0).then(|| openid(i)))
    });
    let cid = campaign(
        &api,
        json!(["wechat", "sms"]),
        json!({"wechat": "thing1: {{ policy.title }}", "sms": "{{ policy.title }} {{ link }}"}),
    );
    let done = api.wait_completed(&cid, Duration::from_secs(90));
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    let seen = per_subject(&api.sandbox(&cid));
    assert_eq!(seen.len(), ids.len(), "every subject reached");
    assert!(seen.values().all(|n| *n == 1), "nobody twice: {seen:?}");
    let retried = api
        .pushes(&cid)
        .iter()
        .filter(|p| p["attempts"].as_i64().unwrap() > 1)
        .count();
    assert!(retried > 0, "a 30% error rate must have caused retries");
    wait_for("receipts", Duration::from_secs(60), || {
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        c["counts"]["delivered"].as_u64() == Some(ids.len() as u64)
    });
}

#[test]
fn blacklisted_number_falls_back_and_records_an_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = mobile(3);
    let server = start(
        dir.path(),
        json!({"sms_blacklist": [blocked], "receipt_delay_ms": 20, "enforce_limits": false}),
        &[],
    );
    let api = server.api();
    let ids = import(&api, 5, |i| (Some(mobile(i)), None));
    let tpl = json!({"sms": "{{ policy.title }} {{ link }}", "hotline": "您好，{{ policy.title }}已开放申请。"});
    let cid = campaign(&api, json!(["sms", "hotline"]), tpl.clone());
    api.wait_completed(&cid, Duration::from_secs(30));
    let msgs = api.sandbox(&cid);
    let by: BTreeMap<String, String> = msgs
        .iter()
        .map(|m| {
            (
                m["subject_id"].as_str().unwrap().to_string(),
                m["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(by.len(), 5, "{msgs:?}");
    assert_eq!(
        by[&ids[3]], "hotline",
        "the blacklisted number is called instead"
    );
    assert_eq!(by[&ids[0]], "sms");
    // The next campaign does not try SMS for that subject again.
    let cid2 = campaign(&api, json!(["sms", "hotline"]), tpl);
    api.wait_completed(&cid2, Duration::from_secs(30));
    let msgs2 = api.sandbox(&cid2);
    let m = msgs2
        .iter()
        .find(|m| m["subject_id"] == ids[3].as_str())
        .unwrap();
    assert_eq!(m["channel"], "hotline");
}

#[test]
fn hotline_waits_for_its_hours() {
    let dir = tempfile::tempdir().unwrap();
    // A window that is never open today: one minute on a day other than today.
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let other = chrono::Datelike::weekday(&(today + chrono::Duration::days(3)).date_naive());
    let hours = format!("{} 03:00-03:01", other.to_string().to_lowercase());
    let server = start(
        dir.path(),
        json!({}),
        &[("POLICY_PUSH_HOTLINE_HOURS", hours)],
    );
    let api = server.api();
    import(&api, 3, |i| (Some(mobile(i)), None));
    let cid = campaign(
        &api,
        json!(["hotline"]),
        json!({"hotline": "您好，{{ policy.title }}已开放申请。"}),
    );
    // Wait until the connector has looked at every push (a deferral records why).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pushes = loop {
        let pushes = api.pushes(&cid);
        if pushes.len() == 3 && pushes.iter().all(|p| p["error"].is_string()) {
            break pushes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the connector never deferred: {pushes:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(api.sandbox(&cid).is_empty(), "no call outside hours");
    for p in &pushes {
        assert_eq!(p["status"], "queued", "{p}");
        assert!(
            p["error"]
                .as_str()
                .unwrap()
                .contains("outside hotline hours"),
            "{p}"
        );
        assert_eq!(p["attempts"], 0, "a deferral is not an attempt: {p}");
    }
}

#[test]
fn key_one_sends_the_link_by_sms_and_key_zero_opts_out() {
    for (key, expect_sms) in [("1", true), ("0", false)] {
        let dir = tempfile::tempdir().unwrap();
        let server = start(
            dir.path(),
            json!({"voice_dtmf": key, "receipt_delay_ms": 20}),
            &[],
        );
        let api = server.api();
        let ids = import(&api, 2, |i| (Some(mobile(i)), None));
        let tpl = json!({"hotline": "您好，{{ policy.title }}已开放申请。如需短信获取办理链接请按1，退订请按0。", "sms": "{{ policy.title }} {{ link }}"});
        let cid = campaign(&api, json!(["hotline", "sms"]), tpl.clone());
        api.wait_completed(&cid, Duration::from_secs(30));
        if expect_sms {
            wait_for("the link by SMS", Duration::from_secs(20), || {
                api.sandbox(&cid)
                    .iter()
                    .filter(|m| m["channel"] == "sms")
                    .count()
                    == 2
            });
            let sms: Vec<Value> = api
                .sandbox(&cid)
                .into_iter()
                .filter(|m| m["channel"] == "sms")
                .collect();
            assert!(
                sms.iter()
                    .all(|m| m["content"].as_str().unwrap().contains("/l/")),
                "{sms:?}"
            );
            // A repeated report changes nothing: still one SMS each.
            assert_eq!(per_subject(&sms).values().max(), Some(&1));
        } else {
            std::thread::sleep(Duration::from_secs(1));
            assert!(api.sandbox(&cid).iter().all(|m| m["channel"] == "hotline"));
            let cid2 = campaign(&api, json!(["hotline", "sms"]), tpl);
            let done = api.wait_completed(&cid2, Duration::from_secs(30));
            assert_eq!(done["counts"]["opted_out"], 2, "{done}");
            assert!(api.sandbox(&cid2).is_empty());
            let _ = &ids;
        }
    }
}

#[test]
fn refused_signature_pauses_the_campaign_with_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), json!({"sms_sign_names": ["别的签名"]}), &[]);
    let api = server.api();
    import(&api, 20, |i| (Some(mobile(i)), None));
    let cid = campaign(
        &api,
        json!(["sms"]),
        json!({"sms": "{{ policy.title }} {{ link }}"}),
    );
    wait_for("the pause", Duration::from_secs(20), || {
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        c["status"] == "paused"
    });
    let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
    assert_eq!(c["counts"]["failed"], 0, "nothing is burnt: {c}");
    assert!(api.sandbox(&cid).is_empty());
    let (_, log) = api.get("/api/v1/audit");
    let alert = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "campaign.alert")
        .expect("an alert");
    assert_eq!(
        alert["detail"]["code"], "isv.SMS_SIGNATURE_ILLEGAL",
        "{alert}"
    );
}

#[test]
fn dead_letters_are_listed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    // Receipts report failure for numbers ending in 0001.
    let server = start(
        dir.path(),
        json!({"failing_suffix": "0001", "receipt_delay_ms": 20}),
        &[],
    );
    let api = server.api();
    import(&api, 4, |i| (Some(mobile(i)), None));
    let cid = campaign(
        &api,
        json!(["sms"]),
        json!({"sms": "{{ policy.title }} {{ link }}"}),
    );
    api.wait_completed(&cid, Duration::from_secs(30));
    wait_for("the failed receipt", Duration::from_secs(20), || {
        let (_, d) = api.get(&format!("/api/v1/dead-letters?campaign_id={cid}"));
        d["items"].as_array().unwrap().len() == 1
    });
    let (st, r) = api.post("/api/v1/dead-letters/replay", json!({"campaign_id": cid}));
    assert_eq!((st, r["replayed"].as_u64()), (200, Some(1)), "{r}");
    wait_for("the replayed message", Duration::from_secs(20), || {
        api.sandbox(&cid)
            .iter()
            .filter(|m| m["to"] == mobile(1))
            .count()
            == 2
    });
    let (st, r) = api.post("/api/v1/dead-letters/replay", json!({}));
    assert_eq!(st, 400, "{r}");
}

#[test]
fn busy_calls_are_tried_again_later() {
    let dir = tempfile::tempdir().unwrap();
    let busy = mobile(1);
    let server = start(
        dir.path(),
        json!({"voice_busy": [busy], "receipt_delay_ms": 20, "enforce_limits": false}),
        &[],
    );
    let api = server.api();
    import(&api, 2, |i| (Some(mobile(i)), None));
    let cid = campaign(
        &api,
        json!(["hotline"]),
        json!({"hotline": "您好，{{ policy.title }}已开放申请。"}),
    );
    // The hotline schedule is 10 min, 1 h, 4 h; the test server scales it by 0.002.
    wait_for(
        "a second call to the busy line",
        Duration::from_secs(30),
        || api.sandbox(&cid).iter().filter(|m| m["to"] == busy).count() >= 2,
    );
    let calls: Vec<Value> = api.sandbox(&cid);
    assert_eq!(
        calls.iter().filter(|m| m["to"] == mobile(0)).count(),
        1,
        "an answered call is not repeated"
    );
    let retried = api
        .pushes(&cid)
        .into_iter()
        .filter(|p| p["attempts"].as_i64().unwrap() >= 2)
        .count();
    assert_eq!(retried, 1, "only the busy line is called again");
}

#[test]
fn receipts_the_provider_never_sent_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // Every receipt callback is dropped; QuerySendDetails still knows each message's fate.
    let failing = mobile(3);
    let sim = json!({"fault": {"receipt_loss_rate": 1.0}, "failing_recipients": [failing],
                     "receipt_delay_ms": 20, "enforce_limits": false});
    let server = start(
        dir.path(),
        sim,
        &[("POLICY_PUSH_RECEIPT_DEADLINE_SECS", "1".to_string())],
    );
    let api = server.api();
    let ids = import(&api, 20, |i| (Some(mobile(i)), None));
    let cid = campaign(
        &api,
        json!(["sms"]),
        json!({"sms": "{{ policy.title }} {{ link }}"}),
    );
    api.wait_completed(&cid, Duration::from_secs(60));
    wait_for("every push settled", Duration::from_secs(60), || {
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        c["counts"]["sent"].as_u64() == Some(0)
    });
    let pushes = api.pushes(&cid);
    assert_eq!(pushes.len(), ids.len());
    assert!(
        pushes
            .iter()
            .all(|p| p["status"] == "delivered" || p["status"] == "failed"),
        "{pushes:?}"
    );
    let failed: Vec<&Value> = pushes.iter().filter(|p| p["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "only the failing number: {failed:?}");
    assert!(
        failed[0]["error"].as_str().unwrap().starts_with("MK:0001"),
        "{}",
        failed[0]
    );
    assert_eq!(
        pushes.iter().filter(|p| p["status"] == "delivered").count(),
        ids.len() - 1
    );
    let seen = per_subject(&api.sandbox(&cid));
    assert!(seen.values().all(|n| *n == 1), "nobody twice: {seen:?}");
}

/// Runs `policy-push audit verify` on the server's data dir (and database); exit code
/// and output.
fn audit_verify(server: &Server) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_policy-push"));
    cmd.args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .env_remove("POLICY_PUSH_DATABASE_URL");
    if let Some(b) = &server.backends {
        cmd.args(["--database-url", &b.database_url]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `sql` on the server's database behind its back.
fn tamper(server: &Server, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match &server.backends {
            Some(b) => {
                let pool = sqlx::PgPool::connect(&b.database_url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            None => {
                let url = format!(
                    "sqlite://{}",
                    server.data_dir.join("policy-push.db").display()
                );
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
        }
    });
}

#[test]
fn a_fallback_push_shows_its_whole_trail_and_the_record_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let refused = openid(1);
    let server = start(
        dir.path(),
        json!({"wechat_unsubscribed": [refused], "receipt_delay_ms": 20, "enforce_limits": false}),
        &[],
    );
    let api = server.api();
    let ids = import(&api, 3, |i| (Some(mobile(i)), Some(openid(i))));
    let tpl =
        json!({"wechat": "thing1: {{ policy.title }}", "sms": "{{ policy.title }} {{ link }}"});
    let cid = campaign(&api, json!(["wechat", "sms"]), tpl);
    api.wait_completed(&cid, Duration::from_secs(30));
    let push = api
        .pushes(&cid)
        .into_iter()
        .find(|p| p["subject_id"] == ids[1].as_str())
        .unwrap();
    assert_eq!(push["channel"], "sms", "{push}");
    let path = format!("/api/v1/pushes/{}/events", push["id"].as_str().unwrap());
    let mut events = Vec::new();
    wait_for("the receipt in the record", Duration::from_secs(30), || {
        let (st, v) = api.get(&path);
        assert_eq!(st, 200, "{v}");
        events = v["items"].as_array().unwrap().clone();
        events.iter().any(|e| e["type"] == "receipt")
    });
    let steps: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["channel"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("planned", "wechat"),
        ("bus", "wechat"),
        ("claimed", "wechat"),
        ("fallback", "wechat"),
        ("bus", "sms"),
        ("claimed", "sms"),
        ("sent", "sms"),
        ("receipt", "sms"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(steps, want, "{events:?}");
    let times: Vec<chrono::DateTime<chrono::Utc>> = events
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times in order: {times:?}"
    );
    let fallback = &events[3]["detail"];
    assert_eq!(fallback["to"], "sms");
    assert!(
        fallback["answer"].as_str().unwrap().contains("43101")
            || fallback["answer"].as_str().unwrap().contains("43004"),
        "the provider's refusal: {fallback}"
    );
    assert!(
        events[0]["detail"]["explanation"].is_string(),
        "{:?}",
        events[0]
    );
    assert!(events[2]["actor"]
        .as_str()
        .unwrap()
        .starts_with("connector@"));
    assert_eq!(events[7]["detail"]["delivered"], true);
    // Like the other push routes: a token is needed; an unknown push is 404.
    let (st, _) = api.with_token("nope-nope-nope-nope-nope-1").get(&path);
    assert_eq!(st, 401);
    assert_eq!(api.get("/api/v1/pushes/no-such-push/events").0, 404);
    // The subject's history carries the trail.
    let (st, h) = api.get(&format!("/api/v1/subjects/{}/history", ids[1]));
    assert_eq!(st, 200, "{h}");
    assert_eq!(
        h["pushes"][0]["events"].as_array().unwrap().len(),
        events.len()
    );

    // The record verifies, and an edited event does not.
    let (code, out) = audit_verify(&server);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    tamper(
        &server,
        "UPDATE push_events SET detail = NULL WHERE type = 8",
    );
    let (code, out) = audit_verify(&server);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN: events ") && out.contains("edited"),
        "{out}"
    );
}
