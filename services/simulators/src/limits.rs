//! Rolling-window counters per recipient (SMS daily limit, voice per-callee limits) and
//! the bounded memory of used Alibaba signature nonces.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

fn key_hash(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// One limit: at most `max` events in any `window`; `message` is what the provider says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub window: Duration,
    pub max: u32,
    pub message: &'static str,
}

/// Event times per key (keys are hashed: no personal data kept in clear, less memory).
#[derive(Default)]
pub(crate) struct Windows {
    events: HashMap<u64, VecDeque<Instant>>,
    inserts: u64,
}

impl Windows {
    /// Whether one more event for every key in `keys` fits every limit; if so, counts it.
    pub fn try_add(
        &mut self,
        keys: &[String],
        limits: &[Limit],
        now: Instant,
    ) -> Result<(), Limit> {
        let longest = limits.iter().map(|l| l.window).max().unwrap_or_default();
        for key in keys {
            if let Some(q) = self.events.get_mut(&key_hash(key)) {
                while q.front().is_some_and(|t| now.duration_since(*t) >= longest) {
                    q.pop_front();
                }
                for l in limits {
                    let n = q
                        .iter()
                        .filter(|t| now.duration_since(**t) < l.window)
                        .count();
                    if n >= l.max as usize {
                        return Err(*l);
                    }
                }
            }
        }
        for key in keys {
            self.events.entry(key_hash(key)).or_default().push_back(now);
        }
        self.inserts += keys.len() as u64;
        if self.inserts.is_multiple_of(100_000) {
            self.events
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < longest));
        }
        Ok(())
    }
}

/// Used nonces, remembered for `ttl` and at most about `capacity` of them: two
/// generations, the older dropped when the newer is full or older than `ttl / 2`.
pub(crate) struct NonceMemory {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    started: Instant,
    ttl: Duration,
    capacity: usize,
}

impl NonceMemory {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            current: HashSet::new(),
            previous: HashSet::new(),
            started: Instant::now(),
            ttl,
            capacity: capacity.max(2),
        }
    }

    /// `false` if `nonce` was seen (a replay); otherwise remembers it.
    pub fn first_use(&mut self, nonce: &str, now: Instant) -> bool {
        if now.duration_since(self.started) >= self.ttl / 2
            || self.current.len() >= self.capacity / 2
        {
            self.previous = std::mem::take(&mut self.current);
            self.started = now;
        }
        let h = key_hash(nonce);
        if self.previous.contains(&h) || self.current.contains(&h) {
            return false;
        }
        self.current.insert(h);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_per_key() {
        let mut w = Windows::default();
        let limits = [
            Limit {
                window: Duration::from_secs(60),
                max: 1,
                message: "min",
            },
            Limit {
                window: Duration::from_secs(3600),
                max: 2,
                message: "hour",
            },
        ];
        let t0 = Instant::now();
        let k = vec!["a".to_string()];
        assert!(w.try_add(&k, &limits, t0).is_ok());
        assert_eq!(w.try_add(&k, &limits, t0).unwrap_err().message, "min");
        assert!(w.try_add(&["b".to_string()], &limits, t0).is_ok());
        assert!(w.try_add(&k, &limits, t0 + Duration::from_secs(61)).is_ok());
        assert_eq!(
            w.try_add(&k, &limits, t0 + Duration::from_secs(200))
                .unwrap_err()
                .message,
            "hour"
        );
    }

    #[test]
    fn nonces() {
        let mut n = NonceMemory::new(Duration::from_secs(900), 100);
        let t = Instant::now();
        assert!(n.first_use("x", t));
        assert!(!n.first_use("x", t));
        assert!(n.first_use("y", t + Duration::from_secs(500)));
        assert!(
            !n.first_use("x", t + Duration::from_secs(500)),
            "still in the previous generation"
        );
    }
}
