//! The store conformance suite: every case runs against SQLite (a temporary file) and
//! PostgreSQL (a fresh database per test, created on the server of
//! `POLICY_PUSH_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`,
//! and dropped afterwards). Both backends must give the same answers.

use chrono::{DateTime, Duration, Utc};
use domain::campaign::{CampaignMode, CampaignStatus};
use domain::operator::Role;
use domain::policy::PolicyStatus;
use domain::push::{PushPurpose, PushStatus, SkipReason};
use domain::{Channel, Subject, SubjectDoc};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use store::*;

// ---------------------------------------------------------------- harness

struct TestStore {
    store: Arc<dyn Store>,
    /// The database's URL, for cases that change rows behind the store's back.
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any runtime's async context: use a small one of our own.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(store::postgres::admin::drop_database(&admin, &name))
            })
            .join();
        }
    }
}

async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    TestStore {
        store: store::open(&url).await.unwrap(),
        url,
        _dir: Some(dir),
        pg: None,
    }
}

async fn postgres_store() -> TestStore {
    let admin = std::env::var("POLICY_PUSH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("pp_test_{}", uuid::Uuid::new_v4().simple());
    store::postgres::admin::create_database(&admin, &name)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
    let url = store::postgres::admin::url_for_database(&admin, &name).unwrap();
    TestStore {
        store: store::open(&format!("{url}?pool_max=8")).await.unwrap(),
        url,
        _dir: None,
        pg: Some((admin, name)),
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let t = super::sqlite_store().await;
                    super::$case(t.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let t = super::postgres_store().await;
                    super::$case(t.store.clone()).await;
                }
            )*
        }
    };
}

/// Cases that also change rows behind the store's back (given the database URL).
macro_rules! conformance_raw {
    ($($case:ident),* $(,)?) => {
        mod sqlite_raw {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let t = super::sqlite_store().await;
                    super::$case(t.store.clone(), &t.url).await;
                }
            )*
        }
        mod postgres_raw {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let t = super::postgres_store().await;
                    super::$case(t.store.clone(), &t.url).await;
                }
            )*
        }
    };
}

conformance_raw!(
    record_chains_catch_edited_and_deleted_entries,
    record_published_heads_catch_a_rewritten_tail,
);

conformance!(
    record_a_fallback_push_has_its_whole_trail,
    record_every_transition_is_an_event,
    record_a_rolled_back_hand_over_leaves_the_chains_intact,
    operators_by_token_hash,
    subjects_upsert_replace_and_page,
    subjects_batch_naming_one_twice_keeps_the_last,
    tags_replace_per_subject,
    catalogue_tags_and_policies,
    campaign_transitions_check_the_current_status,
    approved_campaigns_return_to_review_without_their_approvals,
    plan_batches_are_idempotent_and_counted,
    hand_over_is_on_the_bus_only_once_committed,
    the_relay_cursor_follows_its_campaign,
    running_campaigns_take_turns_at_the_relay,
    reconciliation_sees_only_claims_older_than_the_lease,
    claim_is_exclusive_and_outcomes_are_recorded,
    concurrent_claimers_never_take_the_same_push,
    concurrent_relays_never_take_the_same_push,
    a_claim_racing_the_relays_hand_over_takes_every_push,
    receipts_clicks_and_links,
    receipt_batches_apply_as_one_at_a_time,
    receipt_batches_span_chunks,
    late_receipts_apply_once_when_the_send_is_recorded,
    opt_outs_are_listed_by_filter_and_undone,
    sent_without_receipt_pages_oldest_first,
    once_campaigns_complete_when_every_push_is_final,
    audit_log_pages_in_order,
    ops_send_time_skips_replace_the_push,
    ops_queued_pushes_of_a_campaign_end_skipped,
    ops_subjects_with_policy_across_campaigns,
    ops_subjects_by_mobile,
    ops_scheduled_runs_start_once_and_end,
    ops_policy_reviews_latest_counts,
    reports_count_the_funnel_by_channel_and_district,
    subject_history_and_operators,
    operators_are_disabled_rotated_and_sessions_revoked,
    params_round_trip_with_dated_values,
    campaign_subjects_are_those_planned,
    tallies_follow_every_change_and_fold_exactly,
    concurrent_writers_keep_tallies_exact,
    subjects_by_ids_and_recent_writes,
    provider_templates_round_trip,
    attributes_round_trip,
    subjects_resolve_by_pseudonym,
);

// ---------------------------------------------------------------- fixtures

fn resident_id(n: u32) -> String {
    let first = format!("31011519900101{:03}", n % 1000);
    let c = domain::ids::resident_id_check_char(&first).unwrap();
    format!("{first}{c}")
}

fn person(n: u32, attrs: serde_json::Value) -> Subject {
    let doc: SubjectDoc = serde_json::from_value(json!({
        "id": resident_id(n), "kind": "person", "name": format!("居民{n}"),
        "mobile": format!("139{n:08}"), "attributes": attrs,
    }))
    .unwrap();
    Subject::from_doc(doc).unwrap()
}

async fn policy(s: &dyn Store, id: &str) -> PolicyRecord {
    let p = PolicyRecord {
        id: id.into(),
        status: PolicyStatus::Draft,
        draft: serde_json::from_value(json!({"title": "稳岗返还", "eligibility": "true"})).unwrap(),
        created_by: "op-1".into(),
        created_at: Utc::now(),
        published_at: None,
    };
    s.insert_policy(&p).await.unwrap();
    p
}

async fn campaign(s: &dyn Store, id: &str, mode: CampaignMode) -> CampaignRecord {
    let pid = format!("pol-{id}");
    policy(s, &pid).await;
    let c = CampaignRecord {
        id: id.into(),
        policy_id: pid.clone(),
        name: format!("campaign {id}"),
        mode,
        status: CampaignStatus::Draft,
        draft: serde_json::from_value(json!({"policy_id": pid, "name": "c", "mode": mode.as_str(),
            "channels": ["sms"], "templates": {"sms": "{{ policy.title }}"}}))
        .unwrap(),
        created_by: "op-1".into(),
        approved_by: None,
        created_at: Utc::now(),
        launched_at: None,
        planned_at: None,
        completed_at: None,
    };
    s.insert_campaign(&c).await.unwrap();
    c
}

async fn running_campaign(s: &dyn Store, id: &str, mode: CampaignMode) -> CampaignRecord {
    campaign(s, id, mode).await;
    s.transition_campaign(
        id,
        &[CampaignStatus::Draft],
        CampaignStatus::Running,
        CampaignChange {
            launched_at: Some(Utc::now()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn new_push(campaign: &str, n: u32, channel: Channel) -> NewPush {
    NewPush {
        id: format!("p-{campaign}-{n:05}"),
        subject_id: resident_id(n),
        purpose: PushPurpose::Notice,
        channel,
        recipient: format!("139{n:08}"),
        content: format!("message {n}"),
        link_code: format!("l{campaign}{n:05}"),
        explanation: json!({"held": ["true"]}).to_string(),
        benefit: n.is_multiple_of(2).then_some(f64::from(n) * 10.5),
        segments: (channel == Channel::Sms).then_some(1),
    }
}

async fn planned(s: &dyn Store, cid: &str, n: u32) -> Vec<NewPush> {
    running_campaign(s, cid, CampaignMode::Once).await;
    let pushes: Vec<_> = (0..n).map(|i| new_push(cid, i, Channel::Sms)).collect();
    assert_eq!(
        s.insert_plan_batch(cid, &pushes, &[], chrono::Utc::now())
            .await
            .unwrap(),
        u64::from(n)
    );
    pushes
}

fn ids(rows: &[PushRecord]) -> BTreeSet<String> {
    rows.iter().map(|r| r.id.clone()).collect()
}

/// Hands the outbox rows due by `now` to "the bus" (a committed hand-over); returns them.
async fn on_the_bus(s: &dyn Store, now: DateTime<Utc>, limit: u32) -> Vec<PushRecord> {
    let handover = s.hand_over(now, limit).await.unwrap();
    let pushes = handover.pushes().to_vec();
    handover.commit().await.unwrap();
    pushes
}

// ---------------------------------------------------------------- cases

async fn operators_by_token_hash(s: Arc<dyn Store>) {
    assert_eq!(s.count_operators().await.unwrap(), 0);
    let op = OperatorRecord {
        id: "op-1".into(),
        name: "张三".into(),
        role: Role::Reviewer,
        created_at: Utc::now(),
        created_by: None,
        disabled_at: None,
    };
    s.insert_operator(&op, "hash-1").await.unwrap();
    assert_eq!(s.count_operators().await.unwrap(), 1);
    let got = s.operator_by_token_hash("hash-1").await.unwrap().unwrap();
    assert_eq!((got.id.as_str(), got.name.as_str()), ("op-1", "张三"));
    assert_eq!(got.role, Role::Reviewer);
    assert!((got.created_at - op.created_at).num_milliseconds().abs() < 1);
    assert!(s.operator_by_token_hash("other").await.unwrap().is_none());
    assert!(
        s.insert_operator(
            &OperatorRecord {
                id: "op-2".into(),
                ..op
            },
            "hash-1"
        )
        .await
        .is_err(),
        "a token hash belongs to one operator"
    );
}

async fn subjects_upsert_replace_and_page(s: Arc<dyn Store>) {
    let batch: Vec<_> = (0..25)
        .map(|n| {
            (
                person(n, json!({"district": "浦东新区", "graduation_year": 2024})),
                vec!["recent_graduate".to_string()],
            )
        })
        .collect();
    s.upsert_subjects(&batch).await.unwrap();
    assert_eq!(s.count_subjects().await.unwrap(), 25);
    let (got, tags) = s.get_subject(&resident_id(3)).await.unwrap().unwrap();
    assert_eq!(got, batch[3].0);
    assert_eq!(tags, vec!["recent_graduate".to_string()]);

    // Replacing changes attributes and tags, and adds no row.
    let changed = person(3, json!({"district": "徐汇区"}));
    s.upsert_subjects(&[(changed.clone(), vec![])])
        .await
        .unwrap();
    assert_eq!(s.count_subjects().await.unwrap(), 25);
    assert_eq!(
        s.get_subject(&resident_id(3)).await.unwrap().unwrap(),
        (changed, vec![])
    );
    assert!(s.get_subject("nobody").await.unwrap().is_none());

    // Pages in id order cover everyone once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.subjects_page(after.as_deref(), 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = Some(page.last().unwrap().0.id.as_str().to_string());
        seen.extend(page.into_iter().map(|(p, _)| p.id.as_str().to_string()));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");
    assert_eq!(seen.len(), 25);
}

async fn subjects_batch_naming_one_twice_keeps_the_last(s: Arc<dyn Store>) {
    let first = person(1, json!({"age_band": "a"}));
    let second = person(1, json!({"age_band": "b"}));
    s.upsert_subjects(&[
        (first, vec!["x".into()]),
        (person(2, json!({})), vec![]),
        (second.clone(), vec!["y".into()]),
    ])
    .await
    .unwrap();
    assert_eq!(s.count_subjects().await.unwrap(), 2);
    assert_eq!(
        s.get_subject(&resident_id(1)).await.unwrap().unwrap(),
        (second, vec!["y".to_string()])
    );
}

async fn subjects_resolve_by_pseudonym(s: Arc<dyn Store>) {
    // More subjects than one statement binds on SQLite (chunks of pairs and of lookups).
    let subjects: Vec<(Subject, Vec<String>)> =
        (0..600).map(|n| (person(n, json!({})), vec![])).collect();
    s.upsert_subjects(&subjects).await.unwrap();
    let key_a = domain::pseudonym::Pseudonymizer::from_key(&[1u8; 32]).unwrap();
    let key_b = domain::pseudonym::Pseudonymizer::from_key(&[2u8; 32]).unwrap();
    let pairs = |k: &domain::pseudonym::Pseudonymizer| -> Vec<(String, String)> {
        subjects
            .iter()
            .map(|(p, _)| (k.subject(p.id.as_str()), p.id.as_str().to_string()))
            .collect()
    };
    s.put_subject_pseudonyms(&pairs(&key_a)).await.unwrap();
    // Recording known pairs again changes nothing; a new key adds its own pairs.
    s.put_subject_pseudonyms(&pairs(&key_a)).await.unwrap();
    s.put_subject_pseudonyms(&pairs(&key_b)[..10])
        .await
        .unwrap();
    // A pair of a subject that does not exist resolves to nothing.
    s.put_subject_pseudonyms(&[("feed".into(), resident_id(999))])
        .await
        .unwrap();
    let mut asked: Vec<String> = pairs(&key_a).into_iter().map(|(p, _)| p).collect();
    asked.extend(["feed".to_string(), "unknown".to_string()]);
    let found: BTreeSet<String> = s
        .subjects_by_pseudonym(&asked)
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.id.as_str().to_string())
        .collect();
    let all: BTreeSet<String> = subjects
        .iter()
        .map(|(p, _)| p.id.as_str().to_string())
        .collect();
    assert_eq!(found, all);
    let by_b = s
        .subjects_by_pseudonym(&[pairs(&key_b)[3].0.clone()])
        .await
        .unwrap();
    assert_eq!(by_b.len(), 1);
    assert_eq!(by_b[0].0.id.as_str(), subjects[3].0.id.as_str());
    assert!(s.subjects_by_pseudonym(&[]).await.unwrap().is_empty());
}

async fn tags_replace_per_subject(s: Arc<dyn Store>) {
    s.upsert_subjects(&[
        (person(1, json!({})), vec!["a".into()]),
        (person(2, json!({})), vec![]),
    ])
    .await
    .unwrap();
    s.set_tags(&[
        (resident_id(1), vec!["b".into(), "c".into()]),
        (resident_id(2), vec!["a".into()]),
        ("unknown".into(), vec!["a".into()]),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_subject(&resident_id(1)).await.unwrap().unwrap().1,
        vec!["b".to_string(), "c".to_string()]
    );
    assert_eq!(
        s.get_subject(&resident_id(2)).await.unwrap().unwrap().1,
        vec!["a".to_string()]
    );
    assert_eq!(
        s.count_subjects().await.unwrap(),
        2,
        "set_tags adds no subject"
    );
}

async fn catalogue_tags_and_policies(s: Arc<dyn Store>) {
    for name in ["b_tag", "a_tag"] {
        s.put_tag(&TagRecord {
            name: name.into(),
            description: "d".into(),
            rule: "age >= 16".into(),
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
    }
    s.put_tag(&TagRecord {
        name: "a_tag".into(),
        description: "changed".into(),
        rule: "age >= 18".into(),
        updated_at: Utc::now(),
    })
    .await
    .unwrap();
    let tags = s.list_tags().await.unwrap();
    assert_eq!(
        tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["a_tag", "b_tag"]
    );
    assert_eq!(s.get_tag("a_tag").await.unwrap().unwrap().rule, "age >= 18");
    assert!(s.get_tag("none").await.unwrap().is_none());

    policy(&*s, "pol-1").await;
    let p = s.get_policy("pol-1").await.unwrap().unwrap();
    assert_eq!(p.status, PolicyStatus::Draft);
    assert_eq!(p.draft.title, "稳岗返还");
    assert!(p.published_at.is_none());
    let at = Utc::now();
    s.set_policy_status("pol-1", PolicyStatus::Published, at)
        .await
        .unwrap();
    let p = s.get_policy("pol-1").await.unwrap().unwrap();
    assert_eq!(p.status, PolicyStatus::Published);
    assert!((p.published_at.unwrap() - at).num_milliseconds().abs() < 1);
    // A later status keeps the publication time.
    s.set_policy_status("pol-1", PolicyStatus::Withdrawn, Utc::now())
        .await
        .unwrap();
    let p = s.get_policy("pol-1").await.unwrap().unwrap();
    assert_eq!(p.status, PolicyStatus::Withdrawn);
    assert!(p.published_at.is_some());
    assert!(matches!(
        s.set_policy_status("nope", PolicyStatus::Published, at)
            .await,
        Err(StoreError::NotFound(_))
    ));
    policy(&*s, "pol-2").await;
    assert_eq!(s.list_policies().await.unwrap().len(), 2);
    assert!(s.get_policy("nope").await.unwrap().is_none());
}

async fn approved_campaigns_return_to_review_without_their_approvals(s: Arc<dyn Store>) {
    campaign(&*s, "c1", CampaignMode::Once).await;
    let approve = CampaignChange {
        approved_by: Some("op-2".into()),
        ..Default::default()
    };
    s.transition_campaign(
        "c1",
        &[CampaignStatus::Draft],
        CampaignStatus::Approved,
        approve,
    )
    .await
    .unwrap();
    s.put_campaign_ops(&CampaignOps {
        campaign_id: "c1".into(),
        approvals_needed: 2,
        audience: Some(5),
        second_approved_by: Some("op-3".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let from = [CampaignStatus::Approved];
    let c = s.return_to_review("c1", &from).await.unwrap();
    assert_eq!((c.status, c.approved_by), (CampaignStatus::Submitted, None));
    let stored = s.get_campaign("c1").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.approved_by),
        (CampaignStatus::Submitted, None)
    );
    let ops = s.get_campaign_ops("c1").await.unwrap().unwrap();
    assert_eq!(
        (ops.approvals_needed, ops.audience, ops.second_approved_by),
        (1, None, None)
    );
    assert!(matches!(
        s.return_to_review("c1", &from).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.return_to_review("nope", &from).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn campaign_transitions_check_the_current_status(s: Arc<dyn Store>) {
    campaign(&*s, "c1", CampaignMode::Once).await;
    campaign(&*s, "c2", CampaignMode::Continuous).await;
    let c = s
        .transition_campaign(
            "c1",
            &[CampaignStatus::Draft],
            CampaignStatus::Approved,
            CampaignChange {
                approved_by: Some("op-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.status, CampaignStatus::Approved);
    assert_eq!(c.approved_by.as_deref(), Some("op-2"));
    match s
        .transition_campaign(
            "c1",
            &[CampaignStatus::Draft],
            CampaignStatus::Running,
            CampaignChange::default(),
        )
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("approved"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.transition_campaign(
            "zz",
            &[CampaignStatus::Draft],
            CampaignStatus::Running,
            CampaignChange::default()
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    let launched = Utc::now();
    s.transition_campaign(
        "c1",
        &[CampaignStatus::Approved],
        CampaignStatus::Running,
        CampaignChange {
            launched_at: Some(launched),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let stored = s.get_campaign("c1").await.unwrap().unwrap();
    assert_eq!(stored.status, CampaignStatus::Running);
    assert_eq!(stored.approved_by.as_deref(), Some("op-2"), "kept");
    assert_eq!(stored.draft.channels, vec!["sms".to_string()]);
    assert_eq!(stored.mode, CampaignMode::Once);

    s.transition_campaign(
        "c2",
        &[CampaignStatus::Draft],
        CampaignStatus::Running,
        CampaignChange::default(),
    )
    .await
    .unwrap();
    let to_plan: Vec<_> = s
        .campaigns_to_plan()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(to_plan.len(), 2);
    let cont: Vec<_> = s
        .continuous_campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(cont, vec!["c2".to_string()]);
    s.finish_plan("c1", Utc::now()).await.unwrap();
    let to_plan: Vec<_> = s
        .campaigns_to_plan()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(to_plan, vec!["c2".to_string()]);
    assert_eq!(s.list_campaigns().await.unwrap().len(), 2);
    assert!(s.get_campaign("zz").await.unwrap().is_none());
}

async fn plan_batches_are_idempotent_and_counted(s: Arc<dyn Store>) {
    running_campaign(&*s, "c1", CampaignMode::Once).await;
    let first: Vec<_> = (0..30).map(|n| new_push("c1", n, Channel::Sms)).collect();
    let skips = vec![
        (resident_id(100), SkipReason::Unreachable),
        (resident_id(101), SkipReason::OptedOut),
    ];
    assert_eq!(
        s.insert_plan_batch("c1", &first, &skips, chrono::Utc::now())
            .await
            .unwrap(),
        30
    );
    // A re-plan after a crash: the same subjects (with new push ids) plus ten more.
    let again: Vec<_> = (0..40)
        .map(|n| NewPush {
            id: format!("retry-{n}"),
            link_code: format!("retry-link-{n}"),
            ..new_push("c1", n, Channel::Wechat)
        })
        .collect();
    assert_eq!(
        s.insert_plan_batch("c1", &again, &skips, chrono::Utc::now())
            .await
            .unwrap(),
        10
    );
    s.finish_plan("c1", Utc::now()).await.unwrap();
    let c = s.campaign_counts("c1").await.unwrap();
    assert_eq!(c.eligible, 42);
    assert_eq!(c.unreachable, 1);
    assert_eq!(c.queued, 40);
    assert_eq!(c.by_channel.get("sms"), Some(&30));
    assert_eq!(c.by_channel.get("wechat"), Some(&10));
    assert!(s.campaigns_to_plan().await.unwrap().is_empty());

    // Paging by seq returns every push once, in plan order; stored fields round-trip.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = s.campaign_pushes("c1", after, 16).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().seq;
        all.extend(page);
    }
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].id, "p-c1-00000");
    assert_eq!(all[35].id, "retry-35");
    let p4 = s.get_push("p-c1-00004").await.unwrap().unwrap();
    assert_eq!(p4.status, PushStatus::Queued);
    assert_eq!(p4.benefit, Some(42.0));
    assert_eq!(p4.recipient, "13900000004");
    assert_eq!(p4.explanation, json!({"held": ["true"]}).to_string());
    assert_eq!(
        s.get_push("p-c1-00003").await.unwrap().unwrap().benefit,
        None
    );
    assert_eq!(s.count_pushes(PushStatus::Queued).await.unwrap(), 40);
}

async fn hand_over_is_on_the_bus_only_once_committed(s: Arc<dyn Store>) {
    planned(&*s, "c1", 10).await;
    let now = Utc::now() + Duration::seconds(1);
    // Rows not yet due are left alone.
    assert!(on_the_bus(&*s, Utc::now() - Duration::hours(1), 100)
        .await
        .is_empty());
    // The publish failed (or the relay died): dropped, the rows are back in the outbox.
    let failed = s.hand_over(now, 100).await.unwrap();
    assert_eq!(failed.pushes().len(), 10);
    let failed_ids = ids(failed.pushes());
    failed.rollback().await.unwrap();
    let first = s.hand_over(now, 4).await.unwrap();
    assert_eq!(first.pushes().len(), 4);
    let first_ids = ids(first.pushes());
    first.commit().await.unwrap();
    let rest = s.hand_over(now, 100).await.unwrap();
    assert_eq!(rest.pushes().len(), 6);
    let rest_ids = ids(rest.pushes());
    assert!(first_ids.is_disjoint(&rest_ids));
    assert_eq!(
        first_ids.union(&rest_ids).cloned().collect::<BTreeSet<_>>(),
        failed_ids
    );
    rest.commit().await.unwrap();
    assert!(s.hand_over(now, 100).await.unwrap().pushes().is_empty());
    // Committed means on the bus: a relay start that forgets only unconfirmed takes
    // leaves them; a bus that forgot its messages hands them over again.
    assert_eq!(s.reset_dispatched(true).await.unwrap(), 0);
    assert_eq!(s.reset_dispatched(false).await.unwrap(), 10);
    // The rows are claimable as before.
    let all: Vec<String> = failed_ids.into_iter().collect();
    assert_eq!(s.claim_for_sending(&all, now).await.unwrap().len(), 10);
    assert!(s.hand_over(now, 100).await.unwrap().pushes().is_empty());
}

/// A running campaign's planned rows go out by its relay cursor in plan order: rows
/// claimed or ended before the relay reached them are passed over, a paused campaign
/// waits, and rows planned while it was not running go out row by row once it runs.
async fn the_relay_cursor_follows_its_campaign(s: Arc<dyn Store>) {
    let pushes = planned(&*s, "c1", 6).await;
    let now = Utc::now() + Duration::seconds(1);
    let first = on_the_bus(&*s, now, 2).await;
    assert_eq!(
        first.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2],
        "plan order"
    );
    // Ahead of the cursor: one row claimed (a duplicate task got there first), one
    // claimed and ended as a skip.
    let ahead = [pushes[2].id.clone(), pushes[3].id.clone()];
    s.claim_for_sending(&ahead, now).await.unwrap();
    s.skip_sending(&[(ahead[1].clone(), SkipReason::OptedOut)], now)
        .await
        .unwrap();
    s.transition_campaign(
        "c1",
        &[CampaignStatus::Running],
        CampaignStatus::Paused,
        CampaignChange::default(),
    )
    .await
    .unwrap();
    assert!(on_the_bus(&*s, now, 100).await.is_empty(), "paused");
    // A continuous plan written while paused.
    let late = new_push("c1", 50, Channel::Sms);
    s.insert_plan_batch("c1", std::slice::from_ref(&late), &[], Utc::now())
        .await
        .unwrap();
    assert!(on_the_bus(&*s, now, 100).await.is_empty(), "still paused");
    s.transition_campaign(
        "c1",
        &[CampaignStatus::Paused],
        CampaignStatus::Running,
        CampaignChange::default(),
    )
    .await
    .unwrap();
    let rest = on_the_bus(&*s, now, 100).await;
    assert_eq!(
        ids(&rest),
        [&pushes[4].id, &pushes[5].id, &late.id]
            .into_iter()
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    assert!(on_the_bus(&*s, now, 100).await.is_empty());
    // Everything handed over is claimable once.
    let all: Vec<String> = first.iter().chain(&rest).map(|r| r.id.clone()).collect();
    assert_eq!(s.claim_for_sending(&all, now).await.unwrap().len(), 5);
}

/// A large campaign does not hold a small one back: the relay serves the campaign it
/// served least recently, batch by batch.
async fn running_campaigns_take_turns_at_the_relay(s: Arc<dyn Store>) {
    planned(&*s, "big", 12).await;
    planned(&*s, "small", 4).await;
    let mut order = Vec::new();
    for n in 1..=6 {
        let batch = on_the_bus(&*s, Utc::now() + Duration::seconds(n), 2).await;
        let campaigns: BTreeSet<&str> = batch.iter().map(|r| r.campaign_id.as_str()).collect();
        assert_eq!(campaigns.len(), 1, "one campaign per batch");
        order.push(batch[0].campaign_id.clone());
    }
    assert_eq!(order, ["big", "small", "big", "small", "big", "big"]);
}

async fn reconciliation_sees_only_claims_older_than_the_lease(s: Arc<dyn Store>) {
    planned(&*s, "c1", 3).await;
    let all: Vec<String> = (0..3).map(|n| format!("p-c1-{n:05}")).collect();
    s.claim_for_sending(&all[..2], chrono::Utc::now())
        .await
        .unwrap();
    let claimed_at = Utc::now();
    assert_eq!(
        s.pushes_in_sending(claimed_at, 100).await.unwrap().len(),
        2,
        "at start of the only connector process: every claim"
    );
    assert!(
        s.pushes_in_sending(claimed_at - Duration::seconds(60), 100)
            .await
            .unwrap()
            .is_empty(),
        "a live process's fresh claims are not another's to settle"
    );
}

async fn claim_is_exclusive_and_outcomes_are_recorded(s: Arc<dyn Store>) {
    planned(&*s, "c1", 4).await;
    on_the_bus(&*s, Utc::now() + Duration::seconds(1), 100).await;
    let all: Vec<String> = (0..4).map(|n| format!("p-c1-{n:05}")).collect();
    let won = s.claim_for_sending(&all, chrono::Utc::now()).await.unwrap();
    assert_eq!(ids(&won).len(), 4);
    assert!(won
        .iter()
        .all(|r| r.status == PushStatus::Sending && r.attempts == 1));
    assert!(
        s.claim_for_sending(&all, chrono::Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "a claim is won once"
    );
    assert_eq!(s.pushes_in_sending(Utc::now(), 100).await.unwrap().len(), 4);

    let retry_at = Utc::now() - Duration::seconds(1);
    s.record_outcomes(
        &[
            PushOutcome::Sent {
                push_id: all[0].clone(),
                provider_id: "prov-0".into(),
            },
            PushOutcome::Failed {
                push_id: all[1].clone(),
                error: "isv.MOBILE_NUMBER_ILLEGAL".into(),
            },
            PushOutcome::Requeue {
                push_id: all[2].clone(),
                at: retry_at,
                error: "busy".into(),
                channel: None,
                recipient: None,
                content: None,
            },
            PushOutcome::Requeue {
                push_id: all[3].clone(),
                at: retry_at,
                error: "43101: user refused".into(),
                channel: Some(Channel::Hotline),
                recipient: Some("13800000000".into()),
                content: Some("voice".into()),
            },
        ],
        Utc::now(),
    )
    .await
    .unwrap();
    let get = |i: usize| {
        let s = s.clone();
        let id = all[i].clone();
        async move { s.get_push(&id).await.unwrap().unwrap() }
    };
    let p0 = get(0).await;
    assert_eq!(
        (p0.status, p0.provider_id.as_deref()),
        (PushStatus::Sent, Some("prov-0"))
    );
    let p1 = get(1).await;
    assert_eq!(p1.status, PushStatus::Failed);
    assert_eq!(p1.error.as_deref(), Some("isv.MOBILE_NUMBER_ILLEGAL"));
    let p2 = get(2).await;
    assert_eq!((p2.status, p2.channel), (PushStatus::Queued, Channel::Sms));
    let p3 = get(3).await;
    assert_eq!(
        (
            p3.status,
            p3.channel,
            p3.recipient.as_str(),
            p3.content.as_str()
        ),
        (PushStatus::Queued, Channel::Hotline, "13800000000", "voice")
    );
    // Outcomes only apply to rows in sending: a late duplicate changes nothing.
    s.record_outcomes(
        &[PushOutcome::Failed {
            push_id: all[0].clone(),
            error: "late".into(),
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(get(0).await.status, PushStatus::Sent);
    // Requeued rows go to the relay again and can be claimed again.
    let again = on_the_bus(&*s, Utc::now(), 100).await;
    assert_eq!(ids(&again), [all[2].clone(), all[3].clone()].into());
    let won = s.claim_for_sending(&all, chrono::Utc::now()).await.unwrap();
    assert_eq!(ids(&won), [all[2].clone(), all[3].clone()].into());
    assert!(won.iter().all(|r| r.attempts == 2));
    assert_eq!(s.count_pushes(PushStatus::Sending).await.unwrap(), 2);
}

async fn concurrent_claimers_never_take_the_same_push(s: Arc<dyn Store>) {
    const N: u32 = 600;
    planned(&*s, "c1", N).await;
    let all: Vec<String> = (0..N).map(|n| format!("p-c1-{n:05}")).collect();
    // Four workers each get every id (as duplicated bus deliveries would), in batches,
    // in different orders.
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let s = s.clone();
        let mut mine = all.clone();
        mine.rotate_left(w * 150);
        if !w.is_multiple_of(2) {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for batch in mine.chunks(50) {
                won.extend(
                    s.claim_for_sending(batch, chrono::Utc::now())
                        .await
                        .unwrap(),
                );
            }
            won
        }));
    }
    let mut union = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let won = t.await.unwrap();
        total += won.len();
        union.extend(won.into_iter().map(|r| r.id));
    }
    assert_eq!(total, N as usize, "no push was claimed twice");
    assert_eq!(union.len(), N as usize, "every push was claimed");
    assert_eq!(
        s.count_pushes(PushStatus::Sending).await.unwrap(),
        i64::from(N)
    );
}

/// The relay commits its hand-over after the bus acknowledged the messages, so a
/// connector can get a task while the hand-over is still open: its claim must wait for
/// the row, not skip it (a skipped row whose task is acknowledged would never be sent).
/// Both kinds of outbox row race here: first sends (handed over by the campaign's relay
/// cursor) and rows put back one by one (a retry).
async fn a_claim_racing_the_relays_hand_over_takes_every_push(s: Arc<dyn Store>) {
    const N: u32 = 1_000;
    planned(&*s, "c1", N).await;
    let now = Utc::now() + Duration::seconds(1);
    // Half of them were tried once and are due again.
    let first = on_the_bus(&*s, now, N / 2).await;
    let retried: Vec<String> = first.iter().map(|r| r.id.clone()).collect();
    s.claim_for_sending(&retried, now).await.unwrap();
    let deferred: Vec<PushOutcome> = retried
        .iter()
        .map(|id| PushOutcome::Requeue {
            push_id: id.clone(),
            at: now,
            error: "busy".into(),
            channel: None,
            recipient: None,
            content: None,
        })
        .collect();
    s.record_outcomes(&deferred, now).await.unwrap();
    let handover = s.hand_over(now, N).await.unwrap();
    let taken: Vec<String> = handover.pushes().iter().map(|r| r.id.clone()).collect();
    assert_eq!(taken.len(), N as usize);
    let relay = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        handover.commit().await.unwrap();
    });
    let mut claimed = 0;
    for chunk in taken.chunks(100) {
        claimed += s.claim_for_sending(chunk, now).await.unwrap().len();
    }
    relay.await.unwrap();
    assert_eq!(claimed, N as usize, "a push being handed over was skipped");
    assert_eq!(
        s.count_pushes(PushStatus::Sending).await.unwrap(),
        i64::from(N)
    );
}

async fn concurrent_relays_never_take_the_same_push(s: Arc<dyn Store>) {
    const N: u32 = 600;
    planned(&*s, "c1", N).await;
    let now = Utc::now() + Duration::seconds(1);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = on_the_bus(&*s, now, 40).await;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut union = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let got = t.await.unwrap();
        total += got.len();
        union.extend(got);
    }
    assert_eq!((total, union.len()), (N as usize, N as usize));
}

async fn receipts_clicks_and_links(s: Arc<dyn Store>) {
    planned(&*s, "c1", 3).await;
    let all: Vec<String> = (0..3).map(|n| format!("p-c1-{n:05}")).collect();
    s.claim_for_sending(&all, chrono::Utc::now()).await.unwrap();
    s.record_outcomes(
        &[
            PushOutcome::Sent {
                push_id: all[0].clone(),
                provider_id: "biz-0".into(),
            },
            PushOutcome::Sent {
                push_id: all[1].clone(),
                provider_id: "biz-1".into(),
            },
        ],
        Utc::now(),
    )
    .await
    .unwrap();
    // By provider id.
    let delivered = ReceiptUpdate {
        provider_id: Some("biz-0".into()),
        push_id: None,
        delivered: true,
        error: None,
        retry_at: None,
    };
    assert!(s.apply_receipt(&delivered, Utc::now()).await.unwrap());
    assert!(
        !s.apply_receipt(&delivered, Utc::now()).await.unwrap(),
        "repeated receipt"
    );
    assert_eq!(
        s.get_push(&all[0]).await.unwrap().unwrap().status,
        PushStatus::Delivered
    );
    // By push id, failed with a reason.
    let failed = ReceiptUpdate {
        provider_id: None,
        push_id: Some(all[1].clone()),
        delivered: false,
        error: Some("DELIVRD-NOT".into()),
        retry_at: None,
    };
    assert!(s.apply_receipt(&failed, Utc::now()).await.unwrap());
    let p1 = s.get_push(&all[1]).await.unwrap().unwrap();
    assert_eq!(
        (p1.status, p1.error.as_deref()),
        (PushStatus::Failed, Some("DELIVRD-NOT"))
    );
    // A receipt for a push still in sending (receipt raced the outcome) applies too.
    let early = ReceiptUpdate {
        provider_id: Some("biz-2".into()),
        push_id: Some(all[2].clone()),
        delivered: true,
        error: None,
        retry_at: None,
    };
    assert!(s.apply_receipt(&early, Utc::now()).await.unwrap());
    let p2 = s.get_push(&all[2]).await.unwrap().unwrap();
    assert_eq!(
        (p2.status, p2.provider_id.as_deref()),
        (PushStatus::Delivered, Some("biz-2"))
    );
    let unknown = ReceiptUpdate {
        provider_id: Some("nope".into()),
        push_id: None,
        delivered: true,
        error: None,
        retry_at: None,
    };
    assert!(!s.apply_receipt(&unknown, Utc::now()).await.unwrap());

    let by_link = s.push_by_link("lc100000").await.unwrap().unwrap();
    assert_eq!(by_link.id, all[0]);
    assert!(s.push_by_link("nope").await.unwrap().is_none());
    s.record_click(&all[0], Utc::now()).await.unwrap();
    s.record_click(&all[0], Utc::now()).await.unwrap();
    s.record_click(&all[1], Utc::now()).await.unwrap();
    let c = s.campaign_counts("c1").await.unwrap();
    assert_eq!((c.clicked, c.delivered, c.failed), (2, 2, 1));
}

fn receipt(
    provider_id: Option<&str>,
    push_id: Option<&str>,
    delivered: bool,
    error: Option<&str>,
) -> ReceiptUpdate {
    ReceiptUpdate {
        provider_id: provider_id.map(Into::into),
        push_id: push_id.map(Into::into),
        delivered,
        error: error.map(Into::into),
        retry_at: None,
    }
}

/// Pushes of `cid` (planned, claimed) recorded as sent under `biz-<n>`, for the given `n`.
async fn sent_as_biz(s: &dyn Store, ids: &[String], sent: std::ops::Range<usize>) {
    s.claim_for_sending(ids, Utc::now()).await.unwrap();
    let outcomes: Vec<PushOutcome> = sent
        .map(|n| PushOutcome::Sent {
            push_id: ids[n].clone(),
            provider_id: format!("biz-{n}"),
        })
        .collect();
    s.record_outcomes(&outcomes, Utc::now()).await.unwrap();
}

async fn receipt_batches_apply_as_one_at_a_time(s: Arc<dyn Store>) {
    planned(&*s, "c1", 8).await;
    let p: Vec<String> = (0..8).map(|n| format!("p-c1-{n:05}")).collect();
    // 0-5 sent as biz-0..biz-5; 6 and 7 still sending (their receipts overtake the send).
    sent_as_biz(&*s, &p, 0..6).await;
    let call_again_at = Utc::now() + Duration::minutes(30);
    let batch = vec![
        receipt(Some("biz-0"), None, true, None),
        // The same receipt again in the batch.
        receipt(Some("biz-0"), None, true, None),
        receipt(None, Some(&p[1]), false, Some("UNDELIV")),
        // A second receipt for the same push by its other key: the first one won.
        receipt(Some("biz-1"), Some(&p[1]), true, None),
        ReceiptUpdate {
            retry_at: Some(call_again_at),
            ..receipt(Some("biz-2"), None, false, Some("200002: busy"))
        },
        // The push went back to the queue: a final receipt of that call is too late.
        receipt(Some("biz-2"), None, true, None),
        // Early: nobody carries biz-6 yet.
        receipt(Some("biz-6"), None, true, None),
        // A call-again receipt of another attempt than the push's current one.
        ReceiptUpdate {
            retry_at: Some(call_again_at),
            ..receipt(Some("biz-3-earlier"), Some(&p[3]), false, Some("200003"))
        },
        // Early, naming the push: it applies and keeps the provider id.
        receipt(Some("biz-7"), Some(&p[7]), true, None),
        receipt(Some("biz-4"), None, false, None),
        receipt(Some("biz-5"), None, true, None),
        receipt(Some("nope"), None, true, None),
    ];
    let got = s.apply_receipts(&batch, Utc::now()).await.unwrap();
    assert_eq!(
        got,
        [true, false, true, false, true, false, false, false, true, true, true, false]
    );
    let push = |n: usize| {
        let s = s.clone();
        let id = p[n].clone();
        async move { s.get_push(&id).await.unwrap().unwrap() }
    };
    assert_eq!(push(0).await.status, PushStatus::Delivered);
    let p1 = push(1).await;
    assert_eq!(
        (p1.status, p1.error.as_deref()),
        (PushStatus::Failed, Some("UNDELIV"))
    );
    let p2 = push(2).await;
    assert_eq!(
        (p2.status, p2.error.as_deref(), p2.provider_id.as_deref()),
        (PushStatus::Queued, Some("200002: busy"), Some("biz-2"))
    );
    // Back in the queue at the call-again time, handed to the relay then.
    assert!(on_the_bus(&*s, call_again_at - Duration::seconds(1), 10)
        .await
        .is_empty());
    let due = on_the_bus(&*s, call_again_at, 10).await;
    assert_eq!(ids(&due), BTreeSet::from([p[2].clone()]));
    assert_eq!(push(3).await.status, PushStatus::Sent);
    let p4 = push(4).await;
    assert_eq!((p4.status, p4.error), (PushStatus::Failed, None));
    assert_eq!(push(5).await.status, PushStatus::Delivered);
    assert_eq!(push(6).await.status, PushStatus::Sending);
    let p7 = push(7).await;
    assert_eq!(
        (p7.status, p7.provider_id.as_deref()),
        (PushStatus::Delivered, Some("biz-7"))
    );

    // Once its send is recorded, the early receipt applies; the whole batch again changes
    // nothing else.
    s.record_outcomes(
        &[PushOutcome::Sent {
            push_id: p[6].clone(),
            provider_id: "biz-6".into(),
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    let again = s.apply_receipts(&batch, Utc::now()).await.unwrap();
    let applied: Vec<usize> = (0..batch.len()).filter(|i| again[*i]).collect();
    assert_eq!(applied, [6]);
    assert_eq!(push(6).await.status, PushStatus::Delivered);
    assert_eq!(push(1).await.error.as_deref(), Some("UNDELIV"));
    assert_eq!(push(2).await.status, PushStatus::Queued);
    assert_eq!(push(3).await.status, PushStatus::Sent);
    assert!(s.apply_receipts(&[], Utc::now()).await.unwrap().is_empty());
    let c = s.campaign_counts("c1").await.unwrap();
    assert_eq!((c.delivered, c.failed, c.sent, c.queued), (4, 2, 1, 1));
}

async fn receipt_batches_span_chunks(s: Arc<dyn Store>) {
    const N: usize = 700;
    planned(&*s, "c1", N as u32).await;
    let p: Vec<String> = (0..N).map(|n| format!("p-c1-{n:05}")).collect();
    sent_as_biz(&*s, &p, 0..N).await;
    // Every receipt twice, the copies far apart (in later statements on SQLite); the odd
    // ones failed.
    let once: Vec<ReceiptUpdate> = (0..N)
        .map(|n| {
            let biz = format!("biz-{n}");
            receipt(
                Some(&biz),
                None,
                n % 2 == 0,
                (n % 2 == 1).then_some("MK:0001"),
            )
        })
        .collect();
    let batch: Vec<ReceiptUpdate> = once.iter().chain(once.iter()).cloned().collect();
    let got = s.apply_receipts(&batch, Utc::now()).await.unwrap();
    assert_eq!(got.len(), 2 * N);
    assert!(got[..N].iter().all(|m| *m), "first copies apply");
    assert!(got[N..].iter().all(|m| !*m), "second copies change nothing");
    let c = s.campaign_counts("c1").await.unwrap();
    assert_eq!(
        (c.delivered, c.failed, c.sent),
        (N as i64 / 2, N as i64 / 2, 0)
    );
    let last = s.get_push(&p[N - 1]).await.unwrap().unwrap();
    assert_eq!(last.error.as_deref(), Some("MK:0001"));
}

async fn late_receipts_apply_once_when_the_send_is_recorded(s: Arc<dyn Store>) {
    planned(&*s, "c1", 5).await;
    let p: Vec<String> = (0..5).map(|n| format!("p-c1-{n:05}")).collect();
    s.claim_for_sending(&p, Utc::now()).await.unwrap();
    let now = Utc::now();
    let limits = LateReceiptLimits::default();
    let push = |n: usize| {
        let s = s.clone();
        let id = p[n].clone();
        async move { s.get_push(&id).await.unwrap().unwrap() }
    };
    let sent = |n: usize, biz: &str| PushOutcome::Sent {
        push_id: p[n].clone(),
        provider_id: biz.into(),
    };
    // Receipts that overtook their sends: nothing carries biz-0 or biz-1 yet. One without
    // a provider id is not kept (nothing could ever match it later).
    let early = vec![
        receipt(Some("biz-0"), None, true, None),
        receipt(Some("biz-1"), None, false, Some("UNDELIV")),
        receipt(None, Some("p-unknown"), true, None),
    ];
    assert_eq!(s.apply_receipts(&early, now).await.unwrap(), [false; 3]);
    assert_eq!(s.keep_late_receipts(&early, now, limits).await.unwrap(), 2);
    assert_eq!(push(0).await.status, PushStatus::Sending);

    // Recording the sends applies them, in the same transaction.
    s.record_outcomes(&[sent(0, "biz-0"), sent(1, "biz-1")], now)
        .await
        .unwrap();
    assert_eq!(push(0).await.status, PushStatus::Delivered);
    let p1 = push(1).await;
    assert_eq!(
        (p1.status, p1.error.as_deref()),
        (PushStatus::Failed, Some("UNDELIV"))
    );
    // Exactly once: nothing is left to apply.
    assert_eq!(
        s.sweep_late_receipts(now).await.unwrap(),
        LateSweep::default()
    );

    // A receipt kept just after its send was recorded (the two raced): the sweep applies
    // it, once.
    s.record_outcomes(&[sent(2, "biz-2")], now).await.unwrap();
    let raced = [receipt(Some("biz-2"), None, true, None)];
    s.keep_late_receipts(&raced, now, limits).await.unwrap();
    let swept = s.sweep_late_receipts(now).await.unwrap();
    assert_eq!((swept.applied, swept.expired, swept.waiting), (1, 0, 0));
    assert_eq!(push(2).await.status, PushStatus::Delivered);

    // Expired receipts vanish and never apply.
    let short = LateReceiptLimits {
        ttl: Duration::hours(1),
        ..limits
    };
    s.keep_late_receipts(&[receipt(Some("biz-4"), None, true, None)], now, short)
        .await
        .unwrap();
    let swept = s
        .sweep_late_receipts(now + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!((swept.applied, swept.expired, swept.waiting), (0, 1, 0));
    s.record_outcomes(&[sent(4, "biz-4")], now).await.unwrap();
    assert_eq!(push(4).await.status, PushStatus::Sent);

    // The bound: the oldest go first.
    let small = LateReceiptLimits {
        capacity: 3,
        ..limits
    };
    let many: Vec<ReceiptUpdate> = (0..5)
        .map(|n| receipt(Some(&format!("x-{n}")), None, true, None))
        .collect();
    for r in &many {
        s.keep_late_receipts(std::slice::from_ref(r), now, small)
            .await
            .unwrap();
    }
    assert_eq!(s.sweep_late_receipts(now).await.unwrap().waiting, 3);
    s.record_outcomes(&[sent(3, "x-0")], now).await.unwrap();
    assert_eq!(push(3).await.status, PushStatus::Sent, "x-0 was dropped");
    let c = s.campaign_counts("c1").await.unwrap();
    assert_eq!((c.delivered, c.failed, c.sent), (2, 1, 2));
}

/// A kept receipt outlives the process that kept it: the store is reopened (a restart)
/// before the send is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_receipts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let p = {
        let s = store::open(&url).await.unwrap();
        planned(&*s, "c1", 1).await;
        let p = "p-c1-00000".to_string();
        s.claim_for_sending(std::slice::from_ref(&p), Utc::now())
            .await
            .unwrap();
        let early = [receipt(Some("biz-0"), None, true, None)];
        assert_eq!(s.apply_receipts(&early, Utc::now()).await.unwrap(), [false]);
        s.keep_late_receipts(&early, Utc::now(), LateReceiptLimits::default())
            .await
            .unwrap();
        p
    };
    let s = store::open(&url).await.unwrap();
    s.record_outcomes(
        &[PushOutcome::Sent {
            push_id: p.clone(),
            provider_id: "biz-0".into(),
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    let push = s.get_push(&p).await.unwrap().unwrap();
    assert_eq!(push.status, PushStatus::Delivered);
    assert_eq!(
        s.sweep_late_receipts(Utc::now()).await.unwrap(),
        LateSweep::default(),
        "applied once, nothing left"
    );
}

async fn opt_outs_are_listed_by_filter_and_undone(s: Arc<dyn Store>) {
    // Whole seconds: both databases keep microseconds.
    let t0 =
        chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap() - Duration::hours(3);
    let opt =
        |n: u32, channel: Option<Channel>, category: Option<&str>, source: &str, h: i64| OptOut {
            subject_id: resident_id(n),
            channel,
            category: category.map(Into::into),
            source: source.into(),
            at: t0 + Duration::hours(h),
        };
    let all = [
        opt(1, Some(Channel::Sms), None, "sms_reply", 0),
        opt(1, None, Some("employment"), "recipient_page", 1),
        opt(2, None, None, "hotline_dtmf_0", 2),
    ];
    for o in &all {
        assert!(s.record_opt_out(o).await.unwrap());
    }
    let list = |f: OptOutFilter| {
        let s = s.clone();
        async move { s.list_opt_outs(&f, 0, 100).await.unwrap() }
    };
    // Newest first.
    assert_eq!(
        list(OptOutFilter::default()).await,
        [all[2].clone(), all[1].clone(), all[0].clone()]
    );
    let of_1 = OptOutFilter {
        subject_id: Some(resident_id(1)),
        ..Default::default()
    };
    assert_eq!(list(of_1.clone()).await, [all[1].clone(), all[0].clone()]);
    let everything = OptOutFilter {
        channel: Some("all".into()),
        ..Default::default()
    };
    assert_eq!(list(everything).await.len(), 2, "no channel: all channels");
    let sms = OptOutFilter {
        channel: Some("sms".into()),
        source: Some("sms_reply".into()),
        ..Default::default()
    };
    assert_eq!(list(sms).await, [all[0].clone()]);
    let window = OptOutFilter {
        since: Some(t0 + Duration::minutes(30)),
        until: Some(t0 + Duration::hours(2)),
        ..Default::default()
    };
    assert_eq!(list(window).await, [all[1].clone()]);
    assert_eq!(
        s.list_opt_outs(&OptOutFilter::default(), 1, 1)
            .await
            .unwrap(),
        [all[1].clone()],
        "paged"
    );

    // Undo exactly one: the SMS opt-out of subject 1, not its category opt-out.
    assert_eq!(
        s.remove_opt_out(&resident_id(1), Some(Channel::Sms), None)
            .await
            .unwrap(),
        Some(all[0].clone())
    );
    assert_eq!(
        s.remove_opt_out(&resident_id(1), Some(Channel::Sms), None)
            .await
            .unwrap(),
        None,
        "already undone"
    );
    assert_eq!(list(of_1).await, [all[1].clone()]);
    assert_eq!(
        s.remove_opt_out(&resident_id(2), None, None).await.unwrap(),
        Some(all[2].clone())
    );
    assert_eq!(
        s.opt_outs_of(&[resident_id(1), resident_id(2)])
            .await
            .unwrap(),
        [all[1].clone()]
    );
    // An undone opt-out can be recorded again.
    assert!(s.record_opt_out(&all[0]).await.unwrap());
}

async fn sent_without_receipt_pages_oldest_first(s: Arc<dyn Store>) {
    running_campaign(&*s, "c1", CampaignMode::Once).await;
    let channels = [
        Channel::Sms,
        Channel::Wechat,
        Channel::Sms,
        Channel::Sms,
        Channel::Sms,
    ];
    let pushes: Vec<NewPush> = channels
        .iter()
        .enumerate()
        .map(|(n, c)| new_push("c1", n as u32, *c))
        .collect();
    s.insert_plan_batch("c1", &pushes, &[], Utc::now())
        .await
        .unwrap();
    let p: Vec<String> = pushes.iter().map(|x| x.id.clone()).collect();
    s.claim_for_sending(&p, Utc::now()).await.unwrap();
    let t0 = Utc::now() - Duration::hours(2);
    // Sent at t0 + n minutes, except push 3 and 4 sent at the same instant.
    for (n, id) in p.iter().enumerate() {
        let at = t0 + Duration::minutes(n.min(3) as i64);
        s.record_outcomes(
            &[PushOutcome::Sent {
                push_id: id.clone(),
                provider_id: format!("biz-{n}"),
            }],
            at,
        )
        .await
        .unwrap();
    }
    // Push 0 got its receipt: not waiting any more.
    s.apply_receipts(&[receipt(Some("biz-0"), None, true, None)], Utc::now())
        .await
        .unwrap();
    let all = s
        .sent_without_receipt(Channel::Sms, Utc::now(), None, 10)
        .await
        .unwrap();
    let order: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, [p[2].as_str(), p[3].as_str(), p[4].as_str()]);
    // Only those sent by the deadline.
    let early = s
        .sent_without_receipt(Channel::Sms, t0 + Duration::minutes(2), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&early), BTreeSet::from([p[2].clone()]));
    // Page by page, the two sent at one instant included once each.
    let first = s
        .sent_without_receipt(Channel::Sms, Utc::now(), None, 2)
        .await
        .unwrap();
    let last = first.last().unwrap();
    let rest = s
        .sent_without_receipt(
            Channel::Sms,
            Utc::now(),
            Some((last.updated_at, last.id.clone())),
            2,
        )
        .await
        .unwrap();
    let paged: Vec<String> = first.iter().chain(&rest).map(|r| r.id.clone()).collect();
    assert_eq!(paged, [p[2].clone(), p[3].clone(), p[4].clone()]);
    let wechat = s
        .sent_without_receipt(Channel::Wechat, Utc::now(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&wechat), BTreeSet::from([p[1].clone()]));
    // Several pushes read at once.
    let got = s
        .get_pushes(&[p[4].clone(), "nope".into(), p[1].clone()])
        .await
        .unwrap();
    assert_eq!(ids(&got), BTreeSet::from([p[1].clone(), p[4].clone()]));
}

async fn once_campaigns_complete_when_every_push_is_final(s: Arc<dyn Store>) {
    planned(&*s, "c1", 2).await;
    running_campaign(&*s, "cont", CampaignMode::Continuous).await;
    s.finish_plan("cont", Utc::now()).await.unwrap();
    assert!(
        s.complete_finished_campaigns(Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "c1's plan is not finished"
    );
    s.finish_plan("c1", Utc::now()).await.unwrap();
    assert!(s
        .complete_finished_campaigns(Utc::now())
        .await
        .unwrap()
        .is_empty());
    let all: Vec<String> = (0..2).map(|n| format!("p-c1-{n:05}")).collect();
    s.claim_for_sending(&all, chrono::Utc::now()).await.unwrap();
    s.record_outcomes(
        &[PushOutcome::Sent {
            push_id: all[0].clone(),
            provider_id: "x".into(),
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(s
        .complete_finished_campaigns(Utc::now())
        .await
        .unwrap()
        .is_empty());
    s.record_outcomes(
        &[PushOutcome::Failed {
            push_id: all[1].clone(),
            error: "e".into(),
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.complete_finished_campaigns(Utc::now()).await.unwrap(),
        vec!["c1".to_string()]
    );
    let c = s.get_campaign("c1").await.unwrap().unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert!(c.completed_at.is_some());
    assert_eq!(
        s.get_campaign("cont").await.unwrap().unwrap().status,
        CampaignStatus::Running,
        "continuous campaigns never complete by themselves"
    );
}

async fn audit_log_pages_in_order(s: Arc<dyn Store>) {
    for i in 0..5 {
        s.audit(&AuditEntry {
            operator_id: "op-1".into(),
            action: format!("action.{i}"),
            target: format!("campaign/c{i}"),
            detail: json!({"i": i, "note": "说明"}),
            at: Utc::now(),
        })
        .await
        .unwrap();
    }
    let first = s.audit_log(0, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let about = s.audit_of_target("campaign/c1", 10).await.unwrap();
    assert_eq!(about.len(), 1);
    assert_eq!(about[0].1.action, "action.1");
    let rest = s.audit_log(first[2].0, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    let actions: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|(_, e)| e.action.clone())
        .collect();
    assert_eq!(
        actions,
        (0..5).map(|i| format!("action.{i}")).collect::<Vec<_>>()
    );
    assert_eq!(rest[1].1.detail, json!({"i": 4, "note": "说明"}));
}

async fn reports_count_the_funnel_by_channel_and_district(s: Arc<dyn Store>) {
    // Subjects 0-2 in 浦东新区, 3 in 徐汇区, 4 without a district; 5 was never stored.
    let subjects: Vec<(Subject, Vec<String>)> = (0..5)
        .map(|n| {
            let attrs = match n {
                0..=2 => json!({"district": "浦东新区"}),
                3 => json!({"district": "徐汇区"}),
                _ => json!({}),
            };
            (person(n, attrs), vec![])
        })
        .collect();
    s.upsert_subjects(&subjects).await.unwrap();
    running_campaign(&*s, "rep", CampaignMode::Once).await;
    let pushes = vec![
        new_push("rep", 0, Channel::Sms),
        new_push("rep", 1, Channel::Sms),
        new_push("rep", 2, Channel::Wechat),
    ];
    let skips = vec![
        (resident_id(3), SkipReason::Unreachable),
        (resident_id(4), SkipReason::OptedOut),
        (resident_id(5), SkipReason::Unreachable),
    ];
    s.insert_plan_batch("rep", &pushes, &skips, chrono::Utc::now())
        .await
        .unwrap();
    let ids: Vec<String> = pushes.iter().map(|p| p.id.clone()).collect();
    s.claim_for_sending(&ids[..2], chrono::Utc::now())
        .await
        .unwrap();
    s.record_outcomes(
        &[
            PushOutcome::Sent {
                push_id: ids[0].clone(),
                provider_id: "rep-0".into(),
            },
            PushOutcome::Failed {
                push_id: ids[1].clone(),
                error: "isv.MOBILE_NUMBER_ILLEGAL".into(),
            },
        ],
        Utc::now(),
    )
    .await
    .unwrap();
    let delivered = ReceiptUpdate {
        provider_id: Some("rep-0".into()),
        push_id: None,
        delivered: true,
        error: None,
        retry_at: None,
    };
    assert!(s.apply_receipt(&delivered, Utc::now()).await.unwrap());
    s.record_click(&ids[0], Utc::now()).await.unwrap();
    s.record_click(&ids[0], Utc::now()).await.unwrap();

    // Subject 0 applied after the push: a conversion; reported twice, kept once.
    let applied = Application {
        subject_id: resident_id(0),
        policy_id: "pol-rep".into(),
        applied_at: Utc::now() + Duration::seconds(1),
        source: "ywtb".into(),
        reference: Some("SQ-1".into()),
        recorded_at: Utc::now(),
    };
    assert!(s.record_application(&applied).await.unwrap());
    let again = Application {
        reference: Some("SQ-2".into()),
        ..applied.clone()
    };
    assert!(!s.record_application(&again).await.unwrap());
    // Subject 1 applied before the campaign wrote its push: not this campaign's doing.
    let earlier = Application {
        subject_id: resident_id(1),
        applied_at: Utc::now() - Duration::days(3),
        ..applied.clone()
    };
    assert!(s.record_application(&earlier).await.unwrap());

    let r = s.report_cells("rep").await.unwrap().report();
    let t = &r.total;
    assert_eq!(t.eligible, 6);
    assert_eq!(
        (
            t.queued,
            t.sent,
            t.delivered,
            t.failed,
            t.clicked,
            t.applied
        ),
        (1, 0, 1, 1, 1, 1)
    );
    assert_eq!(
        (
            t.skipped("unreachable"),
            t.skipped("opted_out"),
            t.skipped("capped")
        ),
        (2, 1, 0)
    );
    assert_eq!(r.by_channel["sms"].eligible, 2);
    assert_eq!(r.by_channel["sms"].delivered, 1);
    assert_eq!(r.by_channel["sms"].applied, 1);
    assert_eq!(r.by_channel["wechat"].queued, 1);
    let row = |d: &str, k: &str| {
        r.reach
            .iter()
            .find(|x| x.district == d && x.kind == k)
            .unwrap_or_else(|| panic!("no reach row {d}/{k}: {:?}", r.reach))
            .counts
            .clone()
    };
    let pudong = row("浦东新区", "person");
    assert_eq!((pudong.eligible, pudong.delivered), (3, 1));
    assert!((pudong.reach_rate() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(row("徐汇区", "person").skipped("unreachable"), 1);
    assert_eq!(row("", "person").skipped("opted_out"), 1);
    assert_eq!(
        row("", "").skipped("unreachable"),
        1,
        "a subject no longer stored"
    );
    assert_eq!(
        r.reach.iter().map(|x| x.counts.eligible).sum::<i64>(),
        t.eligible
    );
    assert_eq!(
        s.report_cells("nope")
            .await
            .unwrap()
            .report()
            .total
            .eligible,
        0
    );
}

async fn subject_history_and_operators(s: Arc<dyn Store>) {
    s.upsert_subjects(&[(person(7, json!({"district": "浦东新区"})), vec![])])
        .await
        .unwrap();
    running_campaign(&*s, "h1", CampaignMode::Once).await;
    let push = new_push("h1", 7, Channel::Sms);
    s.insert_plan_batch("h1", std::slice::from_ref(&push), &[], chrono::Utc::now())
        .await
        .unwrap();
    s.record_click(&push.id, Utc::now()).await.unwrap();
    running_campaign(&*s, "h2", CampaignMode::Once).await;
    s.insert_plan_batch(
        "h2",
        &[],
        &[(resident_id(7), SkipReason::OptedOut)],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    s.record_application(&Application {
        subject_id: resident_id(7),
        policy_id: "pol-h1".into(),
        applied_at: Utc::now(),
        source: "ywtb".into(),
        reference: None,
        recorded_at: Utc::now(),
    })
    .await
    .unwrap();

    let h = s.subject_history(&resident_id(7), 50).await.unwrap();
    assert_eq!(h.pushes.len(), 1);
    let p = &h.pushes[0];
    assert_eq!(
        (
            p.push_id.as_str(),
            p.campaign_id.as_str(),
            p.campaign_name.as_str()
        ),
        (push.id.as_str(), "h1", "campaign h1")
    );
    assert_eq!((p.channel.as_str(), p.status), ("sms", PushStatus::Queued));
    assert_eq!(p.recipient, push.recipient);
    assert!(p.clicked_at.is_some());
    assert_eq!(
        h.skips,
        vec![HistorySkip {
            campaign_id: "h2".into(),
            campaign_name: "campaign h2".into(),
            policy_id: "pol-h2".into(),
            reason: "opted_out".into(),
        }]
    );
    assert_eq!(h.applications.len(), 1);
    assert_eq!(h.applications[0].policy_id, "pol-h1");
    let none = s.subject_history(&resident_id(8), 50).await.unwrap();
    assert!(none.pushes.is_empty() && none.skips.is_empty() && none.applications.is_empty());

    for (i, role) in [Role::Admin, Role::Reviewer].into_iter().enumerate() {
        let op = OperatorRecord {
            id: format!("op-{i}"),
            name: format!("操作员{i}"),
            role,
            created_at: Utc::now() + Duration::seconds(i as i64),
            created_by: (i > 0).then(|| "op-0".to_string()),
            disabled_at: None,
        };
        s.insert_operator(&op, &format!("hash-{i}")).await.unwrap();
    }
    let ops = s.list_operators().await.unwrap();
    assert_eq!(
        ops.iter()
            .map(|o| (o.id.as_str(), o.role))
            .collect::<Vec<_>>(),
        vec![("op-0", Role::Admin), ("op-1", Role::Reviewer)]
    );
    assert_eq!(
        s.get_operator("op-1").await.unwrap().unwrap().name,
        "操作员1"
    );
    assert!(s.get_operator("op-9").await.unwrap().is_none());
    assert_eq!(
        s.get_operator("op-1")
            .await
            .unwrap()
            .unwrap()
            .created_by
            .as_deref(),
        Some("op-0"),
        "who created an operator is kept"
    );
}

async fn operators_are_disabled_rotated_and_sessions_revoked(s: Arc<dyn Store>) {
    let now = Utc::now();
    for (id, hash) in [("op-a", "hash-a"), ("op-b", "hash-b")] {
        let op = OperatorRecord {
            id: id.into(),
            name: id.into(),
            role: Role::Editor,
            created_at: now,
            created_by: Some("op-admin".into()),
            disabled_at: None,
        };
        s.insert_operator(&op, hash).await.unwrap();
    }
    let later = now + Duration::hours(12);
    for (sid, op) in [("s-a1", "op-a"), ("s-a2", "op-a"), ("s-b", "op-b")] {
        s.insert_session(sid, op, now, later).await.unwrap();
    }
    let holder = |sid: &'static str, at| {
        let s = s.clone();
        async move { s.session_operator(sid, at).await.unwrap().map(|o| o.id) }
    };
    assert_eq!(holder("s-a1", now).await.as_deref(), Some("op-a"));
    assert_eq!(holder("s-a1", later).await, None, "expired");
    assert_eq!(holder("s-zz", now).await, None, "unknown");

    // Sign-out revokes one session.
    assert!(s.revoke_session("s-a1", now).await.unwrap());
    assert!(!s.revoke_session("s-a1", now).await.unwrap());
    assert_eq!(holder("s-a1", now).await, None);
    assert_eq!(holder("s-a2", now).await.as_deref(), Some("op-a"));

    // Rotation: the old token stops working, the new one works.
    assert!(s.set_operator_token("op-a", "hash-a2").await.unwrap());
    assert!(s.operator_by_token_hash("hash-a").await.unwrap().is_none());
    assert_eq!(
        s.operator_by_token_hash("hash-a2")
            .await
            .unwrap()
            .unwrap()
            .id,
        "op-a"
    );

    // Disabling: token and every session stop working; others are untouched.
    assert!(s.disable_operator("op-a", now).await.unwrap());
    assert!(!s.disable_operator("op-a", now).await.unwrap(), "once");
    assert!(s.operator_by_token_hash("hash-a2").await.unwrap().is_none());
    assert_eq!(holder("s-a2", now).await, None);
    assert!(!s.set_operator_token("op-a", "hash-a3").await.unwrap());
    assert!(s
        .get_operator("op-a")
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_some());
    assert_eq!(holder("s-b", now).await.as_deref(), Some("op-b"));
    assert!(s.operator_by_token_hash("hash-b").await.unwrap().is_some());
}

// ---------------------------------------------------------------- policy parameters

fn date(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn param(name: &str, values: &[(&str, f64, &str)]) -> ParamRecord {
    ParamRecord {
        param: domain::PolicyParam {
            name: name.into(),
            description: "连续参保月数下限".into(),
            unit: "月".into(),
            values: values
                .iter()
                .map(|(d, v, r)| domain::param::ParamValue {
                    effective_from: date(d),
                    value: *v,
                    legal_ref: r.to_string(),
                })
                .collect(),
        },
        // whole microseconds: both backends keep them exactly
        updated_at: chrono::DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
    }
}

async fn params_round_trip_with_dated_values(s: Arc<dyn Store>) {
    assert!(s.list_params().await.unwrap().is_empty());
    assert!(s.get_param("min_insured_months").await.unwrap().is_none());
    let months = param(
        "min_insured_months",
        &[
            ("2023-01-01", 6.0, "沪人社规〔2023〕12号"),
            ("2025-07-01", 12.0, "沪人社规〔2025〕4号"),
        ],
    );
    let rate = param("return_rate", &[("2024-01-01", 0.6, "")]);
    s.put_param(&rate).await.unwrap();
    s.put_param(&months).await.unwrap();
    assert_eq!(
        s.get_param("min_insured_months").await.unwrap(),
        Some(months.clone())
    );
    let all = s.list_params().await.unwrap();
    assert_eq!(all, vec![months.clone(), rate.clone()], "by name");

    // A put replaces the description and the whole list of values.
    let mut changed = param(
        "min_insured_months",
        &[("2026-01-01", 18.0, "沪人社规〔2026〕1号")],
    );
    changed.param.description = "新下限".into();
    s.put_param(&changed).await.unwrap();
    let got = s.get_param("min_insured_months").await.unwrap().unwrap();
    assert_eq!(got, changed);
    assert_eq!(got.param.value_on(date("2025-12-31")), None);
    assert_eq!(got.param.value_on(date("2026-01-01")).unwrap().value, 18.0);
    assert_eq!(
        s.get_param("return_rate")
            .await
            .unwrap()
            .unwrap()
            .param
            .values[0]
            .value,
        0.6
    );
}

async fn campaign_subjects_are_those_planned(s: Arc<dyn Store>) {
    running_campaign(&*s, "c1", CampaignMode::Continuous).await;
    assert!(s.campaign_subjects("c1").await.unwrap().is_empty());
    let pushes: Vec<_> = (0..3).map(|n| new_push("c1", n, Channel::Sms)).collect();
    let skips = vec![(resident_id(7), SkipReason::Unreachable)];
    s.insert_plan_batch("c1", &pushes, &skips, chrono::Utc::now())
        .await
        .unwrap();
    let got: BTreeSet<String> = s
        .campaign_subjects("c1")
        .await
        .unwrap()
        .into_iter()
        .collect();
    let want: BTreeSet<String> = [0, 1, 2, 7].into_iter().map(resident_id).collect();
    assert_eq!(got, want);
    assert!(s.campaign_subjects("other").await.unwrap().is_empty());
}

// ---------------------------------------------------------------- campaign operations

async fn ops_send_time_skips_replace_the_push(s: Arc<dyn Store>) {
    let pushes = planned(s.as_ref(), "k1", 3).await;
    let claimed = s
        .claim_for_sending(
            &[pushes[0].id.clone(), pushes[1].id.clone()],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // Only pushes in `sending` can be skipped; push 2 is still queued.
    let n = s
        .skip_sending(
            &[
                (pushes[0].id.clone(), SkipReason::Capped),
                (pushes[2].id.clone(), SkipReason::Duplicate),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(s.get_push(&pushes[0].id).await.unwrap().is_none());
    assert!(s.get_push(&pushes[2].id).await.unwrap().is_some());
    let counts = s.campaign_counts("k1").await.unwrap();
    assert_eq!(counts.eligible, 3, "the skipped subject is still eligible");
    assert_eq!(counts.sending, 1);
    assert_eq!(counts.queued, 1);
    // Planning the subject again does not bring the push back.
    let again = new_push("k1", 0, Channel::Sms);
    let again = NewPush {
        id: "p-k1-again".into(),
        link_code: "lk1again".into(),
        ..again
    };
    assert_eq!(
        s.insert_plan_batch("k1", &[again], &[], chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.campaign_counts("k1").await.unwrap().eligible, 3);
}

async fn ops_queued_pushes_of_a_campaign_end_skipped(s: Arc<dyn Store>) {
    let pushes = planned(s.as_ref(), "q1", 3).await;
    let other = planned(s.as_ref(), "q2", 1).await;
    s.claim_for_sending(&[pushes[0].id.clone()], chrono::Utc::now())
        .await
        .unwrap();
    let n = s
        .skip_queued("q1", SkipReason::PolicyEnded, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 2, "the claimed push is left to its connector");
    assert!(s.get_push(&pushes[0].id).await.unwrap().is_some());
    assert!(s.get_push(&pushes[1].id).await.unwrap().is_none());
    assert!(
        s.get_push(&other[0].id).await.unwrap().is_some(),
        "other campaigns untouched"
    );
    let counts = s.campaign_counts("q1").await.unwrap();
    assert_eq!(counts.eligible, 3);
    assert_eq!((counts.queued, counts.sending), (0, 1));
    assert_eq!(
        s.skip_queued("q1", SkipReason::PolicyEnded, chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
}

/// A second campaign of the policy of `first`.
async fn sibling_campaign(s: &dyn Store, first: &CampaignRecord, id: &str) {
    let c = CampaignRecord {
        id: id.into(),
        created_at: Utc::now(),
        ..first.clone()
    };
    s.insert_campaign(&c).await.unwrap();
}

async fn ops_subjects_with_policy_across_campaigns(s: Arc<dyn Store>) {
    let pushes = planned(s.as_ref(), "d1", 3).await;
    let c1 = s.get_campaign("d1").await.unwrap().unwrap();
    sibling_campaign(s.as_ref(), &c1, "d2").await;
    let claimed = s
        .claim_for_sending(
            &[pushes[0].id.clone(), pushes[1].id.clone()],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    s.record_outcomes(
        &[
            PushOutcome::Sent {
                push_id: pushes[0].id.clone(),
                provider_id: "biz-1".into(),
            },
            PushOutcome::Failed {
                push_id: pushes[1].id.clone(),
                error: "no".into(),
            },
        ],
        Utc::now(),
    )
    .await
    .unwrap();
    let recent = s
        .recent_notice_sends(Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(recent.len(), 1, "only the sent push");
    assert_eq!(
        (
            recent[0].push_id.as_str(),
            recent[0].subject_id.clone(),
            recent[0].policy_id.as_str()
        ),
        (pushes[0].id.as_str(), resident_id(0), c1.policy_id.as_str())
    );
    assert!(s
        .recent_notice_sends(Utc::now() + Duration::hours(1))
        .await
        .unwrap()
        .is_empty());
    let ask: Vec<String> = (0..4).map(resident_id).collect();
    let mut any = s
        .subjects_with_policy(&c1.policy_id, "d2", &ask, false)
        .await
        .unwrap();
    any.sort();
    assert_eq!(
        any,
        vec![resident_id(0), resident_id(2)],
        "failed pushes do not count"
    );
    let sent = s
        .subjects_with_policy(&c1.policy_id, "d2", &ask, true)
        .await
        .unwrap();
    assert_eq!(sent, vec![resident_id(0)]);
    assert!(
        s.subjects_with_policy(&c1.policy_id, "d1", &ask, false)
            .await
            .unwrap()
            .is_empty(),
        "the campaign's own pushes are not duplicates"
    );
    assert!(s
        .subjects_with_policy("pol-other", "d2", &ask, false)
        .await
        .unwrap()
        .is_empty());
}

async fn ops_subjects_by_mobile(s: Arc<dyn Store>) {
    s.upsert_subjects(&[
        (person(7, json!({})), vec![]),
        (person(8, json!({})), vec![]),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.subjects_by_mobile("13900000007").await.unwrap(),
        vec![resident_id(7)]
    );
    assert!(s
        .subjects_by_mobile("13900000009")
        .await
        .unwrap()
        .is_empty());
}

async fn ops_scheduled_runs_start_once_and_end(s: Arc<dyn Store>) {
    use chrono::TimeZone;
    campaign(s.as_ref(), "r1", CampaignMode::Once).await;
    s.transition_campaign(
        "r1",
        &[CampaignStatus::Draft],
        CampaignStatus::Scheduled,
        CampaignChange::default(),
    )
    .await
    .unwrap();
    let t = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
    let ops = CampaignOps {
        campaign_id: "r1".into(),
        next_run_at: Some(t),
        approvals_needed: 1,
        ..Default::default()
    };
    s.put_campaign_ops(&ops).await.unwrap();
    assert_eq!(s.get_campaign_ops("r1").await.unwrap(), Some(ops.clone()));
    assert!(s
        .due_campaigns(t - Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    let due = s.due_campaigns(t).await.unwrap();
    assert_eq!(
        due.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["r1"]
    );
    let next = t + Duration::days(1);
    assert!(s.start_run("r1", t, Some(next), t).await.unwrap());
    assert!(
        !s.start_run("r1", t, Some(next), t).await.unwrap(),
        "a second scheduler does not start the same run"
    );
    let c = s.get_campaign("r1").await.unwrap().unwrap();
    assert_eq!(c.status, CampaignStatus::Running);
    assert_eq!(c.launched_at, Some(t));
    assert!(c.planned_at.is_none());
    let o = s.get_campaign_ops("r1").await.unwrap().unwrap();
    assert_eq!((o.next_run_at, o.runs), (Some(next), 1));
    // Planned, nothing left to send: a recurring campaign still waits for its next run.
    s.finish_plan("r1", t).await.unwrap();
    assert!(s.complete_finished_campaigns(t).await.unwrap().is_empty());
    // The next run re-opens the plan.
    assert!(s.start_run("r1", next, None, next).await.unwrap());
    assert!(s
        .get_campaign("r1")
        .await
        .unwrap()
        .unwrap()
        .planned_at
        .is_none());
    // The end date completes it.
    s.put_campaign_ops(&CampaignOps {
        ends_at: Some(next + Duration::hours(1)),
        next_run_at: Some(next + Duration::days(1)),
        ..s.get_campaign_ops("r1").await.unwrap().unwrap()
    })
    .await
    .unwrap();
    assert!(s.complete_ended_campaigns(next).await.unwrap().is_empty());
    assert_eq!(
        s.complete_ended_campaigns(next + Duration::hours(2))
            .await
            .unwrap(),
        vec!["r1".to_string()]
    );
    assert_eq!(
        s.get_campaign("r1").await.unwrap().unwrap().status,
        CampaignStatus::Completed
    );
    assert_eq!(
        s.get_campaign_ops("r1").await.unwrap().unwrap().next_run_at,
        None
    );
    assert!(s
        .due_campaigns(next + Duration::days(5))
        .await
        .unwrap()
        .is_empty());
}

async fn ops_policy_reviews_latest_counts(s: Arc<dyn Store>) {
    use domain::review::Disclosure;
    policy(s.as_ref(), "rv1").await;
    assert!(s.latest_policy_review("rv1").await.unwrap().is_none());
    let first = PolicyReview {
        policy_id: "rv1".into(),
        disclosure: Disclosure::NotPublic,
        confidentiality_checked: true,
        passed: false,
        note: "含内部信息".into(),
        reviewed_by: "op-r".into(),
        at: Utc::now(),
    };
    s.insert_policy_review(&first).await.unwrap();
    let second = PolicyReview {
        disclosure: Disclosure::PublicOnRequest,
        passed: true,
        note: String::new(),
        ..first.clone()
    };
    s.insert_policy_review(&second).await.unwrap();
    let latest = s.latest_policy_review("rv1").await.unwrap().unwrap();
    assert_eq!(latest.disclosure, Disclosure::PublicOnRequest);
    assert!(latest.passed);
    assert_eq!(latest.reviewed_by, "op-r");
}

// ---------------------------------------------------------------- tallies

/// Counts the hard way, from the rows themselves: what the tallies must always equal.
async fn counted_from_rows(s: &dyn Store, cid: &str) -> CampaignCounts {
    let mut c = CampaignCounts::default();
    let pushes = s.campaign_pushes(cid, 0, 1_000_000).await.unwrap();
    for p in &pushes {
        match p.status {
            PushStatus::Queued => c.queued += 1,
            PushStatus::Sending => c.sending += 1,
            PushStatus::Sent => c.sent += 1,
            PushStatus::Delivered => c.delivered += 1,
            PushStatus::Failed => c.failed += 1,
        }
        *c.by_channel
            .entry(p.channel.as_str().to_string())
            .or_default() += 1;
    }
    let cells = s.report_cells(cid).await.unwrap();
    for k in &cells.skips {
        *c.skipped.entry(k.reason.clone()).or_default() += k.subjects;
        match k.reason.as_str() {
            "unreachable" => c.unreachable += k.subjects,
            "opted_out" => c.opted_out += k.subjects,
            _ => {}
        }
    }
    let skipped: i64 = cells.skips.iter().map(|k| k.subjects).sum();
    c.eligible = pushes.len() as i64 + skipped;
    c.clicked = s.campaign_counts(cid).await.unwrap().clicked;
    c
}

async fn assert_tallies_exact(s: &dyn Store, cid: &str, step: &str) {
    let want = counted_from_rows(s, cid).await;
    assert_eq!(
        s.campaign_counts(cid).await.unwrap(),
        want,
        "{step}: before a fold"
    );
    s.fold_tallies().await.unwrap();
    assert_eq!(
        s.campaign_counts(cid).await.unwrap(),
        want,
        "{step}: after a fold"
    );
    assert_eq!(
        s.fold_tallies().await.unwrap(),
        0,
        "{step}: nothing left to fold"
    );
}

async fn tallies_follow_every_change_and_fold_exactly(s: Arc<dyn Store>) {
    let subjects: Vec<_> = (0..12)
        .map(|n| {
            let district = if n % 2 == 0 {
                "浦东新区"
            } else {
                "徐汇区"
            };
            (person(n, json!({"district": district})), vec![])
        })
        .collect();
    s.upsert_subjects(&subjects).await.unwrap();
    running_campaign(&*s, "t1", CampaignMode::Once).await;
    let pushes: Vec<_> = (0..10).map(|n| new_push("t1", n, Channel::Sms)).collect();
    let skips = vec![
        (resident_id(10), SkipReason::Unreachable),
        (resident_id(11), SkipReason::OptedOut),
    ];
    s.insert_plan_batch("t1", &pushes, &skips, Utc::now())
        .await
        .unwrap();
    // Written again (a planner that ran twice): nothing changes.
    s.insert_plan_batch("t1", &pushes, &skips, Utc::now())
        .await
        .unwrap();
    assert_tallies_exact(&*s, "t1", "planned").await;
    s.finish_plan("t1", Utc::now()).await.unwrap();
    let c = s.campaign_counts("t1").await.unwrap();
    assert_eq!((c.eligible, c.unreachable, c.opted_out), (12, 1, 1));

    // The report's district cells come from the tallies too.
    let cells = s.report_cells("t1").await.unwrap();
    let pudong: i64 = cells
        .pushes
        .iter()
        .filter(|c| c.district == "浦东新区")
        .map(|c| c.pushes)
        .sum();
    assert_eq!(pudong, 5);
    assert!(cells.pushes.iter().all(|c| c.kind == "person"));

    let ids: Vec<String> = pushes.iter().map(|p| p.id.clone()).collect();
    on_the_bus(&*s, Utc::now() + Duration::seconds(1), 100).await;
    s.claim_for_sending(&ids[..8], Utc::now()).await.unwrap();
    assert_tallies_exact(&*s, "t1", "claimed").await;
    s.record_outcomes(
        &[
            PushOutcome::Sent {
                push_id: ids[0].clone(),
                provider_id: "bz-0".into(),
            },
            PushOutcome::Sent {
                push_id: ids[1].clone(),
                provider_id: "bz-1".into(),
            },
            PushOutcome::Failed {
                push_id: ids[2].clone(),
                error: "isv.MOBILE_NUMBER_ILLEGAL".into(),
            },
            PushOutcome::Defer {
                push_id: ids[3].clone(),
                at: Utc::now(),
                reason: "quiet hours".into(),
            },
            PushOutcome::Requeue {
                push_id: ids[4].clone(),
                at: Utc::now(),
                error: "fallback".into(),
                channel: Some(Channel::Hotline),
                recipient: None,
                content: None,
            },
        ],
        Utc::now(),
    )
    .await
    .unwrap();
    assert_tallies_exact(&*s, "t1", "outcomes").await;
    s.skip_sending(&[(ids[5].clone(), SkipReason::Capped)], chrono::Utc::now())
        .await
        .unwrap();
    assert_tallies_exact(&*s, "t1", "skipped at send time").await;
    let receipt = |id: &str, delivered| ReceiptUpdate {
        provider_id: Some(id.into()),
        push_id: None,
        delivered,
        error: None,
        retry_at: None,
    };
    s.apply_receipt(&receipt("bz-0", true), Utc::now())
        .await
        .unwrap();
    s.apply_receipt(&receipt("bz-1", false), Utc::now())
        .await
        .unwrap();
    // A repeated receipt changes nothing.
    s.apply_receipt(&receipt("bz-0", true), Utc::now())
        .await
        .unwrap();
    s.record_click(&ids[0], Utc::now()).await.unwrap();
    assert_tallies_exact(&*s, "t1", "receipts").await;
    s.replay_failed(&ids[..3], Utc::now()).await.unwrap();
    let counts = s.campaign_counts("t1").await.unwrap();
    assert_eq!(counts.clicked, 1);
    assert_eq!(counts.failed, 0, "both failed pushes replayed");
    assert_tallies_exact(&*s, "t1", "replayed").await;
}

async fn concurrent_writers_keep_tallies_exact(s: Arc<dyn Store>) {
    running_campaign(&*s, "t2", CampaignMode::Once).await;
    let pushes: Vec<_> = (0..400).map(|n| new_push("t2", n, Channel::Sms)).collect();
    s.insert_plan_batch("t2", &pushes, &[], Utc::now())
        .await
        .unwrap();
    on_the_bus(&*s, Utc::now() + Duration::seconds(1), 1000).await;
    let ids: Vec<String> = pushes.iter().map(|p| p.id.clone()).collect();
    // Four workers claim, record and receive receipts at once, in overlapping sets.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for chunk in ids.chunks(25).skip(w).step_by(2) {
                let won = s.claim_for_sending(chunk, Utc::now()).await.unwrap();
                let outcomes: Vec<_> = won
                    .iter()
                    .map(|p| PushOutcome::Sent {
                        push_id: p.id.clone(),
                        provider_id: format!("bz-{}", p.id),
                    })
                    .collect();
                s.record_outcomes(&outcomes, Utc::now()).await.unwrap();
                for p in won.iter().step_by(3) {
                    s.apply_receipt(
                        &ReceiptUpdate {
                            provider_id: Some(format!("bz-{}", p.id)),
                            push_id: None,
                            delivered: true,
                            error: None,
                            retry_at: None,
                        },
                        Utc::now(),
                    )
                    .await
                    .unwrap();
                }
                s.fold_tallies().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = s.campaign_counts("t2").await.unwrap();
    assert_eq!(c.queued + c.sending, 0, "{c:?}");
    assert_eq!(c.sent + c.delivered, 400, "{c:?}");
    assert_tallies_exact(&*s, "t2", "after concurrent writers").await;
}

async fn provider_templates_round_trip(s: Arc<dyn Store>) {
    use domain::provider_template::{Provider, ProviderTemplate, TemplateVariable, VarKind};
    let t = ProviderTemplate {
        provider: Provider::TencentSms,
        code: "1843021".into(),
        name: "政策提醒".into(),
        text: "您可能符合{1}申领条件，请于{2}前申请。".into(),
        sign_name: Some("人社服务".into()),
        variables: vec![
            TemplateVariable {
                name: "1".into(),
                kind: VarKind::Text,
                max_chars: None,
            },
            TemplateVariable {
                name: "2".into(),
                kind: VarKind::Date,
                max_chars: Some(11),
            },
        ],
        catch_all: false,
        enterprise: true,
    };
    let same_code = ProviderTemplate {
        provider: Provider::AliyunSms,
        text: "${content}".into(),
        variables: vec![TemplateVariable {
            name: "content".into(),
            kind: VarKind::Text,
            max_chars: None,
        }],
        catch_all: true,
        enterprise: false,
        ..t.clone()
    };
    let now = Utc::now();
    s.put_provider_template(&t, now).await.unwrap();
    s.put_provider_template(&same_code, now).await.unwrap();
    assert_eq!(
        s.get_provider_template(Provider::TencentSms, "1843021")
            .await
            .unwrap(),
        Some(t.clone())
    );
    let mut changed = t.clone();
    changed.name = "改名".into();
    s.put_provider_template(&changed, now).await.unwrap();
    let all = s.list_provider_templates().await.unwrap();
    assert_eq!(all, vec![same_code.clone(), changed]);
    assert!(s
        .delete_provider_template(Provider::TencentSms, "1843021")
        .await
        .unwrap());
    assert!(!s
        .delete_provider_template(Provider::TencentSms, "1843021")
        .await
        .unwrap());
    assert_eq!(s.list_provider_templates().await.unwrap(), vec![same_code]);
    assert_eq!(
        s.get_provider_template(Provider::Wechat, "1843021")
            .await
            .unwrap(),
        None
    );
}

async fn subjects_by_ids_and_recent_writes(s: Arc<dyn Store>) {
    let before = Utc::now() - Duration::seconds(1);
    let first: Vec<_> = (0..3).map(|n| (person(n, json!({})), vec![])).collect();
    s.upsert_subjects(&first).await.unwrap();
    let mut got: Vec<String> = s
        .subject_ids_changed_since(before)
        .await
        .unwrap()
        .into_iter()
        .collect();
    got.sort();
    assert_eq!(got, (0..3).map(resident_id).collect::<Vec<_>>());
    assert!(s
        .subject_ids_changed_since(Utc::now() + Duration::seconds(5))
        .await
        .unwrap()
        .is_empty());
    let wanted = vec![resident_id(2), resident_id(0), resident_id(99)];
    let mut found: Vec<String> = s
        .get_subjects(&wanted)
        .await
        .unwrap()
        .into_iter()
        .map(|(subject, _)| subject.id.as_str().to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![resident_id(0), resident_id(2)],
        "unknown ids are left out"
    );
}

async fn attributes_round_trip(s: Arc<dyn Store>) {
    use domain::attribute::{AttrType, AttributeDef};
    let status = AttributeDef {
        name: "employment_status".into(),
        label: "就业状态".into(),
        ty: AttrType::String,
        unit: String::new(),
        values: [("registered_unemployed", "登记失业"), ("employed", "在职")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        personal: false,
    };
    let months = AttributeDef {
        name: "insured_months".into(),
        label: "参保月数".into(),
        ty: AttrType::Integer,
        unit: "个月".into(),
        values: Default::default(),
        personal: false,
    };
    let now = Utc::now();
    assert!(s.list_attributes().await.unwrap().is_empty());
    s.put_attribute(&status, now).await.unwrap();
    s.put_attribute(&months, now).await.unwrap();
    assert_eq!(
        s.get_attribute("employment_status").await.unwrap(),
        Some(status.clone())
    );
    let mut changed = months.clone();
    changed.label = "连续参保月数".into();
    changed.personal = true;
    s.put_attribute(&changed, now).await.unwrap();
    assert_eq!(
        s.list_attributes().await.unwrap(),
        vec![status.clone(), changed],
        "by name, the replacement kept"
    );
    assert!(s.delete_attribute("insured_months").await.unwrap());
    assert!(!s.delete_attribute("insured_months").await.unwrap());
    assert_eq!(s.get_attribute("insured_months").await.unwrap(), None);
    assert_eq!(s.list_attributes().await.unwrap(), vec![status]);
}

// ---------------------------------------------------------------- the record (issue 12)

/// A fixed time base: event times come from the callers' clock, never the store's.
fn t(secs: i64) -> chrono::DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap() + Duration::seconds(secs)
}

/// Runs `sql` on the database behind the store; rows affected.
async fn raw(url: &str, sql: &str) -> u64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let n = sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let n = sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        pool.close().await;
        n
    }
}

fn trail(events: &[StoredEvent]) -> Vec<(&'static str, Option<Channel>)> {
    events
        .iter()
        .map(|e| (e.event.kind.as_str(), e.event.channel))
        .collect()
}

/// Hands every due push to the bus at `now`.
async fn hand_all(s: &dyn Store, now: chrono::DateTime<Utc>) -> Vec<PushRecord> {
    let h = s.hand_over(now, 100).await.unwrap();
    let pushes = h.pushes().to_vec();
    h.commit().await.unwrap();
    pushes
}

async fn claim_one(s: &dyn Store, id: &str, at: chrono::DateTime<Utc>) {
    let claimed = s.claim_for_sending(&[id.to_string()], at).await.unwrap();
    assert_eq!(claimed.len(), 1);
}

async fn record_a_fallback_push_has_its_whole_trail(s: Arc<dyn Store>) {
    running_campaign(s.as_ref(), "f1", CampaignMode::Once).await;
    let p = new_push("f1", 1, Channel::Wechat);
    s.insert_plan_batch("f1", std::slice::from_ref(&p), &[], t(0))
        .await
        .unwrap();
    assert_eq!(hand_all(s.as_ref(), t(1)).await.len(), 1);
    claim_one(s.as_ref(), &p.id, t(2)).await;
    // WeChat refuses (not subscribed): the push moves on to SMS.
    s.record_outcomes(
        &[PushOutcome::Requeue {
            push_id: p.id.clone(),
            at: t(3),
            error: "unreachable on wechat: 43101: user refuse to accept the msg".into(),
            channel: Some(Channel::Sms),
            recipient: Some("13900000001".into()),
            content: Some("sms text".into()),
        }],
        t(3),
    )
    .await
    .unwrap();
    assert_eq!(hand_all(s.as_ref(), t(4)).await.len(), 1);
    claim_one(s.as_ref(), &p.id, t(5)).await;
    s.record_outcomes(
        &[PushOutcome::Sent {
            push_id: p.id.clone(),
            provider_id: "biz-777".into(),
        }],
        t(6),
    )
    .await
    .unwrap();
    let receipt = ReceiptUpdate {
        provider_id: Some("biz-777".into()),
        push_id: None,
        delivered: true,
        error: None,
        retry_at: None,
    };
    assert_eq!(
        s.apply_receipts(&[receipt], t(7)).await.unwrap(),
        vec![true]
    );
    s.record_click(&p.id, t(8)).await.unwrap();

    let events = s.push_events(&p.id).await.unwrap();
    use Channel::{Sms, Wechat};
    assert_eq!(
        trail(&events),
        vec![
            ("planned", Some(Wechat)),
            ("bus", Some(Wechat)),
            ("claimed", Some(Wechat)),
            ("fallback", Some(Wechat)),
            ("bus", Some(Sms)),
            ("claimed", Some(Sms)),
            ("sent", Some(Sms)),
            ("receipt", Some(Sms)),
            ("clicked", None),
        ]
    );
    let times: Vec<_> = events.iter().map(|e| e.event.at).collect();
    assert_eq!(
        times,
        (0..=8).map(t).collect::<Vec<_>>(),
        "times in order, as given"
    );
    let fallback = &events[3].event;
    let d = fallback.detail.as_ref().unwrap();
    assert_eq!(d["to"], "sms");
    assert!(d["answer"].as_str().unwrap().contains("43101"), "{d}");
    assert_eq!(
        events[6].event.detail.as_ref().unwrap()["provider_id"],
        "biz-777"
    );
    assert_eq!(events[7].event.detail.as_ref().unwrap()["delivered"], true);
    let claimer = events[2].event.actor.as_deref().unwrap();
    assert!(claimer.starts_with("connector@"), "{claimer}");
    assert_eq!(events[0].event.actor.as_deref(), Some("planner"));
    // No recipient in the record.
    assert!(!format!("{events:?}").contains("13900000001"));
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    assert_eq!(report.events, 9);
}

async fn record_every_transition_is_an_event(s: Arc<dyn Store>) {
    let pushes = planned(s.as_ref(), "e1", 6).await;
    let id = |i: usize| pushes[i].id.clone();
    // Re-planning inserts nothing and records nothing.
    let again: Vec<NewPush> = (0..6)
        .map(|i| NewPush {
            id: format!("again-{i}"),
            ..new_push("e1", i as u32, Channel::Sms)
        })
        .collect();
    assert_eq!(
        s.insert_plan_batch("e1", &again, &[], t(1)).await.unwrap(),
        0
    );
    assert!(s.push_events("again-0").await.unwrap().is_empty());
    hand_all(s.as_ref(), Utc::now()).await;
    let all: Vec<String> = (0..6).map(id).collect();
    s.claim_for_sending(&all[..5], t(2)).await.unwrap();
    s.record_outcomes(
        &[
            PushOutcome::Failed {
                push_id: id(0),
                error: "isv.MOBILE_NUMBER_ILLEGAL: 13900000000".into(),
            },
            PushOutcome::Defer {
                push_id: id(1),
                at: t(600),
                reason: "outside sms hours".into(),
            },
            PushOutcome::Requeue {
                push_id: id(2),
                at: t(60),
                error: "isp.SYSTEM_ERROR: busy".into(),
                channel: None,
                recipient: None,
                content: None,
            },
            PushOutcome::Sent {
                push_id: id(3),
                provider_id: "prov-3".into(),
            },
        ],
        t(3),
    )
    .await
    .unwrap();
    s.skip_sending(&[(id(4), SkipReason::Capped)], t(4))
        .await
        .unwrap();
    s.replay_failed(&[id(0)], t(5)).await.unwrap();
    // A call-again receipt.
    let retry = ReceiptUpdate {
        provider_id: Some("prov-3".into()),
        push_id: None,
        delivered: false,
        error: Some("busy line".into()),
        retry_at: Some(t(900)),
    };
    assert_eq!(s.apply_receipts(&[retry], t(6)).await.unwrap(), vec![true]);
    s.record_application(&Application {
        subject_id: pushes[3].subject_id.clone(),
        policy_id: "pol-e1".into(),
        applied_at: t(7),
        source: "yiwangtongban".into(),
        reference: Some("case-1".into()),
        recorded_at: t(7),
    })
    .await
    .unwrap();
    // The withdrawal cancels what is still queued (0, 1, 2, 3 and 5).
    assert_eq!(
        s.skip_queued("e1", SkipReason::PolicyEnded, t(8))
            .await
            .unwrap(),
        5
    );
    let last = |i: usize| {
        let s = s.clone();
        async move {
            let ev = s.push_events(&pushes_id("e1", i)).await.unwrap();
            ev.iter().map(|e| e.event.kind.as_str()).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        last(0).await,
        ["planned", "bus", "claimed", "failed", "queued", "cancelled"]
    );
    assert_eq!(
        last(1).await,
        ["planned", "bus", "claimed", "deferred", "cancelled"]
    );
    assert_eq!(
        last(2).await,
        ["planned", "bus", "claimed", "retry", "cancelled"]
    );
    assert_eq!(
        last(3).await,
        [
            "planned",
            "bus",
            "claimed",
            "sent",
            "retry",
            "applied",
            "cancelled"
        ]
    );
    assert_eq!(last(4).await, ["planned", "bus", "claimed", "skipped"]);
    assert_eq!(last(5).await, ["planned", "bus", "cancelled"]);
    let skipped = s.push_events(&id(4)).await.unwrap();
    assert_eq!(
        skipped[3].event.detail.as_ref().unwrap()["reason"],
        "capped"
    );
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    // One segment per store call that wrote events: plan, hand-over, claim, outcomes,
    // skip, replay, receipt, application, withdrawal.
    assert_eq!(report.segments, 9);
}

fn pushes_id(campaign: &str, i: usize) -> String {
    new_push(campaign, i as u32, Channel::Sms).id
}

async fn record_a_rolled_back_hand_over_leaves_the_chains_intact(s: Arc<dyn Store>) {
    planned(s.as_ref(), "r1", 3).await;
    let h = s.hand_over(Utc::now(), 2).await.unwrap();
    assert_eq!(h.pushes().len(), 2);
    h.rollback().await.unwrap();
    // Dropped without a commit, too.
    drop(s.hand_over(Utc::now(), 1).await.unwrap());
    assert_eq!(hand_all(s.as_ref(), Utc::now()).await.len(), 3);
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    assert_eq!(
        report.events, 6,
        "3 planned, 3 on the bus: nothing of the rollbacks"
    );
}

async fn audit_entries(s: &dyn Store, n: usize) {
    for i in 0..n {
        s.audit(&AuditEntry {
            operator_id: "op-1".into(),
            action: "policy.publish".into(),
            target: format!("pol-{i}"),
            detail: json!({"title": "稳岗返还", "n": i}),
            at: t(i as i64),
        })
        .await
        .unwrap();
    }
}

async fn first_broken(s: &dyn Store) -> String {
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(!report.intact(), "the change went unnoticed");
    report.broken[0].clone()
}

async fn record_chains_catch_edited_and_deleted_entries(s: Arc<dyn Store>, url: &str) {
    audit_entries(s.as_ref(), 3).await;
    let pushes = planned(s.as_ref(), "v1", 4).await;
    hand_all(s.as_ref(), Utc::now()).await;
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    assert_eq!((report.audit_entries, report.events), (3, 8));

    // An edited audit row.
    let second: i64 = s.audit_log(0, 10).await.unwrap()[1].0;
    raw(
        url,
        &format!("UPDATE audit_log SET target = 'pol-x' WHERE id = {second}"),
    )
    .await;
    let broken = first_broken(s.as_ref()).await;
    assert!(
        broken.starts_with(&format!("audit entry {second} ")),
        "{broken}"
    );
    assert!(broken.contains("edited"), "{broken}");
    raw(
        url,
        &format!("UPDATE audit_log SET target = 'pol-1' WHERE id = {second}"),
    )
    .await;
    assert!(s.verify_chains(&[]).await.unwrap().intact());

    // An edited event.
    let ev = s.push_events(&pushes[2].id).await.unwrap();
    let bus = ev[1].id;
    raw(
        url,
        &format!("UPDATE push_events SET actor = 'someone' WHERE id = {bus}"),
    )
    .await;
    let broken = first_broken(s.as_ref()).await;
    assert!(broken.contains("edited"), "{broken}");
    assert!(
        broken.contains(&bus.to_string()) || broken.contains(".."),
        "{broken}"
    );
    raw(
        url,
        &format!("UPDATE push_events SET actor = 'relay' WHERE id = {bus}"),
    )
    .await;
    assert!(s.verify_chains(&[]).await.unwrap().intact());

    // A deleted event.
    assert_eq!(
        raw(url, &format!("DELETE FROM push_events WHERE id = {bus}")).await,
        1
    );
    let broken = first_broken(s.as_ref()).await;
    assert!(broken.contains("deleted"), "{broken}");
    assert!(broken.contains("3 of its 4 events"), "{broken}");

    // A deleted audit row (not the last).
    let first: i64 = s.audit_log(0, 10).await.unwrap()[0].0;
    raw(url, &format!("DELETE FROM audit_log WHERE id = {first}")).await;
    let report = s.verify_chains(&[]).await.unwrap();
    assert!(
        report.broken[0].starts_with("audit entry "),
        "{:?}",
        report.broken
    );
    assert!(report.broken[0].contains("deleted"), "{:?}", report.broken);
}

async fn record_published_heads_catch_a_rewritten_tail(s: Arc<dyn Store>, url: &str) {
    audit_entries(s.as_ref(), 2).await;
    planned(s.as_ref(), "h1", 2).await;
    hand_all(s.as_ref(), Utc::now()).await;
    let published = s.chain_heads(t(100)).await.unwrap();
    assert_eq!(published.heads[0].chain, "audit");
    assert_eq!(published.heads[0].seq, 2);
    assert!(published.heads.len() >= 2, "{published:?}");
    let report = s
        .verify_chains(std::slice::from_ref(&published))
        .await
        .unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    // The hand-over's segment and its events removed whole, links and all: only the
    // published head shows it.
    let stream = published.heads[1].chain.clone();
    raw(url, &format!(
        "DELETE FROM push_events WHERE segment IN (SELECT id FROM event_segments WHERE stream = '{stream}' AND seq = {})",
        published.heads[1].seq
    ))
    .await;
    raw(
        url,
        &format!(
            "DELETE FROM event_segments WHERE stream = '{stream}' AND seq = {}",
            published.heads[1].seq
        ),
    )
    .await;
    // The links left are whole: without the published head this goes unnoticed.
    assert!(s.verify_chains(&[]).await.unwrap().intact());
    let report = s
        .verify_chains(std::slice::from_ref(&published))
        .await
        .unwrap();
    assert!(
        report
            .broken
            .iter()
            .any(|b| b.contains("published head") && b.contains(&stream)),
        "{:?}",
        report.broken
    );
    // The last audit entry deleted: the head row shows it (were the head rewritten too,
    // the published head would).
    raw(url, "DELETE FROM audit_log WHERE seq = 2").await;
    let broken = first_broken(s.as_ref()).await;
    assert!(broken.contains("head"), "{broken}");
}
