//! Campaigns: the operator's plan to notify a policy's audience.

use crate::channel::Channel;
use crate::provider_template::{BoundContent, Provider, ProviderTemplate};
use crate::rule::{Rule, RuleError};
use crate::template::{Expression, RenderContext, Template, TemplateError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// The states of a campaign that is not over (neither completed nor cancelled).
    pub const NOT_OVER: [CampaignStatus; 6] = [
        CampaignStatus::Draft,
        CampaignStatus::Submitted,
        CampaignStatus::Approved,
        CampaignStatus::Scheduled,
        CampaignStatus::Running,
        CampaignStatus::Paused,
    ];

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignDraft {
    pub policy_id: String,
    pub name: String,
    #[serde(default = "default_mode")]
    pub mode: String,
    pub channels: Vec<String>,
    /// Free text per channel, sent through the provider's catch-all template (only where
    /// one is registered: the simulators).
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// Per channel: a registered provider template and the product expression of each of
    /// its variables. A channel has a free-text template or a binding, not both.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, TemplateBinding>,
    #[serde(default)]
    pub audience_filter: Option<String>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Pushes per second for this campaign (on top of each provider's rate); `None` or 0:
    /// no campaign throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_per_second: Option<f64>,
}

/// A campaign channel's registered template and what fills its variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateBinding {
    /// The template's code (`SMS_468201`, `1843021`, WeChat `template_id`, `TTS_2001`).
    pub template: String,
    /// Needed only when two providers of the channel registered the same code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Template variable → product expression (`{{ policy.title }}`, `{{ link_code }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// A checked binding: expressions compiled; the registered template once
/// [`CheckedCampaign::attach`] found it.
#[derive(Debug, Clone)]
pub struct CheckedBinding {
    pub template: String,
    pub provider: Option<Provider>,
    pub expressions: BTreeMap<String, Expression>,
    pub registered: Option<Arc<ProviderTemplate>>,
}

impl CheckedBinding {
    /// The values of the template's variables (in its order) for one recipient, each
    /// checked against the provider's rules, and the text the provider will deliver.
    pub fn render(&self, ctx: &RenderContext, link_code: &str) -> Result<BoundContent, String> {
        let t = self
            .registered
            .as_ref()
            .ok_or_else(|| format!("template {} is not attached", self.template))?;
        let mut params = Vec::with_capacity(t.variables.len());
        for var in &t.variables {
            let expr = self
                .expressions
                .get(&var.name)
                .ok_or_else(|| format!("variable `{}` has no expression", var.name))?;
            let value = expr
                .render(ctx, link_code)
                .map_err(|e| format!("variable `{}`: {e}", var.name))?;
            params.push((var.name.clone(), value));
        }
        let text = t.fill(&params).map_err(|e| e.to_string())?;
        Ok(BoundContent {
            provider: t.provider,
            template: t.code.clone(),
            sign_name: t.sign_name.clone(),
            params,
            text,
        })
    }
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
    /// A binding the registry or the provider's rules refuse: names the variable and rule.
    #[error("bindings.{channel}: {message}")]
    Binding { channel: Channel, message: String },
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
    pub bindings: BTreeMap<Channel, CheckedBinding>,
    pub audience_filter: Option<Rule>,
    pub schedule: Schedule,
    pub throttle_per_second: Option<f64>,
}

impl CheckedCampaign {
    /// Finds each binding's registered template in `registry` and checks the binding maps
    /// exactly its variables.
    pub fn attach(&mut self, registry: &[ProviderTemplate]) -> Result<(), CampaignError> {
        for (&channel, b) in self.bindings.iter_mut() {
            let refuse = |message: String| CampaignError::Binding { channel, message };
            let found: Vec<&ProviderTemplate> = registry
                .iter()
                .filter(|t| {
                    t.code == b.template
                        && t.channel() == channel
                        && b.provider.is_none_or(|p| p == t.provider)
                })
                .collect();
            let t = match found.as_slice() {
                [] => {
                    return Err(refuse(format!(
                        "no {channel} template {} is registered (see /api/v1/provider-templates)",
                        b.template
                    )))
                }
                [t] => *t,
                _ => {
                    return Err(refuse(format!(
                        "template {} is registered with several providers; name one (provider)",
                        b.template
                    )))
                }
            };
            if t.catch_all {
                return Err(refuse(format!(
                    "template {} is the catch-all; use free text (templates.{channel}) with it",
                    t.code
                )));
            }
            if let Some(v) = t
                .variables
                .iter()
                .find(|v| !b.expressions.contains_key(&v.name))
            {
                return Err(refuse(format!(
                    "variable `{}` of template {} has no expression",
                    v.name, t.code
                )));
            }
            if let Some(extra) = b.expressions.keys().find(|k| t.variable(k).is_none()) {
                return Err(refuse(format!(
                    "template {} has no variable `{extra}`",
                    t.code
                )));
            }
            b.registered = Some(Arc::new(t.clone()));
        }
        Ok(())
    }

    /// Renders every binding for a sample recipient of this campaign (the policy's own
    /// values, `benefit` when the policy has one, a link of the real length, a typical
    /// name) and checks each value against the provider's rules. Values that depend on the
    /// recipient (attributes, benefit) are checked when they render to something; every
    /// push is checked again when planned.
    pub fn check_samples(
        &self,
        policy: &serde_json::Map<String, serde_json::Value>,
        benefit: Option<f64>,
        link: &str,
        link_code: &str,
    ) -> Result<(), CampaignError> {
        let ctx = RenderContext {
            why: String::new(),
            subject: [("name".to_string(), serde_json::Value::from("欧阳明"))]
                .into_iter()
                .collect(),
            policy: policy.clone(),
            benefit,
            link: link.to_string(),
        };
        for (&channel, b) in &self.bindings {
            let refuse = |message: String| CampaignError::Binding { channel, message };
            let Some(t) = &b.registered else {
                return Err(refuse(format!("template {} is not attached", b.template)));
            };
            let mut params = Vec::new();
            for var in &t.variables {
                let expr = &b.expressions[&var.name];
                let value = expr
                    .render(&ctx, link_code)
                    .map_err(|e| refuse(format!("variable `{}`: {e}", var.name)))?;
                if value.is_empty() && expr.per_subject() {
                    continue;
                }
                t.check_value(var, &value)
                    .map_err(|e| refuse(format!("{e} (sample value {value:?})")))?;
                params.push((var.name.clone(), value));
            }
            if params.len() == t.variables.len() {
                t.fill(&params).map_err(|e| refuse(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Free-text channels need a catch-all template registered for them: without one a
    /// real account would refuse every message.
    pub fn require_catch_all(&self, registry: &[ProviderTemplate]) -> Result<(), CampaignError> {
        for &channel in self.templates.keys() {
            if !registry
                .iter()
                .any(|t| t.catch_all && t.channel() == channel)
            {
                return Err(CampaignError::Invalid(format!(
                    "templates.{channel}: free text needs a catch-all template, and none is \
                     registered for {channel} (only the simulators have one); bind a \
                     registered template under bindings.{channel}"
                )));
            }
        }
        Ok(())
    }
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
            let ch = listed_channel(&channels, key, "template")?;
            let t = Template::compile(ch, src)
                .map_err(|error| CampaignError::Template { channel: ch, error })?;
            templates.insert(ch, t);
        }
        let mut bindings = BTreeMap::new();
        for (key, b) in &self.bindings {
            let ch = listed_channel(&channels, key, "binding")?;
            if templates.contains_key(&ch) {
                return Err(CampaignError::Invalid(format!(
                    "channel {key} has both a free-text template and a binding; keep one"
                )));
            }
            if b.template.trim().is_empty() {
                return Err(CampaignError::Binding {
                    channel: ch,
                    message: "template (the registered code) is required".into(),
                });
            }
            let mut expressions = BTreeMap::new();
            for (var, src) in &b.variables {
                let e = Expression::compile(src).map_err(|e| CampaignError::Binding {
                    channel: ch,
                    message: format!("variable `{var}`: {e}"),
                })?;
                expressions.insert(var.clone(), e);
            }
            bindings.insert(
                ch,
                CheckedBinding {
                    template: b.template.trim().to_string(),
                    provider: b.provider,
                    expressions,
                    registered: None,
                },
            );
        }
        if let Some(missing) = channels
            .iter()
            .find(|c| !templates.contains_key(c) && !bindings.contains_key(c))
        {
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
            bindings,
            audience_filter,
            schedule,
            throttle_per_second,
        })
    }
}

/// The channel `key` names, which must be one of the campaign's.
fn listed_channel(channels: &[Channel], key: &str, what: &str) -> Result<Channel, CampaignError> {
    let ch = Channel::parse(key)
        .ok_or_else(|| CampaignError::Invalid(format!("{what} for unknown channel {key:?}")))?;
    if !channels.contains(&ch) {
        return Err(CampaignError::Invalid(format!(
            "{what} for {key}, which is not in channels"
        )));
    }
    Ok(ch)
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

#[cfg(test)]
mod binding_tests {
    use super::*;
    use crate::provider_template::{TemplateVariable, VarKind};
    use serde_json::json;

    fn registry() -> Vec<ProviderTemplate> {
        let var = |name: &str, kind, max_chars| TemplateVariable {
            name: name.into(),
            kind,
            max_chars,
        };
        vec![
            ProviderTemplate {
                provider: Provider::TencentSms,
                code: "1843021".into(),
                name: "政策提醒".into(),
                text: "您可能符合{1}申领条件，请于{2}前申请。".into(),
                sign_name: Some("人社服务".into()),
                variables: vec![var("1", VarKind::Text, None), var("2", VarKind::Date, None)],
                catch_all: false,
                enterprise: false,
            },
            ProviderTemplate {
                provider: Provider::AliyunSms,
                code: "SMS_POLICY_PUSH".into(),
                name: String::new(),
                text: "${content}".into(),
                sign_name: Some("人社服务".into()),
                variables: vec![var("content", VarKind::Text, None)],
                catch_all: true,
                enterprise: false,
            },
        ]
    }

    fn draft(bindings: serde_json::Value) -> CampaignDraft {
        serde_json::from_value(json!({
            "policy_id": "pol1", "name": "通知", "channels": ["sms", "wechat"],
            "templates": {"wechat": "thing1: {{ policy.title }}"},
            "bindings": bindings,
        }))
        .unwrap()
    }

    fn policy(title: &str) -> serde_json::Map<String, serde_json::Value> {
        json!({"title": title, "effective_to": "2025-12-31"})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn saved(bindings: serde_json::Value, title: &str) -> Result<CheckedCampaign, CampaignError> {
        let mut c = draft(bindings).check()?;
        c.attach(&registry())?;
        c.check_samples(&policy(title), None, "https://push.example.gov.cn/l/x", "x")?;
        Ok(c)
    }

    fn refusal(bindings: serde_json::Value, title: &str) -> String {
        saved(bindings, title).unwrap_err().to_string()
    }

    #[test]
    fn a_binding_renders_the_registered_template() {
        let c = saved(
            json!({"sms": {"template": "1843021", "variables":
                {"1": "{{ policy.title }}", "2": "{{ policy.effective_to }}"}}}),
            "稳岗返还",
        )
        .unwrap();
        let ctx = RenderContext {
            why: String::new(),
            subject: Default::default(),
            policy: policy("稳岗返还"),
            benefit: None,
            link: String::new(),
        };
        let b = c.bindings[&Channel::Sms].render(&ctx, "x").unwrap();
        assert_eq!(b.template, "1843021");
        assert_eq!(b.values(), vec!["稳岗返还", "2025-12-31"]);
        assert_eq!(
            b.text,
            "【人社服务】您可能符合稳岗返还申领条件，请于2025-12-31前申请。"
        );
    }

    #[test]
    fn a_variable_over_the_providers_limit_is_refused_at_save() {
        let msg = refusal(
            json!({"sms": {"template": "1843021", "variables":
                {"1": "{{ policy.title }}", "2": "{{ policy.effective_to }}"}}}),
            "小微企业一次性扩岗补助申领",
        );
        assert_eq!(
            msg,
            "bindings.sms: variable `1`: has 13 characters; Tencent allows at most 12 per \
             variable for accounts that are not enterprise-verified \
             (InvalidParameterValue.TemplateParameterLengthLimit) (sample value \
             \"小微企业一次性扩岗补助申领\")"
        );
    }

    #[test]
    fn a_link_in_a_variable_is_refused_at_save() {
        let msg = refusal(
            json!({"sms": {"template": "1843021", "variables":
                {"1": "{{ link }}", "2": "{{ policy.effective_to }}"}}}),
            "稳岗返还",
        );
        assert!(
            msg.starts_with("bindings.sms: variable `1`: holds a link")
                && msg.contains("ProhibitedUseUrlInTemplateParameter"),
            "{msg}"
        );
    }

    #[test]
    fn bindings_must_match_the_registry() {
        let unknown = refusal(json!({"sms": {"template": "999", "variables": {}}}), "x");
        assert!(
            unknown.contains("no sms template 999 is registered"),
            "{unknown}"
        );
        let missing = refusal(
            json!({"sms": {"template": "1843021", "variables": {"1": "{{ policy.title }}"}}}),
            "x",
        );
        assert!(missing.contains("variable `2` of template 1843021 has no expression"));
        let extra = refusal(
            json!({"sms": {"template": "1843021", "variables":
                {"1": "a", "2": "2025-01-01", "3": "c"}}}),
            "x",
        );
        assert!(extra.contains("has no variable `3`"), "{extra}");
        let catch_all = refusal(
            json!({"sms": {"template": "SMS_POLICY_PUSH", "variables": {"content": "x"}}}),
            "x",
        );
        assert!(catch_all.contains("is the catch-all"), "{catch_all}");
        let bad_expr = draft(json!({"sms": {"template": "1843021", "variables":
            {"1": "{{ foo }}", "2": "x"}}}))
        .check()
        .unwrap_err()
        .to_string();
        assert!(bad_expr.starts_with("bindings.sms: variable `1`: unknown variable `foo`"));
        let both: CampaignDraft = serde_json::from_value(json!({
            "policy_id": "p", "name": "n", "channels": ["sms"],
            "templates": {"sms": "x"}, "bindings": {"sms": {"template": "1843021"}}}))
        .unwrap();
        assert!(both.check().unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn per_subject_values_are_checked_when_planned() {
        // The sample has no attribute values: accepted at save, refused per recipient.
        let c = saved(
            json!({"sms": {"template": "1843021", "variables":
                {"1": "{{ subject.employer }}", "2": "{{ policy.effective_to }}"}}}),
            "x",
        )
        .unwrap();
        let mut ctx = RenderContext {
            why: String::new(),
            subject: Default::default(),
            policy: policy("x"),
            benefit: None,
            link: String::new(),
        };
        ctx.subject
            .insert("employer".into(), "上海某某某某精密机械有限公司".into());
        let e = c.bindings[&Channel::Sms].render(&ctx, "x").unwrap_err();
        assert!(e.starts_with("variable `1`: has 14 characters"), "{e}");
    }

    #[test]
    fn free_text_needs_a_catch_all() {
        let c = draft(json!({"sms": {"template": "1843021", "variables":
            {"1": "a", "2": "2025-01-01"}}}))
        .check()
        .unwrap();
        // The wechat channel is free text and only SMS has a catch-all.
        let msg = c.require_catch_all(&registry()).unwrap_err().to_string();
        assert!(
            msg.contains("templates.wechat: free text needs a catch-all"),
            "{msg}"
        );
    }
}
