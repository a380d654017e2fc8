//! The send counter over Redis (`POLICY_PUSH_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): two `RedisLimits` values stand for two connector processes.

use limits::counter::{CountDecision, CountRequest, SendCounter};
use limits::redis_backend::RedisLimits;
use std::sync::Arc;

const DAY: i64 = 86_400_000;

fn pair() -> (RedisLimits, RedisLimits) {
    let url = std::env::var("POLICY_PUSH_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let p = format!("pp-test:{}:", uuid::Uuid::new_v4().simple());
    (
        RedisLimits::new(&url, &p).unwrap(),
        RedisLimits::new(&url, &p).unwrap(),
    )
}

fn req<'a>(
    subject: &'a str,
    token: &'a str,
    dedupe: Option<&'a str>,
    now_ms: i64,
) -> CountRequest<'a> {
    CountRequest {
        subject,
        token,
        dedupe,
        now_ms,
        window_ms: 7 * DAY,
        max: 2,
    }
}

#[tokio::test]
async fn cap_window_retry_and_release() {
    let (a, b) = pair();
    assert_eq!(
        a.try_count(&req("h1", "p1", None, 0)).await.unwrap(),
        CountDecision::Counted
    );
    assert_eq!(
        b.try_count(&req("h1", "p2", None, DAY)).await.unwrap(),
        CountDecision::Counted
    );
    assert_eq!(
        a.try_count(&req("h1", "p3", None, 2 * DAY)).await.unwrap(),
        CountDecision::Capped {
            frees_at_ms: 7 * DAY
        }
    );
    // A retry of a counted send is not a new one.
    assert_eq!(
        b.try_count(&req("h1", "p2", None, 2 * DAY)).await.unwrap(),
        CountDecision::Counted
    );
    // Giving a count back frees a place.
    a.release("h1", "p2", None).await.unwrap();
    assert_eq!(
        b.try_count(&req("h1", "p3", None, 2 * DAY)).await.unwrap(),
        CountDecision::Counted
    );
    // The window slides.
    assert_eq!(
        a.try_count(&req("h1", "p4", None, 7 * DAY)).await.unwrap(),
        CountDecision::Counted
    );
    assert_eq!(
        a.try_count(&req("h1", "p5", None, 8 * DAY)).await.unwrap(),
        CountDecision::Capped {
            frees_at_ms: 9 * DAY
        }
    );
}

#[tokio::test]
async fn a_dedupe_key_is_claimed_by_one_send() {
    let (a, b) = pair();
    assert_eq!(
        a.try_count(&req("h2", "p1", Some("pol"), 0)).await.unwrap(),
        CountDecision::Counted
    );
    assert_eq!(
        b.try_count(&req("h2", "p2", Some("pol"), 1)).await.unwrap(),
        CountDecision::Duplicate
    );
    assert_eq!(
        b.try_count(&req("h2", "p2", Some("other"), 1))
            .await
            .unwrap(),
        CountDecision::Counted
    );
    a.release("h2", "p1", Some("pol")).await.unwrap();
    assert_eq!(
        b.try_count(&req("h2", "p3", Some("pol"), 2)).await.unwrap(),
        CountDecision::Counted
    );
    assert_eq!(
        a.try_count(&req("h2", "p4", Some("pol"), 3)).await.unwrap(),
        CountDecision::Duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_count_past_the_cap() {
    let (a, b) = pair();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let token = format!("push-{i}");
            c.try_count(&CountRequest {
                subject: "h3",
                token: &token,
                dedupe: None,
                now_ms: 1_000,
                window_ms: 7 * DAY,
                max: 3,
            })
            .await
            .unwrap()
        }));
    }
    let mut counted = 0;
    for t in tasks {
        if t.await.unwrap() == CountDecision::Counted {
            counted += 1;
        }
    }
    assert_eq!(counted, 3);
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_pass() {
    let c = RedisLimits::new("redis://127.0.0.1:1", "pp-test:").unwrap();
    assert!(c.try_count(&req("h4", "p1", None, 0)).await.is_err());
}
