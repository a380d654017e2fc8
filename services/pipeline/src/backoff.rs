//! What a role does when a backend goes away: it pauses and tries again with a capped
//! exponential backoff, counting the failure (`policy_push_backend_errors_total`, by the
//! backend that failed) and the time spent waiting (`policy_push_paused_seconds_total`),
//! and resumes at full speed at the first success. Nothing is dropped or acknowledged
//! while it waits: the work is retried as it was.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The named schedule of a paused role: 100 ms, doubling, at most 5 s.
pub const FIRST: Duration = Duration::from_millis(100);
pub const MAX: Duration = Duration::from_secs(5);

/// The backoff of one role's loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    role: &'static str,
    next: Duration,
}

impl Backoff {
    pub fn new(role: &'static str) -> Self {
        Self { role, next: FIRST }
    }

    /// The work succeeded: the next failure starts from the first delay again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }

    /// The delay before the next try, doubling up to [`MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(MAX);
        d
    }

    /// Counts `error` against its backend, logs it, and waits the next delay (or until
    /// `shutdown`). Returns false when shut down meanwhile.
    pub async fn pause(&mut self, error: &anyhow::Error, shutdown: &CancellationToken) -> bool {
        let backend = backend_of(error);
        let delay = self.next_delay();
        let m = telemetry::metrics();
        m.backend_errors
            .with_label_values(&[self.role, backend])
            .inc();
        tracing::warn!(
            role = self.role,
            backend,
            retry_in_ms = delay.as_millis() as u64,
            error = %format!("{error:#}"),
            "backend unavailable; pausing"
        );
        let started = std::time::Instant::now();
        let woke = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        };
        m.paused_seconds
            .with_label_values(&[self.role])
            .inc_by(started.elapsed().as_secs_f64());
        woke
    }
}

/// The role label of a channel's connector (`connector-sms`, ...).
pub fn connector_role(channel: domain::Channel) -> &'static str {
    match channel {
        domain::Channel::Sms => "connector-sms",
        domain::Channel::Wechat => "connector-wechat",
        domain::Channel::Hotline => "connector-hotline",
    }
}

/// Which backend an error came from: `store` (the database failed or did not answer),
/// `bus`, `redis`, or `other` (not a backend's absence: a bad row, a bug), which a role
/// does not wait out.
pub fn backend_of(error: &anyhow::Error) -> &'static str {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<store::StoreError>() {
            return if e.is_unavailable() { "store" } else { "other" };
        }
        if cause.is::<bus::BusError>() {
            return "bus";
        }
        if cause.is::<limits::LimitsError>() {
            return "redis";
        }
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new("test");
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), FIRST);
    }

    #[test]
    fn errors_are_told_apart_by_backend() {
        let store: anyhow::Error = store::StoreError::Database(sqlx::Error::PoolTimedOut).into();
        assert_eq!(backend_of(&store.context("claiming")), "store");
        let corrupt: anyhow::Error = store::StoreError::Corrupt("x".into()).into();
        assert_eq!(backend_of(&corrupt), "other", "a bad row is not waited out");
        let bus: anyhow::Error = bus::BusError::Backend("down".into()).into();
        assert_eq!(backend_of(&bus), "bus");
        assert_eq!(backend_of(&anyhow::anyhow!("something else")), "other");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_counts_the_error_and_the_time() {
        let mut b = Backoff::new("backoff-test");
        let e: anyhow::Error = bus::BusError::Backend("down".into()).into();
        assert!(b.pause(&e, &CancellationToken::new()).await);
        let m = telemetry::metrics();
        assert_eq!(
            m.backend_errors
                .with_label_values(&["backoff-test", "bus"])
                .get(),
            1
        );
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        assert!(!b.pause(&e, &cancelled).await, "shutdown ends the pause");
    }
}
