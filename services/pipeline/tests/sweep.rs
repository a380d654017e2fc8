//! The calendar sweep and policy parameters, on the embedded store with a clock the test
//! moves: someone who turns eligible by the date alone (a birthday, a new parameter value
//! taking effect) is found without any change event and gets exactly one push.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::campaign::{CampaignMode, CampaignStatus};
use domain::ids::resident_id_check_char;
use domain::param::{ParamValue, PolicyParam};
use domain::policy::PolicyStatus;
use domain::{Subject, SubjectDoc};
use pipeline::matching::{audience_from_index, params_on, Criteria, TagRules};
use pipeline::{planner, sweep, Pipeline, PipelineConfig};
use serde_json::json;
use std::sync::{Arc, Mutex};
use store::{CampaignChange, CampaignRecord, ParamRecord, PolicyRecord, Store, TagRecord};

struct World {
    p: Pipeline,
    now: Arc<Mutex<DateTime<Utc>>>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(day: NaiveDate) -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = store::open(&url).await.unwrap();
        let mut p = Pipeline::new(
            store,
            Arc::new(bus::memory::MemoryBus::new()),
            Arc::new(limits::MemoryRateLimiter::new()),
            connectors::build_providers(&Default::default()),
            PipelineConfig::default(),
        );
        let now = Arc::new(Mutex::new(noon(day)));
        let clock = now.clone();
        p.clock = Arc::new(move || *clock.lock().unwrap());
        World { p, now, _dir: dir }
    }

    fn store(&self) -> &dyn Store {
        self.p.store.as_ref()
    }

    fn set_day(&self, day: NaiveDate) {
        *self.now.lock().unwrap() = noon(day);
    }

    /// Upserts subjects tagged on the clock's date, as the API does, and rebuilds the
    /// index from the store.
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
    }

    /// A published policy and a running continuous campaign for it, planned once.
    async fn continuous_campaign(&self, eligibility: &str, benefit: Option<&str>) -> String {
        let policy = PolicyRecord {
            id: "pol-1".into(),
            status: PolicyStatus::Published,
            draft: serde_json::from_value(json!({
                "title": "青年就业补贴", "eligibility": eligibility, "benefit": benefit,
            }))
            .unwrap(),
            created_by: "op-1".into(),
            created_at: Utc::now(),
            published_at: Some(Utc::now()),
        };
        self.store().insert_policy(&policy).await.unwrap();
        let c = CampaignRecord {
            id: "cmp-1".into(),
            policy_id: policy.id.clone(),
            name: "continuous".into(),
            mode: CampaignMode::Continuous,
            status: CampaignStatus::Draft,
            draft: serde_json::from_value(json!({
                "policy_id": policy.id, "name": "continuous", "mode": "continuous",
                "channels": ["sms"], "templates": {"sms": "{{ policy.title }} {{ link }}"},
            }))
            .unwrap(),
            created_by: "op-1".into(),
            approved_by: None,
            created_at: Utc::now(),
            launched_at: None,
            planned_at: None,
            completed_at: None,
        };
        self.store().insert_campaign(&c).await.unwrap();
        let c = self
            .store()
            .transition_campaign(
                &c.id,
                &[CampaignStatus::Draft],
                CampaignStatus::Running,
                CampaignChange {
                    launched_at: Some(Utc::now()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        planner::plan(&self.p, c).await.unwrap();
        "cmp-1".into()
    }

    /// The campaign's pushes: (subject id, explanation, benefit).
    async fn pushes(&self, campaign: &str) -> Vec<(String, String, Option<f64>)> {
        let mut rows: Vec<_> = self
            .store()
            .campaign_pushes(campaign, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.subject_id, p.explanation, p.benefit))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Noon in Shanghai on `d`.
fn noon(d: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn resident_id(birth: &str, n: u32) -> String {
    let first17 = format!("310101{birth}{n:03}");
    format!("{first17}{}", resident_id_check_char(&first17).unwrap())
}

fn person(birth: &str, n: u32, attrs: serde_json::Value) -> Subject {
    Subject::from_doc(SubjectDoc {
        id: resident_id(birth, n),
        kind: "person".into(),
        name: "测试".into(),
        mobile: Some(format!("139{n:08}")),
        wechat_openid: None,
        attributes: attrs.as_object().cloned().unwrap_or_default(),
    })
    .unwrap()
}

#[tokio::test]
async fn whoever_turns_eligible_by_the_calendar_gets_exactly_one_push() {
    let w = World::new(day("2026-03-07")).await;
    w.store()
        .put_tag(&TagRecord {
            name: "youth".into(),
            description: "16–24 岁".into(),
            rule: "age >= 16 && age <= 24".into(),
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
    let birthday = person("20100308", 1, json!({}));
    let older = person("20050101", 2, json!({}));
    let child = person("20110101", 3, json!({}));
    let birthday_id = birthday.id.as_str().to_string();
    let older_id = older.id.as_str().to_string();
    w.upsert(vec![birthday, older, child]).await;
    let cid = w.continuous_campaign("'youth' in tags", None).await;
    assert_eq!(
        w.pushes(&cid).await.len(),
        1,
        "only the 21-year-old at launch"
    );

    // Same day: nothing new.
    let r = sweep::sweep(&w.p).await.unwrap();
    assert_eq!((r.retagged, r.newly_eligible), (0, 0));
    assert!(r.campaigns.is_empty());

    // The next day the first subject turns 16: no change event, only the date.
    w.set_day(day("2026-03-08"));
    let r = sweep::sweep(&w.p).await.unwrap();
    assert_eq!(r.date, Some(day("2026-03-08")));
    assert_eq!(r.retagged, 1);
    assert_eq!(r.newly_eligible, 1);
    assert_eq!(r.campaigns, vec![cid.clone()]);
    let (_, tags) = w.store().get_subject(&birthday_id).await.unwrap().unwrap();
    assert_eq!(tags, vec!["youth".to_string()]);
    {
        let ix = w.p.index.read().unwrap();
        let id = ix.id_of(&birthday_id).unwrap();
        assert!(ix.tag("youth").contains(id), "index tag updated in place");
    }
    let pushes = w.pushes(&cid).await;
    let subjects: Vec<&str> = pushes.iter().map(|p| p.0.as_str()).collect();
    let mut want = vec![birthday_id.as_str(), older_id.as_str()];
    want.sort();
    assert_eq!(subjects, want);

    // Sweeping again (a restart, the next day) never pushes twice.
    let r = sweep::sweep(&w.p).await.unwrap();
    assert_eq!(r.newly_eligible, 0);
    w.set_day(day("2026-03-09"));
    sweep::sweep(&w.p).await.unwrap();
    assert_eq!(w.pushes(&cid).await.len(), 2);
}

fn months_param() -> ParamRecord {
    ParamRecord {
        param: PolicyParam {
            name: "min_insured_months".into(),
            description: "连续参保月数下限".into(),
            unit: "月".into(),
            values: vec![
                ParamValue {
                    effective_from: day("2025-01-01"),
                    value: 12.0,
                    legal_ref: "沪人社规〔2024〕30号".into(),
                },
                ParamValue {
                    effective_from: day("2026-03-08"),
                    value: 6.0,
                    legal_ref: "沪人社规〔2026〕2号".into(),
                },
            ],
        }
        .check()
        .unwrap(),
        updated_at: Utc::now(),
    }
}

#[tokio::test]
async fn a_new_parameter_value_changes_the_audience_on_its_date() {
    let w = World::new(day("2026-03-07")).await;
    w.store().put_param(&months_param()).await.unwrap();
    w.store()
        .put_param(&ParamRecord {
            param: PolicyParam {
                name: "subsidy_per_month".into(),
                description: "每月补贴".into(),
                unit: "元".into(),
                values: vec![ParamValue {
                    effective_from: day("2024-01-01"),
                    value: 250.5,
                    legal_ref: "沪人社规〔2023〕12号".into(),
                }],
            },
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
    let long = person("19900101", 1, json!({"insured_months": 14}));
    let short = person("19900101", 2, json!({"insured_months": 8}));
    let none = person("19900101", 3, json!({}));
    let (long_id, short_id) = (long.id.as_str().to_string(), short.id.as_str().to_string());
    w.upsert(vec![long, short, none]).await;
    let eligibility = "kind == 'person' && insured_months >= params.min_insured_months";
    let benefit = "insured_months * params.subsidy_per_month";

    // The audience preview on each date, bulk and per subject alike.
    let criteria = Criteria {
        eligibility: domain::Rule::parse(eligibility).unwrap(),
        filter: None,
    };
    for (d, want) in [("2026-03-07", 1), ("2026-03-08", 2)] {
        let bound = criteria.bind(&params_on(w.store(), day(d)).await.unwrap());
        let a = {
            let ix = w.p.index.read().unwrap();
            audience_from_index(&ix, &bound, day(d), 10)
        };
        assert_eq!(a.count, want, "{d}");
        let mut per_subject = 0;
        pipeline::matching::for_each_subject(w.store(), |s, tags| {
            per_subject += u64::from(bound.matches(&domain::Facts::new(s, tags, day(d))));
        })
        .await
        .unwrap();
        assert_eq!(per_subject, want, "{d}");
    }

    let cid = w.continuous_campaign(eligibility, Some(benefit)).await;
    let pushes = w.pushes(&cid).await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].0, long_id);
    assert_eq!(pushes[0].2, Some(14.0 * 250.5));
    assert!(
        pushes[0].1.contains(r#""params.min_insured_months":"12""#),
        "{}",
        pushes[0].1
    );

    // The lower threshold takes effect on 8 March: the sweep finds the 8-month subject.
    w.set_day(day("2026-03-08"));
    let r = sweep::sweep(&w.p).await.unwrap();
    assert_eq!(r.newly_eligible, 1);
    let pushes = w.pushes(&cid).await;
    assert_eq!(pushes.len(), 2);
    let new = pushes.iter().find(|p| p.0 == short_id).unwrap();
    assert!(
        new.1.contains(r#""params.min_insured_months":"6""#),
        "{}",
        new.1
    );
    assert_eq!(new.2, Some(8.0 * 250.5));
    sweep::sweep(&w.p).await.unwrap();
    assert_eq!(w.pushes(&cid).await.len(), 2, "at most once per subject");
}

#[tokio::test]
async fn tags_from_the_index_equal_tags_per_subject() {
    let w = World::new(day("2026-03-07")).await;
    let mut subjects = Vec::new();
    for (i, birth) in ["20100308", "20050101", "19800101", "20020707", "19990101"]
        .iter()
        .enumerate()
    {
        for months in [None, Some(3), Some(12), Some(30)] {
            let n = (i * 10) as u32 + months.unwrap_or(0);
            let attrs = match months {
                Some(m) => json!({"insured_months": m}),
                None => json!({}),
            };
            subjects.push(person(birth, n, attrs));
        }
    }
    // Stored untagged: the tags are defined afterwards.
    w.upsert(subjects.clone()).await;
    w.store().put_param(&months_param()).await.unwrap();
    for (name, rule) in [
        ("youth", "age >= 16 && age <= 24"),
        ("insured", "insured_months >= params.min_insured_months"),
        ("young_insured", "'youth' in tags && 'insured' in tags"),
        ("not_youth", "!('youth' in tags) && size(tags) < 2"),
    ] {
        w.store()
            .put_tag(&TagRecord {
                name: name.into(),
                description: String::new(),
                rule: rule.into(),
                updated_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    for d in ["2026-03-07", "2026-03-08"] {
        let today = day(d);
        let rules = TagRules::load(w.store(), today).await.unwrap();
        pipeline::matching::retag_from_index(w.store(), &w.p.index, &rules, today)
            .await
            .unwrap();
        for s in &subjects {
            let want = rules.tags_for(s, today);
            let (_, got) = w.store().get_subject(s.id.as_str()).await.unwrap().unwrap();
            assert_eq!(got, want, "{d} {:?}", s.attributes);
            let ix = w.p.index.read().unwrap();
            let (_, indexed) = ix.row(ix.id_of(s.id.as_str()).unwrap());
            let mut sorted = want.clone();
            sorted.sort();
            let mut indexed = indexed;
            indexed.sort();
            assert_eq!(indexed, sorted, "index, {d}");
        }
    }
    // A second pass on the same day changes nobody.
    let rules = TagRules::load(w.store(), day("2026-03-08")).await.unwrap();
    let changed =
        pipeline::matching::retag_from_index(w.store(), &w.p.index, &rules, day("2026-03-08"))
            .await
            .unwrap();
    assert_eq!(changed, 0);
}

#[tokio::test]
async fn a_planner_without_an_index_sweeps_from_the_store() {
    let w = World::new(day("2026-03-07")).await;
    w.store()
        .put_tag(&TagRecord {
            name: "youth".into(),
            description: String::new(),
            rule: "age >= 16 && age <= 24".into(),
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
    let birthday = person("20100308", 1, json!({}));
    let id = birthday.id.as_str().to_string();
    w.upsert(vec![birthday]).await;
    let cid = w.continuous_campaign("'youth' in tags", None).await;
    assert!(w.pushes(&cid).await.is_empty());
    // The planner role alone never builds the shared index.
    *w.p.index.write().unwrap() = matcher::PopulationIndex::new();
    w.set_day(day("2026-03-08"));
    let r = sweep::sweep(&w.p).await.unwrap();
    assert_eq!((r.retagged, r.newly_eligible), (1, 1));
    assert_eq!(w.pushes(&cid).await.len(), 1);
    assert!(
        w.p.index.read().unwrap().is_empty(),
        "the shared index is left alone"
    );
    let (_, tags) = w.store().get_subject(&id).await.unwrap().unwrap();
    assert_eq!(tags, ["youth"]);
    sweep::sweep(&w.p).await.unwrap();
    assert_eq!(w.pushes(&cid).await.len(), 1);
}
