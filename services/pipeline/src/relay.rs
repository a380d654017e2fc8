//! The outbox relay: moves committed `queued` push rows onto the bus topic of their
//! channel (`push.<channel>`, or `push.<channel>.retry` for a push tried again), keyed by
//! a digest of the subject id so one subject's pushes stay in order. A row is marked as
//! being handed over when taken (so several relays never take the same row), and as on
//! the bus once the bus acknowledged it; a failed publish hands the rows back at once,
//! and rows a dead relay took but never confirmed go out again at the next relay start.
//! A duplicate task on the bus is harmless because a connector must claim the row
//! (`queued` → `sending`) before sending.

use crate::Pipeline;
use bus::topics::{push_topic, retry_topic, PushTask};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

const BATCH: u32 = 2_000;

/// Moves one batch; returns how many pushes went onto the bus.
/// The keyed messages of one topic and the push ids they carry.
type TopicBatch = (Vec<(String, Vec<u8>)>, Vec<String>);

pub async fn relay_once(p: &Pipeline) -> anyhow::Result<usize> {
    let rows = p.store.take_undispatched(p.now(), BATCH).await?;
    let n = rows.len();
    // By topic: first sends on `push.<channel>`, pushes tried again on the retry topic.
    let mut by_topic: BTreeMap<String, TopicBatch> = BTreeMap::new();
    for r in &rows {
        let task = PushTask {
            push_id: r.id.clone(),
            campaign_id: r.campaign_id.clone(),
        };
        let topic = if r.attempts > 0 {
            retry_topic(r.channel.as_str())
        } else {
            push_topic(r.channel.as_str())
        };
        let (messages, ids) = by_topic.entry(topic).or_default();
        messages.push((crate::events::subject_key(&r.subject_id), task.encode()));
        ids.push(r.id.clone());
    }
    while let Some((topic, (messages, ids))) = by_topic.pop_first() {
        let count = messages.len() as u64;
        match p.bus.publish(&topic, messages).await {
            Ok(()) => {
                telemetry::metrics()
                    .bus_messages
                    .with_label_values(&[topic.as_str(), "published"])
                    .inc_by(count);
                p.store.confirm_dispatched(&ids, true).await?;
            }
            Err(e) => {
                // Every topic not yet published goes back to the outbox too.
                let rest: Vec<String> = by_topic
                    .into_values()
                    .flat_map(|(_, ids)| ids)
                    .chain(ids)
                    .collect();
                p.store.confirm_dispatched(&rest, false).await?;
                return Err(e.into());
            }
        }
    }
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
    loop {
        if sampled.is_none_or(|t| t.elapsed() >= DEPTH_SAMPLE) {
            sample_depth(&p).await;
            sampled = Some(std::time::Instant::now());
        }
        let moved = match relay_once(&p).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "relay failed; retrying");
                0
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
