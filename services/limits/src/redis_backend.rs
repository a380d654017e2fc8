//! Rate limits and the shared cache over Redis, so they hold across every process of a
//! deployment.
//!
//! - Token buckets are one hash per key (`tokens`, `at`), updated by a Lua script that
//!   reads Redis' own clock (`TIME`), so processes with skewed clocks share one bucket
//!   fairly. The script answers how long to wait when the tokens are not there yet.
//! - Cache values are plain keys with a TTL; refresh locks are `SET NX PX` with a random
//!   token, released by a compare-and-delete script.
//!
//! The connection is made lazily and re-made after failures (redis'
//! `ConnectionManager`). While Redis is unreachable, [`RateLimiter::acquire`] waits and
//! retries with a capped backoff: a send never passes the limit because the limiter was
//! down.

use crate::cache::{CachedValue, LockToken, SharedCache};
use crate::counter::{CountDecision, CountRequest, SendCounter};
use crate::{LimitsError, RateLimiter};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Takes `permits` tokens from the bucket at KEYS[1] refilled at ARGV[2] per second
/// (capacity: one second's worth, at least `permits`). Returns 0 when taken, else the
/// microseconds until they will be there (nothing is taken then).
const TOKEN_BUCKET: &str = r#"
local permits = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local capacity = math.max(rate, permits)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000000)
local wait = 0
if tokens >= permits then
  tokens = tokens - permits
else
  wait = math.ceil((permits - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
"#;

/// Deletes KEYS[1] only if it still holds ARGV[1].
const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Frequency cap and de-duplication in one step (see [`crate::counter`]). KEYS[1]: the
/// subject's sends (sorted set: token → ms); KEYS[2]: the subject's dedupe claims (hash:
/// key → token); KEYS[3]: the mark that the counter was seeded from the store. ARGV: now
/// ms, window ms, max (0 = no cap), token, dedupe key ('' = none), '1' when seeding.
/// Returns {0, 0} counted, {1, frees_at_ms} capped, {2, 0} duplicate, {3, 0} not seeded
/// (the keys were lost: nothing counted). The mark is one key for all subjects, so on a
/// Redis Cluster the script's keys span slots: run the limits on one Redis (or a
/// primary with replicas), not a cluster.
const COUNT: &str = r#"
if ARGV[6] ~= '1' and redis.call('EXISTS', KEYS[3]) == 0 then
  return {3, 0}
end
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local token = ARGV[4]
local dedupe = ARGV[5]
if dedupe ~= '' then
  local holder = redis.call('HGET', KEYS[2], dedupe)
  if holder and holder ~= token then
    return {2, 0}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if not redis.call('ZSCORE', KEYS[1], token) then
  if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tonumber(first[2]) + window}
  end
  redis.call('ZADD', KEYS[1], now, token)
  redis.call('PEXPIRE', KEYS[1], window + 60000)
end
if dedupe ~= '' then
  redis.call('HSET', KEYS[2], dedupe, token)
  redis.call('PEXPIRE', KEYS[2], 400 * 86400000)
end
return {0, 0}
"#;

/// Gives back a token's count (KEYS[1]) and its dedupe claim ARGV[2] (KEYS[2]).
const RELEASE: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 0
"#;

/// Backoff while Redis is unreachable: from the first to the last, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Rate limits and cache in Redis. Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct RedisLimits {
    conn: ConnectionManager,
    prefix: Arc<str>,
    bucket: Arc<Script>,
    unlock: Arc<Script>,
    count: Arc<Script>,
    release: Arc<Script>,
}

impl RedisLimits {
    /// Keys start with `prefix`; no connection is made until first use.
    pub fn new(url: &str, prefix: &str) -> Result<Self, LimitsError> {
        let client = ::redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: prefix.into(),
            bucket: Arc::new(Script::new(TOKEN_BUCKET)),
            unlock: Arc::new(Script::new(UNLOCK)),
            count: Arc::new(Script::new(COUNT)),
            release: Arc::new(Script::new(RELEASE)),
        })
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    /// `PING`: whether Redis answers.
    pub async fn ping(&self) -> Result<(), LimitsError> {
        let mut conn = self.conn.clone();
        let _: String = ::redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// One try at the bucket: `None` when taken, else how long to wait.
    pub async fn try_take(
        &self,
        key: &str,
        permits: u32,
        per_second: f64,
    ) -> Result<Option<Duration>, LimitsError> {
        let mut conn = self.conn.clone();
        let wait_us: u64 = self
            .bucket
            .key(self.key("rate", key))
            .arg(permits)
            .arg(per_second)
            .invoke_async(&mut conn)
            .await?;
        Ok((wait_us > 0).then(|| Duration::from_micros(wait_us)))
    }
}

/// The two keys of a subject's counter, in one hash slot (`{subject}`) for Redis Cluster.
fn counter_keys(this: &RedisLimits, subject: &str) -> (String, String) {
    (
        this.key("freq", &format!("{{{subject}}}:sends")),
        this.key("freq", &format!("{{{subject}}}:claims")),
    )
}

/// The mark that the counter holds every recent send (set after a rebuild from the
/// store; gone when Redis lost its keys).
fn seeded_key(this: &RedisLimits) -> String {
    this.key("freq", "seeded")
}

/// The counting script's answer.
fn decision(kind: i64, at: i64) -> Result<CountDecision, LimitsError> {
    match kind {
        0 => Ok(CountDecision::Counted),
        1 => Ok(CountDecision::Capped { frees_at_ms: at }),
        2 => Ok(CountDecision::Duplicate),
        _ => Err(LimitsError::Unseeded),
    }
}

impl RedisLimits {
    /// One pipeline of script calls: one round trip for the whole batch. Redis runs each
    /// script atomically and in order, so the batch decides as calls one after the other.
    /// `seeding`: the sends happened already; counted even before the counter is seeded.
    async fn count_batch(
        &self,
        reqs: &[CountRequest<'_>],
        seeding: bool,
    ) -> Result<Vec<CountDecision>, LimitsError> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        let seeded = seeded_key(self);
        let mut invocations = Vec::with_capacity(reqs.len());
        for req in reqs {
            let (sends, claims) = counter_keys(self, req.subject);
            let mut inv = self.count.prepare_invoke();
            inv.key(sends)
                .key(claims)
                .key(&seeded)
                .arg(req.now_ms)
                .arg(req.window_ms)
                .arg(req.max)
                .arg(req.token)
                .arg(req.dedupe.unwrap_or(""))
                .arg(if seeding { "1" } else { "" });
            invocations.push(inv);
        }
        let mut pipe = ::redis::pipe();
        for inv in &invocations {
            pipe.invoke_script(inv);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<(i64, i64)> = match pipe.query_async(&mut conn).await {
            Ok(a) => a,
            // A pipeline does not load the script (Redis restarted or flushed its
            // scripts): load it once and send the batch again. No script ran, so no
            // request was counted by the failed attempt.
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                invocations[0].load_async(&mut conn).await?;
                pipe.query_async(&mut conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        answers.into_iter().map(|(k, at)| decision(k, at)).collect()
    }
}

#[async_trait]
impl SendCounter for RedisLimits {
    async fn try_count(&self, req: &CountRequest<'_>) -> Result<CountDecision, LimitsError> {
        let mut d = self.count_batch(std::slice::from_ref(req), false).await?;
        Ok(d.remove(0))
    }

    async fn try_count_many(
        &self,
        reqs: &[CountRequest<'_>],
    ) -> Result<Vec<CountDecision>, LimitsError> {
        self.count_batch(reqs, false).await
    }

    async fn seed_many(&self, reqs: &[CountRequest<'_>]) -> Result<(), LimitsError> {
        self.count_batch(reqs, true).await.map(|_| ())
    }

    async fn mark_seeded(&self) -> Result<(), LimitsError> {
        let mut conn = self.conn.clone();
        let _: () = conn.set(seeded_key(self), "1").await?;
        Ok(())
    }

    async fn release(
        &self,
        subject: &str,
        token: &str,
        dedupe: Option<&str>,
    ) -> Result<(), LimitsError> {
        let (sends, claims) = counter_keys(self, subject);
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(sends)
            .key(claims)
            .arg(token)
            .arg(dedupe.unwrap_or(""))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for RedisLimits {
    async fn acquire(&self, key: &str, permits: u32, per_second: f64) {
        if per_second <= 0.0 || !per_second.is_finite() {
            return; // unlimited
        }
        let mut backoff = RETRY_FIRST;
        loop {
            match self.try_take(key, permits, per_second).await {
                Ok(None) => return,
                Ok(Some(wait)) => {
                    backoff = RETRY_FIRST;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "rate limiter unreachable; sends wait");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

#[async_trait]
impl SharedCache for RedisLimits {
    async fn get(&self, key: &str) -> Result<Option<CachedValue>, LimitsError> {
        let mut conn = self.conn.clone();
        let v: Option<String> = conn.get(self.key("cache", key)).await?;
        Ok(v.map(CachedValue::new))
    }

    async fn set(&self, key: &str, value: &CachedValue, ttl: Duration) -> Result<(), LimitsError> {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = conn
            .pset_ex(self.key("cache", key), value.expose(), ms)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), LimitsError> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(self.key("cache", key)).await?;
        Ok(())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>, LimitsError> {
        let mut conn = self.conn.clone();
        let token = format!(
            "{}-{}",
            std::process::id(),
            TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ) + &format!("-{:x}", rand_u64());
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let ok: Option<String> = ::redis::cmd("SET")
            .arg(self.key("lock", key))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await?;
        Ok(ok.map(|_| LockToken(token)))
    }

    async fn unlock(&self, key: &str, token: &LockToken) -> Result<(), LimitsError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .unlock
            .key(self.key("lock", key))
            .arg(&token.0)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Enough randomness to tell lock holders on different hosts apart.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
