//! Rows as the rest of the product sees them.

use chrono::{DateTime, Utc};
use domain::campaign::{CampaignDraft, CampaignMode, CampaignStatus};
use domain::operator::Role;
use domain::policy::{PolicyDraft, PolicyStatus};
use domain::push::{PushPurpose, PushStatus};
use domain::Channel;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct OperatorRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The operator who created this one; `None` for the bootstrap admin.
    pub created_by: Option<String>,
    /// When it was disabled: its token and console sessions no longer work.
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagRecord {
    pub name: String,
    pub description: String,
    pub rule: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PolicyRecord {
    pub id: String,
    pub status: PolicyStatus,
    pub draft: PolicyDraft,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct CampaignRecord {
    pub id: String,
    pub policy_id: String,
    pub name: String,
    pub mode: CampaignMode,
    pub status: CampaignStatus,
    pub draft: CampaignDraft,
    pub created_by: String,
    pub approved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
    pub planned_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Fields set alongside a campaign status change.
#[derive(Debug, Clone, Default)]
pub struct CampaignChange {
    pub approved_by: Option<String>,
    pub launched_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A push to write into the outbox.
#[derive(Debug, Clone)]
pub struct NewPush {
    pub id: String,
    pub subject_id: String,
    pub purpose: PushPurpose,
    pub channel: Channel,
    pub recipient: String,
    pub content: String,
    pub link_code: String,
    pub explanation: String,
    pub benefit: Option<f64>,
    /// SMS parts billed, signature included; `None` for other channels.
    pub segments: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    pub id: String,
    pub campaign_id: String,
    pub subject_id: String,
    pub purpose: PushPurpose,
    pub seq: i64,
    pub channel: Channel,
    /// The mobile number or openid; personal, never logged.
    #[serde(skip)]
    pub recipient: String,
    pub status: PushStatus,
    pub content: String,
    pub link_code: String,
    pub explanation: String,
    pub benefit: Option<f64>,
    pub segments: Option<i64>,
    pub provider_id: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What happened to a push a connector was sending.
#[derive(Debug, Clone)]
pub enum PushOutcome {
    Sent {
        push_id: String,
        provider_id: String,
    },
    Failed {
        push_id: String,
        error: String,
    },
    /// Back to the queue until `at` without counting an attempt (e.g. outside the
    /// channel's hours).
    Defer {
        push_id: String,
        at: DateTime<Utc>,
        reason: String,
    },
    /// Back to the queue, due again at `at` (a retry, or a fallback to another channel
    /// with new content).
    Requeue {
        push_id: String,
        at: DateTime<Utc>,
        error: String,
        channel: Option<Channel>,
        recipient: Option<String>,
        content: Option<String>,
    },
}

/// A delivery receipt as reported by a provider.
#[derive(Debug, Clone)]
pub struct ReceiptUpdate {
    pub provider_id: Option<String>,
    pub push_id: Option<String>,
    pub delivered: bool,
    pub error: Option<String>,
    /// Not delivered, but worth another try at this time (a call that found the line busy
    /// or went unanswered): the push goes back to the queue instead of failing.
    pub retry_at: Option<DateTime<Utc>>,
}

/// How receipts that overtook their send are kept ([`crate::PushStore::keep_late_receipts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateReceiptLimits {
    /// How long a receipt waits for its send.
    pub ttl: chrono::Duration,
    /// Receipts kept at most; the oldest go first.
    pub capacity: i64,
}

impl Default for LateReceiptLimits {
    /// 24 hours, 100,000 receipts.
    fn default() -> Self {
        Self {
            ttl: chrono::Duration::hours(24),
            capacity: 100_000,
        }
    }
}

/// What a sweep of the kept late receipts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateSweep {
    /// Receipts that changed a push.
    pub applied: u64,
    /// Receipts deleted unapplied because they expired.
    pub expired: u64,
    /// Receipts still kept.
    pub waiting: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CampaignCounts {
    pub eligible: i64,
    pub unreachable: i64,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub clicked: i64,
    pub opted_out: i64,
    /// Pushes by their (current) channel.
    pub by_channel: std::collections::BTreeMap<String, i64>,
    /// Eligible subjects without a push, by skip reason (unreachable, opted out,
    /// duplicate, capped).
    pub skipped: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub operator_id: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A subject's refusal of a channel, a policy category, or (both `None`) everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptOut {
    pub subject_id: String,
    pub channel: Option<Channel>,
    pub category: Option<String>,
    /// Where it came from: `sms_blacklist`, `hotline_dtmf_0`, `recipient_page`, `sms_reply`...
    pub source: String,
    pub at: DateTime<Utc>,
}

impl OptOut {
    /// Whether this opt-out forbids sending a policy of `category` on `channel`.
    pub fn forbids(&self, channel: Channel, category: &str) -> bool {
        let channel_ok = self.channel.is_none_or(|c| c == channel);
        let category_ok = self.category.as_deref().is_none_or(|c| c == category);
        match (&self.channel, &self.category) {
            (None, None) => true,
            (Some(_), None) => channel_ok,
            (None, Some(_)) => category_ok,
            (Some(_), Some(_)) => channel_ok && category_ok,
        }
    }
}

/// Which opt-outs an operator reviews ([`crate::OptOutStore::list_opt_outs`]); `None`
/// matches any.
#[derive(Debug, Clone, Default)]
pub struct OptOutFilter {
    pub subject_id: Option<String>,
    /// A channel name, or `all` for opt-outs of every channel.
    pub channel: Option<String>,
    pub source: Option<String>,
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Recorded before.
    pub until: Option<DateTime<Utc>>,
}
