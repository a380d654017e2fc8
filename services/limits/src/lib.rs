//! Limits and caches shared by workers: token-bucket rate limits per key (e.g. per
//! provider) and a small shared cache with a single refresher (the WeChat access token).
//! The embedded default keeps them in memory; the production backend keeps them in Redis
//! so they hold across processes.
//!
//! # Layout
//! - [`RateLimiter`]: the interface; [`MemoryRateLimiter`]: in-process token buckets.
//! - [`cache`]: [`SharedCache`] (get / set with a TTL / a refresh lock), its in-memory
//!   backend and [`cache::get_or_refresh`], which lets exactly one process refresh a
//!   value while the others wait for it.
//! - [`counter`]: [`SendCounter`], frequency caps and de-duplication per subject checked
//!   and counted in one atomic step at send time ([`MemoryCounter`]; a Lua script on
//!   Redis).
//! - [`redis_backend`]: the interfaces over Redis (a Lua token bucket on Redis' clock;
//!   `SET NX PX` locks). When Redis is unreachable, `acquire` waits and retries: it never
//!   lets a send through past the limit.
//! - [`open`]: picks the backend from configuration.

pub mod cache;
pub mod counter;
pub mod redis_backend;

pub use cache::{CachedValue, MemoryCache, SharedCache};
pub use counter::{CountDecision, CountRequest, MemoryCounter, SendCounter};

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Waits until `permits` tokens are available in bucket `key` refilled at
    /// `per_second` (burst: one second's worth), then takes them.
    async fn acquire(&self, key: &str, permits: u32, per_second: f64);
}

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// The shared backend did not answer; the caller waits and tries again.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("refresh failed: {0}")]
    Refresh(String),
    /// The shared counter lost its keys (Redis restarted empty or was flushed): it must
    /// be rebuilt from the store ([`SendCounter::seed_many`], then
    /// [`SendCounter::mark_seeded`]) before it decides anything.
    #[error("the send counter lost its keys; rebuild it from the store")]
    Unseeded,
}

/// The limits and caches of one process.
#[derive(Clone)]
pub struct Limits {
    pub rate: Arc<dyn RateLimiter>,
    pub cache: Arc<dyn SharedCache>,
    /// Frequency caps and de-duplication at send time.
    pub counter: Arc<dyn SendCounter>,
    /// The Redis behind them, if any (for [`Limits::check`]).
    redis: Option<redis_backend::RedisLimits>,
}

impl Limits {
    /// Whether the shared backend answers (`PING` within a second); `None` when the
    /// limits are in memory and there is nothing to check.
    pub async fn check(&self) -> Option<Result<(), LimitsError>> {
        let r = self.redis.as_ref()?;
        Some(
            match tokio::time::timeout(Duration::from_secs(1), r.ping()).await {
                Ok(answer) => answer,
                Err(_) => Err(LimitsError::Timeout("redis PING".into())),
            },
        )
    }
}

/// In memory when `redis_url` is `None` (the embedded default), else in Redis under keys
/// starting with `prefix` (e.g. `policy-push:`), shared by every process using the same
/// Redis and prefix. Connecting is lazy: an unreachable Redis delays work, not start-up.
pub fn open(redis_url: Option<&str>, prefix: &str) -> Result<Limits, LimitsError> {
    match redis_url.filter(|u| !u.is_empty()) {
        None => Ok(Limits {
            rate: Arc::new(MemoryRateLimiter::new()),
            cache: Arc::new(MemoryCache::new()),
            counter: Arc::new(MemoryCounter::new()),
            redis: None,
        }),
        Some(url) => {
            let r = redis_backend::RedisLimits::new(url, prefix)?;
            Ok(Limits {
                rate: Arc::new(r.clone()),
                cache: Arc::new(r.clone()),
                counter: Arc::new(r.clone()),
                redis: Some(r),
            })
        }
    }
}

#[derive(Default)]
pub struct MemoryRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the tokens if available; otherwise says how long until they will be.
    fn try_take(&self, key: &str, permits: u32, per_second: f64) -> Option<Duration> {
        let now = Instant::now();
        let capacity = per_second.max(f64::from(permits));
        let mut buckets = self.buckets.lock().expect("limits lock");
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(capacity);
        b.at = now;
        let want = f64::from(permits);
        if b.tokens >= want {
            b.tokens -= want;
            None
        } else {
            Some(Duration::from_secs_f64((want - b.tokens) / per_second))
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, permits: u32, per_second: f64) {
        if per_second <= 0.0 || !per_second.is_finite() {
            return; // unlimited
        }
        while let Some(wait) = self.try_take(key, permits, per_second) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_capacity_and_refills() {
        let l = MemoryRateLimiter::new();
        assert!(l.try_take("p", 10, 10.0).is_none());
        let wait = l.try_take("p", 5, 10.0).expect("empty bucket must wait");
        assert!(wait > Duration::from_millis(300) && wait <= Duration::from_millis(500));
        assert!(
            l.try_take("other", 1, 10.0).is_none(),
            "keys are independent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_tokens() {
        let l = MemoryRateLimiter::new();
        let start = tokio::time::Instant::now();
        l.acquire("p", 100, 100.0).await;
        l.acquire("p", 50, 100.0).await;
        assert!(start.elapsed() >= Duration::from_millis(490));
    }
}
