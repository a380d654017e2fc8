//! The planner: turns a launched campaign into committed push rows, one per eligible
//! subject on the first channel of the plan that reaches it; eligible subjects no channel
//! reaches are recorded as unreachable. Planning is idempotent (a subject already planned
//! for the campaign is left alone), so a planner killed half-way simply runs again.

use crate::matching::{for_each_subject, Criteria};
use crate::{codes, Pipeline};
use anyhow::Context;
use chrono::NaiveDate;
use domain::campaign::CheckedCampaign;
use domain::policy::CheckedPolicy;
use domain::push::{PushPurpose, SkipReason};
use domain::template::RenderContext;
use domain::{Channel, Facts, Subject};
use std::collections::HashMap;
use store::{CampaignRecord, NewPush, OptOut};
use tokio_util::sync::CancellationToken;

const BATCH: usize = 2_000;

/// Everything needed to write one campaign's pushes.
pub struct CampaignPlan {
    pub campaign: CampaignRecord,
    pub checked: CheckedCampaign,
    pub policy: CheckedPolicy,
    pub criteria: Criteria,
    pub public_url: String,
    pub sms_sign_name: String,
    /// The `policy` of every template render: the same for every push of the campaign.
    policy_values: serde_json::Map<String, serde_json::Value>,
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
        let mut policy = policy
            .draft
            .check()
            .context("stored policy no longer checks")?;
        // Rules read the parameter values in force today (see `domain::param`).
        let params = crate::matching::params_on(p.store.as_ref(), p.today()).await?;
        policy.eligibility = policy.eligibility.bind(&params);
        policy.benefit = policy.benefit.map(|b| b.bind(&params));
        let mut checked = campaign
            .draft
            .clone()
            .check()
            .context("stored campaign no longer checks")?;
        checked
            .attach(&p.store.list_provider_templates().await?)
            .context("the campaign's provider templates")?;
        let criteria = Criteria {
            eligibility: policy.eligibility.clone(),
            filter: checked.audience_filter.as_ref().map(|f| f.bind(&params)),
        };
        Ok(Self {
            campaign,
            checked,
            policy_values: RenderContext::policy_values(&policy.draft),
            policy,
            criteria,
            public_url: p.config.public_url.trim_end_matches('/').to_string(),
            sms_sign_name: p.config.sms_sign_name.clone(),
        })
    }

    /// The push for `subject` on the first channel at or after `from` in the plan that
    /// reaches it, that the subject did not opt out of, and that can carry the message;
    /// `Err(reason)` when there is none.
    pub fn push_for(
        &self,
        subject: &Subject,
        tags: &[String],
        opt_outs: &[OptOut],
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
        let mut refused = false;
        for &channel in self.checked.channels.iter().skip(from) {
            let Some(recipient) = recipient(channel, subject) else {
                continue;
            };
            if opt_outs
                .iter()
                .any(|o| o.forbids(channel, &self.policy.draft.category))
            {
                refused = true;
                continue;
            }
            let content = match self.render(channel, subject, benefit, &link) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(campaign = %self.campaign.id, %channel, error = %e, "template does not render for a subject; trying the next channel");
                    continue;
                }
            };
            let explanation = self.criteria.explain(&facts);
            let segments = (channel == Channel::Sms).then(|| {
                i64::from(domain::provider_template::sms_segments(
                    &self.sms_sign_name,
                    &content,
                ))
            });
            return Ok(NewPush {
                id: codes::push_id(),
                subject_id: subject.id.as_str().to_string(),
                purpose: PushPurpose::Notice,
                segments,
                channel,
                recipient,
                content,
                link_code,
                explanation: serde_json::to_string(&explanation).expect("explanation serialises"),
                benefit,
            });
        }
        Err(if refused {
            SkipReason::OptedOut
        } else {
            SkipReason::Unreachable
        })
    }

    /// Renders the channel's message. A channel bound to a registered provider template
    /// gets its variables, each checked against the provider's rules, as
    /// [`domain::provider_template::BoundContent`] JSON (the link only where the template
    /// binds `link_code`); free text is rendered, and an SMS always carries the link.
    pub fn render(
        &self,
        channel: Channel,
        subject: &Subject,
        benefit: Option<f64>,
        link: &str,
    ) -> Result<String, domain::template::TemplateError> {
        let ctx = RenderContext {
            subject: RenderContext::subject_values(subject),
            policy: self.policy_values.clone(),
            benefit,
            link: link.to_string(),
        };
        if let Some(binding) = self.checked.bindings.get(&channel) {
            let link_code = link.rsplit('/').next().unwrap_or_default();
            return binding
                .render(&ctx, link_code)
                .map(|bound| bound.to_content())
                .map_err(|message| domain::template::TemplateError { message });
        }
        let template = &self.checked.templates[&channel];
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

/// Writes every push of a launched campaign and marks its plan written.
pub async fn plan(p: &Pipeline, campaign: CampaignRecord) -> anyhow::Result<u64> {
    let id = campaign.id.clone();
    let plan = CampaignPlan::load(p, campaign).await?;
    let today = p.today();
    let mut eligible: Vec<(Subject, Vec<String>)> = Vec::new();
    for_each_subject(p.store.as_ref(), |s, tags| {
        if plan.criteria.matches(&Facts::new(s, tags, today)) {
            eligible.push((s.clone(), tags.to_vec()));
        }
    })
    .await?;
    let mut written = 0;
    for batch in eligible.chunks(BATCH) {
        written += write_batch(p, &plan, &id, batch, today).await?;
        p.wake.notify_waiters();
    }
    p.store.finish_plan(&id, p.now()).await?;
    p.wake.notify_waiters();
    tracing::info!(campaign = %id, pushes = written, "campaign planned");
    Ok(written)
}

/// Runs CPU-bound work without stalling the async workers: in place on a multi-threaded
/// runtime (`block_in_place` hands this worker's other tasks to another), directly on a
/// current-thread runtime (tests), where there is no other worker to hand them to.
fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Plans eligible subjects of one campaign, honouring their opt-outs, in one transaction.
async fn write_batch(
    p: &Pipeline,
    plan: &CampaignPlan,
    campaign_id: &str,
    batch: &[(Subject, Vec<String>)],
    today: NaiveDate,
) -> anyhow::Result<u64> {
    let ids: Vec<String> = batch
        .iter()
        .map(|(s, _)| s.id.as_str().to_string())
        .collect();
    let mut opt_outs: HashMap<String, Vec<OptOut>> = HashMap::new();
    for o in p.store.opt_outs_of(&ids).await? {
        opt_outs.entry(o.subject_id.clone()).or_default().push(o);
    }
    // A subject never gets the same policy twice: skip those another campaign of the
    // policy already has a (not failed) push for.
    let duplicates: std::collections::HashSet<String> = p
        .store
        .subjects_with_policy(&plan.campaign.policy_id, campaign_id, &ids, false)
        .await?
        .into_iter()
        .collect();
    // Rendering a batch of templates is CPU work: off the async workers.
    let (pushes, skips) = off_async(|| {
        let mut pushes = Vec::with_capacity(batch.len());
        let mut skips = Vec::new();
        for (s, tags) in batch {
            if duplicates.contains(s.id.as_str()) {
                skips.push((s.id.as_str().to_string(), SkipReason::Duplicate));
                continue;
            }
            let mine = opt_outs.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
            match plan.push_for(s, tags, mine, today, 0) {
                Ok(push) => pushes.push(push),
                Err(reason) => skips.push((s.id.as_str().to_string(), reason)),
            }
        }
        (pushes, skips)
    });
    Ok(p.store
        .insert_plan_batch(campaign_id, &pushes, &skips, p.now())
        .await?)
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
    let today = p.today();
    let mut planned = Vec::new();
    for c in campaigns {
        let id = c.id.clone();
        let plan = CampaignPlan::load(p, c).await?;
        let matching: Vec<(Subject, Vec<String>)> = subjects
            .iter()
            .filter(|(s, tags)| plan.criteria.matches(&Facts::new(s, tags, today)))
            .cloned()
            .collect();
        if !matching.is_empty() && write_batch(p, &plan, &id, &matching, today).await? > 0 {
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
        match p.store.complete_finished_campaigns(p.now()).await {
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
