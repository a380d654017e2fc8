//! The daily calendar sweep: what changes with the date alone, with no change event.
//!
//! A person turns 16 or 40, a new value of a policy parameter takes effect: their tags
//! and audiences change although no subject changed. Once at start and then every day
//! just after 00:00 Asia/Shanghai (or every `PipelineConfig::sweep_interval`), the
//! planner role
//!
//! 1. re-evaluates the rule tags when any tag rule depends on the date (reads `age` or a
//!    parameter), from the population index with bitmap plans, writing only the subjects
//!    whose tags changed ([`crate::matching::retag_from_index`]);
//! 2. computes every running continuous campaign's audience over the index on today's
//!    date (with today's parameter values), keeps the subjects the campaign has not
//!    planned yet, and plans them exactly as a subject upsert would
//!    ([`crate::planner::plan_subjects`]): at most one push per subject per campaign, the
//!    store's guarantee.
//!
//! Before both, policies past their `effective_to` expire ([`crate::lifecycle`]).
//!
//! The sweep reads the process's population index, which the API keeps current; a
//! process without one (the planner role alone) builds it from the store for each sweep.
//!
//! "Today" comes from the pipeline's clock ([`Pipeline::today`]), so tests can move the
//! calendar.

use crate::matching::{load_index, params_on, retag_from_index, SharedIndex, TagRules};
use crate::planner::{plan_subjects, CampaignPlan};
use crate::Pipeline;
use chrono::{NaiveDate, TimeZone, Utc};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub date: Option<NaiveDate>,
    /// Subjects whose tags changed.
    pub retagged: u64,
    /// Subjects in a continuous campaign's audience that it had not planned yet.
    pub newly_eligible: u64,
    /// Campaigns that got new pushes.
    pub campaigns: Vec<String>,
}

/// One sweep on the clock's date.
pub async fn sweep(p: &Pipeline) -> anyhow::Result<SweepReport> {
    let today = p.today();
    // Policies past their `effective_to` end first: their campaigns plan nothing more.
    crate::lifecycle::expire_due(p).await?;
    let store = p.store.as_ref();
    let params = params_on(store, today).await?;
    let rules = TagRules::compile(&store.list_tags().await?, &params, today);
    // A process serving the API keeps its index current with every upsert; one that
    // does not (a planner alone) never built one, and reads the population afresh.
    let own: SharedIndex;
    let index = if p.index.read().expect("population index lock").is_empty() {
        own = Arc::new(RwLock::new(load_index(store).await?));
        &own
    } else {
        &p.index
    };
    let retagged = if rules.depend_on_date() {
        retag_from_index(store, index, &rules, today).await?
    } else {
        0
    };
    let (newly_eligible, campaigns) = plan_continuous(p, index, today).await?;
    Ok(SweepReport {
        date: Some(today),
        retagged,
        newly_eligible,
        campaigns,
    })
}

/// Plans, for every running continuous campaign, the subjects of its audience over
/// `index` on `today` that it has not planned yet (as a subject upsert would). Returns
/// how many such subjects there were and the campaigns that got new pushes.
pub async fn plan_continuous(
    p: &Pipeline,
    index: &SharedIndex,
    today: NaiveDate,
) -> anyhow::Result<(u64, Vec<String>)> {
    let store = p.store.as_ref();
    let mut newly: BTreeSet<String> = BTreeSet::new();
    for c in store.continuous_campaigns().await? {
        let id = c.id.clone();
        let plan = CampaignPlan::load(p, c).await?;
        let members: Vec<String> = {
            let ix = index.read().expect("population index lock");
            let bitmap = plan.criteria.plan().run(&ix, today);
            bitmap.iter().map(|i| ix.key(i).to_string()).collect()
        };
        if members.is_empty() {
            continue;
        }
        let planned: HashSet<String> = store.campaign_subjects(&id).await?.into_iter().collect();
        newly.extend(members.into_iter().filter(|k| !planned.contains(k)));
    }
    let mut subjects = Vec::with_capacity(newly.len());
    for key in &newly {
        if let Some(s) = store.get_subject(key).await? {
            subjects.push(s);
        }
    }
    let mut campaigns = Vec::new();
    for batch in subjects.chunks(2_000) {
        for c in plan_subjects(p, batch).await? {
            if !campaigns.contains(&c) {
                campaigns.push(c);
            }
        }
    }
    Ok((newly.len() as u64, campaigns))
}

/// How long until the next sweep: the configured interval, or until just after the next
/// midnight in Shanghai.
fn until_next(p: &Pipeline) -> Duration {
    if let Some(every) = p.config.sweep_interval {
        return every;
    }
    let now = p.now();
    let tomorrow = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 5))
        .and_then(|t| chrono_tz::Asia::Shanghai.from_local_datetime(&t).earliest());
    tomorrow
        .and_then(|t| (t.with_timezone(&Utc) - now).to_std().ok())
        .unwrap_or(Duration::from_secs(3600))
}

/// The sweep role: at start, then daily.
pub async fn run(p: Pipeline, shutdown: CancellationToken) {
    loop {
        match sweep(&p).await {
            Ok(r) => tracing::info!(
                date = ?r.date,
                retagged = r.retagged,
                newly_eligible = r.newly_eligible,
                campaigns = r.campaigns.len(),
                "calendar sweep done"
            ),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "calendar sweep failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(until_next(&p)) => {}
        }
    }
}
