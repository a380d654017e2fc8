//! The planner: turns a launched campaign into committed push rows, one per eligible
//! subject on the first channel of the plan that reaches it; eligible subjects no channel
//! reaches are recorded as unreachable. Planning is idempotent (a subject already planned
//! for the campaign is left alone), so a planner killed half-way simply runs again.

use crate::matching::Criteria;
use crate::{codes, Pipeline};
use anyhow::Context;
use chrono::NaiveDate;
use domain::campaign::CheckedCampaign;
use domain::policy::CheckedPolicy;
use domain::push::{PushPurpose, SkipReason};
use domain::template::RenderContext;
use domain::{Channel, Facts, Subject};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use store::{CampaignRecord, NewPush, OptOut};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Subjects per planning batch (one store read, one render pass, one transaction).
const BATCH: usize = 2_000;
/// Batches read and rendered ahead of the one being written.
const PREPARE_AHEAD: usize = 3;

/// Everything needed to write one campaign's pushes.
pub struct CampaignPlan {
    pub campaign: CampaignRecord,
    pub checked: CheckedCampaign,
    pub policy: CheckedPolicy,
    pub criteria: Criteria,
    pub public_url: String,
    pub sms_sign_name: String,
    /// What explanations are worded with (attribute catalogue, tag names, parameters).
    pub glossary: domain::rule::Glossary,
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
            glossary: crate::matching::glossary(p.store.as_ref()).await?,
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
        let explanation = self.criteria.explain_in_words(&facts, &self.glossary);
        let why = explanation.why();
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
            let content = match self.render(channel, subject, benefit, &why, &link) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(campaign = %self.campaign.id, %channel, error = %e, "template does not render for a subject; trying the next channel");
                    continue;
                }
            };
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

    /// Renders the channel's message (`why`: the reasons in plain words,
    /// [`domain::rule::Explanation::why`]). A channel bound to a registered provider template
    /// gets its variables, each checked against the provider's rules, as
    /// [`domain::provider_template::BoundContent`] JSON (the link only where the template
    /// binds `link_code`); free text is rendered, and an SMS always carries the link.
    pub fn render(
        &self,
        channel: Channel,
        subject: &Subject,
        benefit: Option<f64>,
        why: &str,
        link: &str,
    ) -> Result<String, domain::template::TemplateError> {
        let ctx = RenderContext {
            why: why.to_string(),
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
///
/// The audience comes from the population index (a bitmap plan, milliseconds), not from
/// paging through every subject: only the audience's rows are read from the store, a
/// batch at a time, and checked again on those fresh rows. While one batch is written,
/// the next ones are read and rendered (rendering runs on the blocking pool, in parallel
/// with the async workers); pushes are written in bulk, one transaction per batch.
pub async fn plan(p: &Pipeline, campaign: CampaignRecord) -> anyhow::Result<u64> {
    let id = campaign.id.clone();
    let plan = Arc::new(CampaignPlan::load(p, campaign).await?);
    let today = p.today();
    let started = std::time::Instant::now();
    catch_up_index(p).await?;
    let keys: Vec<String> = {
        let index = p.index.read().expect("population index lock");
        let members = plan.criteria.plan().run(&index, today);
        members.iter().map(|i| index.key(i).to_string()).collect()
    };
    tracing::info!(campaign = %id, audience = keys.len(), "planning from the population index");
    let mut written = 0;
    // Batches are read and rendered by tasks of their own, up to PREPARE_AHEAD ahead of
    // the one being written (in order, so `seq` follows the audience order).
    let mut ahead: VecDeque<JoinHandle<anyhow::Result<PreparedBatch>>> = VecDeque::new();
    let mut chunks = keys.chunks(BATCH);
    loop {
        while ahead.len() < PREPARE_AHEAD {
            let Some(ids) = chunks.next() else { break };
            let (p, plan, ids) = (p.clone(), plan.clone(), ids.to_vec());
            ahead.push_back(tokio::spawn(async move {
                let t = std::time::Instant::now();
                let subjects = p.store.get_subjects(&ids).await?;
                let read = t.elapsed();
                let prepared = prepare_batch(&p, plan, subjects, today, true).await;
                tracing::debug!(
                    read_ms = read.as_millis() as u64,
                    prepare_ms = (t.elapsed() - read).as_millis() as u64,
                    "planning batch read and prepared"
                );
                prepared
            }));
        }
        let Some(next) = ahead.pop_front() else { break };
        let (pushes, skips) = next.await??;
        let t = std::time::Instant::now();
        written += p
            .store
            .insert_plan_batch(&id, &pushes, &skips, p.now())
            .await?;
        tracing::debug!(
            pushes = pushes.len(),
            write_ms = t.elapsed().as_millis() as u64,
            "planning batch written"
        );
        p.wake.notify_waiters();
    }
    p.store.finish_plan(&id, p.now()).await?;
    p.wake.notify_waiters();
    tracing::info!(campaign = %id, pushes = written, ms = started.elapsed().as_millis() as u64, "campaign planned");
    Ok(written)
}

/// A batch's pushes and the subjects it skips.
type PreparedBatch = (Vec<NewPush>, Vec<(String, SkipReason)>);

/// Where the index follows other processes' writes over the bus
/// ([`crate::PipelineConfig::index_catch_up`]), indexes the subjects written in the last
/// moments straight from the store, so a subject changed just before a launch is planned
/// by what it is now.
async fn catch_up_index(p: &Pipeline) -> anyhow::Result<()> {
    let Some(window) = p.config.index_catch_up else {
        return Ok(());
    };
    let since = chrono::Utc::now() - chrono::Duration::from_std(window)?;
    let ids = p.store.subject_ids_changed_since(since).await?;
    for chunk in ids.chunks(BATCH) {
        let subjects = p.store.get_subjects(chunk).await?;
        crate::matching::index_subjects(&p.index, &subjects);
    }
    if !ids.is_empty() {
        tracing::debug!(subjects = ids.len(), "index caught up with recent writes");
    }
    Ok(())
}

/// The pushes and skips of a batch of subjects: opt-outs and other campaigns of the same
/// policy read in one query each, then rendering off the async workers. With `recheck`,
/// subjects that no longer match the campaign's criteria are left out.
async fn prepare_batch(
    p: &Pipeline,
    plan: Arc<CampaignPlan>,
    batch: Vec<(Subject, Vec<String>)>,
    today: NaiveDate,
    recheck: bool,
) -> anyhow::Result<PreparedBatch> {
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
    let duplicates: HashSet<String> = p
        .store
        .subjects_with_policy(&plan.campaign.policy_id, &plan.campaign.id, &ids, false)
        .await?
        .into_iter()
        .collect();
    // Rendering a batch of templates is CPU work: on the blocking pool.
    let prepared = tokio::task::spawn_blocking(move || {
        let mut pushes = Vec::with_capacity(batch.len());
        let mut skips = Vec::new();
        for (s, tags) in &batch {
            if recheck && !plan.criteria.matches(&Facts::new(s, tags, today)) {
                continue;
            }
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
    })
    .await?;
    Ok(prepared)
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
        if matching.is_empty() {
            continue;
        }
        let (pushes, skips) = prepare_batch(p, Arc::new(plan), matching, today, false).await?;
        if p.store
            .insert_plan_batch(&id, &pushes, &skips, p.now())
            .await?
            > 0
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
    let mut backoff = crate::backoff::Backoff::new("planner");
    loop {
        // The last backend error of this round: the planner pauses (backing off) instead
        // of polling again at once.
        let mut failed: Option<anyhow::Error> = None;
        match p.store.campaigns_to_plan().await {
            Ok(campaigns) => {
                for c in campaigns {
                    let id = c.id.clone();
                    if let Err(e) = plan(&p, c).await {
                        tracing::error!(campaign = %id, error = %format!("{e:#}"), "planning failed; will retry");
                        failed = Some(e);
                    }
                }
            }
            Err(e) => failed = Some(e.into()),
        }
        if let Err(e) = p.store.fold_tallies().await {
            failed = Some(anyhow::Error::from(e).context("cannot fold campaign tallies"));
        }
        match p.store.complete_finished_campaigns(p.now()).await {
            Ok(done) => {
                for id in done {
                    tracing::info!(campaign = %id, "campaign completed");
                }
            }
            Err(e) => failed = Some(anyhow::Error::from(e).context("cannot complete campaigns")),
        }
        match failed {
            Some(e) if crate::backoff::backend_of(&e) != "other" => {
                if !backoff.pause(&e, &shutdown).await {
                    return;
                }
                continue;
            }
            _ => backoff.reset(),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = p.wake.notified() => {}
            _ = tokio::time::sleep(p.config.poll_interval) => {}
        }
    }
}
