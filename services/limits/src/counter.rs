//! Frequency caps and de-duplication counted at send time, shared by every connector
//! worker: "at most `max` sends to a subject per `window`" and "one claim per
//! (subject, dedupe key)" (the dedupe key is the policy: a subject never gets the same
//! policy twice), checked and counted in one atomic step so two workers can never send
//! past the cap.
//!
//! The caller passes an opaque subject key (the pipeline passes a hash, never an ID
//! number) and a token naming the send (the push id): counting the same token again is a
//! no-op that answers [`CountDecision::Counted`], so a retried or reconciled push is
//! counted once. A send that did not happen (refused by the provider) gives its count back
//! with [`SendCounter::release`].
//!
//! A shared counter (Redis) that lost its keys (a restart without persistence, a flush)
//! would let every subject start again from zero: it answers [`LimitsError::Unseeded`]
//! instead until the caller rebuilt it from the store ([`SendCounter::seed_many`] with
//! the recent sends, then [`SendCounter::mark_seeded`]).
//!
//! Times are the caller's clock in milliseconds (the pipeline's injected clock), so a
//! simulated week runs through the same code.

use crate::LimitsError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// One check-and-count.
#[derive(Debug, Clone, Copy)]
pub struct CountRequest<'a> {
    /// Opaque subject key (a hash; never personal data).
    pub subject: &'a str,
    /// Names the send (the push id); counting it again changes nothing.
    pub token: &'a str,
    /// Claimed once per subject (e.g. the policy id); `None`: no de-duplication.
    pub dedupe: Option<&'a str>,
    /// Now, in milliseconds since the epoch.
    pub now_ms: i64,
    /// The cap's window in milliseconds.
    pub window_ms: i64,
    /// Sends allowed per window; 0 = no cap.
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountDecision {
    /// Counted (or already counted under this token): send.
    Counted,
    /// The subject had `max` sends in the window; the oldest leaves it at `frees_at_ms`.
    Capped { frees_at_ms: i64 },
    /// Another send already claimed this subject's dedupe key.
    Duplicate,
}

#[async_trait]
pub trait SendCounter: Send + Sync + 'static {
    /// Atomically: `Duplicate` when another token holds the dedupe key; `Capped` when the
    /// window is full; otherwise counts `token` and claims the dedupe key.
    async fn try_count(&self, req: &CountRequest<'_>) -> Result<CountDecision, LimitsError>;
    /// [`SendCounter::try_count`] for each request in order, as if one after the other
    /// (a later request sees the counts of the earlier ones). Each decision is atomic on
    /// its own; the batch is not. A backend answers the whole batch in one round trip
    /// where it can; on an error no decision of the batch is reported.
    async fn try_count_many(
        &self,
        reqs: &[CountRequest<'_>],
    ) -> Result<Vec<CountDecision>, LimitsError> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.try_count(r).await?);
        }
        Ok(out)
    }
    /// Counts sends that already happened (rebuilding the counter from the store): as
    /// [`SendCounter::try_count_many`], but never refused for want of seeding.
    async fn seed_many(&self, reqs: &[CountRequest<'_>]) -> Result<(), LimitsError> {
        self.try_count_many(reqs).await.map(|_| ())
    }
    /// Records that the counter holds every recent send again; until then a shared
    /// counter that lost its keys answers [`LimitsError::Unseeded`].
    async fn mark_seeded(&self) -> Result<(), LimitsError> {
        Ok(())
    }
    /// Gives back the count and the dedupe claim of `token` (the send did not happen).
    async fn release(
        &self,
        subject: &str,
        token: &str,
        dedupe: Option<&str>,
    ) -> Result<(), LimitsError>;
}

/// In-process counter (the embedded default: one process runs every connector).
#[derive(Default)]
pub struct MemoryCounter {
    inner: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// Subject → (token, counted at ms).
    sends: HashMap<String, Vec<(String, i64)>>,
    /// (subject, dedupe key) → token.
    claims: HashMap<(String, String), String>,
}

impl MemoryCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The decision, applied: exposed for property tests of the model.
    pub fn decide(&self, req: &CountRequest<'_>) -> CountDecision {
        let mut st = self.inner.lock().expect("counter lock");
        if let Some(d) = req.dedupe {
            if let Some(holder) = st.claims.get(&(req.subject.to_string(), d.to_string())) {
                if holder != req.token {
                    return CountDecision::Duplicate;
                }
            }
        }
        let sends = st.sends.entry(req.subject.to_string()).or_default();
        sends.retain(|(_, at)| *at > req.now_ms - req.window_ms);
        if !sends.iter().any(|(t, _)| t == req.token) {
            if req.max > 0 && sends.len() >= req.max as usize {
                let oldest = sends.iter().map(|(_, at)| *at).min().unwrap_or(req.now_ms);
                return CountDecision::Capped {
                    frees_at_ms: oldest + req.window_ms,
                };
            }
            sends.push((req.token.to_string(), req.now_ms));
        }
        if let Some(d) = req.dedupe {
            st.claims.insert(
                (req.subject.to_string(), d.to_string()),
                req.token.to_string(),
            );
        }
        CountDecision::Counted
    }
}

#[async_trait]
impl SendCounter for MemoryCounter {
    async fn try_count(&self, req: &CountRequest<'_>) -> Result<CountDecision, LimitsError> {
        Ok(self.decide(req))
    }

    async fn release(
        &self,
        subject: &str,
        token: &str,
        dedupe: Option<&str>,
    ) -> Result<(), LimitsError> {
        let mut st = self.inner.lock().expect("counter lock");
        if let Some(sends) = st.sends.get_mut(subject) {
            sends.retain(|(t, _)| t != token);
        }
        if let Some(d) = dedupe {
            let key = (subject.to_string(), d.to_string());
            if st.claims.get(&key).is_some_and(|t| t == token) {
                st.claims.remove(&key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

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

    #[test]
    fn caps_per_window_and_frees_when_the_oldest_leaves() {
        let c = MemoryCounter::new();
        assert_eq!(c.decide(&req("s", "a", None, 0)), CountDecision::Counted);
        assert_eq!(c.decide(&req("s", "b", None, DAY)), CountDecision::Counted);
        assert_eq!(
            c.decide(&req("s", "c", None, 2 * DAY)),
            CountDecision::Capped {
                frees_at_ms: 7 * DAY
            }
        );
        // The same token again is not a new send.
        assert_eq!(
            c.decide(&req("s", "b", None, 2 * DAY)),
            CountDecision::Counted
        );
        assert_eq!(
            c.decide(&req("other", "c", None, 2 * DAY)),
            CountDecision::Counted
        );
        assert_eq!(
            c.decide(&req("s", "c", None, 7 * DAY)),
            CountDecision::Counted
        );
    }

    #[test]
    fn dedupe_key_is_claimed_once_and_released() {
        let c = MemoryCounter::new();
        assert_eq!(
            c.decide(&req("s", "a", Some("pol1"), 0)),
            CountDecision::Counted
        );
        assert_eq!(
            c.decide(&req("s", "b", Some("pol1"), 1)),
            CountDecision::Duplicate
        );
        assert_eq!(
            c.decide(&req("s", "a", Some("pol1"), 2)),
            CountDecision::Counted
        );
        futures_lite_block(c.release("s", "a", Some("pol1"))).unwrap();
        assert_eq!(
            c.decide(&req("s", "b", Some("pol1"), 3)),
            CountDecision::Counted
        );
    }

    proptest::proptest! {
        /// Whatever the sequence of sends (subjects, policies, times), no subject is ever
        /// counted more than `max` times in any window, and no subject is counted twice
        /// for one policy.
        #[test]
        fn never_past_the_cap_or_twice_a_policy(
            steps in proptest::collection::vec((0u8..3, 0u8..4, 0i64..(3 * DAY)), 1..120),
            max in 1u32..4,
        ) {
            let c = MemoryCounter::new();
            let window = 7 * DAY;
            let mut now = 0;
            let mut counted: Vec<(u8, u8, i64)> = Vec::new();
            for (i, (subject, policy, dt)) in steps.into_iter().enumerate() {
                now += dt;
                let (s, p, t) = (format!("s{subject}"), format!("p{policy}"), format!("t{i}"));
                let d = c.decide(&CountRequest { subject: &s, token: &t, dedupe: Some(&p), now_ms: now, window_ms: window, max });
                if d == CountDecision::Counted {
                    counted.push((subject, policy, now));
                }
            }
            for &(s, p, at) in &counted {
                let in_window = counted.iter().filter(|(s2, _, t2)| *s2 == s && *t2 > at - window && *t2 <= at).count();
                proptest::prop_assert!(in_window <= max as usize);
                let same = counted.iter().filter(|(s2, p2, _)| *s2 == s && *p2 == p).count();
                proptest::prop_assert_eq!(same, 1);
            }
        }
    }

    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
