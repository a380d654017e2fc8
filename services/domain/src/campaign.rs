//! Campaigns: the operator's plan to notify a policy's audience.

use crate::channel::Channel;
use crate::rule::{Rule, RuleError};
use crate::template::{Template, TemplateError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignMode {
    /// The audience at launch, once.
    Once,
    /// The audience at launch, then everyone who becomes eligible later.
    Continuous,
}

impl CampaignMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignMode::Once => "once",
            CampaignMode::Continuous => "continuous",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Once, Self::Continuous]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    Draft,
    Submitted,
    Approved,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 8] = [
        Self::Draft,
        Self::Submitted,
        Self::Approved,
        Self::Scheduled,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Start at this time (one-shot) instead of at launch.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Recurring: plan the then-eligible audience at every occurrence (Asia/Shanghai).
    /// Five fields (`min hour day month weekday`) or the `cron` crate's six or seven
    /// (seconds first, optional year).
    #[serde(default)]
    pub cron: Option<String>,
    /// End date: a recurring or continuous campaign completes at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// Asia/Shanghai: every schedule's time zone.
pub const SCHEDULE_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Parses a cron expression: five fields (minute first) get a leading `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let expr = expr.trim();
    let full = if expr.split_whitespace().count() == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("schedule.cron {expr:?}: {e}"))
}

impl Schedule {
    /// The first occurrence strictly after `after` (Asia/Shanghai wall clock), for a cron
    /// schedule; `None` when there is none (or no cron, or past `until`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let sched = parse_cron(self.cron.as_deref()?).ok()?;
        let next = sched
            .after(&after.with_timezone(&SCHEDULE_TZ))
            .next()?
            .with_timezone(&Utc);
        match self.until {
            Some(u) if next > u => None,
            _ => Some(next),
        }
    }
}

/// A campaign as the operator writes it (the API's request body).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignDraft {
    pub policy_id: String,
    pub name: String,
    #[serde(default = "default_mode")]
    pub mode: String,
    pub channels: Vec<String>,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(default)]
    pub audience_filter: Option<String>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Pushes per second for this campaign (on top of each provider's rate); `None` or 0:
    /// no campaign throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_per_second: Option<f64>,
}

fn default_mode() -> String {
    "once".into()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Invalid(String),
    #[error("audience_filter: {0}")]
    Filter(RuleError),
    /// A cron expression that does not parse or never fires.
    #[error("{0}")]
    Schedule(String),
    #[error("templates.{channel}: {error}")]
    Template {
        channel: Channel,
        error: TemplateError,
    },
}

/// A checked campaign draft: channels parsed, every channel has a template that compiles
/// and names only known variables, the filter rule compiles.
#[derive(Debug, Clone)]
pub struct CheckedCampaign {
    pub policy_id: String,
    pub name: String,
    pub mode: CampaignMode,
    pub channels: Vec<Channel>,
    pub templates: BTreeMap<Channel, Template>,
    pub audience_filter: Option<Rule>,
    pub schedule: Schedule,
    pub throttle_per_second: Option<f64>,
}

impl CampaignDraft {
    pub fn check(self) -> Result<CheckedCampaign, CampaignError> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(CampaignError::Invalid("name is required".into()));
        }
        let mode = CampaignMode::parse(&self.mode).ok_or_else(|| {
            CampaignError::Invalid(format!(
                "mode {:?} is neither once nor continuous",
                self.mode
            ))
        })?;
        if self.channels.is_empty() {
            return Err(CampaignError::Invalid(
                "channels must name at least one channel".into(),
            ));
        }
        let mut channels = Vec::new();
        for c in &self.channels {
            let ch = Channel::parse(c).ok_or_else(|| {
                CampaignError::Invalid(format!("unknown channel {c:?} (wechat, sms, hotline)"))
            })?;
            if channels.contains(&ch) {
                return Err(CampaignError::Invalid(format!(
                    "channel {c} is listed twice"
                )));
            }
            channels.push(ch);
        }
        let mut templates = BTreeMap::new();
        for (key, src) in &self.templates {
            let ch = Channel::parse(key).ok_or_else(|| {
                CampaignError::Invalid(format!("template for unknown channel {key:?}"))
            })?;
            if !channels.contains(&ch) {
                return Err(CampaignError::Invalid(format!(
                    "template for {key}, which is not in channels"
                )));
            }
            let t = Template::compile(ch, src)
                .map_err(|error| CampaignError::Template { channel: ch, error })?;
            templates.insert(ch, t);
        }
        if let Some(missing) = channels.iter().find(|c| !templates.contains_key(c)) {
            return Err(CampaignError::Invalid(format!(
                "channel {missing} has no template"
            )));
        }
        let audience_filter = match self.audience_filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(src) => Some(Rule::parse(src).map_err(CampaignError::Filter)?),
        };
        let schedule = self.schedule.unwrap_or_default();
        if schedule.at.is_some() && schedule.cron.is_some() {
            return Err(CampaignError::Invalid(
                "schedule takes either at or cron, not both".into(),
            ));
        }
        if let Some(expr) = &schedule.cron {
            let sched = parse_cron(expr).map_err(CampaignError::Schedule)?;
            if sched.upcoming(SCHEDULE_TZ).next().is_none() {
                return Err(CampaignError::Schedule(format!(
                    "schedule.cron {expr:?} has no future occurrence"
                )));
            }
        }
        if let (Some(at), Some(until)) = (schedule.at, schedule.until) {
            if until <= at {
                return Err(CampaignError::Invalid(
                    "schedule.until must be after schedule.at".into(),
                ));
            }
        }
        let throttle_per_second = match self.throttle_per_second {
            Some(t) if !t.is_finite() || t < 0.0 => {
                return Err(CampaignError::Invalid(
                    "throttle_per_second must be a positive number (or 0 for none)".into(),
                ))
            }
            Some(t) if t > 0.0 => Some(t),
            _ => None,
        };
        Ok(CheckedCampaign {
            policy_id: self.policy_id,
            name,
            mode,
            channels,
            templates,
            audience_filter,
            schedule,
            throttle_per_second,
        })
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cron_occurrences_are_shanghai_time() {
        let s = Schedule {
            cron: Some("30 9 * * mon".into()),
            ..Default::default()
        };
        // Sunday 2026-11-29 12:00 UTC = 20:00 Shanghai; next Monday 09:30 Shanghai = 01:30 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0).unwrap())
        );
        let ended = Schedule {
            until: Some(Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap()),
            ..s.clone()
        };
        assert_eq!(ended.next_after(now), None);
        assert!(parse_cron("0 0 9 * * *").is_ok());
        assert!(parse_cron("every day").is_err());
    }
}
