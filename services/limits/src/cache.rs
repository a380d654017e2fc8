//! A small cache shared by the replicas of a role, for values that one process must
//! refresh for all (the WeChat access token, `channels.md` §1.1: fetching a new one
//! invalidates the old, so replicas must not each fetch their own).
//!
//! [`get_or_refresh`] reads the value; when it is missing, one caller wins the refresh
//! lock (`SET NX` with a TTL in Redis, so a dead refresher's lock expires) and fetches it,
//! the others poll until it appears.

use crate::LimitsError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A cached value that may be a secret (an access token): it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedValue(String);

impl CachedValue {
    pub fn new(v: impl Into<String>) -> Self {
        Self(v.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CachedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CachedValue(*** {} chars)", self.0.chars().count())
    }
}

/// Proof of holding a refresh lock; releasing it needs the same token, so a lock that
/// expired and was taken by another process is not released by the old holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken(pub String);

#[async_trait]
pub trait SharedCache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<CachedValue>, LimitsError>;
    async fn set(&self, key: &str, value: &CachedValue, ttl: Duration) -> Result<(), LimitsError>;
    async fn delete(&self, key: &str) -> Result<(), LimitsError>;
    /// Takes the lock named `key` for at most `ttl` unless someone holds it.
    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>, LimitsError>;
    /// Releases the lock if `token` still holds it.
    async fn unlock(&self, key: &str, token: &LockToken) -> Result<(), LimitsError>;
}

/// How [`get_or_refresh`] waits.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// The refresh lock's lifetime: longer than a refresh takes.
    pub lock_ttl: Duration,
    /// How often a caller that lost the lock looks for the value.
    pub poll: Duration,
    /// Give up (the caller treats it as a transient failure) after this long.
    pub deadline: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(30),
            poll: Duration::from_millis(50),
            deadline: Duration::from_secs(20),
        }
    }
}

/// The value at `key`, or the one `refresh` produces (stored for the TTL it returns) when
/// there is none. Across every process sharing the cache, one `refresh` runs at a time.
/// Backend errors are retried until the deadline.
pub async fn get_or_refresh<F, Fut, E>(
    cache: &dyn SharedCache,
    key: &str,
    policy: RefreshPolicy,
    refresh: F,
) -> Result<CachedValue, LimitsError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(CachedValue, Duration), E>>,
    E: std::fmt::Display,
{
    let lock_key = format!("{key}:refresh-lock");
    let deadline = Instant::now() + policy.deadline;
    loop {
        match attempt(cache, key, &lock_key, policy, &refresh).await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(LimitsError::Refresh(e)) => return Err(LimitsError::Refresh(e)),
            Err(e) => tracing::warn!(error = %e, "shared cache unavailable; retrying"),
        }
        if Instant::now() >= deadline {
            return Err(LimitsError::Timeout(format!("cached value {key}")));
        }
        tokio::time::sleep(policy.poll).await;
    }
}

async fn attempt<F, Fut, E>(
    cache: &dyn SharedCache,
    key: &str,
    lock_key: &str,
    policy: RefreshPolicy,
    refresh: &F,
) -> Result<Option<CachedValue>, LimitsError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(CachedValue, Duration), E>>,
    E: std::fmt::Display,
{
    if let Some(v) = cache.get(key).await? {
        return Ok(Some(v));
    }
    let Some(token) = cache.try_lock(lock_key, policy.lock_ttl).await? else {
        return Ok(None); // another process is refreshing
    };
    // The previous holder may have stored it between our read and our lock.
    let result = match cache.get(key).await {
        Ok(Some(v)) => Ok(Some(v)),
        Ok(None) => match refresh().await {
            Ok((v, ttl)) => cache.set(key, &v, ttl).await.map(|_| Some(v)),
            Err(e) => Err(LimitsError::Refresh(e.to_string())),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = cache.unlock(lock_key, &token).await {
        tracing::warn!(error = %e, "could not release the refresh lock; it expires by itself");
    }
    result
}

/// The in-process cache of the embedded default.
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
    next_token: std::sync::atomic::AtomicU64,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self, key: &str) -> Option<String> {
        let mut e = self.entries.lock().expect("cache lock");
        match e.get(key) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                e.remove(key);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl SharedCache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<CachedValue>, LimitsError> {
        Ok(self.live(key).map(CachedValue))
    }

    async fn set(&self, key: &str, value: &CachedValue, ttl: Duration) -> Result<(), LimitsError> {
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key.to_string(), (value.0.clone(), Instant::now() + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), LimitsError> {
        self.entries.lock().expect("cache lock").remove(key);
        Ok(())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>, LimitsError> {
        if self.live(key).is_some() {
            return Ok(None);
        }
        let n = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("lock-{n}");
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key.to_string(), (token.clone(), Instant::now() + ttl));
        Ok(Some(LockToken(token)))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> Result<(), LimitsError> {
        let mut e = self.entries.lock().expect("cache lock");
        if e.get(key).is_some_and(|(v, _)| *v == token.0) {
            e.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn cached_values_never_print() {
        let v = CachedValue::new("ACCESS_TOKEN_abc");
        assert!(!format!("{v:?}").contains("abc"));
        assert_eq!(v.expose(), "ACCESS_TOKEN_abc");
    }

    #[tokio::test(start_paused = true)]
    async fn values_expire() {
        let c = MemoryCache::new();
        c.set("k", &CachedValue::new("v"), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(c.get("k").await.unwrap(), Some(CachedValue::new("v")));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(c.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn locks_exclude_and_only_the_holder_unlocks() {
        let c = MemoryCache::new();
        let t = c
            .try_lock("l", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(c
            .try_lock("l", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        c.unlock("l", &LockToken("someone-else".into()))
            .await
            .unwrap();
        assert!(c
            .try_lock("l", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        c.unlock("l", &t).await.unwrap();
        assert!(c
            .try_lock("l", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_refresh_serves_every_concurrent_caller() {
        let cache: Arc<dyn SharedCache> = Arc::new(MemoryCache::new());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
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
                            tokio::time::sleep(Duration::from_millis(100)).await;
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
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_refresh_is_reported_and_releases_the_lock() {
        let cache = MemoryCache::new();
        let err = get_or_refresh(&cache, "k", RefreshPolicy::default(), || async {
            Err::<(CachedValue, Duration), _>("40164: ip not whitelisted")
        })
        .await
        .unwrap_err();
        assert!(matches!(err, LimitsError::Refresh(m) if m.contains("40164")));
        assert!(cache
            .try_lock("k:refresh-lock", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some());
    }
}
