//! The outbox relay: moves committed `queued` push rows onto the bus topic of their
//! channel (`push.<channel>`, or `push.<channel>.retry` for a push tried again), keyed by
//! a digest of the subject id so one subject's pushes stay in order. Rows are taken and
//! recorded as on the bus in one store transaction ([`store::PushStore::hand_over`]: a
//! running campaign's planned rows by moving its relay cursor, one write per batch; rows
//! put back one by one by marking each; what another relay holds is skipped),
//! committed once the bus acknowledged them; a failed
//! publish or a dead relay rolls it back, so the rows go out again. A duplicate task on
//! the bus is harmless because a connector must claim the row (`queued` → `sending`)
//! before sending.

use crate::Pipeline;
use bus::topics::{push_topic, retry_topic, PushTask};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

const BATCH: u32 = 2_000;

/// The keyed messages of one topic.
type TopicBatch = Vec<(String, Vec<u8>)>;

/// Moves one batch; returns how many pushes went onto the bus.
///
/// The rows are taken and recorded as on the bus in one store transaction, committed only
/// after the bus acknowledged every message (one cursor write for a campaign's planned
/// rows, one write per push for rows put back in the outbox). A failed publish (or a
/// relay that dies meanwhile) rolls the transaction back, so the rows go out again; the
/// messages that did reach the bus are then duplicates, which the claim absorbs. A
/// connector that gets a message before the commit waits for the row's lock.
pub async fn relay_once(p: &Pipeline) -> anyhow::Result<usize> {
    let handover = p.store.hand_over(p.now(), BATCH).await?;
    let rows = handover.pushes();
    let n = rows.len();
    if n == 0 {
        return Ok(0);
    }
    // By topic: first sends on `push.<channel>`, pushes tried again on the retry topic.
    let mut by_topic: BTreeMap<String, TopicBatch> = BTreeMap::new();
    for r in rows {
        let task = PushTask {
            push_id: r.id.clone(),
            campaign_id: r.campaign_id.clone(),
        };
        let topic = if r.attempts > 0 {
            retry_topic(r.channel.as_str())
        } else {
            push_topic(r.channel.as_str())
        };
        by_topic
            .entry(topic)
            .or_default()
            .push((p.pseudonyms.subject(&r.subject_id), task.encode()));
    }
    for (topic, messages) in by_topic {
        let count = messages.len() as u64;
        if let Err(e) = p.bus.publish(&topic, messages).await {
            handover.rollback().await?;
            return Err(e.into());
        }
        telemetry::metrics()
            .bus_messages
            .with_label_values(&[topic.as_str(), "published"])
            .inc_by(count);
    }
    handover.commit().await?;
    Ok(n)
}

/// How often the relay samples the outbox depth for `policy_push_outbox_depth`.
const DEPTH_SAMPLE: std::time::Duration = std::time::Duration::from_secs(5);

async fn sample_depth(p: &Pipeline) {
    match p.store.count_pushes(domain::push::PushStatus::Queued).await {
        Ok(n) => telemetry::metrics()
            .outbox_depth
            .with_label_values(&["queued"])
            .set(n),
        Err(e) => tracing::warn!(error = %e, "cannot sample the outbox depth"),
    }
}

pub async fn run(p: Pipeline, shutdown: CancellationToken) {
    let mut sampled: Option<std::time::Instant> = None;
    let mut backoff = crate::backoff::Backoff::new("relay");
    loop {
        if sampled.is_none_or(|t| t.elapsed() >= DEPTH_SAMPLE) {
            sample_depth(&p).await;
            sampled = Some(std::time::Instant::now());
        }
        let moved = match relay_once(&p).await {
            Ok(n) => {
                backoff.reset();
                n
            }
            Err(e) => {
                // The store or the bus is gone: the rows stay in the outbox (the hand-over
                // rolled back); pause and try again.
                if !backoff.pause(&e, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        if moved as u32 == BATCH {
            if shutdown.is_cancelled() {
                return;
            }
            continue; // more is waiting
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = p.wake.notified() => {}
            _ = tokio::time::sleep(p.config.poll_interval) => {}
        }
    }
}
