//! Plain-language explanations and one subject's eligible policies, over HTTP in process
//! (the API router and the simulators on one local port, the embedded SQLite store), on
//! the demo's catalogue and a small demo population:
//!
//! - the attribute catalogue is managed by API (admins write, everyone reads) and the
//!   import checks declared types line by line;
//! - every demo policy's pushes link to recipient pages whose "why" is sentences only,
//!   and `{{ why }}` in a template carries the same sentences;
//! - `GET /subjects/{id}/eligible-policies` agrees with the bulk audiences (bitmap plans
//!   over the population index) for sampled subjects;
//! - a withdrawn policy's campaigns are cancelled and its queued pushes skipped; an
//!   expired policy sends nothing after its `effective_to` (at send time, then the sweep
//!   completes its campaigns).

use domain::operator::Role;
use population::{Generator, PopulationConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use testkit::{InProcess, Setup};

const ADMIN: &str = "t-admin";
const EDITOR: &str = "t-editor";
const VIEWER: &str = "t-viewer";

struct App {
    app: InProcess,
    /// Days the pipeline's clock runs ahead of the real one.
    days_ahead: Arc<AtomicI64>,
}

impl std::ops::Deref for App {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.app
    }
}

/// The API and the simulators; no pipeline role runs (the test plans campaigns itself).
async fn start() -> App {
    let days_ahead = Arc::new(AtomicI64::new(0));
    let ahead = days_ahead.clone();
    let mut setup = Setup::new(&[
        (ADMIN, Role::Admin),
        (EDITOR, Role::Editor),
        (VIEWER, Role::Viewer),
    ]);
    setup.prefix = "/api/v1";
    setup.clock = Some(Arc::new(move || {
        chrono::Utc::now() + chrono::Duration::days(ahead.load(Ordering::SeqCst))
    }));
    // The test opens many recipient pages from one address.
    setup.config.rate_limits.public_pages = api::guard::Rate {
        per_second: 1000.0,
        burst: 1000,
    };
    App {
        app: InProcess::start(setup).await,
        days_ahead,
    }
}

impl App {
    async fn import(&self, token: &str, ndjson: String) -> Value {
        let (status, v) = self.app.import(token, "application/x-ndjson", ndjson).await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// What a resident must never read in "why": rule syntax or attribute names.
fn rule_syntax(text: &str) -> Option<&'static str> {
    [
        ">=", "<=", "==", "!=", "&&", "||", "params.", "in tags", "has(", "attrs.", "_", "<code",
    ]
    .into_iter()
    .find(|f| text.contains(f))
}

/// The demo's catalogue, parameters, tags, a small population and its published
/// policies; answers the policy ids.
async fn seed(app: &App, residents: u64, enterprises: u64) -> Vec<String> {
    let today = app.pipeline.today();
    for a in population::catalogue::attributes() {
        app.ok(
            "PUT",
            ADMIN,
            &format!("/attributes/{}", a.name),
            Some(serde_json::to_value(&a).unwrap()),
        )
        .await;
    }
    for p in population::catalogue::params() {
        let body = json!({"description": p.description, "unit": p.unit, "values": p.values});
        app.ok("PUT", EDITOR, &format!("/params/{}", p.name), Some(body))
            .await;
    }
    for t in population::catalogue::tags(today) {
        let body = json!({"description": t.description, "rule": t.rule});
        app.ok("PUT", EDITOR, &format!("/tags/{}", t.name), Some(body))
            .await;
    }
    let gen = Generator::new(PopulationConfig {
        residents,
        enterprises,
        ..PopulationConfig::new(today)
    });
    let mut body = String::new();
    for i in 0..residents {
        body.push_str(&serde_json::to_string(&gen.resident(i).to_doc()).unwrap());
        body.push('\n');
    }
    for i in 0..enterprises {
        body.push_str(&serde_json::to_string(&gen.enterprise(i).to_doc()).unwrap());
        body.push('\n');
    }
    let report = app.import(EDITOR, body).await;
    assert_eq!(report["rejected_count"], 0, "{report}");
    let mut ids = Vec::new();
    for p in population::catalogue::policies(today) {
        let created = app
            .ok(
                "POST",
                EDITOR,
                "/policies",
                Some(serde_json::to_value(&p).unwrap()),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        app.ok("POST", ADMIN, &format!("/policies/{id}/publish"), None)
            .await;
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attribute_catalogue_is_read_by_all_and_written_by_admins() {
    let app = start().await;
    let body = json!({"label": "参保月数", "type": "integer", "unit": "个月"});
    let (status, _) = app
        .call(
            "PUT",
            EDITOR,
            "/attributes/insured_months",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 403, "editors do not declare attributes");
    let put = app
        .ok("PUT", ADMIN, "/attributes/insured_months", Some(body))
        .await;
    assert_eq!(put["name"], "insured_months");
    assert_eq!(put["type"], "integer");
    let got = app
        .ok("GET", VIEWER, "/attributes/insured_months", None)
        .await;
    assert_eq!(got["label"], "参保月数");
    let list = app.ok("GET", VIEWER, "/attributes", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, v) = app
        .call(
            "PUT",
            ADMIN,
            "/attributes/age",
            Some(json!({"label": "年龄", "type": "integer"})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_attribute"))
    );
    let (status, v) = app
        .call(
            "PUT",
            ADMIN,
            "/attributes/hukou",
            Some(json!({"name": "district", "label": "户籍", "type": "string"})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_attribute"))
    );
    // The import checks the declared type, per line.
    let ok = r#"{"id":"11010519491231002X","kind":"person","attributes":{"insured_months":12}}"#;
    let bad =
        r#"{"id":"11010519491231002X","kind":"person","attributes":{"insured_months":"十二"}}"#;
    let report = app.import(EDITOR, format!("{ok}\n{bad}\n")).await;
    assert_eq!(report["accepted"], 1);
    assert_eq!(report["rejected"][0]["line"], 2);
    assert!(report["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid_attribute: attribute insured_months (参保月数)"));
    let (status, _) = app
        .call("DELETE", EDITOR, "/attributes/insured_months", None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call("DELETE", ADMIN, "/attributes/insured_months", None)
        .await;
    assert_eq!(status, 204);
    let audit = app.ok("GET", ADMIN, "/audit", None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"attribute.put") && actions.contains(&"attribute.delete"));
}

/// Every demo policy, planned for its whole audience: each push's recipient page says
/// why in sentences, never in rule syntax, and `{{ why }}` renders the same sentences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_pages_of_every_demo_policy_show_sentences_only() {
    let app = start().await;
    let policies = seed(&app, 4_000, 1_500).await;
    let mut pages = 0;
    for (i, policy_id) in policies.iter().enumerate() {
        let id = planned_campaign(&app, policy_id, &format!("说明测试 {i}")).await;
        let pushes = app.store.campaign_pushes(&id, 0, 30).await.unwrap();
        assert!(!pushes.is_empty(), "policy {i}: nobody was planned");
        for push in pushes {
            let e: domain::rule::Explanation = serde_json::from_str(&push.explanation).unwrap();
            let why = e.why();
            assert!(!why.is_empty(), "policy {i}: {e}");
            assert!(push.content.contains(&why), "{}", push.content);
            let html = app
                .http
                .get(format!("{}/l/{}", app.base, push.link_code))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let start = html
                .find(r#"<section id="why">"#)
                .unwrap_or_else(|| panic!("no why section: {html}"));
            let end = start + html[start..].find("</section>").unwrap();
            let section = &html[start..end];
            if let Some(bad) = rule_syntax(section) {
                panic!("policy {i}: {bad:?} on the recipient page: {section}");
            }
            for sentence in e.sentences() {
                assert!(section.contains(sentence), "{sentence} not in {section}");
            }
            pages += 1;
        }
        // Operators still see the clauses.
        let listed = app
            .ok(
                "GET",
                EDITOR,
                &format!("/campaigns/{id}/pushes?limit=1"),
                None,
            )
            .await;
        let item = &listed["items"][0];
        assert!(
            item["explanation"].as_str().unwrap().contains("✓"),
            "{item}"
        );
        assert!(!item["why"].as_str().unwrap().is_empty(), "{item}");
    }
    assert!(pages >= policies.len());
}

/// `eligible-policies` answers exactly the policies whose bulk audience (bitmap plan over
/// the population index) holds the subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligible_policies_agree_with_the_bulk_audiences() {
    let app = start().await;
    let policies = seed(&app, 3_000, 1_000).await;
    let today = app.pipeline.today();
    let params = pipeline::matching::params_on(app.store.as_ref(), today)
        .await
        .unwrap();
    let mut audiences = Vec::new();
    for id in &policies {
        let p = app.store.get_policy(id).await.unwrap().unwrap();
        let checked = p.draft.check().unwrap();
        let criteria = pipeline::matching::Criteria {
            eligibility: checked.eligibility.bind(&params),
            filter: None,
        };
        let index = app.pipeline.index.read().unwrap();
        audiences.push(criteria.plan().run(&index, today));
    }
    let ids: Vec<String> = {
        let index = app.pipeline.index.read().unwrap();
        // every 23rd subject, and every member of some audience among the first
        let mut ids: Vec<String> = (0..index.len())
            .step_by(23)
            .map(|i| index.key(i).to_string())
            .collect();
        for a in &audiences {
            ids.extend(a.iter().take(5).map(|i| index.key(i).to_string()));
        }
        ids
    };
    let mut matched = 0;
    for id in &ids {
        let v = app
            .ok(
                "GET",
                VIEWER,
                &format!("/subjects/{id}/eligible-policies"),
                None,
            )
            .await;
        let got: BTreeSet<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["policy_id"].as_str().unwrap().to_string())
            .collect();
        let dense = app.pipeline.index.read().unwrap().id_of(id).unwrap();
        let want: BTreeSet<String> = policies
            .iter()
            .zip(&audiences)
            .filter(|(_, a)| a.contains(dense))
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(got, want, "subject {id}");
        for item in v["items"].as_array().unwrap() {
            matched += 1;
            let explanation = item["explanation"].as_str().unwrap();
            assert!(
                !explanation.is_empty() && rule_syntax(explanation).is_none(),
                "{item}"
            );
            assert!(item["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(item.get("benefit").is_some());
        }
    }
    assert!(
        matched > 20,
        "the sample holds eligible subjects ({matched})"
    );
    let (status, _) = app
        .call(
            "GET",
            VIEWER,
            "/subjects/91310000MA1FL8XX1X/eligible-policies",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// A campaign of `policy_id` on WeChat then SMS, launched and planned; answers its id.
async fn planned_campaign(app: &App, policy_id: &str, name: &str) -> String {
    let body = json!({
        "name": name, "policy_id": policy_id, "mode": "once", "channels": ["wechat", "sms"],
        "templates": {"wechat": "{{ policy.title }}：{{ why }} {{ link }}",
                      "sms": "{{ policy.title }}：{{ why }} {{ link }}"},
    });
    let c = app.ok("POST", EDITOR, "/campaigns", Some(body)).await;
    let id = c["id"].as_str().unwrap().to_string();
    app.ok("POST", EDITOR, &format!("/campaigns/{id}/launch"), None)
        .await;
    let record = app.store.get_campaign(&id).await.unwrap().unwrap();
    pipeline::planner::plan(&app.pipeline, record)
        .await
        .unwrap();
    id
}

fn audit_actions(audit: &Value) -> Vec<String> {
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_or_expired_policy_sends_nothing_more() {
    let app = start().await;
    let policies = seed(&app, 2_000, 1_000).await;
    // Withdrawal: the campaign is cancelled, its queued pushes skipped, all audited.
    let training = &policies[3];
    let c1 = planned_campaign(&app, training, "培训补贴").await;
    let queued = app.store.campaign_counts(&c1).await.unwrap().queued;
    assert!(queued > 0);
    let (status, _) = app
        .call(
            "POST",
            EDITOR,
            &format!("/policies/{training}/withdraw"),
            None,
        )
        .await;
    assert_eq!(status, 403, "editors do not withdraw policies");
    let w = app
        .ok(
            "POST",
            ADMIN,
            &format!("/policies/{training}/withdraw"),
            None,
        )
        .await;
    assert_eq!(w["status"], "withdrawn");
    assert_eq!(w["cancelled_campaigns"], json!([c1]));
    assert_eq!(w["skipped_pushes"], queued);
    let counts = app.store.campaign_counts(&c1).await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.delivered), (0, 0, 0));
    let c = app
        .ok("GET", EDITOR, &format!("/campaigns/{c1}"), None)
        .await;
    assert_eq!(c["status"], "cancelled");
    let (status, v) = app
        .call(
            "POST",
            ADMIN,
            &format!("/policies/{training}/withdraw"),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("invalid_state"))
    );
    let actions = audit_actions(&app.ok("GET", ADMIN, "/audit", None).await);
    assert!(
        actions.iter().any(|a| a == "policy.withdraw"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "campaign.cancel"),
        "{actions:?}"
    );
    // Nobody is told of it any more.
    let someone = app.store.campaign_pushes(&c1, 0, 1).await.unwrap();
    assert!(someone.is_empty(), "queued pushes are gone");

    // Expiry: 稳岗返还 ends on 31 December; a month later nothing of it is sent.
    let sme = &policies[0];
    let c2 = planned_campaign(&app, sme, "稳岗返还").await;
    let pushes = app.store.campaign_pushes(&c2, 0, 2).await.unwrap();
    assert_eq!(pushes.len(), 2);
    let total = app.store.campaign_counts(&c2).await.unwrap().queued;
    let to = app
        .store
        .get_policy(sme)
        .await
        .unwrap()
        .unwrap()
        .draft
        .effective_to
        .unwrap();
    let days = (to - app.pipeline.today()).num_days() + 1;
    app.days_ahead.store(days, Ordering::SeqCst);
    assert!(app.pipeline.today() > to);
    // At send time (before any sweep): claimed, then skipped.
    for push in &pushes {
        let stats = pipeline::delivery::deliver(
            &app.pipeline,
            push.channel,
            std::slice::from_ref(&push.id),
        )
        .await
        .unwrap();
        assert_eq!((stats.claimed, stats.skipped), (1, 1), "{stats:?}");
    }
    // The sweep expires the policy and completes its campaign.
    pipeline::sweep::sweep(&app.pipeline).await.unwrap();
    let p = app
        .ok("GET", VIEWER, &format!("/policies/{sme}"), None)
        .await;
    assert_eq!(p["status"], "expired");
    let c = app
        .ok("GET", EDITOR, &format!("/campaigns/{c2}"), None)
        .await;
    assert_eq!(c["status"], "completed");
    let counts = app.store.campaign_counts(&c2).await.unwrap();
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 0));
    assert_eq!(
        counts.skipped.get("policy_ended"),
        Some(&total),
        "every planned push ended skipped"
    );
    let actions = audit_actions(&app.ok("GET", ADMIN, "/audit", None).await);
    assert!(actions.iter().any(|a| a == "policy.expire"), "{actions:?}");
    // Neither policy is offered to anyone any more.
    let v = app
        .ok(
            "GET",
            VIEWER,
            &format!("/subjects/{}/eligible-policies", pushes[0].subject_id),
            None,
        )
        .await;
    assert!(!v["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["policy_id"] == *sme));
}
