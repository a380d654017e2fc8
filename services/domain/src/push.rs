//! Pushes: one message to one subject on one channel for one campaign, and its lifecycle.
//!
//! ```text
//! queued ──► sending ──► sent ──► delivered
//!                 │         └──► failed
//!                 └──► failed
//! ```
//! A push in `sending` when a process dies is reconciled with the provider on restart
//! (asked whether it has the push id) before it is ever sent again.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    /// Committed in the outbox, not yet handed to a connector.
    Queued,
    /// A connector is calling the provider; the outcome is not yet recorded.
    Sending,
    /// The provider accepted it.
    Sent,
    /// The provider reported delivery to the handset or account.
    Delivered,
    /// The provider refused it or reported failure.
    Failed,
}

impl PushStatus {
    pub const ALL: [PushStatus; 5] = [
        PushStatus::Queued,
        PushStatus::Sending,
        PushStatus::Sent,
        PushStatus::Delivered,
        PushStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Queued => "queued",
            PushStatus::Sending => "sending",
            PushStatus::Sent => "sent",
            PushStatus::Delivered => "delivered",
            PushStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, PushStatus::Delivered | PushStatus::Failed)
    }
}

/// What a push is for. A subject gets at most one push of each purpose per campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPurpose {
    /// The campaign's notice.
    Notice,
    /// The recipient link by SMS, asked for by pressing 1 during a hotline call.
    LinkBySms,
}

impl PushPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            PushPurpose::Notice => "notice",
            PushPurpose::LinkBySms => "link_by_sms",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Notice, Self::LinkBySms]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Why an eligible subject got no push from a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No channel of the campaign's plan reaches the subject.
    Unreachable,
    /// The subject opted out of every channel of the plan that reaches them, or of the
    /// policy's category (at planning, or found at send time).
    OptedOut,
    /// At send time the subject had already had the frequency cap's pushes (across all
    /// campaigns) in the cap's window.
    Capped,
    /// The subject already has (or, at send time, was already sent) this policy from
    /// another campaign.
    Duplicate,
    /// The policy expired (`effective_to` passed) or was withdrawn before the push was
    /// sent.
    PolicyEnded,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unreachable => "unreachable",
            SkipReason::OptedOut => "opted_out",
            SkipReason::Capped => "capped",
            SkipReason::Duplicate => "duplicate",
            SkipReason::PolicyEnded => "policy_ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Unreachable,
            Self::OptedOut,
            Self::Capped,
            Self::Duplicate,
            Self::PolicyEnded,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}
