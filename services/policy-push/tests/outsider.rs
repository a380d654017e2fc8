//! An outsider against the real binary (embedded default, built-in simulators): after a
//! campaign has been texted and its receipts delivered through the secret callback URLs,
//! a stranger forges TD replies, receipts and key presses, sends oversized bodies, replays
//! a console cookie after sign-out and after its operator was disabled, floods the
//! sign-in, saves a hostile template, sends non-ASCII identifiers and odd methods, and
//! guesses bearer tokens.
//! Nothing changes, every refusal is a clear JSON error, and the server keeps answering.
//! See docs/security.md.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

fn subjects() -> Vec<Value> {
    (0..3u32)
        .map(|i| {
            person(
                &resident_id("19850412", 500 + i),
                &format!("居民{i}"),
                Some(mobile(700 + i)),
                None,
                json!({"district": "浦东新区"}),
            )
        })
        .collect()
}

/// Every push's (id, status, error), sorted.
fn push_states(api: &Api, campaign: &str) -> Vec<(String, String, Value)> {
    let mut v: Vec<(String, String, Value)> = api
        .pushes(campaign)
        .into_iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
                p["error"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn opt_outs(api: &Api, subject: &str) -> Vec<Value> {
    let (st, h) = api.get(&format!("/api/v1/subjects/{subject}/history"));
    assert_eq!(st, 200, "{h}");
    h["opt_outs"].as_array().cloned().unwrap_or_default()
}

fn assert_json_error(resp: reqwest::blocking::Response, status: u16, code: &str) {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().expect("a JSON error body");
    assert_eq!(v["error"]["code"], code, "{v}");
}

/// Sends an oversized body. The server answers 413 as soon as it reads the headers and
/// may close the connection while the client is still writing the body; the client then
/// sometimes loses the answer (a transport error, not a status). Such a request is sent
/// again; any answer that arrives must be the 413.
fn send_oversized(
    build: impl Fn() -> reqwest::blocking::RequestBuilder,
) -> reqwest::blocking::Response {
    let mut last = None;
    for _ in 0..5 {
        match build().send() {
            Ok(resp) => return resp,
            Err(e) => last = Some(e),
        }
    }
    panic!("no answer to an oversized request in five tries: {last:?}");
}

#[test]
fn an_outsider_changes_nothing_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let api = server.api();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let people = subjects();
    let ndjson: String = people.iter().map(|p| format!("{p}\n")).collect();
    let (st, report) = api.import("application/x-ndjson", ndjson);
    assert_eq!(
        (st, report["accepted"].as_u64()),
        (200, Some(3)),
        "{report}"
    );

    // A campaign texts everyone; the built-in simulators' receipts come back through the
    // callback URLs with the secret, so every push ends delivered.
    let (st, p) = api.post(
        "/api/v1/policies",
        json!({"title": "创业担保贷款", "category": "就业补贴",
               "eligibility": "district == '浦东新区'",
               "apply_url": "https://ywtb.example.gov.cn/apply"}),
    );
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/policies/{pid}/publish"), json!({}));
    assert_eq!(st, 200, "{v}");
    // A hostile template (a loop over text inside a loop over text) is refused at save.
    let (st, v) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "hostile", "mode": "once", "channels": ["wechat"],
               "templates": {"wechat": "{% for a in policy.title %}{% for b in subject.name %}{% for c in policy.title %}{{ a }}{{ b }}{{ c }}{% endfor %}{% endfor %}{% endfor %}"}}),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_template")),
        "{v}"
    );
    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": pid, "name": "texted", "mode": "once", "channels": ["sms"],
               "templates": {"sms": "{{ policy.title }} {{ link }} 拒收请回复R"}}),
    );
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        if c["counts"]["delivered"] == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "receipts did not arrive through the secret callback URLs: {c}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = push_states(&api, &cid);
    let push_ids: Vec<String> = before.iter().map(|p| p.0.clone()).collect();
    let ids: Vec<String> = people
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();

    // Forged TD replies, receipts and key presses, without the secret or with a guess.
    let mobiles: Vec<String> = (0..3).map(|i| mobile(700 + i)).collect();
    let td_aliyun: Vec<Value> = mobiles
        .iter()
        .map(|m| json!({"phone_number": m, "content": "TD", "sign_name": "人社服务"}))
        .collect();
    let receipts: Vec<Value> = push_ids
        .iter()
        .map(|id| json!({"success": false, "err_code": "FORGED", "out_id": id, "biz_id": "x"}))
        .collect();
    let presses: Vec<Value> = push_ids
        .iter()
        .map(|id| json!({"call_id": "c", "status_code": "200000", "out_id": id, "dtmf": "0"}))
        .collect();
    for query in [
        "",
        "?token=",
        "?token=sim-callback-token",
        "?token=0000000000000000",
    ] {
        for (path, body) in [
            ("/callbacks/aliyun/sms-up", Value::from(td_aliyun.clone())),
            (
                "/callbacks/tencent/sms-reply",
                json!({"mobile": mobiles[0], "text": "退订", "sign": "人社服务"}),
            ),
            (
                "/callbacks/aliyun/sms-report",
                Value::from(receipts.clone()),
            ),
            (
                "/callbacks/tencent/sms-report",
                json!([{"report_status": "FAIL", "sid": "x", "mobile": mobiles[0]}]),
            ),
            (
                "/callbacks/aliyun/voice-report",
                Value::from(presses.clone()),
            ),
        ] {
            let resp = http
                .post(format!("{}{path}{query}", server.base))
                .json(&body)
                .send()
                .unwrap();
            let status = resp.status().as_u16();
            // 401, or 429 once this address has failed too often.
            assert!(status == 401 || status == 429, "{path}{query}: {status}");
        }
    }
    let forged = http
        .post(format!(
            "{}/callbacks/wechat/events?signature=x&timestamp=1&nonce=2",
            server.base
        ))
        .body("<xml><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID><Status>failed</Status></xml>")
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Oversized bodies on the routes strangers reach: 413 in the API's JSON shape.
    let big = "x".repeat(200 * 1024);
    let resp = send_oversized(|| {
        http.post(format!("{}/l/nonexistentcode/unsubscribe", server.base))
            .header("content-type", "application/json")
            .body(format!("{{\"channel\":\"{big}\"}}"))
    });
    assert_json_error(resp, 413, "payload_too_large");
    let resp = send_oversized(|| {
        http.post(format!("{}/console/login", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={big}"))
    });
    assert_json_error(resp, 413, "payload_too_large");

    // A stolen console cookie is worthless once its owner signs out, and once its
    // operator is disabled.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |token: &str| -> String {
        let r = no_redirects
            .post(format!("{}/console/login", server.base))
            .form(&[("token", token)])
            .send()
            .unwrap();
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        cookie.unwrap_or_else(|| panic!("no session cookie: {}", r.status()))
    };
    let signed_in = |cookie: &str| {
        let r = no_redirects
            .get(format!("{}/console/tags", server.base))
            .header("cookie", cookie)
            .send()
            .unwrap();
        r.status() == 200
    };
    let stolen = sign_in(ADMIN_TOKEN);
    assert!(signed_in(&stolen));
    let out = no_redirects
        .post(format!("{}/console/logout", server.base))
        .header("cookie", &stolen)
        .send()
        .unwrap();
    assert!(out.status().is_redirection(), "{}", out.status());
    assert!(!signed_in(&stolen), "a signed-out session stays revoked");
    let (st, editor) = api.post(
        "/api/v1/operators",
        json!({"name": "编辑乙", "role": "editor"}),
    );
    assert_eq!(st, 201, "{editor}");
    let editor_token = editor["token"].as_str().unwrap();
    let editor_cookie = sign_in(editor_token);
    assert!(signed_in(&editor_cookie));
    let (st, v) = api.post(
        &format!(
            "/api/v1/operators/{}/disable",
            editor["id"].as_str().unwrap()
        ),
        json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        !signed_in(&editor_cookie),
        "a disabled operator's session ends"
    );
    let (st, _) = api.with_token(editor_token).get("/api/v1/tags");
    assert_eq!(st, 401, "a disabled operator's token ends");

    // A flood of sign-ins with guessed tokens: throttled with 429.
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            no_redirects
                .post(format!("{}/console/login", server.base))
                .form(&[("token", format!("guess-{i}"))])
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_ne!(
        statuses[0], 429,
        "the first attempts are answered: {statuses:?}"
    );
    assert_eq!(statuses[39], 429, "a flood is throttled: {statuses:?}");

    // Non-ASCII identifiers: a clear 400, never a dropped connection.
    for bad in [
        "1101051949123100é",
        "1101051949123100中",
        "11010519491231002😀",
    ] {
        let path = format!("/api/v1/subjects/{}", urlencode(bad));
        let (st, v) = api.put(&path, json!({"id": bad, "kind": "person", "name": "x"}));
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (400, Some("invalid_resident_id")),
            "{bad}: {v}"
        );
    }
    let (st, report) = api.import(
        "application/x-ndjson",
        "{\"id\":\"1101051949123100é\",\"kind\":\"person\"}\n".into(),
    );
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["rejected_count"], 1, "{report}");

    // An odd HTTP method does not become a metric label.
    let odd = reqwest::Method::from_bytes(b"HOSTILEMETHOD").unwrap();
    let _ = http
        .request(odd, format!("{}/healthz", server.base))
        .send()
        .unwrap();
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!metrics.contains("HOSTILEMETHOD"));

    // Viewers see pushes without their content (names and live links).
    let (st, viewer) = api.post(
        "/api/v1/operators",
        json!({"name": "看板", "role": "viewer"}),
    );
    assert_eq!(st, 201, "{viewer}");
    let as_viewer = api.with_token(viewer["token"].as_str().unwrap());
    let (st, v) = as_viewer.get(&format!("/api/v1/campaigns/{cid}/pushes"));
    assert_eq!(st, 200, "{v}");
    for p in v["items"].as_array().unwrap() {
        assert!(p["content"].is_null(), "{p}");
    }
    assert!(api
        .pushes(&cid)
        .iter()
        .all(|p| p["content"].as_str().is_some_and(|c| c.contains("/l/"))));

    // Nothing changed, and the server still answers.
    assert_eq!(push_states(&api, &cid), before);
    for id in &ids {
        assert!(opt_outs(&api, id).is_empty(), "{id} was opted out");
    }
    let health = http.get(format!("{}/healthz", server.base)).send().unwrap();
    assert_eq!(health.status(), 200);
    let (st, _) = api.get("/api/v1/tags");
    assert_eq!(st, 200);

    // Guessing bearer tokens: after a burst of failures the address gets 429, before any
    // token it sends is even looked at (last: this address is throttled afterwards).
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            api.with_token(&format!("guess-{i:036}"))
                .get("/api/v1/tags")
                .0
        })
        .collect();
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert_eq!(statuses[39], 429, "guessing is throttled: {statuses:?}");
    let (st, v) = api.get("/api/v1/tags");
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "even a right token waits: no oracle for guesses"
    );
    let health = http.get(format!("{}/healthz", server.base)).send().unwrap();
    assert_eq!(health.status(), 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
