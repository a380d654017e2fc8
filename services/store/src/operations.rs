//! Campaign operations: send-time skips (capped, duplicate, opted out), de-duplication
//! across campaigns, subjects by mobile (SMS replies), schedules and second approvals of
//! campaigns, and disclosure reviews of policies.

use chrono::{DateTime, Utc};
use domain::review::Disclosure;
use serde::Serialize;

/// A campaign's schedule state and approvals beyond the first (table `campaign_ops`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CampaignOps {
    pub campaign_id: String,
    /// When the scheduler next starts a run (a scheduled start or the next cron
    /// occurrence); `None`: nothing scheduled.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Runs started by the scheduler so far.
    pub runs: i64,
    /// The campaign completes at this time (`schedule.until`).
    pub ends_at: Option<DateTime<Utc>>,
    /// Approvals the campaign needs (2 when its audience was over the threshold).
    pub approvals_needed: i64,
    /// The audience counted when it was submitted or first approved.
    pub audience: Option<i64>,
    pub second_approved_by: Option<String>,
}

/// A notice push that went out (sent or delivered), for re-counting frequency caps after
/// a restart of an in-memory counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentSend {
    pub push_id: String,
    pub subject_id: String,
    pub policy_id: String,
    /// The push's last update: its send, or a later receipt (so never earlier than the
    /// send, and a cap window counted from it ends no earlier than the real one).
    pub at: DateTime<Utc>,
}

/// A reviewer's disclosure review of a policy (table `policy_reviews`, append-only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReview {
    pub policy_id: String,
    pub disclosure: Disclosure,
    pub confidentiality_checked: bool,
    pub passed: bool,
    pub note: String,
    pub reviewed_by: String,
    pub at: DateTime<Utc>,
}
