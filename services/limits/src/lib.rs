//! Limits and caches shared by workers: token-bucket rate limits per key (e.g. per
//! provider). The embedded default keeps them in memory; the production backend keeps
//! them in Redis so they hold across processes.
//!
//! # Layout
//! - [`RateLimiter`]: the interface.
//! - [`MemoryRateLimiter`]: in-process token buckets.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Waits until `permits` tokens are available in bucket `key` refilled at
    /// `per_second` (burst: one second's worth), then takes them.
    async fn acquire(&self, key: &str, permits: u32, per_second: f64);
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
