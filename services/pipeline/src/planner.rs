//! The planner: turns a launched campaign into committed push rows, one per eligible
//! subject on the first channel of the plan that reaches it; eligible subjects no channel
//! reaches are recorded as unreachable. Planning is idempotent (a subject already planned
//! for the campaign is left alone), so a planner killed half-way simply runs again.

use crate::matching::{for_each_subject, today, Criteria};
use crate::{codes, Pipeline};
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use domain::campaign::CheckedCampaign;
use domain::policy::CheckedPolicy;
use domain::push::SkipReason;
use domain::template::RenderContext;
use domain::{Channel, Facts, Subject};
use store::{CampaignRecord, NewPush};
use tokio_util::sync::CancellationToken;

const BATCH: usize = 2_000;

/// Pushes and unreachable subjects written in one transaction.
type PlanBatch = (Vec<NewPush>, Vec<(String, SkipReason)>);

/// Everything needed to write one campaign's pushes.
pub struct CampaignPlan {
    pub campaign: CampaignRecord,
    pub checked: CheckedCampaign,
    pub policy: CheckedPolicy,
    pub criteria: Criteria,
    pub public_url: String,
}

impl CampaignPlan {
    pub async fn load(p: &Pipeline, campaign: CampaignRecord) -> anyhow::Result<Self> {
        let policy = p
            .store
            .get_policy(&campaign.policy_id)
            .await?
            .with_context(|| {
                format!("policy {} of campaign {}", campaign.policy_id, campaign.id)
            })?;
        let policy = policy
            .draft
            .check()
            .context("stored policy no longer checks")?;
        let checked = campaign
            .draft
            .clone()
            .check()
            .context("stored campaign no longer checks")?;
        let criteria = Criteria {
            eligibility: policy.eligibility.clone(),
            filter: checked.audience_filter.clone(),
        };
        Ok(Self {
            campaign,
            checked,
            policy,
            criteria,
            public_url: p.config.public_url.trim_end_matches('/').to_string(),
        })
    }

    /// The push for `subject` on the first channel at or after `from` in the plan that
    /// reaches it and can carry the message; `Err(reason)` when there is none.
    pub fn push_for(
        &self,
        subject: &Subject,
        tags: &[String],
        today: NaiveDate,
        from: usize,
    ) -> Result<NewPush, SkipReason> {
        let facts = Facts::new(subject, tags, today);
        let benefit = self
            .policy
            .benefit
            .as_ref()
            .and_then(|b| b.eval_number(&facts));
        let link_code = codes::link_code();
        let link = format!("{}/l/{link_code}", self.public_url);
        for &channel in self.checked.channels.iter().skip(from) {
            let Some(recipient) = recipient(channel, subject) else {
                continue;
            };
            let content = match self.render(channel, subject, benefit, &link) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(campaign = %self.campaign.id, %channel, error = %e, "template does not render for a subject; trying the next channel");
                    continue;
                }
            };
            let explanation = self.criteria.explain(&facts);
            return Ok(NewPush {
                id: codes::push_id(),
                subject_id: subject.id.as_str().to_string(),
                channel,
                recipient,
                content,
                link_code,
                explanation: serde_json::to_string(&explanation).expect("explanation serialises"),
                benefit,
            });
        }
        Err(SkipReason::Unreachable)
    }

    /// Renders the channel's template; SMS always carries the recipient link.
    pub fn render(
        &self,
        channel: Channel,
        subject: &Subject,
        benefit: Option<f64>,
        link: &str,
    ) -> Result<String, domain::template::TemplateError> {
        let template = &self.checked.templates[&channel];
        let ctx = render_context(subject, &self.policy, benefit, link);
        let mut content = template.render(&ctx)?;
        if channel == Channel::Sms && !content.contains(link) {
            content.push(' ');
            content.push_str(link);
        }
        Ok(content)
    }
}

/// The address `channel` sends to for `subject`, if it has one.
pub fn recipient(channel: Channel, subject: &Subject) -> Option<String> {
    match channel {
        Channel::Wechat => subject
            .wechat_openid
            .as_ref()
            .map(|o| o.as_str().to_string()),
        Channel::Sms | Channel::Hotline => subject.mobile.as_ref().map(|m| m.as_str().to_string()),
    }
}

pub fn render_context(
    subject: &Subject,
    policy: &CheckedPolicy,
    benefit: Option<f64>,
    link: &str,
) -> RenderContext {
    let mut s = serde_json::Map::new();
    for (k, v) in &subject.attributes {
        s.insert(k.clone(), v.to_json());
    }
    s.insert("name".into(), subject.name.clone().into());
    let d = &policy.draft;
    let mut pol = serde_json::Map::new();
    for (k, v) in [
        ("title", &d.title),
        ("doc_number", &d.doc_number),
        ("issuer", &d.issuer),
        ("category", &d.category),
        ("apply_url", &d.apply_url),
        ("summary", &d.summary),
    ] {
        pol.insert(k.into(), v.clone().into());
    }
    for (k, v) in [
        ("effective_from", d.effective_from),
        ("effective_to", d.effective_to),
    ] {
        pol.insert(
            k.into(),
            v.map(|d| d.to_string()).unwrap_or_default().into(),
        );
    }
    RenderContext {
        subject: s,
        policy: pol,
        benefit,
        link: link.to_string(),
    }
}

/// Writes every push of a launched campaign and marks its plan written.
pub async fn plan(p: &Pipeline, campaign: CampaignRecord) -> anyhow::Result<u64> {
    let id = campaign.id.clone();
    let plan = CampaignPlan::load(p, campaign).await?;
    let today = today();
    let mut pushes = Vec::with_capacity(BATCH);
    let mut skips = Vec::new();
    let mut batches: Vec<PlanBatch> = Vec::new();
    for_each_subject(p.store.as_ref(), |s, tags| {
        if !plan.criteria.matches(&Facts::new(s, tags, today)) {
            return;
        }
        match plan.push_for(s, tags, today, 0) {
            Ok(push) => pushes.push(push),
            Err(reason) => skips.push((s.id.as_str().to_string(), reason)),
        }
        if pushes.len() + skips.len() >= BATCH {
            batches.push((std::mem::take(&mut pushes), std::mem::take(&mut skips)));
        }
    })
    .await?;
    batches.push((pushes, skips));
    let mut written = 0;
    for (pushes, skips) in batches {
        written += p.store.insert_plan_batch(&id, &pushes, &skips).await?;
        p.wake.notify_waiters();
    }
    p.store.finish_plan(&id, Utc::now()).await?;
    p.wake.notify_waiters();
    tracing::info!(campaign = %id, pushes = written, "campaign planned");
    Ok(written)
}

/// Plans changed subjects into every running continuous campaign they now match, at
/// most once per subject per campaign. Returns the ids of campaigns that got new pushes.
pub async fn plan_subjects(
    p: &Pipeline,
    subjects: &[(Subject, Vec<String>)],
) -> anyhow::Result<Vec<String>> {
    let campaigns = p.store.continuous_campaigns().await?;
    if campaigns.is_empty() || subjects.is_empty() {
        return Ok(Vec::new());
    }
    let today = today();
    let mut planned = Vec::new();
    for c in campaigns {
        let id = c.id.clone();
        let plan = CampaignPlan::load(p, c).await?;
        let mut pushes = Vec::new();
        let mut skips = Vec::new();
        for (subject, tags) in subjects {
            if !plan.criteria.matches(&Facts::new(subject, tags, today)) {
                continue;
            }
            match plan.push_for(subject, tags, today, 0) {
                Ok(push) => pushes.push(push),
                Err(reason) => skips.push((subject.id.as_str().to_string(), reason)),
            }
        }
        if (!pushes.is_empty() || !skips.is_empty())
            && p.store.insert_plan_batch(&id, &pushes, &skips).await? > 0
        {
            planned.push(id);
        }
    }
    if !planned.is_empty() {
        p.wake.notify_waiters();
    }
    Ok(planned)
}

/// The planner role: plans launched campaigns and completes finished ones.
pub async fn run(p: Pipeline, shutdown: CancellationToken) {
    loop {
        match p.store.campaigns_to_plan().await {
            Ok(campaigns) => {
                for c in campaigns {
                    let id = c.id.clone();
                    if let Err(e) = plan(&p, c).await {
                        tracing::error!(campaign = %id, error = %format!("{e:#}"), "planning failed; will retry");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list campaigns to plan"),
        }
        match p.store.complete_finished_campaigns(Utc::now()).await {
            Ok(done) => {
                for id in done {
                    tracing::info!(campaign = %id, "campaign completed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot complete campaigns"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = p.wake.notified() => {}
            _ = tokio::time::sleep(p.config.poll_interval) => {}
        }
    }
}
