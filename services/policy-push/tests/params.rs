//! Policy parameters through the API of the real binary: rules naming an undefined
//! parameter are refused, a parameter's value in force drives tags, audiences and
//! explanations, and a new value changes the audience (and pushes a running continuous
//! campaign's newly eligible subjects, once) with no subject changing.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

fn months(values: Value) -> Value {
    json!({"description": "连续参保月数下限", "unit": "月", "values": values})
}

#[test]
fn parameters_drive_rules_and_a_new_value_changes_the_audience() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let api = server.api();

    // Undefined parameters are refused wherever a rule is saved, naming them.
    let (st, v) = api.post(
        "/api/v1/policies",
        json!({"title": "稳岗返还", "eligibility": "insured_months >= params.min_insured_months"}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_rule");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "eligibility: line 1, column 19: unknown parameter \"params.min_insured_months\""
        ),
        "{msg}"
    );
    let (st, v) = api.post(
        "/api/v1/policies",
        json!({"title": "稳岗返还", "eligibility": "true", "benefit": "insured_months * params.rate"}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("params.rate"));
    let (st, _) = api.put(
        "/api/v1/tags/insured_long",
        json!({"rule": "insured_months >= params.min_insured_months"}),
    );
    assert_eq!(st, 400);
    let (st, v) = api.put("/api/v1/params/min_insured_months", months(json!([])));
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (400, json!("invalid_param"))
    );
    let (st, _) = api.get("/api/v1/params/min_insured_months");
    assert_eq!(st, 404);

    // Defined: 12 months since 2020, and a lower threshold announced for 2099.
    let first = json!([
        {"effective_from": "2020-01-01", "value": 12, "legal_ref": "沪人社规〔2019〕12号"},
        {"effective_from": "2099-01-01", "value": 6, "legal_ref": "沪人社规〔2098〕1号"},
    ]);
    let (st, v) = api.put("/api/v1/params/min_insured_months", months(first));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["in_force"]["value"], json!(12.0));
    assert_eq!(v["in_force"]["legal_ref"], "沪人社规〔2019〕12号");
    let (_, list) = api.get("/api/v1/params");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["values"].as_array().unwrap().len(), 2);

    let long = resident_id("19880808", 1);
    let short = resident_id("19880808", 2);
    let body = [(&long, 14, 1), (&short, 8, 2)]
        .iter()
        .map(|(id, m, n)| {
            person(
                id,
                "张三",
                Some(mobile(*n)),
                None,
                json!({"insured_months": m}),
            )
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (st, v) = api.import("application/x-ndjson", body);
    assert_eq!(st, 200, "{v}");

    let (st, v) = api.put(
        "/api/v1/tags/insured_long",
        json!({"rule": "insured_months >= params.min_insured_months"}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["subjects_retagged"], 1);
    let tags_of = |id: &str| api.get(&format!("/api/v1/subjects/{id}")).1["tags"].clone();
    assert_eq!(tags_of(&long), json!(["insured_long"]));
    assert_eq!(tags_of(&short), json!([]));

    let (st, p) = api.post(
        "/api/v1/policies",
        json!({"title": "稳岗返还", "eligibility": "kind == 'person' && insured_months >= params.min_insured_months"}),
    );
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (_, v) = api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    assert_eq!(v["audience"]["count"], 1, "{v}");
    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "c", "mode": "continuous", "channels": ["sms"],
               "templates": {"sms": "{{ policy.title }} {{ link }}"}}),
    );
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.pushes(&cid).is_empty() {
        assert!(Instant::now() < deadline, "the launch was not planned");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The new value now takes effect (brought forward to 2021): the audience grows at
    // once, the tag follows, and the continuous campaign pushes the newly eligible once.
    let second = json!([
        {"effective_from": "2020-01-01", "value": 12, "legal_ref": "沪人社规〔2019〕12号"},
        {"effective_from": "2021-01-01", "value": 6, "legal_ref": "沪人社规〔2020〕9号"},
    ]);
    let (st, v) = api.put("/api/v1/params/min_insured_months", months(second));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["in_force"]["value"], json!(6.0));
    assert_eq!(v["subjects_retagged"], 1);
    assert_eq!(v["new_pushes"], json!([cid]));
    assert_eq!(tags_of(&short), json!(["insured_long"]));
    let (_, a) = api.get(&format!("/api/v1/policies/{pid}/audience"));
    assert_eq!(a["count"], 2, "{a}");
    let pushes = api.pushes(&cid);
    assert_eq!(pushes.len(), 2);
    let new = pushes
        .iter()
        .find(|p| {
            p["explanation"]
                .as_str()
                .unwrap()
                .contains("insured_months = 8")
        })
        .unwrap_or_else(|| panic!("{pushes:?}"));
    assert!(
        new["explanation"]
            .as_str()
            .unwrap()
            .contains("params.min_insured_months = 6"),
        "{new}"
    );
    // Saving the same values again pushes nobody twice.
    let (_, v) = api.put(
        "/api/v1/params/min_insured_months",
        months(json!([{"effective_from": "2021-01-01", "value": 6, "legal_ref": "沪人社规〔2020〕9号"}])),
    );
    assert_eq!(v["new_pushes"], json!([]));
    assert_eq!(api.pushes(&cid).len(), 2);

    // Every change is in the audit log with before and after.
    let (_, log) = api.get("/api/v1/audit");
    let changes: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "param.put")
        .collect();
    assert_eq!(changes.len(), 3, "{log}");
    let second_change = &changes[1]["detail"];
    assert_eq!(second_change["before"]["values"][1]["value"], json!(6.0));
    assert_eq!(
        second_change["before"]["values"][1]["effective_from"],
        "2099-01-01"
    );
    assert_eq!(
        second_change["after"]["values"][1]["effective_from"],
        "2021-01-01"
    );
}
