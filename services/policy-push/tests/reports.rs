//! Reports through the real binary: per campaign and per channel counts, reach by district
//! and kind, CSV export, "applied" events counted as conversions, a subject's delivery
//! history masked for roles that may not see personal data, and the console's
//! sign-in, roles and report pages over plain HTTP.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

struct Setup {
    _dir: tempfile::TempDir,
    server: Server,
    campaign_id: String,
    policy_id: String,
    /// A subject that got an SMS.
    sms_subject: String,
}

/// 8 persons, all eligible: 0-3 in 浦东新区 (0 and 2 with WeChat), 4-6 in 徐汇区 with SMS,
/// 7 in 徐汇区 with no contact (unreachable). Plus one enterprise, eligible, SMS.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.api();
    let mut lines = Vec::new();
    for i in 0..8u32 {
        let district = if i < 4 { "浦东新区" } else { "徐汇区" };
        let (m, o) = match i {
            0 | 2 => (Some(mobile(700 + i)), Some(openid(700 + i))),
            7 => (None, None),
            _ => (Some(mobile(700 + i)), None),
        };
        lines.push(
            person(
                &resident_id("19970203", 400 + i),
                &format!("居民{i}"),
                m,
                o,
                json!({"district": district, "employment_status": "registered_unemployed"}),
            )
            .to_string(),
        );
    }
    lines.push(
        json!({"id": credit_code(77), "kind": "enterprise", "name": "上海报表测试有限公司",
               "mobile": mobile(777), "attributes": {"district": "徐汇区", "employment_status": "registered_unemployed"}})
        .to_string(),
    );
    let (st, v) = api.import("application/x-ndjson", lines.join("\n"));
    assert_eq!(st, 200, "{v}");
    let (st, p) = api.post(
        "/api/v1/policies",
        json!({"title": "报表测试补贴", "category": "就业补贴", "apply_url": "https://example.gov.cn/apply",
               "eligibility": "employment_status == 'registered_unemployed'", "benefit": "1000",
               "faq": [{"q": "谁可以申请？", "a": "登记失业人员。"}]}),
    );
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["faq"][0]["q"], "谁可以申请？", "{p}");
    let policy_id = p["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(&format!("/api/v1/policies/{policy_id}/publish"), json!({}));
    assert_eq!(st, 200, "{v}");
    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": policy_id, "name": "报表测试", "channels": ["wechat", "sms"],
               "templates": {"wechat": "{{ policy.title }} {{ link }}", "sms": "{{ policy.title }}，详见 {{ link }}"}}),
    );
    assert_eq!(st, 201, "{c}");
    let campaign_id = c["id"].as_str().unwrap().to_string();
    let (st, v) = api.post(
        &format!("/api/v1/campaigns/{campaign_id}/launch"),
        json!({}),
    );
    assert_eq!(st, 200, "{v}");
    api.wait_completed(&campaign_id, Duration::from_secs(120));
    Setup {
        _dir: dir,
        server,
        campaign_id,
        policy_id,
        sms_subject: resident_id("19970203", 401),
    }
}

fn link_code_of(api: &Api, campaign_id: &str, subject: &str) -> String {
    let m = api
        .sandbox(campaign_id)
        .into_iter()
        .find(|m| m["subject_id"] == subject)
        .expect("a message to the subject");
    let content = m["content"].as_str().unwrap();
    content.split("/l/").nth(1).unwrap()[..22].to_string()
}

#[test]
fn report_csv_applications_and_history() {
    let t = setup();
    let api = t.server.api();
    let cid = &t.campaign_id;

    // A recipient opens their link; the bureau reports two applications (one by link
    // code, one by subject and policy) and a repeat of the first.
    let code = link_code_of(&api, cid, &t.sms_subject);
    let page = reqwest::blocking::get(format!("{}/l/{code}", t.server.base)).unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("报表测试补贴") && html.contains("谁可以申请？"));
    assert!(html.contains(&format!("action=\"/l/{code}/unsubscribe\"")));
    assert!(html.contains("name=\"channel\" value=\"sms\""));
    assert!(html.contains("name=\"category\" value=\"1\""));

    let (st, v) = api.post(
        "/api/v1/applications",
        json!({"link_code": code, "source": "ywtb", "reference": "SQ-001"}),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = api.post("/api/v1/applications", json!({"link_code": code}));
    assert_eq!((st, &v["recorded"]), (200, &json!(false)), "a repeat: {v}");
    let other = resident_id("19970203", 404);
    let (st, v) = api.post(
        "/api/v1/applications",
        json!({"subject_id": other, "policy_id": t.policy_id}),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = api.post(
        "/api/v1/applications",
        json!({"subject_id": other, "policy_id": "pol_nope"}),
    );
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, v) = api.post("/api/v1/applications", json!({"source": "x"}));
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_application"))
    );

    let (st, r) = api.get(&format!("/api/v1/campaigns/{cid}/report"));
    assert_eq!(st, 200, "{r}");
    let total = &r["total"];
    assert_eq!(total["eligible"], 9, "{r}");
    assert_eq!(total["unreachable"], 1);
    assert_eq!(total["opted_out"], 0);
    assert_eq!(total["capped"], 0);
    assert_eq!(total["duplicate"], 0);
    assert_eq!(total["queued"], 0);
    let settled = total["sent"].as_i64().unwrap()
        + total["delivered"].as_i64().unwrap()
        + total["failed"].as_i64().unwrap();
    assert_eq!(settled, 8, "every push settled: {r}");
    assert_eq!(total["clicked"], 1);
    assert_eq!(total["applied"], 2);
    let channels: Vec<(&str, i64)> = r["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap(),
                c["eligible"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(channels, vec![("sms", 6), ("wechat", 2)]);
    let sms = r["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .unwrap();
    assert_eq!((&sms["clicked"], &sms["applied"]), (&json!(1), &json!(2)));
    let reach: Vec<(String, String, i64)> = r["reach"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["district"].as_str().unwrap().to_string(),
                x["kind"].as_str().unwrap().to_string(),
                x["eligible"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reach,
        vec![
            ("徐汇区".into(), "enterprise".into(), 1),
            ("徐汇区".into(), "person".into(), 4),
            ("浦东新区".into(), "person".into(), 4),
        ]
    );
    let xuhui = &r["reach"][1];
    assert_eq!(xuhui["not_reached"]["unreachable"], 1, "{xuhui}");
    let rate = xuhui["reach_rate"].as_f64().unwrap();
    assert!(
        (rate - xuhui["reached"].as_f64().unwrap() / 4.0).abs() < 1e-9,
        "{xuhui}"
    );

    // CSV: a header, the campaign, two channels, three reach rows.
    let resp = api
        .http
        .get(format!("{}/api/v1/campaigns/{cid}/report.csv", api.base))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = resp.text().unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 1 + 1 + 2 + 3, "{csv}");
    assert!(lines[0].starts_with("scope,channel,district,kind,eligible,unreachable"));
    assert!(
        lines[1].starts_with("campaign,,,,9,1,0,0,0,0,0,"),
        "{}",
        lines[1]
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("reach,,徐汇区,person,4,1,")));

    // History: the editor sees personal data, a viewer sees it masked.
    let (st, h) = api.get(&format!("/api/v1/subjects/{}/history", t.sms_subject));
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["masked"], false);
    let p = &h["pushes"][0];
    assert_eq!(p["channel"], "sms");
    assert_eq!(p["to"], mobile(701));
    assert!(p["content"].as_str().unwrap().contains("报表测试补贴"));
    assert!(p["clicked_at"].is_string());
    assert_eq!(h["applications"][0]["reference"], "SQ-001");
    let (_, viewer) = api.post(
        "/api/v1/operators",
        json!({"name": "坐席", "role": "viewer"}),
    );
    let viewer = api.with_token(viewer["token"].as_str().unwrap());
    let (st, h) = viewer.get(&format!("/api/v1/subjects/{}/history", t.sms_subject));
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["masked"], true);
    let text = h.to_string();
    assert!(!text.contains(&t.sms_subject), "no full ID number: {text}");
    assert!(!text.contains(&mobile(701)), "no full mobile: {text}");
    assert!(!text.contains(&code), "no link code: {text}");
    assert_eq!(h["pushes"][0]["content"], Value::Null);
    assert_eq!(h["subject"]["mobile"], "139****0701");
    let unreachable = resident_id("19970203", 407);
    let (_, h) = viewer.get(&format!("/api/v1/subjects/{unreachable}/history"));
    assert_eq!(h["skips"][0]["reason"], "unreachable", "{h}");
    let (st, _) = viewer.get("/api/v1/subjects/310115199702030000/history");
    assert_eq!(st, 404);
    // A viewer may not report applications.
    let (st, _) = viewer.post(
        "/api/v1/applications",
        json!({"subject_id": other, "policy_id": t.policy_id}),
    );
    assert_eq!(st, 403);
}

/// A browser-like HTTP client: keeps the console cookie, does not follow redirects.
struct Web {
    http: reqwest::blocking::Client,
    base: String,
    cookie: Option<String>,
}

impl Web {
    fn new(base: &str) -> Web {
        Web {
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookie: None,
        }
    }
    fn send(&mut self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let r = req.send().unwrap();
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            self.cookie = Some(pair).filter(|p| !p.ends_with('='));
        }
        r
    }
    fn get(&mut self, path: &str) -> reqwest::blocking::Response {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req)
    }
    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::blocking::Response {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req)
    }
    fn html(&mut self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "{path}");
        r.text().unwrap()
    }
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    html[at + 19..at + 19 + 32].to_string()
}

#[test]
fn console_sessions_roles_and_pages() {
    let t = setup();
    let api = t.server.api();
    let (_, viewer) = api.post(
        "/api/v1/operators",
        json!({"name": "只读员", "role": "viewer"}),
    );
    let viewer_token = viewer["token"].as_str().unwrap().to_string();

    let mut web = Web::new(&t.server.base);
    // Not signed in: /console/ is the sign-in page; other pages redirect to it.
    assert!(web.html("/console/").contains("操作员令牌"));
    let r = web.get("/console/campaigns");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    // A forged cookie is not a session.
    web.cookie = Some("pp_console=op_x.99999999999.00".into());
    assert_eq!(web.get("/console/campaigns").status(), 303);
    web.cookie = None;
    // A wrong token signs nobody in.
    let r = web.post("/console/login", &[("token", "nope")]);
    assert!(r.headers()["location"].to_str().unwrap().contains("err="));
    assert!(web.cookie.is_none());

    // The viewer signs in: pages render, personal data masked, actions refused.
    let r = web.post("/console/login", &[("token", viewer_token.as_str())]);
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && !set.contains(&viewer_token),
        "{set}"
    );
    for path in [
        "/console/".to_string(),
        "/console/tags".into(),
        "/console/policies".into(),
        format!("/console/policies/{}", t.policy_id),
        "/console/campaigns".into(),
        format!("/console/campaigns/{}", t.campaign_id),
        format!("/console/campaigns/{}/report", t.campaign_id),
        "/console/operators".into(),
        "/console/audit".into(),
        format!("/console/subjects?id={}", t.sms_subject),
    ] {
        let html = web.html(&path);
        assert!(html.contains("只读员"), "{path} shows who is signed in");
        assert!(!html.contains(&mobile(701)), "{path} shows no full mobile");
        assert!(!html.contains("居民1"), "{path} shows no full name");
    }
    let html = web.html(&format!("/console/campaigns/{}", t.campaign_id));
    assert!(
        html.contains("消息样例") && html.contains("条短信"),
        "{html}"
    );
    assert!(
        !html.contains("do-pause"),
        "a viewer gets no action buttons"
    );
    let history = web.html(&format!("/console/subjects?id={}", t.sms_subject));
    assert!(
        history.contains("139****0701"),
        "masked mobile in the history"
    );
    let csrf = csrf_of(&web.html("/console/"));
    let r = web.post(
        &format!("/console/campaigns/{}/pause", t.campaign_id),
        &[("csrf", csrf.as_str())],
    );
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("err="), "{loc}");
    assert!(
        web.html(&loc).contains("forbidden"),
        "the API's refusal is shown"
    );
    // Without the CSRF token nothing happens either.
    let r = web.post("/console/tags", &[("name", "x"), ("rule", "true")]);
    assert!(r.headers()["location"].to_str().unwrap().contains("err="));
    let (_, tags) = api.get("/api/v1/tags");
    assert_eq!(tags["items"].as_array().unwrap().len(), 0);

    // The CSV through the console session.
    let r = web.get(&format!("/console/campaigns/{}/report.csv", t.campaign_id));
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("campaign,,,,9,"));

    // Signing out ends the session.
    assert_eq!(web.post("/console/logout", &[]).status(), 303);
    assert!(web.cookie.is_none());
    assert_eq!(web.get("/console/tags").status(), 303);

    // The admin: creates an operator (its token shown once, and it signs in), pauses and
    // resumes a running continuous campaign; the API sees each change.
    let mut admin = Web::new(&t.server.base);
    admin.post("/console/login", &[("token", ADMIN_TOKEN)]);
    let csrf = csrf_of(&admin.html("/console/operators"));
    let r = admin.post(
        "/console/operators",
        &[
            ("csrf", csrf.as_str()),
            ("name", "新编辑"),
            ("role", "editor"),
        ],
    );
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    let at = html
        .find("id=\"new-token\">")
        .expect("the new token is shown")
        + 15;
    let token = &html[at..at + 40];
    let (st, me) = api.with_token(token).get("/api/v1/campaigns");
    assert_eq!(st, 200, "the shown token works: {me}");
    assert!(
        !admin.html("/console/operators").contains(token),
        "shown once"
    );

    let (st, c) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": t.policy_id, "name": "持续", "mode": "continuous", "channels": ["sms"],
               "templates": {"sms": "{{ policy.title }} {{ link }}"}}),
    );
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{cid}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    for (action, status) in [("pause", "paused"), ("resume", "running")] {
        let r = admin.post(
            &format!("/console/campaigns/{cid}/{action}"),
            &[("csrf", csrf.as_str())],
        );
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        assert!(loc.contains("ok="), "{action}: {loc}");
        let (_, c) = api.get(&format!("/api/v1/campaigns/{cid}"));
        assert_eq!(c["status"], status, "{c}");
    }
    let audit = admin.html("/console/audit");
    assert!(audit.contains("campaign.pause") && audit.contains("operator.create"));

    // The admin looks a subject up with a reason: the unmasked history is audited with
    // who and why (the viewer's masked look-ups above were not).
    let history = admin.html(&format!(
        "/console/subjects?id={}&reason=12333%20caller",
        t.sms_subject
    ));
    assert!(history.contains("查询原因"), "the reason field is shown");
    let (_, log) = api.get("/api/v1/audit");
    let reads: Vec<&serde_json::Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "subject.read")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["detail"]["reason"], "12333 caller");
    assert_eq!(reads[0]["detail"]["what"], "history");
    assert!(!reads[0].to_string().contains(&t.sms_subject));
}

/// The provider-template screen: an admin registers a template through the form (the API
/// stores it), a template the API refuses shows the API's message, and an operator who
/// may not write sees the registrations but no form.
#[test]
fn console_registers_provider_templates() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.api();
    let mut admin = Web::new(&server.base);
    admin.post("/console/login", &[("token", ADMIN_TOKEN)]);
    let page = admin.html("/console/provider-templates");
    assert!(page.contains("服务商模板"), "linked from the navigation");
    let csrf = csrf_of(&page);
    let form = |code: &'static str, text: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("provider", "tencent_sms".to_string()),
            ("code", code.to_string()),
            ("name", "申领提醒".to_string()),
            ("text", text.to_string()),
            ("sign_name", "上海人社".to_string()),
            ("variables", "1:text:12\r\n2:date".to_string()),
        ]
    };
    fn post(web: &mut Web, fields: Vec<(&str, String)>) -> String {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = web.post("/console/provider-templates", &fields);
        assert_eq!(r.status(), 303);
        r.headers()["location"].to_str().unwrap().to_string()
    }
    let loc = post(
        &mut admin,
        form("1843021", "您可申领{1}，请于{2}前到一网通办办理。"),
    );
    assert!(loc.contains("ok="), "{loc}");
    let (st, t) = api.get("/api/v1/provider-templates/tencent_sms/1843021");
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["text"], "您可申领{1}，请于{2}前到一网通办办理。");
    assert_eq!(t["sign_name"], "上海人社");
    assert_eq!(
        t["variables"][0],
        json!({"name": "1", "kind": "text", "max_chars": 12})
    );
    assert_eq!(t["variables"][1], json!({"name": "2", "kind": "date"}));
    let page = admin.html("/console/provider-templates");
    assert!(
        page.contains("1843021") && page.contains("【上海人社】"),
        "{page}"
    );

    // A text that is nothing but variables: refused with the API's code and message.
    let loc = post(&mut admin, form("1843022", "{1}{2}"));
    assert!(loc.contains("err="), "{loc}");
    let page = admin.html(&loc);
    assert!(
        page.contains("invalid_template") && page.contains("nothing but variables"),
        "{page}"
    );
    let (st, _) = api.get("/api/v1/provider-templates/tencent_sms/1843022");
    assert_eq!(st, 404);

    // A viewer sees the template and no form; a forged post changes nothing.
    let (_, viewer) = api.post(
        "/api/v1/operators",
        json!({"name": "只读员", "role": "viewer"}),
    );
    let mut web = Web::new(&server.base);
    web.post(
        "/console/login",
        &[("token", viewer["token"].as_str().unwrap())],
    );
    let page = web.html("/console/provider-templates");
    assert!(page.contains("1843021"), "{page}");
    assert!(
        !page.contains("action=\"/console/provider-templates"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let r = web.post(
        "/console/provider-templates/delete",
        &[
            ("csrf", csrf.as_str()),
            ("provider", "tencent_sms"),
            ("code", "1843021"),
        ],
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(web.html(&loc).contains("forbidden"), "{loc}");

    // The admin deletes it.
    let csrf = csrf_of(&admin.html("/console/provider-templates"));
    let r = admin.post(
        "/console/provider-templates/delete",
        &[
            ("csrf", csrf.as_str()),
            ("provider", "tencent_sms"),
            ("code", "1843021"),
        ],
    );
    assert!(r.headers()["location"].to_str().unwrap().contains("ok="));
    let (st, _) = api.get("/api/v1/provider-templates/tencent_sms/1843021");
    assert_eq!(st, 404);
}

#[test]
fn console_shows_a_push_record_and_withdraws_a_policy_after_confirmation() {
    let t = setup();
    let api = t.server.api();
    let mut admin = Web::new(&t.server.base);
    admin.post("/console/login", &[("token", ADMIN_TOKEN)]);

    // A push's record: every step, linked from the subject's history.
    let push = api
        .pushes(&t.campaign_id)
        .into_iter()
        .find(|p| p["subject_id"] == t.sms_subject.as_str())
        .unwrap();
    let push_id = push["id"].as_str().unwrap();
    let history = admin.html(&format!("/console/subjects?id={}", t.sms_subject));
    assert!(
        history.contains(&format!("/console/pushes/{push_id}")),
        "{history}"
    );
    let page = admin.html(&format!("/console/pushes/{push_id}"));
    assert!(page.contains("全过程记录"), "{page}");
    for step in ["已生成", "已交消息总线", "发送进程领取", "服务商已受理"] {
        assert!(page.contains(step), "{step} in {page}");
    }
    assert_eq!(admin.get("/console/pushes/no-such-push").status(), 404);

    // Withdrawing asks for a confirmation, then is done and shown with its audit entry.
    let path = format!("/console/policies/{}", t.policy_id);
    let page = admin.html(&path);
    assert!(page.contains("withdraw-box"), "a withdraw button");
    let csrf = csrf_of(&page);
    let action = format!("{path}/withdraw");
    let r = admin.post(&action, &[("csrf", csrf.as_str())]);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("err="), "not confirmed: {loc}");
    let (_, p) = api.get(&format!("/api/v1/policies/{}", t.policy_id));
    assert_eq!(
        p["status"], "published",
        "nothing withdrawn without confirmation"
    );
    let r = admin.post(&action, &[("csrf", csrf.as_str()), ("confirm", "1")]);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("ok="), "{loc}");
    let page = admin.html(&loc);
    assert!(page.contains("政策已撤回"), "{page}");
    assert!(page.contains("已撤回"), "the status");
    assert!(
        page.contains("policy.withdraw"),
        "the audit entry shown: {page}"
    );
    assert!(!page.contains("withdraw-box"), "no second withdrawal");
    let (_, p) = api.get(&format!("/api/v1/policies/{}", t.policy_id));
    assert_eq!(p["status"], "withdrawn");
}
