//! Campaign operations over HTTP, in process: the API router with the pipeline roles and
//! the provider simulators on one local port, on the embedded SQLite store.
//!
//! - disclosure review gates publication (reviewer role, not the author);
//! - a large audience needs a second approval by yet another reviewer; roles are checked;
//! - a subject who unsubscribes from SMS on the recipient page is skipped on SMS by the
//!   next campaign;
//! - SMS replies (Alibaba SmsUp, Tencent reply) opt a number we texted out of SMS, only
//!   through callback URLs with the provider's secret;
//! - forged receipts and key presses change nothing, even with the secret;
//! - a campaign bound to a registered provider template is refused at save when a value
//!   breaks the provider's rule, and otherwise delivers exactly the registered text.

use api::ApiConfig;
use domain::operator::Role;
use domain::Channel;
use pipeline::RoleName;
use serde_json::{json, Value};
use simulators::replies::{send_reply, ReplyProvider};
use std::sync::Arc;
use std::time::Duration;
use testkit::{InProcess, Setup};

struct App {
    app: InProcess,
    /// The callback secrets this app's provider callbacks want (`?token=`).
    aliyun_token: String,
    tencent_token: String,
    /// The callbacks' receipt queue.
    receipts: Arc<api::receipts::ReceiptQueue>,
}

impl std::ops::Deref for App {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.app
    }
}

const ADMIN: &str = "t-admin";
const EDITOR: &str = "t-editor";
const REVIEWER: &str = "t-reviewer";
const REVIEWER2: &str = "t-reviewer-2";
const VIEWER: &str = "t-viewer";

/// The API, the simulators (accepting the provider-template test's template too) and
/// every pipeline role, in process.
async fn start(config: ApiConfig) -> App {
    let aliyun_token = config.callbacks.aliyun_secret.clone();
    let tencent_token = config.callbacks.tencent_secret.clone();
    let mut roles = vec![RoleName::Planner, RoleName::Relay];
    roles.extend(Channel::ALL.map(RoleName::Connector));
    let app = InProcess::start(Setup {
        config,
        simulators: Some(simulators::SimulatorConfig {
            templates: vec![registered_sms_template()],
            ..Default::default()
        }),
        roles,
        ..Setup::new(&[
            (ADMIN, Role::Admin),
            (EDITOR, Role::Editor),
            (REVIEWER, Role::Reviewer),
            (REVIEWER2, Role::Reviewer),
            (VIEWER, Role::Viewer),
        ])
    })
    .await;
    App {
        receipts: app.state.receipts.clone(),
        app,
        aliyun_token,
        tencent_token,
    }
}

impl App {
    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", token, path, Some(body)).await
    }
    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call("GET", token, path, None).await
    }

    async fn subject(&self, n: u32, openid: bool) -> String {
        let first17 = format!("31011519900101{n:03}");
        let id = format!(
            "{first17}{}",
            domain::ids::resident_id_check_char(&first17).unwrap()
        );
        let mut doc = json!({"id": id, "kind": "person", "name": format!("居民{n}"),
            "mobile": format!("139{n:08}"), "attributes": {"district": "浦东新区"}});
        if openid {
            doc["wechat_openid"] = json!(format!("oApi{n:024}"));
        }
        let (st, v) = self
            .call("PUT", EDITOR, &format!("/api/v1/subjects/{id}"), Some(doc))
            .await;
        assert!(st == 200 || st == 201, "{st} {v}");
        id
    }

    async fn policy(&self, title: &str, category: &str) -> String {
        let (st, v) = self
            .post(
                EDITOR,
                "/api/v1/policies",
                json!({"title": title, "category": category, "eligibility": "district == '浦东新区'",
                       "apply_url": "https://ywtb.example.gov.cn/apply"}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn pass_review(&self, pid: &str) {
        let (st, v) = self
            .post(
                REVIEWER,
                &format!("/api/v1/policies/{pid}/review"),
                json!({"disclosure": "public", "confidentiality_checked": true}),
            )
            .await;
        assert_eq!((st, v["passed"].as_bool()), (201, Some(true)), "{v}");
        let (st, v) = self
            .post(
                REVIEWER,
                &format!("/api/v1/policies/{pid}/publish"),
                json!({}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }

    async fn campaign(&self, pid: &str, channels: &[&str]) -> String {
        let mut templates = serde_json::Map::new();
        for c in channels {
            let t = match *c {
                "wechat" => "thing1: {{ policy.title }}",
                "hotline" => "{{ policy.title }}，退订请按0。",
                _ => "{{ policy.title }} {{ link }} 拒收请回复R",
            };
            templates.insert(c.to_string(), json!(t));
        }
        let (st, v) = self
            .post(
                EDITOR,
                "/api/v1/campaigns",
                json!({"policy_id": pid, "name": "c", "mode": "once", "channels": channels,
                       "templates": templates}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Launches a campaign and waits until `sent` of its pushes are sent.
    async fn launch_and_wait_sent(&self, cid: &str, sent: i64) {
        let (st, v) = self
            .post(
                EDITOR,
                &format!("/api/v1/campaigns/{cid}/launch"),
                json!({}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        self.wait_for(cid, |v| v["counts"]["sent"].as_i64() == Some(sent))
            .await;
    }

    /// Polls the campaign until `done` holds (a generous deadline; nothing is timed).
    async fn wait_for(&self, cid: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self.get(ADMIN, &format!("/api/v1/campaigns/{cid}")).await;
            if done(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "campaign never got there: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_review_gates_publication() {
    let app = start(ApiConfig {
        require_disclosure_review: true,
        ..Default::default()
    })
    .await;
    let pid = app.policy("稳岗返还", "就业补贴").await;
    let publish = format!("/api/v1/policies/{pid}/publish");
    let review = format!("/api/v1/policies/{pid}/review");
    let (st, v) = app.post(REVIEWER, &publish, json!({})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("review_required")),
        "{v}"
    );
    // The author cannot review their own policy; an editor has no reviewer role at all.
    let ok = json!({"disclosure": "public", "confidentiality_checked": true});
    let (st, _) = app.post(EDITOR, &review, ok.clone()).await;
    assert_eq!(st, 403);
    let (st, _) = app.post(VIEWER, &review, ok.clone()).await;
    assert_eq!(st, 403);
    // Not public: recorded, not passed, publication refused.
    let (st, v) = app
        .post(
            REVIEWER,
            &review,
            json!({"disclosure": "not_public", "confidentiality_checked": true, "note": "内部"}),
        )
        .await;
    assert_eq!((st, v["passed"].as_bool()), (201, Some(false)), "{v}");
    let (_, p) = app.get(VIEWER, &format!("/api/v1/policies/{pid}")).await;
    assert_eq!(p["status"], "review");
    let (st, v) = app.post(REVIEWER, &publish, json!({})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("review_not_passed")),
        "{v}"
    );
    // Without the confidentiality check it does not pass either.
    let (_, v) = app
        .post(
            REVIEWER,
            &review,
            json!({"disclosure": "public", "confidentiality_checked": false}),
        )
        .await;
    assert_eq!(v["passed"], false);
    let (st, _) = app.post(REVIEWER, &publish, json!({})).await;
    assert_eq!(st, 409);
    // A passed review: published.
    let (_, v) = app.post(REVIEWER2, &review, ok).await;
    assert_eq!(v["passed"], true);
    let (st, v) = app.post(REVIEWER, &publish, json!({})).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("published")), "{v}");
    let (st, v) = app.get(VIEWER, &review).await;
    assert_eq!(
        (st, v["reviewed_by"].as_str()),
        (200, Some("op-t-reviewer-2"))
    );
    // Every review is in the audit log with before and after.
    let (_, audit) = app.get(ADMIN, "/api/v1/audit").await;
    let reviews: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy.review")
        .collect();
    assert_eq!(reviews.len(), 3);
    assert!(reviews[0]["detail"]["before"].is_null());
    assert_eq!(reviews[1]["detail"]["before"]["disclosure"], "not_public");
    assert_eq!(reviews[2]["detail"]["after"]["passed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_audiences_need_a_second_reviewer() {
    let app = start(ApiConfig {
        require_approval: true,
        second_approval_above: Some(2),
        ..Default::default()
    })
    .await;
    for n in 0..3 {
        app.subject(n, false).await;
    }
    let pid = app.policy("求职创业补贴", "就业补贴").await;
    app.pass_review(&pid).await;
    let cid = app.campaign(&pid, &["sms"]).await;
    let path = |a: &str| format!("/api/v1/campaigns/{cid}/{a}");
    // A viewer cannot submit, approve or launch.
    for a in ["submit", "approve", "launch"] {
        let (st, _) = app.post(VIEWER, &path(a), json!({})).await;
        assert_eq!(st, 403, "viewer {a}");
    }
    let (st, _) = app.post(EDITOR, &path("submit"), json!({})).await;
    assert_eq!(st, 200);
    // The editor who created it cannot approve it.
    let (st, _) = app.post(EDITOR, &path("approve"), json!({})).await;
    assert_eq!(st, 403);
    // Three subjects > 2: the first approval is not enough.
    let (st, v) = app.post(REVIEWER, &path("approve"), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["approvals_needed"].as_i64()),
        (Some("submitted"), Some(2)),
        "{v}"
    );
    let (st, v) = app.post(EDITOR, &path("launch"), json!({})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("not_approved"))
    );
    // The same reviewer cannot give the second approval.
    let (st, _) = app.post(REVIEWER, &path("approve"), json!({})).await;
    assert_eq!(st, 403);
    let (st, v) = app.post(REVIEWER2, &path("approve"), json!({})).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(v["second_approved_by"], "op-t-reviewer-2");
    let (st, v) = app.post(EDITOR, &path("launch"), json!({})).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("running")), "{v}");
    let (_, audit) = app.get(ADMIN, "/api/v1/audit").await;
    let approvals: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "campaign.approve" && e["target"] == cid.as_str())
        .collect();
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0]["detail"]["after"], "submitted");
    assert_eq!(approvals[1]["detail"]["after"], "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_on_the_page_is_skipped_on_sms_by_the_next_campaign() {
    let app = start(ApiConfig::default()).await;
    let me = app.subject(1, false).await;
    let other = app.subject(2, false).await;
    let pid = app.policy("就业见习补贴", "就业补贴").await;
    app.pass_review(&pid).await;
    let first = app.campaign(&pid, &["sms"]).await;
    app.launch_and_wait_sent(&first, 2).await;
    let (_, pushes) = app
        .get(ADMIN, &format!("/api/v1/campaigns/{first}/pushes"))
        .await;
    let mine = pushes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["subject_id"] == me.as_str())
        .unwrap();
    let content = mine["content"].as_str().unwrap();
    let code = content
        .split("/l/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // The page's control: a form post.
    let resp = app
        .http
        .post(format!("{}/l/{code}/unsubscribe", app.base))
        .form(&[("channel", "sms")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("已退订"));
    // Unknown links and bad requests.
    let (st, _) = app
        .post("", "/l/nope/unsubscribe", json!({"channel": "sms"}))
        .await;
    assert_eq!(st, 404);
    let (st, v) = app
        .post("", &format!("/l/{code}/unsubscribe"), json!({}))
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_unsubscribe"))
    );
    let opt = app
        .store
        .opt_outs_of(std::slice::from_ref(&me))
        .await
        .unwrap();
    assert_eq!(opt.len(), 1);
    assert_eq!(
        (opt[0].channel, opt[0].source.as_str()),
        (Some(Channel::Sms), "recipient_page")
    );

    // The next campaign (another policy) skips that subject on SMS, not the other.
    let pid2 = app.policy("职业技能培训补贴", "技能培训").await;
    app.pass_review(&pid2).await;
    let next = app.campaign(&pid2, &["sms"]).await;
    app.post(
        EDITOR,
        &format!("/api/v1/campaigns/{next}/launch"),
        json!({}),
    )
    .await;
    let v = app
        .wait_for(&next, |v| {
            v["counts"]["sent"].as_i64() == Some(1) && v["counts"]["opted_out"].as_i64() == Some(1)
        })
        .await;
    assert_eq!(v["counts"]["eligible"], 2, "{v}");
    assert_eq!(
        (
            v["counts"]["capped"].as_i64(),
            v["counts"]["duplicate"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let (_, pushes) = app
        .get(ADMIN, &format!("/api/v1/campaigns/{next}/pushes"))
        .await;
    let subjects: Vec<&str> = pushes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["subject_id"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec![other.as_str()]);

    // Unsubscribing from the category (JSON): a campaign with the same category skips
    // the other subject whatever the channel.
    let (_, pushes) = app
        .get(ADMIN, &format!("/api/v1/campaigns/{next}/pushes"))
        .await;
    let content = pushes["items"][0]["content"].as_str().unwrap();
    let code = content
        .split("/l/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let (st, v) = app
        .post(
            "",
            &format!("/l/{code}/unsubscribe"),
            json!({"category": true}),
        )
        .await;
    assert_eq!((st, v["recorded"].as_i64()), (200, Some(1)), "{v}");
    let pid3 = app.policy("培训券", "技能培训").await;
    app.pass_review(&pid3).await;
    let third = app.campaign(&pid3, &["sms", "hotline"]).await;
    app.post(
        EDITOR,
        &format!("/api/v1/campaigns/{third}/launch"),
        json!({}),
    )
    .await;
    let v = app
        .wait_for(&third, |v| {
            v["planned_at"].is_string() && v["counts"]["queued"].as_i64() == Some(0)
        })
        .await;
    // Subject 1: SMS refused, the hotline still reaches them; subject 2: category refused.
    assert_eq!(v["counts"]["opted_out"], 1, "{v}");
    assert_eq!(v["by_channel"]["hotline"], 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_and_timed_campaigns_are_scheduled() {
    let app = start(ApiConfig::default()).await;
    app.subject(21, false).await;
    let pid = app.policy("招聘会", "就业服务").await;
    app.pass_review(&pid).await;
    let create = |schedule: Value| {
        json!({"policy_id": pid, "name": "c", "mode": "once", "channels": ["sms"],
               "templates": {"sms": "{{ policy.title }} {{ link }}"}, "schedule": schedule,
               "throttle_per_second": 5})
    };
    let (st, v) = app
        .post(
            EDITOR,
            "/api/v1/campaigns",
            create(json!({"cron": "every morning"})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_schedule")),
        "{v}"
    );
    let (st, v) = app
        .post(
            EDITOR,
            "/api/v1/campaigns",
            create(json!({"cron": "0 9 * * mon-fri"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["throttle_per_second"], 5.0);
    let cid = v["id"].as_str().unwrap();
    let (st, v) = app
        .post(
            EDITOR,
            &format!("/api/v1/campaigns/{cid}/launch"),
            json!({}),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (200, Some("scheduled")), "{v}");
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(v["next_run_at"].clone()).unwrap();
    let local = next.with_timezone(&chrono_tz::Asia::Shanghai);
    assert_eq!(
        local.format("%H:%M").to_string(),
        "09:00",
        "Asia/Shanghai time"
    );
    assert!(next > chrono::Utc::now());
    // A start time in the past runs now; one in the future waits.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let (_, v) = app
        .post(EDITOR, "/api/v1/campaigns", create(json!({"at": later})))
        .await;
    let cid = v["id"].as_str().unwrap();
    let (_, v) = app
        .post(
            EDITOR,
            &format!("/api/v1/campaigns/{cid}/launch"),
            json!({}),
        )
        .await;
    assert_eq!(v["status"], "scheduled", "{v}");
    let (_, audit) = app.get(ADMIN, "/api/v1/audit").await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "campaign.launch"
            && e["target"] == cid
            && e["detail"]["after"] == "scheduled"));
    // Cancelled: no run will start.
    let (st, _) = app
        .post(
            VIEWER,
            &format!("/api/v1/campaigns/{cid}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = app
        .post(
            EDITOR,
            &format!("/api/v1/campaigns/{cid}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (200, Some("cancelled")), "{v}");
    assert!(v["next_run_at"].is_null(), "{v}");
    let (st, v) = app
        .post(
            EDITOR,
            &format!("/api/v1/campaigns/{cid}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("invalid_state"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_replies_opt_out_only_numbers_we_texted_and_only_with_the_secret() {
    let app = start(ApiConfig::default()).await;
    let a = app.subject(11, false).await;
    let b = app.subject(12, false).await;
    let c = app.subject(13, false).await;
    let d = app.subject(14, false).await;
    let pid = app.policy("就业见习补贴", "就业补贴").await;
    app.pass_review(&pid).await;
    let cid = app.campaign(&pid, &["sms"]).await;
    app.launch_and_wait_sent(&cid, 4).await;
    // Not texted: joined after the campaign.
    let e = app.subject(15, false).await;
    let aliyun = format!(
        "{}/callbacks/aliyun/sms-up?token={}",
        app.base, app.aliyun_token
    );
    let tencent = format!(
        "{}/callbacks/tencent/sms-reply?token={}",
        app.base, app.tencent_token
    );
    // Without the secret, or with another provider's, or a wrong one: 401, nothing done.
    for url in [
        format!("{}/callbacks/aliyun/sms-up", app.base),
        format!("{}/callbacks/aliyun/sms-up?token=guess", app.base),
        format!(
            "{}/callbacks/aliyun/sms-up?token={}",
            app.base, app.tencent_token
        ),
        format!(
            "{}/callbacks/tencent/sms-reply?token={}",
            app.base, app.aliyun_token
        ),
    ] {
        let resp = app
            .http
            .post(&url)
            .json(&simulators::replies::aliyun_sms_up_body(
                "13900000013",
                "TD",
                "人社服务",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{url}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthenticated");
    }
    send_reply(ReplyProvider::Aliyun, &aliyun, "13900000011", "TD")
        .await
        .unwrap();
    send_reply(ReplyProvider::Tencent, &tencent, "13900000012", "退订")
        .await
        .unwrap();
    // Not an unsubscribe: answered, nothing recorded.
    send_reply(ReplyProvider::Aliyun, &aliyun, "13900000013", "谢谢")
        .await
        .unwrap();
    // A number we never texted: answered (the provider must not retry), ignored.
    send_reply(ReplyProvider::Aliyun, &aliyun, "13900000015", "TD")
        .await
        .unwrap();
    // A reply to another sender's signature: ignored.
    let resp = app
        .http
        .post(&aliyun)
        .json(&simulators::replies::aliyun_sms_up_body(
            "13900000014",
            "TD",
            "别家银行",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let opts = app
        .store
        .opt_outs_of(&[a.clone(), b.clone(), c.clone(), d.clone(), e.clone()])
        .await
        .unwrap();
    let mut got: Vec<(String, Option<Channel>, String)> = opts
        .into_iter()
        .map(|o| (o.subject_id, o.channel, o.source))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (a, Some(Channel::Sms), "sms_reply".to_string()),
            (b, Some(Channel::Sms), "sms_reply".to_string()),
        ]
    );
    // A malformed callback is refused in the provider's shape.
    let resp = app
        .http
        .post(&aliyun)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_receipts_and_key_presses_change_nothing_even_with_the_secret() {
    let app = start(ApiConfig::default()).await;
    let a = app.subject(21, false).await;
    let pid = app.policy("失业保险金", "就业补贴").await;
    app.pass_review(&pid).await;
    let cid = app.campaign(&pid, &["sms"]).await;
    app.launch_and_wait_sent(&cid, 1).await;
    let (_, pushes) = app
        .get(ADMIN, &format!("/api/v1/campaigns/{cid}/pushes"))
        .await;
    let push_id = pushes["items"][0]["id"].as_str().unwrap().to_string();
    let before = app.store.get_push(&push_id).await.unwrap().unwrap();
    let voice = format!(
        "{}/callbacks/aliyun/voice-report?token={}",
        app.base, app.aliyun_token
    );
    // A voice report naming the SMS push, with key 0 (opt out of everything) and key 1:
    // not a hotline push, so neither the status nor the opt-outs change.
    for key in ["0", "1"] {
        let resp = app
            .http
            .post(&voice)
            .json(&json!([{"call_id": "forged-call", "status_code": "200000",
                           "out_id": push_id, "dtmf": key}]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    // An SMS report naming the push under another provider id than its own.
    let sms = format!(
        "{}/callbacks/aliyun/sms-report?token={}",
        app.base, app.aliyun_token
    );
    let resp = app
        .http
        .post(&sms)
        .json(
            &json!([{"phone_number": "13900000021", "success": false, "err_code": "FORGED",
                       "biz_id": "not-its-biz-id", "out_id": push_id}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Whatever the callbacks queued has been written before looking.
    while app.receipts.pending() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = app.store.get_push(&push_id).await.unwrap().unwrap();
    assert_eq!(after.status, before.status);
    assert_eq!(after.error, before.error);
    assert!(app.store.opt_outs_of(&[a]).await.unwrap().is_empty());
    // Without the secret: 401 before anything is read.
    let resp = app
        .http
        .post(format!("{}/callbacks/aliyun/sms-report", app.base))
        .json(&json!([{"success": true, "out_id": push_id}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        app.store.get_push(&push_id).await.unwrap().unwrap().status,
        before.status
    );
}

/// The Alibaba SMS template the provider-template test registers (the simulators know it).
fn registered_sms_template() -> domain::provider_template::ProviderTemplate {
    serde_json::from_value(json!({
        "provider": "aliyun_sms", "code": "SMS_468201", "name": "政策申领提醒",
        "sign_name": "人社服务",
        "text": "${name}您好，您可能符合${policy}申领条件，请于${deadline}前办理，详见 https://push.example.gov.cn/l/${code} 拒收请回复R",
        "variables": [{"name": "name", "kind": "name", "max_chars": 10},
                      {"name": "policy", "max_chars": 20},
                      {"name": "deadline", "kind": "date"},
                      {"name": "code", "kind": "code", "max_chars": 32}]}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_bind_registered_templates_checked_at_save_and_rendered_exactly() {
    let app = start(ApiConfig::default()).await;
    // Register through the API: the simulators' copy and the registry agree.
    let mut sms = serde_json::to_value(registered_sms_template()).unwrap();
    for k in ["provider", "code"] {
        sms.as_object_mut().unwrap().remove(k);
    }
    let (st, v) = app
        .call(
            "PUT",
            EDITOR,
            "/api/v1/provider-templates/aliyun_sms/SMS_468201",
            Some(sms.clone()),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = app
        .call(
            "PUT",
            VIEWER,
            "/api/v1/provider-templates/aliyun_sms/SMS_468201",
            Some(sms),
        )
        .await;
    assert_eq!(st, 403, "{v}");
    let tencent = json!({"sign_name": "人社服务", "text": "您可能符合{1}申领条件，请于{2}前办理。",
        "variables": [{"name": "1"}, {"name": "2", "kind": "date"}]});
    let (st, v) = app
        .call(
            "PUT",
            EDITOR,
            "/api/v1/provider-templates/tencent_sms/1843021",
            Some(tencent),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The providers' review refuses a template that is nothing but a variable.
    let (st, v) = app
        .call(
            "PUT",
            EDITOR,
            "/api/v1/provider-templates/tencent_sms/1843022",
            Some(json!({"sign_name": "人社服务", "text": "{1}", "variables": [{"name": "1"}]})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_template")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing but variables"),
        "{v}"
    );
    let (_, list) = app.get(VIEWER, "/api/v1/provider-templates").await;
    let codes: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"SMS_468201")
            && codes.contains(&"1843021")
            && codes.contains(&"SMS_POLICY_PUSH"),
        "{list}"
    );

    app.subject(1, false).await;
    app.subject(2, false).await;
    let pid = app.policy("小微企业一次性扩岗补助申领", "就业补贴").await;
    app.pass_review(&pid).await;

    // Tencent, not enterprise-verified: 12 characters per variable; the title has 13.
    let (st, v) = app
        .post(
            EDITOR,
            "/api/v1/campaigns",
            json!({"policy_id": pid, "name": "c", "channels": ["sms"],
            "bindings": {"sms": {"template": "1843021",
                "variables": {"1": "{{ policy.title }}", "2": "2025-12-31"}}}}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_binding")),
        "{v}"
    );
    assert_eq!(
        v["error"]["message"],
        "bindings.sms: variable `1`: has 13 characters; Tencent allows at most 12 per variable \
         for accounts that are not enterprise-verified \
         (InvalidParameterValue.TemplateParameterLengthLimit) (sample value \"小微企业一次性扩岗补助申领\")"
    );
    // A link inside a variable.
    let (st, v) = app
        .post(EDITOR, "/api/v1/campaigns", json!({"policy_id": pid, "name": "c", "channels": ["sms"],
            "bindings": {"sms": {"template": "SMS_468201", "variables": {"name": "{{ subject.name }}",
                "policy": "{{ policy.title }}", "deadline": "2025-12-31", "code": "{{ link }}"}}}}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("bindings.sms: variable `code`: holds a link"),
        "{v}"
    );

    // Bound properly: each number gets its own name, the link code fills the fixed link.
    let (st, v) = app
        .post(EDITOR, "/api/v1/campaigns", json!({"policy_id": pid, "name": "c", "channels": ["sms"],
            "bindings": {"sms": {"template": "SMS_468201", "variables": {"name": "{{ subject.name }}",
                "policy": "{{ policy.title }}", "deadline": "2025-12-31", "code": "{{ link_code }}"}}}}))
        .await;
    assert_eq!(st, 201, "{v}");
    let cid = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["bindings"]["sms"]["template"], "SMS_468201");
    // A template a campaign still to send (this draft) binds cannot be removed.
    let resp = app
        .http
        .delete(format!(
            "{}/api/v1/provider-templates/aliyun_sms/SMS_468201",
            app.base
        ))
        .bearer_auth(EDITOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    app.launch_and_wait_sent(&cid, 2).await;
    let (_, pushes) = app
        .get(ADMIN, &format!("/api/v1/campaigns/{cid}/pushes"))
        .await;
    // The harness attributes no campaign: this is the only campaign that sends.
    let (_, record) = app.get(ADMIN, "/api/v1/sandbox/messages").await;
    let record = record["items"].as_array().unwrap().clone();
    assert_eq!(record.len(), 2, "{record:?}");
    for p in pushes["items"].as_array().unwrap() {
        let bound =
            domain::provider_template::BoundContent::from_content(p["content"].as_str().unwrap())
                .expect("a bound push");
        let got = record
            .iter()
            .find(|m| m["push_ref"] == p["id"])
            .expect("recorded");
        // Subject n has mobile 139{n:08} and name 居民{n}.
        let n: u32 = got["to"].as_str().unwrap()[3..].parse().unwrap();
        let code = bound
            .params
            .iter()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .clone();
        let expected = format!(
            "【人社服务】居民{n}您好，您可能符合小微企业一次性扩岗补助申领申领条件，请于2025-12-31前办理，详见 https://push.example.gov.cn/l/{code} 拒收请回复R"
        );
        assert_eq!(got["content"].as_str().unwrap(), expected);
        assert_eq!(got["template"], "SMS_468201");
        assert_eq!(bound.text, expected);
    }
    let resp = app
        .http
        .delete(format!(
            "{}/api/v1/provider-templates/tencent_sms/1843021",
            app.base
        ))
        .bearer_auth(EDITOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
}

/// Audit entries of `action` on `target`, oldest first.
async fn audited(app: &App, action: &str, target: &str) -> Vec<Value> {
    let (_, audit) = app.get(ADMIN, "/api/v1/audit").await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .cloned()
        .collect()
}

/// Reads of a subject's unmasked record or history are audited with who read it and the
/// reason given (`?reason=`), `unspecified` without one; masked reads (a viewer) are not.
/// The audit names the subject masked and by its keyed pseudonym, never in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_reads_are_audited_with_their_reason() {
    let app = start(ApiConfig::default()).await;
    let id = app.subject(7, false).await;
    let masked = domain::ids::mask_subject_id(&id);
    let (st, v) = app
        .get(
            EDITOR,
            &format!("/api/v1/subjects/{id}?reason=hotline%20call%2012333"),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id"], id.as_str(), "the editor sees the record unmasked");
    let (st, _) = app
        .get(EDITOR, &format!("/api/v1/subjects/{id}/history"))
        .await;
    assert_eq!(st, 200);
    let (st, v) = app
        .get(VIEWER, &format!("/api/v1/subjects/{id}?reason=curious"))
        .await;
    assert_eq!(st, 200);
    assert_ne!(v["id"], id.as_str(), "the viewer's copy is masked");
    let (st, _) = app
        .get(VIEWER, &format!("/api/v1/subjects/{id}/history"))
        .await;
    assert_eq!(st, 200);
    let reads = audited(&app, "subject.read", &masked).await;
    let got: Vec<(String, String, String)> = reads
        .iter()
        .map(|e| {
            (
                e["operator_id"].as_str().unwrap().to_string(),
                e["detail"]["what"].as_str().unwrap().to_string(),
                e["detail"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let editor = format!("op-{EDITOR}");
    assert_eq!(
        got,
        vec![
            (editor.clone(), "record".into(), "hotline call 12333".into()),
            (editor, "history".into(), "unspecified".into()),
        ]
    );
    for e in &reads {
        let text = e.to_string();
        assert!(!text.contains(&id), "the ID number in the audit: {text}");
        assert_eq!(e["detail"]["pseudonym"].as_str().unwrap().len(), 32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_in_the_creators_circle_approves() {
    let app = start(ApiConfig {
        require_approval: true,
        ..Default::default()
    })
    .await;
    let pid = app.policy("就业见习补贴", "就业补贴").await;
    // The admin makes a campaign, and a reviewer of their own.
    let (st, v) = app
        .post(
            ADMIN,
            "/api/v1/campaigns",
            json!({"policy_id": pid, "name": "c", "mode": "once", "channels": ["sms"],
                   "templates": {"sms": "{{ policy.title }} {{ link }} 拒收请回复R"}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let cid = v["id"].as_str().unwrap().to_string();
    let (st, mine) = app
        .post(
            ADMIN,
            "/api/v1/operators",
            json!({"name": "自建审核员", "role": "reviewer"}),
        )
        .await;
    assert_eq!(st, 201, "{mine}");
    let mine = mine["token"].as_str().unwrap().to_string();
    let (_, ops) = app.get(ADMIN, "/api/v1/operators").await;
    let created = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "自建审核员")
        .unwrap()
        .clone();
    assert_eq!(created["created_by"], "op-t-admin", "{created}");
    let path = |a: &str| format!("/api/v1/campaigns/{cid}/{a}");
    let (st, _) = app.post(ADMIN, &path("submit"), json!({})).await;
    assert_eq!(st, 200);
    let (st, v) = app.post(ADMIN, &path("approve"), json!({})).await;
    assert_eq!(st, 403, "the creator: {v}");
    let (st, v) = app.post(&mine, &path("approve"), json!({})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "a reviewer the creator created: {v}"
    );
    let (st, v) = app.post(REVIEWER, &path("approve"), json!({})).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_changes_send_approved_campaigns_back_to_review() {
    let app = start(ApiConfig {
        require_approval: true,
        ..Default::default()
    })
    .await;
    app.subject(1, false).await;
    let put = |path: String, body: Value| {
        let app = &app;
        async move { app.call("PUT", EDITOR, &path, Some(body)).await }
    };
    let (st, v) = put(
        "/api/v1/tags/pd_resident".into(),
        json!({"description": "浦东", "rule": "district == '浦东新区'"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = put(
        "/api/v1/params/min_age".into(),
        json!({"values": [{"effective_from": "2020-01-01", "value": 16, "legal_ref": "文件1"}]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let policy = |eligibility: &'static str| {
        let app = &app;
        async move {
            let (st, v) = app
                .post(
                    EDITOR,
                    "/api/v1/policies",
                    json!({"title": "补贴", "category": "就业补贴", "eligibility": eligibility}),
                )
                .await;
            assert_eq!(st, 201, "{v}");
            let pid = v["id"].as_str().unwrap().to_string();
            app.pass_review(&pid).await;
            pid
        }
    };
    let by_tag = policy("'pd_resident' in tags").await;
    let by_param = policy("age >= params.min_age").await;
    let other = policy("district == '静安区'").await;
    let approved = |pid: String, mode: &'static str| {
        let app = &app;
        async move {
            let (st, v) = app
                .post(
                    EDITOR,
                    "/api/v1/campaigns",
                    json!({"policy_id": pid, "name": "c", "mode": mode, "channels": ["sms"],
                           "templates": {"sms": "{{ policy.title }} {{ link }} 拒收请回复R"}}),
                )
                .await;
            assert_eq!(st, 201, "{v}");
            let cid = v["id"].as_str().unwrap().to_string();
            let (st, _) = app
                .post(
                    EDITOR,
                    &format!("/api/v1/campaigns/{cid}/submit"),
                    json!({}),
                )
                .await;
            assert_eq!(st, 200);
            let (st, v) = app
                .post(
                    REVIEWER,
                    &format!("/api/v1/campaigns/{cid}/approve"),
                    json!({}),
                )
                .await;
            assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
            cid
        }
    };
    let tag_cid = approved(by_tag.clone(), "continuous").await;
    let param_cid = approved(by_param, "once").await;
    let other_cid = approved(other, "once").await;
    let status = |cid: String| {
        let app = &app;
        async move {
            let (_, v) = app.get(ADMIN, &format!("/api/v1/campaigns/{cid}")).await;
            (
                v["status"].as_str().unwrap().to_string(),
                v["approved_by"].clone(),
            )
        }
    };

    // The tag's rule changes: the campaign reading it goes back to review, audited.
    let (st, v) = put(
        "/api/v1/tags/pd_resident".into(),
        json!({"description": "浦东", "rule": "district == '浦东新区' && age >= 18"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["returned_to_review"], json!([tag_cid]), "{v}");
    assert_eq!(
        status(tag_cid.clone()).await,
        ("submitted".into(), Value::Null)
    );
    assert_eq!(status(other_cid.clone()).await.0, "approved");
    assert_eq!(status(param_cid.clone()).await.0, "approved");
    let rereview = audited(&app, "campaign.rereview", &tag_cid).await;
    assert_eq!(rereview.len(), 1);
    assert_eq!(rereview[0]["detail"]["before"]["status"], "approved");
    assert_eq!(
        rereview[0]["detail"]["before"]["approved_by"],
        "op-t-reviewer"
    );
    assert_eq!(rereview[0]["detail"]["after"]["status"], "submitted");
    assert_eq!(rereview[0]["detail"]["change"]["tag"], "pd_resident");

    // The parameter's values change: the campaign reading it goes back to review.
    let (st, v) = put(
        "/api/v1/params/min_age".into(),
        json!({"values": [{"effective_from": "2020-01-01", "value": 18, "legal_ref": "文件2"}]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["returned_to_review"], json!([param_cid]), "{v}");
    assert_eq!(status(param_cid).await.0, "submitted");
    assert_eq!(status(other_cid).await.0, "approved");

    // Approved again and running: a change to its audience is refused and changes nothing.
    let (st, v) = app
        .post(
            REVIEWER,
            &format!("/api/v1/campaigns/{tag_cid}/approve"),
            json!({}),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
    let (st, v) = app
        .post(
            EDITOR,
            &format!("/api/v1/campaigns/{tag_cid}/launch"),
            json!({}),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (200, Some("running")), "{v}");
    let (st, v) = put(
        "/api/v1/tags/pd_resident".into(),
        json!({"description": "浦东", "rule": "true"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("campaign_running")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&tag_cid),
        "{v}"
    );
    let (_, tag) = app.get(ADMIN, "/api/v1/tags/pd_resident").await;
    assert_eq!(tag["rule"], "district == '浦东新区' && age >= 18");
    assert_eq!(status(tag_cid).await.0, "running");
    // The same rule again changes no audience: accepted.
    let (st, v) = put(
        "/api/v1/tags/pd_resident".into(),
        json!({"description": "浦东新区居民", "rule": "district == '浦东新区' && age >= 18"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_approval_is_cleared_too_when_the_audience_changes() {
    let app = start(ApiConfig {
        require_approval: true,
        second_approval_above: Some(0),
        ..Default::default()
    })
    .await;
    app.subject(1, false).await;
    let min_age = |value: i64| {
        let app = &app;
        async move {
            let body = json!({"values": [{"effective_from": "2020-01-01", "value": value}]});
            let (st, v) = app
                .call("PUT", EDITOR, "/api/v1/params/min_age", Some(body))
                .await;
            assert_eq!(st, 200, "{v}");
            v
        }
    };
    min_age(16).await;
    let (st, v) = app
        .post(
            EDITOR,
            "/api/v1/policies",
            json!({"title": "补贴", "category": "就业补贴", "eligibility": "age >= params.min_age"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let cid = app.campaign(v["id"].as_str().unwrap(), &["sms"]).await;
    let path = |a: &str| format!("/api/v1/campaigns/{cid}/{a}");
    assert_eq!(app.post(EDITOR, &path("submit"), json!({})).await.0, 200);
    let (st, v) = app.post(REVIEWER, &path("approve"), json!({})).await;
    assert_eq!((st, v["approvals_needed"].as_i64()), (200, Some(2)), "{v}");
    let v = min_age(18).await;
    assert_eq!(v["returned_to_review"], json!([cid]), "{v}");
    // The first approval is gone: the second reviewer's approval is a first one again.
    let (_, c) = app.get(ADMIN, &format!("/api/v1/campaigns/{cid}")).await;
    assert_eq!(
        (c["status"].as_str(), &c["approved_by"]),
        (Some("submitted"), &Value::Null),
        "{c}"
    );
    let (st, v) = app.post(REVIEWER2, &path("approve"), json!({})).await;
    assert_eq!(
        (st, v["status"].as_str(), v["approvals_needed"].as_i64()),
        (200, Some("submitted"), Some(2)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_are_reviewed_and_undone_with_a_reason() {
    let app = start(ApiConfig::default()).await;
    let id = app.subject(3, false).await;
    for (channel, source) in [(Some(Channel::Sms), "sms_reply"), (None, "hotline_dtmf_0")] {
        app.store
            .record_opt_out(&store::OptOut {
                subject_id: id.clone(),
                channel,
                category: None,
                source: source.into(),
                at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    // Listed, masked for roles that may not see personal data.
    let (st, v) = app.get(VIEWER, "/api/v1/opt-outs").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["masked"], true);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|o| o["subject_id"] != id.as_str()), "{v}");
    let (_, v) = app
        .get(
            EDITOR,
            &format!("/api/v1/opt-outs?subject_id={id}&channel=sms"),
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["subject_id"], id.as_str());
    assert_eq!(v["items"][0]["source"], "sms_reply");
    let (st, v) = app.get(EDITOR, "/api/v1/opt-outs?channel=fax").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_channel"))
    );

    // Undone by a role that manages subjects, with a reason; audited.
    let undo = json!({"subject_id": id, "channel": "sms", "reason": "居民来电：误回复 TD"});
    let (st, _) = app
        .post(VIEWER, "/api/v1/opt-outs/undo", undo.clone())
        .await;
    assert_eq!(st, 403);
    let (st, v) = app
        .post(
            EDITOR,
            "/api/v1/opt-outs/undo",
            json!({"subject_id": id, "channel": "sms", "reason": " "}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_opt_out"))
    );
    let (st, v) = app
        .post(EDITOR, "/api/v1/opt-outs/undo", undo.clone())
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["undone"]["source"], "sms_reply");
    let (st, _) = app.post(EDITOR, "/api/v1/opt-outs/undo", undo).await;
    assert_eq!(st, 404, "undone once");
    let (_, v) = app.get(EDITOR, "/api/v1/opt-outs").await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        1,
        "the other one stays"
    );
    assert_eq!(v["items"][0]["channel"], Value::Null);
    let masked = domain::ids::mask_subject_id(&id);
    let entries = audited(&app, "opt_out.undo", &masked).await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["operator_id"], "op-t-editor");
    assert_eq!(e["detail"]["reason"], "居民来电：误回复 TD");
    assert_eq!(e["detail"]["before"]["channel"], "sms");
    assert_eq!(e["detail"]["after"], Value::Null);
    assert!(e["at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_disabled_and_tokens_rotated() {
    let app = start(ApiConfig::default()).await;
    let (st, ed) = app
        .post(
            ADMIN,
            "/api/v1/operators",
            json!({"name": "编辑丙", "role": "editor"}),
        )
        .await;
    assert_eq!(st, 201, "{ed}");
    let (id, first) = (
        ed["id"].as_str().unwrap().to_string(),
        ed["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(app.get(&first, "/api/v1/tags").await.0, 200);
    // Only an admin rotates another's token; anyone rotates their own.
    let rotate = format!("/api/v1/operators/{id}/token");
    assert_eq!(app.post(EDITOR, &rotate, json!({})).await.0, 403);
    let (st, v) = app.post(&first, &rotate, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let second = v["token"].as_str().unwrap().to_string();
    assert_eq!(second.len(), 40);
    assert_eq!(app.get(&first, "/api/v1/tags").await.0, 401, "old token");
    assert_eq!(app.get(&second, "/api/v1/tags").await.0, 200);
    let (st, v) = app.post(ADMIN, &rotate, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let third = v["token"].as_str().unwrap().to_string();
    assert_eq!(app.get(&second, "/api/v1/tags").await.0, 401);

    // Disabled: its token stops working; only an admin disables, never itself.
    let disable = format!("/api/v1/operators/{id}/disable");
    assert_eq!(app.post(EDITOR, &disable, json!({})).await.0, 403);
    assert_eq!(
        app.post(ADMIN, "/api/v1/operators/op-t-admin/disable", json!({}))
            .await
            .0,
        403
    );
    let (st, v) = app.post(ADMIN, &disable, json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["disabled_at"].is_string(), "{v}");
    assert_eq!(app.get(&third, "/api/v1/tags").await.0, 401);
    assert_eq!(app.post(ADMIN, &disable, json!({})).await.0, 409);
    assert_eq!(app.post(ADMIN, &rotate, json!({})).await.0, 404);
    assert_eq!(audited(&app, "operator.disable", &id).await.len(), 1);
    assert_eq!(audited(&app, "operator.rotate_token", &id).await.len(), 2);
}
