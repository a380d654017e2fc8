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
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cron: Option<String>,
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
        Ok(CheckedCampaign {
            policy_id: self.policy_id,
            name,
            mode,
            channels,
            templates,
            audience_filter,
            schedule,
        })
    }
}
