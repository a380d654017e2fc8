//! The connector worker of one channel: takes push tasks from the bus, claims their rows,
//! sends them through the channel's provider, records each outcome, then acknowledges the
//! tasks. Unreachable subjects fall back to the next channel of the campaign's plan;
//! transient failures go back to the queue on the channel's retry schedule.

use crate::planner::{recipient, CampaignPlan};
use crate::retry::schedule_for;
use crate::Pipeline;
use bus::topics::PushTask;
use bus::Subscription;
use chrono::Utc;
use connectors::{OutgoingMessage, SendOutcome};
use domain::Channel;
use std::collections::HashSet;
use store::{PushOutcome, PushRecord};
use tokio_util::sync::CancellationToken;

const TASKS_PER_BATCH: usize = 500;

/// What one delivery step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepStats {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    pub requeued: usize,
    /// Ended skipped at send time (opted out, duplicate, capped).
    pub skipped: usize,
}

pub fn outgoing(r: &PushRecord, public_url: &str) -> OutgoingMessage {
    OutgoingMessage {
        push_id: r.id.clone(),
        campaign_id: r.campaign_id.clone(),
        subject_id: r.subject_id.clone(),
        to: r.recipient.clone(),
        content: r.content.clone(),
        link: format!("{}/l/{}", public_url.trim_end_matches('/'), r.link_code),
    }
}

/// Claims and sends the named pushes (those another worker already took are skipped).
pub async fn deliver(
    p: &Pipeline,
    channel: Channel,
    push_ids: &[String],
) -> anyhow::Result<StepStats> {
    let claimed = p.store.claim_for_sending(push_ids, p.now()).await?;
    let mut stats = StepStats {
        claimed: claimed.len(),
        ..Default::default()
    };
    if claimed.is_empty() {
        return Ok(stats);
    }
    let (claimed, mut deferred) = split_by_window(p, channel, claimed);
    // Opt-outs, de-duplication and the frequency cap, at send time (see [`crate::guard`]).
    let facts = crate::guard::campaign_facts(p, &claimed).await?;
    let mut checked = crate::guard::check(p, channel, claimed, &facts).await?;
    for r in std::mem::take(&mut checked.refused) {
        match fallback(p, &r).await? {
            Some(next) => deferred.push(next),
            None => checked
                .skip
                .push((r.id.clone(), domain::push::SkipReason::OptedOut)),
        }
    }
    if !checked.skip.is_empty() {
        stats.skipped += p.store.skip_sending(&checked.skip, p.now()).await? as usize;
        for (_, reason) in &checked.skip {
            tracing::debug!(%channel, reason = reason.as_str(), "push skipped at send time");
        }
    }
    deferred.extend(checked.defer);
    let claimed = checked.send;
    if !deferred.is_empty() {
        stats.requeued += deferred.len();
        telemetry::metrics()
            .pushes
            .with_label_values(&[channel.as_str(), "deferred"])
            .inc_by(deferred.len() as u64);
        p.store.record_outcomes(&deferred, p.now()).await?;
    }
    let provider = p.providers.get(channel).clone();
    for chunk in claimed.chunks(provider.max_batch().max(1)) {
        let live = still_ours(p, chunk, &facts).await;
        let chunk = &live[..];
        if chunk.is_empty() {
            continue;
        }
        // Each campaign's own throttle (pushes per second), on top of the provider's rate.
        let mut per_campaign: Vec<(&str, u32, f64)> = Vec::new();
        for r in chunk {
            let Some(rate) = facts
                .get(&r.campaign_id)
                .and_then(|f| f.throttle_per_second)
            else {
                continue;
            };
            match per_campaign
                .iter_mut()
                .find(|(c, _, _)| *c == r.campaign_id)
            {
                Some(e) => e.1 += 1,
                None => per_campaign.push((&r.campaign_id, 1, rate)),
            }
        }
        for (campaign, n, rate) in per_campaign {
            p.limiter
                .acquire(&format!("campaign:{campaign}"), n, rate)
                .await;
        }
        p.limiter
            .acquire(
                &format!("provider:{channel}"),
                chunk.len() as u32,
                p.config.rate_per_second,
            )
            .await;
        let messages: Vec<OutgoingMessage> = chunk
            .iter()
            .map(|r| outgoing(r, &p.config.public_url))
            .collect();
        let metrics = telemetry::metrics();
        let timer = metrics
            .provider_latency
            .with_label_values(&[channel.as_str()])
            .start_timer();
        let results = provider.send(&messages).await;
        timer.observe_duration();
        let mut outcomes = Vec::with_capacity(chunk.len());
        for (record, result) in chunk.iter().zip(results) {
            let o = outcome(p, record, result).await;
            if matches!(o, PushOutcome::Failed { .. } | PushOutcome::Defer { .. }) {
                crate::guard::release(p, record, &facts).await;
            }
            let status = match &o {
                PushOutcome::Sent { .. } => {
                    stats.sent += 1;
                    "sent"
                }
                PushOutcome::Failed { .. } => {
                    stats.failed += 1;
                    metrics
                        .dead_letters
                        .with_label_values(&[channel.as_str()])
                        .inc();
                    "failed"
                }
                PushOutcome::Requeue { .. } => {
                    stats.requeued += 1;
                    metrics.retries.with_label_values(&[channel.as_str()]).inc();
                    "retry"
                }
                PushOutcome::Defer { .. } => {
                    stats.requeued += 1;
                    "deferred"
                }
            };
            metrics
                .pushes
                .with_label_values(&[channel.as_str(), status])
                .inc();
            outcomes.push(o);
        }
        p.store.record_outcomes(&outcomes, p.now()).await?;
        crate::events::outcomes_recorded(p, channel, chunk, &outcomes);
    }
    if stats.requeued > 0 {
        p.wake.notify_waiters();
    }
    Ok(stats)
}

/// The pushes of `chunk` whose claim this process still holds. With connector processes
/// side by side (a sending lease), a claim older than three quarters of the lease may be
/// settled by another process any moment (this one was paused: SIGSTOP, a long wait for
/// Redis or the rate limit), and the push sent by it: such pushes are not sent here (their
/// frequency count is given back) and stay `sending` for reconciliation.
async fn still_ours(
    p: &Pipeline,
    chunk: &[PushRecord],
    facts: &std::collections::HashMap<String, crate::guard::CampaignFacts>,
) -> Vec<PushRecord> {
    let Some(lease) = p.config.sending_lease else {
        return chunk.to_vec();
    };
    let now = p.now();
    let limit = chrono::Duration::from_std(lease * 3 / 4).unwrap_or(chrono::Duration::MAX);
    let (live, stale): (Vec<PushRecord>, Vec<PushRecord>) = chunk
        .iter()
        .cloned()
        .partition(|r| now - r.updated_at < limit);
    if !stale.is_empty() {
        tracing::warn!(
            pushes = stale.len(),
            "claims outlived the sending lease before they were sent; not sending them (reconciliation settles them)"
        );
        telemetry::metrics()
            .pushes
            .with_label_values(&[chunk[0].channel.as_str(), "stale_claim"])
            .inc_by(stale.len() as u64);
        for r in &stale {
            crate::guard::release(p, r, facts).await;
        }
    }
    live
}

/// Splits claimed pushes into those the channel may send now and deferrals to the
/// channel's next opening (its send window: the hotline calls only in staffed hours; SMS
/// and WeChat keep quiet hours at night). A push due outside waits; it is never dropped.
fn split_by_window(
    p: &Pipeline,
    channel: Channel,
    claimed: Vec<PushRecord>,
) -> (Vec<PushRecord>, Vec<PushOutcome>) {
    let now = p.now();
    let Some(at) = next_opening(p.config.window(channel), now) else {
        return (claimed, Vec::new());
    };
    let local = at.with_timezone(&chrono_tz::Asia::Shanghai).naive_local();
    let deferred = claimed
        .into_iter()
        .map(|r| PushOutcome::Defer {
            push_id: r.id,
            at,
            reason: if channel == Channel::Hotline {
                format!("outside hotline hours; calls from {local}")
            } else {
                format!("outside {channel} hours (quiet hours); sends from {local}")
            },
        })
        .collect();
    (Vec::new(), deferred)
}

/// `None` when `window` is open at `now` (Asia/Shanghai); otherwise its next opening.
pub fn next_opening(
    window: &domain::window::SendWindow,
    now: chrono::DateTime<Utc>,
) -> Option<chrono::DateTime<Utc>> {
    let tz = chrono_tz::Asia::Shanghai;
    let open = window.next_open(now.with_timezone(&tz).naive_local())?;
    Some(open.and_local_timezone(tz).earliest().map_or_else(
        || now + chrono::Duration::hours(1),
        |t| t.with_timezone(&Utc),
    ))
}

/// Maps a provider's answer for one push to what the store records.
async fn outcome(p: &Pipeline, r: &PushRecord, result: SendOutcome) -> PushOutcome {
    let push_id = r.id.clone();
    match result {
        SendOutcome::Accepted { provider_id } => PushOutcome::Sent {
            push_id,
            provider_id,
        },
        SendOutcome::Permanent { code, message }
            if connectors::classify::is_configuration_error(&code) =>
        {
            stop_campaign(p, r, &code, &message).await;
            PushOutcome::Defer {
                push_id,
                at: p.now(),
                reason: format!("campaign paused: {code}: {message}"),
            }
        }
        SendOutcome::Permanent { code, message } => PushOutcome::Failed {
            push_id,
            error: format!("{code}: {message}"),
        },
        SendOutcome::Transient {
            code,
            message,
            retry_after,
        } => {
            let now = p.now();
            let next = schedule_for(r.channel).next_attempt_scaled(
                r.attempts,
                r.created_at,
                now,
                retry_after,
                p.config.retry_scale,
            );
            match next {
                Some(at) => PushOutcome::Requeue {
                    push_id,
                    at,
                    error: format!("{code}: {message}"),
                    channel: None,
                    recipient: None,
                    content: None,
                },
                None => PushOutcome::Failed {
                    push_id,
                    error: format!("gave up after {} attempts: {code}: {message}", r.attempts),
                },
            }
        }
        SendOutcome::Unreachable { code, message } => {
            if connectors::classify::is_refusal(&code) {
                if let Err(e) = crate::followup::opt_out(
                    p,
                    &r.subject_id,
                    Some(r.channel),
                    "provider_blacklist",
                )
                .await
                {
                    tracing::error!(push = %r.id, error = %format!("{e:#}"), "cannot record an opt-out");
                }
            }
            unreachable(p, r, code, message).await
        }
    }
}

/// Falls back to the next channel of the plan, or fails when none is left.
async fn unreachable(p: &Pipeline, r: &PushRecord, code: String, message: String) -> PushOutcome {
    let push_id = r.id.clone();
    match fallback(p, r).await {
        // The provider's answer goes with the move (the push's record shows it).
        Ok(Some(mut next)) => {
            if let PushOutcome::Requeue { error, .. } = &mut next {
                *error = format!("{error}: {code}: {message}");
            }
            next
        }
        Ok(None) => PushOutcome::Failed {
            push_id,
            error: format!(
                "unreachable on every channel of the plan; last {}: {code}: {message}",
                r.channel
            ),
        },
        Err(e) => {
            tracing::error!(push = %r.id, error = %format!("{e:#}"), "fallback failed; retrying later");
            PushOutcome::Requeue {
                push_id,
                at: p.now() + chrono::Duration::seconds(30),
                error: format!("{code}: {message}"),
                channel: None,
                recipient: None,
                content: None,
            }
        }
    }
}

/// Pauses the push's campaign after a configuration error and leaves an alert in the audit
/// log; the operator fixes the provider setup and resumes.
async fn stop_campaign(p: &Pipeline, r: &PushRecord, code: &str, message: &str) {
    use domain::campaign::CampaignStatus;
    let paused = p
        .store
        .transition_campaign(
            &r.campaign_id,
            &[CampaignStatus::Running],
            CampaignStatus::Paused,
            store::CampaignChange::default(),
        )
        .await;
    if paused.is_ok() {
        tracing::error!(campaign = %r.campaign_id, channel = %r.channel, code, "provider refused our setup; campaign paused");
        let entry = store::AuditEntry {
            operator_id: "system".into(),
            action: "campaign.alert".into(),
            target: r.campaign_id.clone(),
            detail: serde_json::json!({"channel": r.channel, "code": code, "message": message, "effect": "campaign paused"}),
            at: p.now(),
        };
        if let Err(e) = p.store.audit(&entry).await {
            tracing::error!(error = %e, "cannot record the alert");
        }
    }
}

/// The same push re-addressed to the next channel of the plan that reaches the subject
/// and that the subject did not opt out of.
async fn fallback(p: &Pipeline, r: &PushRecord) -> anyhow::Result<Option<PushOutcome>> {
    let Some(campaign) = p.store.get_campaign(&r.campaign_id).await? else {
        return Ok(None);
    };
    let Some((subject, _tags)) = p.store.get_subject(&r.subject_id).await? else {
        return Ok(None);
    };
    let plan = CampaignPlan::load(p, campaign).await?;
    let Some(pos) = plan.checked.channels.iter().position(|c| *c == r.channel) else {
        return Ok(None);
    };
    let link = format!("{}/l/{}", plan.public_url, r.link_code);
    let opt_outs = p
        .store
        .opt_outs_of(std::slice::from_ref(&r.subject_id))
        .await?;
    for &channel in plan.checked.channels.iter().skip(pos + 1) {
        let Some(to) = recipient(channel, &subject) else {
            continue;
        };
        if opt_outs
            .iter()
            .any(|o| o.forbids(channel, &plan.policy.draft.category))
        {
            continue;
        }
        let why = crate::followup::why_of(&r.explanation);
        let Ok(content) = plan.render(channel, &subject, r.benefit, &why, &link) else {
            continue;
        };
        tracing::info!(push = %r.id, from = %r.channel, to = %channel, "falling back to the next channel");
        return Ok(Some(PushOutcome::Requeue {
            push_id: r.id.clone(),
            at: p.now(),
            error: format!("unreachable on {}", r.channel),
            channel: Some(channel),
            recipient: Some(to),
            content: Some(content),
        }));
    }
    Ok(None)
}

/// The worker loop: one bus batch at a time; tasks are acknowledged after their outcomes
/// are committed.
pub async fn run(
    p: Pipeline,
    channel: Channel,
    worker: usize,
    mut sub: Box<dyn Subscription>,
    shutdown: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            b = sub.next_batch(TASKS_PER_BATCH) => b,
        };
        let Some(batch) = batch else { return };
        let mut ids = Vec::with_capacity(batch.len());
        let mut seen = HashSet::new();
        for d in &batch {
            match PushTask::decode(&d.payload) {
                Ok(t) => {
                    if seen.insert(t.push_id.clone()) {
                        ids.push(t.push_id);
                    }
                }
                Err(e) => tracing::error!(%channel, error = %e, "dropping undecodable push task"),
            }
        }
        // A backend gone (the store, Redis) pauses the worker on this batch: its tasks are
        // not acknowledged until the step went through, so none is lost (a task
        // acknowledged unclaimed would leave its row `queued` and on the bus for good).
        let mut backoff = crate::backoff::Backoff::new(crate::backoff::connector_role(channel));
        loop {
            match deliver(&p, channel, &ids).await {
                Ok(s) => {
                    tracing::debug!(%channel, worker, claimed = s.claimed, sent = s.sent, failed = s.failed, requeued = s.requeued, "delivered");
                    break;
                }
                Err(e) if crate::backoff::backend_of(&e) != "other" => {
                    if !backoff.pause(&e, &shutdown).await {
                        return; // unacknowledged: the tasks come again after a restart
                    }
                }
                Err(e) => {
                    tracing::error!(%channel, worker, error = %format!("{e:#}"), "delivery step failed; rows stay for reconciliation");
                    break;
                }
            }
        }
        if let Err(e) = sub.ack(&batch).await {
            tracing::error!(%channel, error = %e, "ack failed");
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_night_push_waits_for_the_morning_in_shanghai() {
        let w = domain::window::SendWindow::daytime();
        // 2026-11-30 23:30 Shanghai = 15:30 UTC.
        let night = Utc.with_ymd_and_hms(2026, 11, 30, 15, 30, 0).unwrap();
        assert_eq!(
            next_opening(&w, night),
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()),
            "08:00 Shanghai is 00:00 UTC"
        );
        let noon = Utc.with_ymd_and_hms(2026, 11, 30, 4, 0, 0).unwrap();
        assert_eq!(next_opening(&w, noon), None);
    }
}
