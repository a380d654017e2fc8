//! End to end through the real binary on the embedded default: import (with bad lines),
//! tag, policy, campaign, launch; exactly the eligible subjects get exactly one push on
//! the right channel with the rendered text; nothing ineligible or unreachable is sent.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::*;

struct Population {
    ndjson: String,
    /// subject id → expected (channel, to) for those who must get a push.
    expected: BTreeMap<String, (String, String)>,
    unreachable: BTreeSet<String>,
    ineligible: BTreeSet<String>,
    unsubscribed_openid: String,
}

/// Eligible: registered-unemployed persons and small enterprises (employees < 20).
fn population() -> Population {
    let mut lines = Vec::new();
    let mut expected = BTreeMap::new();
    let mut unreachable = BTreeSet::new();
    let mut ineligible = BTreeSet::new();
    for i in 0..40u32 {
        let id = resident_id("19900307", 100 + i);
        let status = if i % 2 == 0 {
            "registered_unemployed"
        } else {
            "employed"
        };
        let (m, o) = match i % 5 {
            0 => (Some(mobile(i)), Some(openid(i))),
            1 => (Some(mobile(i)), None),
            2 => (None, Some(openid(i))),
            3 => (None, None),
            _ => (Some(mobile(i)), Some(openid(i))),
        };
        let p = person(
            &id,
            &format!("居民{i}"),
            m.clone(),
            o.clone(),
            json!({"district": "浦东新区", "employment_status": status}),
        );
        lines.push(p.to_string());
        if status != "registered_unemployed" {
            ineligible.insert(id);
        } else if let Some(o) = o {
            expected.insert(id, ("wechat".into(), o));
        } else if let Some(m) = m {
            expected.insert(id, ("sms".into(), m));
        } else {
            unreachable.insert(id);
        }
    }
    for i in 0..10u32 {
        let id = credit_code(i);
        let employees = if i < 6 { 5 + i } else { 200 };
        let v = json!({"id": id, "kind": "enterprise", "name": format!("上海测试{i}有限公司"), "mobile": mobile(1000 + i),
            "attributes": {"district": "徐汇区", "employees": employees, "unemployment_insurance_paid_last_year": 10000 + i}});
        lines.push(v.to_string());
        if employees < 20 {
            expected.insert(id, ("sms".into(), mobile(1000 + i)));
        } else {
            ineligible.insert(id);
        }
    }
    // A subscriber who unfollowed the account: WeChat answers 43004, SMS takes over.
    let unsub = openid(9999);
    let id = resident_id("19950101", 999);
    lines.push(
        person(
            &id,
            "退订者",
            Some(mobile(9999)),
            Some(unsub.clone()),
            json!({"employment_status": "registered_unemployed"}),
        )
        .to_string(),
    );
    expected.insert(id, ("sms".into(), mobile(9999)));
    // Bad lines that must be rejected without stopping the good ones.
    let good = resident_id("19900307", 1);
    let wrong = if good.ends_with('0') { '1' } else { '0' };
    let bad_check = format!("{}{wrong}", &good[..17]);
    lines.insert(
        3,
        json!({"id": bad_check, "kind": "person", "name": "bad check digit"}).to_string(),
    );
    lines.insert(7, "{not json".into());
    lines.insert(
        11,
        person(
            &resident_id("19900307", 998),
            "bad mobile",
            Some("12345".into()),
            None,
            json!({}),
        )
        .to_string(),
    );
    Population {
        ndjson: lines.join("\n") + "\n",
        expected,
        unreachable,
        ineligible,
        unsubscribed_openid: unsub,
    }
}

#[test]
fn campaign_reaches_exactly_the_eligible_once_on_the_right_channel() {
    let dir = tempfile::tempdir().unwrap();
    let pop = population();
    let sim_cfg = dir.path().join("sim.json");
    std::fs::write(
        &sim_cfg,
        json!({"wechat_unsubscribed": [pop.unsubscribed_openid], "receipt_delay_ms": 50})
            .to_string(),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[(
            "POLICY_PUSH_SIMULATOR_CONFIG",
            sim_cfg.display().to_string(),
        )],
    );
    let api = server.api();

    // The console answers with its sign-in page.
    let console = reqwest::blocking::get(format!("{}/console/", server.base)).unwrap();
    assert_eq!(console.status(), 200);
    assert!(console.text().unwrap().contains("登录"));

    // A WeChat event without WeChat's signature is refused.
    let forged = reqwest::blocking::Client::new()
        .post(format!("{}/callbacks/wechat/events?signature=x&timestamp=1&nonce=2", server.base))
        .body("<xml><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID><Status>success</Status></xml>")
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Authentication.
    let (st, v) = api.with_token("wrong").get("/api/v1/tags");
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // Import with per-line rejections.
    let (st, report) = api.import("application/x-ndjson", pop.ndjson.clone());
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["accepted"], 51, "{report}");
    let rejected: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 3, "{report}");
    assert_eq!(rejected[0].0, 4);
    assert!(
        rejected[0].1.starts_with("invalid_resident_id"),
        "{rejected:?}"
    );
    assert_eq!(rejected[1].0, 8);
    assert!(rejected[1].1.starts_with("invalid_json"), "{rejected:?}");
    assert_eq!(rejected[2].0, 12);
    assert!(rejected[2].1.starts_with("invalid_mobile"), "{rejected:?}");

    // A tag; a bad rule is refused with where and why.
    let (st, v) = api.put(
        "/api/v1/tags/small_enterprise",
        json!({"description": "x", "rule": "kind == 'enterprise' && employees <"}),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_rule")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("column"),
        "{v}"
    );
    let (st, v) = api.put("/api/v1/tags/small_enterprise", json!({"description": "员工少于20人的企业", "rule": "kind == 'enterprise' && employees < 20"}));
    assert_eq!(st, 200, "{v}");
    let (_, s) = api.get(&format!("/api/v1/subjects/{}", credit_code(1)));
    assert_eq!(s["tags"], json!(["small_enterprise"]));

    // A policy.
    let (st, p) = api.post("/api/v1/policies", json!({
        "title": "测试补贴", "doc_number": "沪人社规〔2026〕1号", "issuer": "上海市人力资源和社会保障局", "category": "subsidy",
        "effective_from": "2026-01-01", "effective_to": "2027-12-31", "summary": "测试", "interpretation": "问：谁能申请？\n答：符合条件者。",
        "apply_url": "https://zwdt.sh.gov.cn/test",
        "eligibility": "'small_enterprise' in tags || (kind == 'person' && employment_status == 'registered_unemployed')",
        "benefit": "kind == 'enterprise' ? unemployment_insurance_paid_last_year * 0.6 : 1500"
    }));
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["status"], "draft");
    let pid = p["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    assert_eq!((st, v["status"].as_str()), (200, Some("published")), "{v}");
    let (_, a) = api.get(&format!("/api/v1/policies/{pid}/audience"));
    assert_eq!(
        a["count"].as_u64().unwrap() as usize,
        pop.expected.len() + pop.unreachable.len(),
        "{a}"
    );

    // A campaign; unknown template variables and channels are refused.
    let templates = json!({
        "wechat": "thing1: {{ policy.title }}\nthing2: {{ subject.name }}",
        "sms": "{{ subject.name }}您好，您可申请{{ policy.title }}，预计{{ benefit | yuan }}元，详情{{ link }}",
    });
    let (st, v) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "x", "mode": "once", "channels": ["wechat", "sms"],
        "templates": {"wechat": "thing1: {{ nope }}", "sms": "{{ link }}"}}),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_template")),
        "{v}"
    );
    let (st, v) = api.post("/api/v1/campaigns", json!({"policy_id": pid, "name": "x", "mode": "once", "channels": ["fax"], "templates": {}}));
    assert_eq!(st, 400, "{v}");
    let (st, c) = api.post("/api/v1/campaigns", json!({"policy_id": pid, "name": "测试活动", "mode": "once",
        "channels": ["wechat", "sms"], "templates": templates, "audience_filter": null, "schedule": {"at": null, "cron": null}}));
    assert_eq!((st, c["status"].as_str()), (201, Some("draft")), "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");

    let done = api.wait_completed(&cid, Duration::from_secs(60));
    let counts = &done["counts"];
    assert_eq!(
        counts["eligible"].as_u64().unwrap() as usize,
        pop.expected.len() + pop.unreachable.len(),
        "{done}"
    );
    assert_eq!(
        counts["unreachable"].as_u64().unwrap() as usize,
        pop.unreachable.len(),
        "{done}"
    );
    assert_eq!(counts["failed"], 0, "{done}");

    // Exactly the expected messages reached the simulators: one each, right channel and address.
    let msgs = api.sandbox(&cid);
    let mut got: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for m in &msgs {
        let sid = m["subject_id"].as_str().unwrap().to_string();
        let prev = got.insert(
            sid.clone(),
            (
                m["channel"].as_str().unwrap().into(),
                m["to"].as_str().unwrap().into(),
                m["content"].as_str().unwrap().into(),
            ),
        );
        assert!(prev.is_none(), "{sid} was sent twice");
    }
    assert_eq!(got.len(), pop.expected.len(), "sandbox: {msgs:?}");
    for (sid, (channel, to)) in &pop.expected {
        let (gc, gt, content) = got.get(sid).unwrap_or_else(|| panic!("{sid} got nothing"));
        assert_eq!((gc, gt), (channel, to), "{sid}");
        assert!(
            content.contains("/l/"),
            "content carries the recipient link: {content}"
        );
        if channel == "sms" {
            assert!(content.contains("您好，您可申请测试补贴"), "{content}");
        } else {
            assert!(content.contains("测试补贴"), "{content}");
        }
    }
    for sid in pop.unreachable.iter().chain(&pop.ineligible) {
        assert!(!got.contains_key(sid), "{sid} must not be sent anything");
    }
    // The enterprise's SMS has its benefit rendered: 60% of 10001.
    assert!(
        got[&credit_code(1)].2.contains("6,000.60"),
        "{}",
        got[&credit_code(1)].2
    );

    // Pushes carry explanations and benefits; recipient links open a page.
    let pushes = api.pushes(&cid);
    assert_eq!(pushes.len(), pop.expected.len());
    for p in &pushes {
        assert!(p["explanation"].as_str().unwrap().contains('✓'), "{p}");
        assert!(p["benefit"].is_number(), "{p}");
        assert!(
            ["sent", "delivered"].contains(&p["status"].as_str().unwrap()),
            "{p}"
        );
    }
    let link = got
        .values()
        .find_map(|(_, _, c)| {
            c.split_whitespace()
                .find(|w| w.contains("/l/"))
                .map(str::to_string)
        })
        .unwrap();
    let link = &link[link.find("http").unwrap()..];
    let page = reqwest::blocking::get(link).unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("测试补贴"));
    let (_, after) = api.get(&format!("/api/v1/campaigns/{cid}"));
    assert_eq!(after["counts"]["clicked"], 1, "{after}");
}

#[test]
fn csv_import_and_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[("POLICY_PUSH_REQUIRE_APPROVAL", "true".into())],
    );
    let api = server.api();
    let csv = format!(
        "id,kind,name,mobile,wechat_openid,district,employees\n{},enterprise,甲公司,{},,浦东新区,12\n{},enterprise,乙公司,,,浦东新区,x|y\nbad,person,丙,,,,\n{},person,丁,+86{},,黄浦区,\n",
        credit_code(1), mobile(1), credit_code(2), resident_id("20000101", 5), mobile(2)
    );
    let (st, r) = api.import("text/csv", csv);
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["accepted"], 3, "{r}");
    assert_eq!(r["rejected"][0]["line"], 4, "{r}");
    let (_, s) = api.get(&format!("/api/v1/subjects/{}", credit_code(1)));
    assert_eq!(s["attributes"]["employees"], 12);
    let (_, s) = api.get(&format!("/api/v1/subjects/{}", credit_code(2)));
    assert_eq!(s["attributes"]["employees"], json!(["x", "y"]));

    // Four eyes: an editor creates, the same person cannot approve, a reviewer can.
    let (_, ed) = api.post(
        "/api/v1/operators",
        json!({"name": "editor", "role": "editor"}),
    );
    let (_, rv) = api.post(
        "/api/v1/operators",
        json!({"name": "reviewer", "role": "reviewer"}),
    );
    let (_, vw) = api.post(
        "/api/v1/operators",
        json!({"name": "viewer", "role": "viewer"}),
    );
    let editor = api.with_token(ed["token"].as_str().unwrap());
    let reviewer = api.with_token(rv["token"].as_str().unwrap());
    let viewer = api.with_token(vw["token"].as_str().unwrap());
    let (st, _) = viewer.post("/api/v1/operators", json!({"name": "x", "role": "admin"}));
    assert_eq!(st, 403);
    let (st, p) = editor.post(
        "/api/v1/policies",
        json!({"title": "t", "eligibility": "kind == 'enterprise'"}),
    );
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_str().unwrap();
    reviewer.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    let (st, c) = editor.post("/api/v1/campaigns", json!({"policy_id": pid, "name": "c", "channels": ["sms"], "templates": {"sms": "{{ policy.title }} {{ link }}"}}));
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap();
    let (st, v) = editor.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("not_approved")),
        "{v}"
    );
    editor.post(&format!("/api/v1/campaigns/{cid}/submit"), json!({}));
    let (st, v) = editor.post(&format!("/api/v1/campaigns/{cid}/approve"), json!({}));
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (st, v) = viewer.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 403, "{v}");
    let (st, v) = reviewer.post(&format!("/api/v1/campaigns/{cid}/approve"), json!({}));
    assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
    let (st, v) = editor.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    let done = api.wait_completed(cid, Duration::from_secs(30));
    assert_eq!(done["counts"]["eligible"], 2, "{done}");
    assert_eq!(done["counts"]["unreachable"], 1, "{done}");
    // The viewer sees masked personal data.
    let (_, s) = viewer.get(&format!("/api/v1/subjects/{}", resident_id("20000101", 5)));
    assert_eq!(s["mobile"], "139****0002", "{s}");
    let (_, log) = api.get("/api/v1/audit");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "campaign.submit",
        "campaign.approve",
        "campaign.launch",
        "policy.publish",
    ] {
        assert!(actions.contains(&a), "{actions:?}");
    }
}

#[test]
fn continuous_campaign_pushes_newly_eligible_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let api = server.api();
    let (_, p) = api.post("/api/v1/policies", json!({"title": "失业登记补贴", "eligibility": "employment_status == 'registered_unemployed'"}));
    let pid = p["id"].as_str().unwrap();
    api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    let (_, c) = api.post("/api/v1/campaigns", json!({"policy_id": pid, "name": "c", "mode": "continuous", "channels": ["sms"], "templates": {"sms": "{{ policy.title }} {{ link }}"}}));
    let cid = c["id"].as_str().unwrap();
    api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    let id = resident_id("19880808", 11);
    let subject = |status: &str| {
        person(
            &id,
            "张三",
            Some(mobile(77)),
            None,
            json!({"employment_status": status}),
        )
    };
    let (st, v) = api.put(&format!("/api/v1/subjects/{id}"), subject("employed"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["new_pushes"], json!([]));
    let (_, v) = api.put(
        &format!("/api/v1/subjects/{id}"),
        subject("registered_unemployed"),
    );
    assert_eq!(v["new_pushes"], json!([cid]), "{v}");
    let (_, v) = api.put(
        &format!("/api/v1/subjects/{id}"),
        subject("registered_unemployed"),
    );
    assert_eq!(
        v["new_pushes"],
        json!([]),
        "at most once per subject per campaign"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msgs = api.sandbox(cid);
        if !msgs.is_empty() {
            assert_eq!(msgs.len(), 1);
            assert_eq!(msgs[0]["to"], mobile(77));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no message arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _: Value = Value::Null;
}

/// The data dir and every entry in it are the service user's alone (issue 11 item 5):
/// after a start on a fresh dir and some writes (the database, its WAL, the sandbox
/// record, the generated pseudonym key), every entry's mode is checked. The generated
/// pseudonym key is kept across restarts.
#[test]
fn data_dir_is_private_to_the_service() {
    use std::os::unix::fs::PermissionsExt;
    fn check(path: &std::path::Path, seen: &mut Vec<String>) {
        let meta = std::fs::metadata(path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        if meta.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                check(&e.unwrap().path(), seen);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let api = server.api();
    let lines: Vec<String> = (0..5u32)
        .map(|i| {
            person(
                &resident_id("19800101", 900 + i),
                &format!("居民{i}"),
                Some(mobile(900 + i)),
                None,
                json!({"district": "浦东新区"}),
            )
            .to_string()
        })
        .collect();
    let (st, r) = api.import("application/x-ndjson", lines.join("\n"));
    assert_eq!(st, 200, "{r}");
    let mut seen = Vec::new();
    check(&data, &mut seen);
    let key_file = data.join("pseudonym.key");
    if !production_backends() {
        for f in ["policy-push.db", "policy-push.db-wal", "pseudonym.key"] {
            assert!(seen.iter().any(|s| s == f), "{f} not in {seen:?}");
        }
    }
    let key = std::fs::read_to_string(&key_file).ok();
    server.kill();
    let server = Server::start(&data, &[]);
    let (st, _) = server.api().get(&format!(
        "/api/v1/subjects/{}",
        resident_id("19800101", 900)
    ));
    assert_eq!(st, 200);
    assert_eq!(std::fs::read_to_string(&key_file).ok(), key);
    check(&data, &mut Vec::new());
}
