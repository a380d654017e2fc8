//! What campaign reports, the per-subject delivery history and the operator console read.
//!
//! A campaign's eligible subjects are its notice pushes plus its skips (eligible subjects
//! that got no push, with the reason as stored: `unreachable`, `opted_out`, `capped`,
//! `duplicate`, ...). The store answers one grouped table of each ([`ReportCells`]); the
//! views (whole campaign, per channel, per district × subject kind) are sums of its
//! cells, so they always agree with each other.

use chrono::{DateTime, Utc};
use domain::push::PushStatus;
use serde::Serialize;
use std::collections::BTreeMap;

/// The counts of one slice of a campaign.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FunnelCounts {
    /// Pushes plus skipped subjects.
    pub eligible: i64,
    /// Eligible subjects that got no push, by skip reason as stored.
    pub skipped: BTreeMap<String, i64>,
    /// Waiting to be sent, or being sent.
    pub queued: i64,
    /// Accepted by the provider, no delivery receipt yet.
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Pushes whose subject opened a recipient link of the campaign.
    pub clicked: i64,
    /// Pushes whose subject applied for the campaign's policy after the push was written.
    pub applied: i64,
}

impl FunnelCounts {
    /// Skipped subjects for one reason.
    pub fn skipped(&self, reason: &str) -> i64 {
        self.skipped.get(reason).copied().unwrap_or(0)
    }

    /// Delivered share of the eligible population (0 when nobody is eligible).
    pub fn reach_rate(&self) -> f64 {
        if self.eligible == 0 {
            0.0
        } else {
            self.delivered as f64 / self.eligible as f64
        }
    }

    fn add(&mut self, o: &FunnelCounts) {
        self.eligible += o.eligible;
        for (k, v) in &o.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        self.queued += o.queued;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.clicked += o.clicked;
        self.applied += o.applied;
    }
}

/// Notice pushes of one campaign with the same channel, district, kind and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCell {
    pub channel: String,
    /// The subject's `district` attribute; empty when it has none.
    pub district: String,
    /// `person` or `enterprise`; empty when the subject no longer exists.
    pub kind: String,
    pub status: PushStatus,
    pub pushes: i64,
    pub clicked: i64,
    pub applied: i64,
}

/// Skipped subjects of one campaign with the same district, kind and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipCell {
    pub district: String,
    pub kind: String,
    pub reason: String,
    pub subjects: i64,
}

/// The grouped counts of one campaign, as the store answers them.
#[derive(Debug, Clone, Default)]
pub struct ReportCells {
    pub pushes: Vec<PushCell>,
    pub skips: Vec<SkipCell>,
}

/// One district × subject kind of a campaign's eligible population.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReachRow {
    pub district: String,
    pub kind: String,
    pub counts: FunnelCounts,
}

/// A campaign's report: totals, per channel, and reach by district and kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CampaignReport {
    pub total: FunnelCounts,
    /// Per channel of the push; skips have no channel and appear only in the total and
    /// the reach rows.
    pub by_channel: BTreeMap<String, FunnelCounts>,
    /// District × kind, in district then kind order.
    pub reach: Vec<ReachRow>,
}

fn push_counts(c: &PushCell) -> FunnelCounts {
    let mut f = FunnelCounts {
        eligible: c.pushes,
        clicked: c.clicked,
        applied: c.applied,
        ..Default::default()
    };
    match c.status {
        PushStatus::Queued | PushStatus::Sending => f.queued = c.pushes,
        PushStatus::Sent => f.sent = c.pushes,
        PushStatus::Delivered => f.delivered = c.pushes,
        PushStatus::Failed => f.failed = c.pushes,
    }
    f
}

impl ReportCells {
    /// Sums the cells into the report's views.
    pub fn report(&self) -> CampaignReport {
        let mut r = CampaignReport::default();
        let mut reach: BTreeMap<(String, String), FunnelCounts> = BTreeMap::new();
        for c in &self.pushes {
            let f = push_counts(c);
            r.total.add(&f);
            r.by_channel.entry(c.channel.clone()).or_default().add(&f);
            reach
                .entry((c.district.clone(), c.kind.clone()))
                .or_default()
                .add(&f);
        }
        for c in &self.skips {
            let f = FunnelCounts {
                eligible: c.subjects,
                skipped: BTreeMap::from([(c.reason.clone(), c.subjects)]),
                ..Default::default()
            };
            r.total.add(&f);
            reach
                .entry((c.district.clone(), c.kind.clone()))
                .or_default()
                .add(&f);
        }
        r.reach = reach
            .into_iter()
            .map(|((district, kind), counts)| ReachRow {
                district,
                kind,
                counts,
            })
            .collect();
        r
    }
}

/// A subject applied for a policy, as reported by the bureau's systems.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Application {
    pub subject_id: String,
    pub policy_id: String,
    pub applied_at: DateTime<Utc>,
    /// The reporting system.
    pub source: String,
    /// That system's case number.
    pub reference: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// One push of a subject's delivery history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPush {
    pub push_id: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub policy_id: String,
    pub purpose: String,
    pub channel: String,
    /// The mobile number or openid; personal, shown masked unless the role allows.
    #[serde(skip)]
    pub recipient: String,
    pub status: PushStatus,
    pub content: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the subject first opened this push's link.
    pub clicked_at: Option<DateTime<Utc>>,
}

/// A campaign that found the subject eligible but sent nothing, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HistorySkip {
    pub campaign_id: String,
    pub campaign_name: String,
    pub policy_id: String,
    pub reason: String,
}

/// Everything the product did for and heard from one subject.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubjectHistory {
    /// Newest first.
    pub pushes: Vec<HistoryPush>,
    pub skips: Vec<HistorySkip>,
    pub applications: Vec<Application>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(channel: &str, district: &str, status: PushStatus, n: i64) -> PushCell {
        PushCell {
            channel: channel.into(),
            district: district.into(),
            kind: "person".into(),
            status,
            pushes: n,
            clicked: n / 2,
            applied: n / 3,
        }
    }

    #[test]
    fn views_are_sums_of_the_cells() {
        let cells = ReportCells {
            pushes: vec![
                cell("sms", "浦东新区", PushStatus::Delivered, 6),
                cell("sms", "徐汇区", PushStatus::Failed, 2),
                cell("wechat", "浦东新区", PushStatus::Sending, 3),
                cell("wechat", "浦东新区", PushStatus::Queued, 1),
            ],
            skips: vec![SkipCell {
                district: "徐汇区".into(),
                kind: "person".into(),
                reason: "capped".into(),
                subjects: 4,
            }],
        };
        let r = cells.report();
        assert_eq!(r.total.eligible, 16);
        assert_eq!(r.total.queued, 4);
        assert_eq!(r.total.delivered, 6);
        assert_eq!(r.total.skipped("capped"), 4);
        assert_eq!(r.total.clicked, 3 + 1 + 1);
        assert_eq!(r.by_channel["sms"].eligible, 8);
        assert_eq!(r.by_channel["wechat"].queued, 4);
        assert_eq!(r.reach.len(), 2);
        let xuhui = r.reach.iter().find(|x| x.district == "徐汇区").unwrap();
        assert_eq!(xuhui.counts.eligible, 6);
        assert_eq!(xuhui.counts.reach_rate(), 0.0);
        let pudong = r.reach.iter().find(|x| x.district == "浦东新区").unwrap();
        assert_eq!(pudong.counts.reach_rate(), 0.6);
        let sum: i64 = r.reach.iter().map(|x| x.counts.eligible).sum();
        assert_eq!(sum, r.total.eligible);
    }
}
