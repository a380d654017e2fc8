//! The Redis backend against the local Redis (`POLICY_PUSH_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`), each test under its own key prefix. Two `RedisLimits`
//! values have separate connections and stand for two processes.

use limits::cache::{get_or_refresh, RefreshPolicy};
use limits::redis_backend::RedisLimits;
use limits::{CachedValue, RateLimiter, SharedCache};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn redis_url() -> String {
    std::env::var("POLICY_PUSH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn prefix() -> String {
    format!("pp-test:{}:", uuid::Uuid::new_v4().simple())
}

fn pair() -> (RedisLimits, RedisLimits) {
    let p = prefix();
    (
        RedisLimits::new(&redis_url(), &p).unwrap(),
        RedisLimits::new(&redis_url(), &p).unwrap(),
    )
}

#[tokio::test]
async fn one_bucket_is_shared_by_every_process() {
    let (a, b) = pair();
    // Capacity is one second's worth: 10 tokens, whoever asks.
    let mut granted = 0;
    for i in 0..40u32 {
        let l = if i.is_multiple_of(2) { &a } else { &b };
        if l.try_take("provider:sms", 1, 10.0).await.unwrap().is_none() {
            granted += 1;
        }
    }
    assert!(
        (10..=11).contains(&granted),
        "10 tokens (one more if a tenth of a second passed), got {granted}"
    );
    let wait = a.try_take("provider:sms", 5, 10.0).await.unwrap().unwrap();
    assert!(
        wait > Duration::from_millis(300) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    assert!(
        b.try_take("provider:wechat", 1, 10.0)
            .await
            .unwrap()
            .is_none(),
        "keys are independent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acquire_holds_the_rate_across_processes() {
    let (a, b) = pair();
    let a = Arc::new(a);
    let b = Arc::new(b);
    let start = Instant::now();
    let mut tasks = Vec::new();
    // 120 permits at 40/s with a burst of 40: the last can go no sooner than 2 s.
    for i in 0..12u32 {
        let l: Arc<dyn RateLimiter> = if i.is_multiple_of(2) {
            a.clone()
        } else {
            b.clone()
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                l.acquire("provider:sms", 1, 40.0).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1900), "too fast: {took:?}");
    assert!(took < Duration::from_secs(6), "too slow: {took:?}");
}

#[tokio::test]
async fn acquire_waits_while_redis_is_unreachable_and_resumes() {
    // A port with nothing listening, later a proxy to the real Redis on the same port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let limits =
        Arc::new(RedisLimits::new(&format!("redis://127.0.0.1:{port}"), &prefix()).unwrap());
    let l2 = limits.clone();
    let acquire = tokio::spawn(async move { l2.acquire("provider:sms", 1, 5.0).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !acquire.is_finished(),
        "no permit may be given without the shared bucket"
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let target = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    tokio::time::timeout(Duration::from_secs(10), acquire)
        .await
        .expect("acquire resumes once Redis is back")
        .unwrap();
    // And the bucket is the real one: the next four go at once, the rest wait.
    for _ in 0..4 {
        assert!(limits
            .try_take("provider:sms", 1, 5.0)
            .await
            .unwrap()
            .is_none());
    }
    assert!(limits
        .try_take("provider:sms", 1, 5.0)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn cache_values_and_locks_are_shared() {
    let (a, b) = pair();
    assert_eq!(a.get("wechat:token").await.unwrap(), None);
    a.set(
        "wechat:token",
        &CachedValue::new("T1"),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert_eq!(
        b.get("wechat:token").await.unwrap(),
        Some(CachedValue::new("T1"))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.get("wechat:token").await.unwrap(), None, "the TTL holds");

    let t = a
        .try_lock("refresh", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(b
        .try_lock("refresh", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    b.unlock("refresh", &limits::cache::LockToken("not-mine".into()))
        .await
        .unwrap();
    assert!(b
        .try_lock("refresh", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    a.unlock("refresh", &t).await.unwrap();
    assert!(b
        .try_lock("refresh", Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    // A dead holder's lock expires.
    assert!(a
        .try_lock("short", Duration::from_millis(100))
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b
        .try_lock("short", Duration::from_millis(100))
        .await
        .unwrap()
        .is_some());
    a.delete("wechat:token").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_process_refreshes_the_token_for_all() {
    let (a, b) = pair();
    let caches: [Arc<dyn SharedCache>; 2] = [Arc::new(a), Arc::new(b)];
    let fetches = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cache = caches[i % 2].clone();
        let fetches = fetches.clone();
        tasks.push(tokio::spawn(async move {
            get_or_refresh(
                cache.as_ref(),
                "wechat:token",
                RefreshPolicy::default(),
                || {
                    let fetches = fetches.clone();
                    async move {
                        let n = fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        Ok::<_, String>((
                            CachedValue::new(format!("token-{n}")),
                            Duration::from_secs(60),
                        ))
                    }
                },
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), CachedValue::new("token-0"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one refresher");
}
