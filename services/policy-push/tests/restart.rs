//! Kill -9 the server in the middle of a campaign, start it again on the same data dir:
//! the campaign completes with no subject missed and none pushed twice.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

#[test]
fn killed_mid_campaign_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sim_cfg = dir.path().join("sim.json");
    std::fs::write(
        &sim_cfg,
        json!({"fault": {"slow_ms": 5}, "receipt_delay_ms": 50}).to_string(),
    )
    .unwrap();
    let env = [
        (
            "POLICY_PUSH_SIMULATOR_CONFIG",
            sim_cfg.display().to_string(),
        ),
        ("POLICY_PUSH_RATE_PER_SECOND", "400".to_string()),
    ];
    let mut server = Server::start(&data, &env);
    let api = server.api();
    const N: u32 = 2_000;
    let mut lines = String::new();
    for i in 0..N {
        // Half on WeChat, half on SMS.
        let openid = (i % 2 == 0).then(|| openid(i));
        let p = person(
            &resident_id(if i < 1000 { "19900101" } else { "19910101" }, i % 1000),
            "居民",
            Some(mobile(i)),
            openid,
            json!({"employment_status": "registered_unemployed"}),
        );
        lines.push_str(&p.to_string());
        lines.push('\n');
    }
    let (_, r) = api.import("application/x-ndjson", lines);
    assert_eq!(r["accepted"], N, "rejected: {}", r["rejected_count"]);
    let (_, p) = api.post(
        "/api/v1/policies",
        json!({"title": "补贴", "eligibility": "employment_status == 'registered_unemployed'"}),
    );
    let pid = p["id"].as_str().unwrap().to_string();
    api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    let (_, c) = api.post("/api/v1/campaigns", json!({"policy_id": pid, "name": "c", "channels": ["wechat", "sms"],
        "templates": {"wechat": "thing1: {{ policy.title }}", "sms": "{{ policy.title }} {{ link }}"}}));
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");

    // Wait until a part has been sent, then kill -9.
    api.wait_part_sent(&cid, 200, u64::from(N), Duration::from_secs(60));
    server.kill();

    let server = Server::start(&data, &env);
    let api = server.api();
    let done = api.wait_completed(&cid, Duration::from_secs(120));
    assert_eq!(done["counts"]["eligible"], N, "{done}");
    assert_eq!(done["counts"]["failed"], 0, "{done}");

    let msgs = api.sandbox(&cid);
    let mut per_subject: BTreeMap<String, u32> = BTreeMap::new();
    for m in &msgs {
        *per_subject
            .entry(m["subject_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_subject.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "pushed twice: {twice:?}");
    assert_eq!(
        per_subject.len() as u32,
        N,
        "every subject exactly once (got {} messages)",
        msgs.len()
    );
}
