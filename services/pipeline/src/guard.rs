//! The limits a connector checks right before it sends, after claiming the pushes:
//!
//! 0. **The policy is still open**: a push of a policy withdrawn or past its
//!    `effective_to` ends skipped `policy_ended` ([`crate::lifecycle`]).
//! 1. **Opt-outs** (per channel, per policy category, or everything), read again at send
//!    time: a subject who opted out after planning is not sent on what they refused. The
//!    push falls back to the next channel of the plan they still accept, else it ends
//!    skipped `opted_out`.
//! 2. **De-duplication**: a subject never gets the same policy twice across campaigns.
//!    The planner already skips subjects with a push of the policy in another campaign;
//!    here a push of the policy another campaign already *sent* ends skipped `duplicate`,
//!    and the shared counter claims the policy for the subject atomically, so two
//!    campaigns sending at once cannot both send it.
//! 3. **Frequency cap** per subject across all campaigns (default 2 notices per 7 days),
//!    checked and counted in one atomic step by the shared [`limits::SendCounter`]
//!    (Redis when connectors run in several processes). A push over the cap ends skipped
//!    `capped`; it is **not** deferred to when the window frees (see below).
//!
//! When the counter backend does not answer, the pushes wait (deferred a little, no
//! attempt counted) and are tried again: nothing is sent past a cap because the counter
//! was down. When it answers but lost its keys (Redis restarted empty), it is rebuilt
//! from the store's recent sends first ([`rebuild_counter`]).
//!
//! Why a capped push is skipped rather than deferred: the cap exists so a resident is not
//! harassed. Deferring would queue every capped notice to go out the moment the window
//! frees, so a subject in many audiences would be kept at the cap for weeks and receive
//! stale notices (deadlines passed) in a burst. A skip is reported (`capped` in the
//! campaign's counts), and a later campaign of the same policy may reach the subject:
//! the de-duplication only counts pushes that were not skipped.
//!
//! Pushes asked for by the recipient (the link by SMS after pressing 1 in a hotline call)
//! are an answer, not a notice: no cap or de-duplication applies, opt-outs still do.

use crate::Pipeline;
use domain::campaign::CampaignStatus;
use domain::push::{PushPurpose, SkipReason};
use domain::Channel;
use limits::{CountDecision, CountRequest};
use std::collections::{HashMap, HashSet};
use store::{PushOutcome, PushRecord};

/// How long pushes wait when the counter backend is unreachable.
const COUNTER_RETRY: chrono::Duration = chrono::Duration::seconds(15);

/// The policy facts of a push's campaign the checks need.
#[derive(Debug, Clone)]
pub struct CampaignFacts {
    pub policy_id: String,
    pub category: String,
    pub throttle_per_second: Option<f64>,
    pub status: CampaignStatus,
    /// The policy is published and not past its `effective_to` ([`crate::lifecycle`]).
    pub policy_open: bool,
}

/// What the checks decided for a batch of claimed pushes.
#[derive(Debug, Default)]
pub struct Checked {
    /// May be sent now (counted against the cap).
    pub send: Vec<PushRecord>,
    /// End skipped, with the reason.
    pub skip: Vec<(String, SkipReason)>,
    /// The subject opted out of this channel (or the category, or everything) since the
    /// push was planned: the connector falls back to the next channel of the plan the
    /// subject still accepts, else the push ends skipped `opted_out`.
    pub refused: Vec<PushRecord>,
    /// Back to the queue (the counter was unreachable).
    pub defer: Vec<PushOutcome>,
}

/// Loads the campaign facts of the given pushes.
pub async fn campaign_facts(
    p: &Pipeline,
    pushes: &[PushRecord],
) -> anyhow::Result<HashMap<String, CampaignFacts>> {
    let mut out = HashMap::new();
    for r in pushes {
        if out.contains_key(&r.campaign_id) {
            continue;
        }
        let Some(c) = p.store.get_campaign(&r.campaign_id).await? else {
            continue;
        };
        let Some(policy) = p.store.get_policy(&c.policy_id).await? else {
            continue;
        };
        out.insert(
            r.campaign_id.clone(),
            CampaignFacts {
                policy_id: c.policy_id.clone(),
                category: policy.draft.category.clone(),
                throttle_per_second: c.draft.throttle_per_second.filter(|t| *t > 0.0),
                status: c.status,
                policy_open: crate::lifecycle::open(&policy, p.today()),
            },
        );
    }
    Ok(out)
}

/// Checks opt-outs, de-duplication and the frequency cap for claimed pushes of `channel`.
pub async fn check(
    p: &Pipeline,
    channel: Channel,
    claimed: Vec<PushRecord>,
    facts: &HashMap<String, CampaignFacts>,
) -> anyhow::Result<Checked> {
    let mut out = Checked::default();
    if claimed.is_empty() {
        return Ok(out);
    }
    let now = p.now();
    let subject_ids: Vec<String> = claimed
        .iter()
        .map(|r| r.subject_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut opt_outs: HashMap<String, Vec<store::OptOut>> = HashMap::new();
    for o in p.store.opt_outs_of(&subject_ids).await? {
        opt_outs.entry(o.subject_id.clone()).or_default().push(o);
    }
    // Subjects another campaign already sent the policy to, per (policy, campaign).
    let mut sent_elsewhere: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for r in claimed.iter().filter(|r| r.purpose == PushPurpose::Notice) {
        let Some(f) = facts.get(&r.campaign_id) else {
            continue;
        };
        let key = (f.policy_id.clone(), r.campaign_id.clone());
        if sent_elsewhere.contains_key(&key) {
            continue;
        }
        let ids: Vec<String> = claimed
            .iter()
            .filter(|x| x.campaign_id == r.campaign_id)
            .map(|x| x.subject_id.clone())
            .collect();
        let found = p
            .store
            .subjects_with_policy(&f.policy_id, &r.campaign_id, &ids, true)
            .await?;
        sent_elsewhere.insert(key, found.into_iter().collect());
    }
    let window_ms = i64::try_from(p.config.frequency_window.as_millis()).unwrap_or(i64::MAX);
    // Notices that pass the opt-out and de-duplication checks, counted in one batch.
    let mut to_count: Vec<(PushRecord, String, String)> = Vec::new();
    for r in claimed {
        let Some(f) = facts.get(&r.campaign_id) else {
            // The campaign is gone: nothing to check against; send as planned.
            out.send.push(r);
            continue;
        };
        if !f.policy_open {
            out.skip.push((r.id.clone(), SkipReason::PolicyEnded));
            continue;
        }
        let refused = opt_outs
            .get(&r.subject_id)
            .is_some_and(|os| os.iter().any(|o| o.forbids(channel, &f.category)));
        if refused {
            out.refused.push(r);
            continue;
        }
        if r.purpose != PushPurpose::Notice {
            out.send.push(r);
            continue;
        }
        if sent_elsewhere
            .get(&(f.policy_id.clone(), r.campaign_id.clone()))
            .is_some_and(|s| s.contains(&r.subject_id))
        {
            out.skip.push((r.id.clone(), SkipReason::Duplicate));
            continue;
        }
        // The counter's key: the subject's keyed pseudonym, so no ID number (nor a digest
        // anyone could compute from one) reaches the limits backend.
        let key = p.pseudonyms.subject(&r.subject_id);
        to_count.push((r, key, f.policy_id.clone()));
    }
    if to_count.is_empty() {
        return Ok(out);
    }
    let requests: Vec<CountRequest<'_>> = to_count
        .iter()
        .map(|(r, key, policy_id)| CountRequest {
            subject: key,
            token: &r.id,
            dedupe: Some(policy_id),
            now_ms: now.timestamp_millis(),
            window_ms,
            max: p.config.frequency_cap,
        })
        .collect();
    let decisions = match p.counter.try_count_many(&requests).await {
        // The shared counter lost its keys (Redis restarted empty): rebuilt from the
        // store before anything is counted, so no subject goes past its cap.
        Err(limits::LimitsError::Unseeded) => match rebuild_counter(p).await {
            Ok(()) => p.counter.try_count_many(&requests).await,
            Err(e) => Err(limits::LimitsError::Refresh(format!("{e:#}"))),
        },
        other => other,
    };
    drop(requests);
    match decisions {
        Ok(decisions) => {
            for ((r, _, _), decision) in to_count.into_iter().zip(decisions) {
                match decision {
                    CountDecision::Counted => out.send.push(r),
                    CountDecision::Capped { .. } => {
                        out.skip.push((r.id.clone(), SkipReason::Capped))
                    }
                    CountDecision::Duplicate => {
                        out.skip.push((r.id.clone(), SkipReason::Duplicate))
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(pushes = to_count.len(), error = %e, "frequency counter unreachable; the pushes wait");
            for (r, _, _) in to_count {
                out.defer.push(PushOutcome::Defer {
                    push_id: r.id.clone(),
                    at: now + COUNTER_RETRY,
                    reason: "frequency counter unreachable; waiting".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Counts again, in an in-memory counter after a restart, the notices sent within the
/// cap's window (from the store), so a restart never lets a subject past the cap or get a
/// policy twice. Only for a process that runs every connector (the embedded default); a
/// shared counter (Redis) outlives connector restarts. Returns the sends counted.
pub async fn seed_counter(p: &Pipeline) -> anyhow::Result<usize> {
    let now = p.now();
    let window =
        chrono::Duration::from_std(p.config.frequency_window).unwrap_or(chrono::Duration::days(7));
    let window_ms = window.num_milliseconds();
    let sends = p.store.recent_notice_sends(now - window).await?;
    for chunk in sends.chunks(SEED_CHUNK) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|s| p.pseudonyms.subject(&s.subject_id))
            .collect();
        let requests: Vec<CountRequest<'_>> = chunk
            .iter()
            .zip(&keys)
            .map(|(s, key)| CountRequest {
                subject: key,
                token: &s.push_id,
                dedupe: Some(&s.policy_id),
                now_ms: s.at.timestamp_millis(),
                window_ms,
                // Already sent: count it whatever the cap says.
                max: 0,
            })
            .collect();
        p.counter.seed_many(&requests).await?;
    }
    Ok(sends.len())
}

/// Sends counted again per round trip when the counter is rebuilt.
const SEED_CHUNK: usize = 1_000;

/// Rebuilds a shared counter that lost its keys from the store's recent sends, then
/// marks it seeded. Connectors that find it at once all rebuild it: counting a send
/// twice under its push id changes nothing.
pub async fn rebuild_counter(p: &Pipeline) -> anyhow::Result<()> {
    let n = seed_counter(p).await?;
    p.counter.mark_seeded().await?;
    tracing::warn!(
        sends = n,
        "the frequency counter had lost its keys (Redis restarted empty?); rebuilt from the store"
    );
    telemetry::metrics()
        .backend_errors
        .with_label_values(&["connector", "redis_reset"])
        .inc();
    Ok(())
}

/// Gives back the count of a notice push that was not sent after all (refused by the
/// provider, or put back to wait), so it neither uses up the subject's cap nor holds the
/// policy against a later campaign.
pub async fn release(p: &Pipeline, r: &PushRecord, facts: &HashMap<String, CampaignFacts>) {
    if r.purpose != PushPurpose::Notice {
        return;
    }
    let dedupe = facts.get(&r.campaign_id).map(|f| f.policy_id.as_str());
    if let Err(e) = p
        .counter
        .release(&p.pseudonyms.subject(&r.subject_id), &r.id, dedupe)
        .await
    {
        tracing::warn!(push = %r.id, error = %e, "cannot give back a frequency count");
    }
}
