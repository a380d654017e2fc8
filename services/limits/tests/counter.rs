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

/// [`pair`], seeded (an empty store has no sends to count).
async fn seeded_pair() -> (RedisLimits, RedisLimits) {
    let (a, b) = pair();
    a.mark_seeded().await.unwrap();
    (a, b)
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
    let (a, b) = seeded_pair().await;
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
    let (a, b) = seeded_pair().await;
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
    let (a, b) = seeded_pair().await;
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

/// A batch decides as the same requests one after the other would, on Redis as in
/// memory: later requests see the earlier ones' counts and claims, a repeated token is
/// counted once, and a batch sent after Redis forgot its scripts still runs.
#[tokio::test]
async fn a_batch_decides_as_one_request_after_the_other() {
    let batch = [
        req("h1", "p1", Some("pol-a"), 0),
        req("h1", "p2", Some("pol-b"), 1),
        req("h1", "p3", Some("pol-c"), 2), // third in the window: capped
        req("h1", "p1", Some("pol-a"), 3), // the same token again: counted once
        req("h2", "p4", Some("pol-a"), 4),
        req("h2", "p5", Some("pol-a"), 5), // another send of the policy: duplicate
    ];
    let expected = vec![
        CountDecision::Counted,
        CountDecision::Counted,
        CountDecision::Capped {
            frees_at_ms: 7 * DAY,
        },
        CountDecision::Counted,
        CountDecision::Counted,
        CountDecision::Duplicate,
    ];
    let memory = limits::counter::MemoryCounter::new();
    assert_eq!(memory.try_count_many(&batch).await.unwrap(), expected);
    let (a, b) = seeded_pair().await;
    let url = std::env::var("POLICY_PUSH_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // A pipeline does not load scripts by itself: start from a Redis without them.
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(a.try_count_many(&batch).await.unwrap(), expected);
    // The other process sees what the batch counted.
    assert_eq!(
        b.try_count(&req("h1", "p6", None, 6)).await.unwrap(),
        CountDecision::Capped {
            frees_at_ms: 7 * DAY
        }
    );
    assert!(a.try_count_many(&[]).await.unwrap().is_empty());
}

/// A counter whose keys are gone (Redis restarted empty, or flushed) refuses to decide
/// until it was seeded again: otherwise every subject would start again from zero.
/// Seeding counts past sends whatever the mark says; afterwards the cap holds as before.
#[tokio::test]
async fn a_counter_that_lost_its_keys_decides_nothing_until_reseeded() {
    let (a, b) = pair();
    assert!(matches!(
        a.try_count(&req("h1", "p1", None, 0)).await,
        Err(limits::LimitsError::Unseeded)
    ));
    assert!(matches!(
        b.try_count_many(&[req("h1", "p1", None, 0)]).await,
        Err(limits::LimitsError::Unseeded)
    ));
    // The rebuild: the two sends the store knows of, then the mark.
    a.seed_many(&[req("h1", "s1", Some("pol-a"), 0), req("h1", "s2", None, 1)])
        .await
        .unwrap();
    a.mark_seeded().await.unwrap();
    assert_eq!(
        b.try_count(&req("h1", "p3", None, 2)).await.unwrap(),
        CountDecision::Capped {
            frees_at_ms: 7 * DAY
        },
        "the rebuilt counts hold the cap"
    );
    assert_eq!(
        b.try_count(&req("h2", "p4", Some("pol-a"), 3))
            .await
            .unwrap(),
        CountDecision::Counted
    );
}
