//! Retries are data: a named schedule per channel and one function that reads it.

use chrono::{DateTime, Duration, Utc};
use domain::Channel;

/// Delays before attempt 2, 3, ... and the deadline after which a push fails for good.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    pub name: &'static str,
    pub delays: &'static [i64],
    pub deadline_secs: i64,
}

/// Messages: 30 s, 2 min, 10 min, 1 h, then hourly, for up to 24 h.
pub const MESSAGES: RetrySchedule = RetrySchedule {
    name: "messages",
    delays: &[30, 120, 600, 3600],
    deadline_secs: 24 * 3600,
};

/// Calls: busy or no answer waits longer, and calls stop sooner.
pub const CALLS: RetrySchedule = RetrySchedule {
    name: "calls",
    delays: &[600, 3600, 4 * 3600],
    deadline_secs: 24 * 3600,
};

pub fn schedule_for(channel: Channel) -> &'static RetrySchedule {
    match channel {
        Channel::Hotline => &CALLS,
        Channel::Sms | Channel::Wechat => &MESSAGES,
    }
}

impl RetrySchedule {
    /// When attempt `attempts + 1` is due, or `None` when the push is past its deadline.
    /// A provider's `retry_after` (a rate or line limit, not a failure of the message)
    /// replaces the schedule's step.
    pub fn next_attempt(
        &self,
        attempts: i64,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<std::time::Duration>,
    ) -> Option<DateTime<Utc>> {
        self.next_attempt_scaled(attempts, created_at, now, retry_after, 1.0)
    }

    /// [`Self::next_attempt`] with every delay, the provider's hints included (not the
    /// deadline), multiplied by `scale`.
    pub fn next_attempt_scaled(
        &self,
        attempts: i64,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<std::time::Duration>,
        scale: f64,
    ) -> Option<DateTime<Utc>> {
        let idx = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
        let step = match retry_after {
            Some(d) => Duration::milliseconds((d.as_secs_f64() * 1000.0 * scale.max(0.0)) as i64),
            None => {
                let secs = *self.delays.get(idx).or(self.delays.last())? as f64 * scale.max(0.0);
                Duration::milliseconds((secs * 1000.0) as i64)
            }
        };
        let at = now + step;
        (at <= created_at + Duration::seconds(self.deadline_secs)).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_schedule_until_deadline() {
        let t0 = Utc::now();
        assert_eq!(
            MESSAGES.next_attempt(1, t0, t0, None),
            Some(t0 + Duration::seconds(30))
        );
        assert_eq!(
            MESSAGES.next_attempt(3, t0, t0, None),
            Some(t0 + Duration::seconds(600))
        );
        assert_eq!(
            MESSAGES.next_attempt(9, t0, t0, None),
            Some(t0 + Duration::seconds(3600))
        );
        let late = t0 + Duration::hours(23) + Duration::minutes(30);
        assert_eq!(MESSAGES.next_attempt(9, t0, late, None), None);
        let hinted = MESSAGES.next_attempt(3, t0, t0, Some(std::time::Duration::from_secs(1)));
        assert_eq!(
            hinted,
            Some(t0 + Duration::seconds(1)),
            "a rate-limit hint replaces the step"
        );
    }
}
