//! The outbox relay: moves committed `queued` push rows onto the bus topic of their
//! channel, keyed by subject so one subject's pushes stay in order. A row is marked as
//! being handed over when taken (so several relays never take the same row), and as on
//! the bus once the bus acknowledged it; a failed publish hands the rows back at once,
//! and rows a dead relay took but never confirmed go out again at the next relay start.
//! A duplicate task on the bus is harmless because a connector must claim the row
//! (`queued` → `sending`) before sending.

use crate::Pipeline;
use bus::topics::{push_topic, PushTask};
use chrono::Utc;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

const BATCH: u32 = 2_000;

/// Moves one batch; returns how many pushes went onto the bus.
pub async fn relay_once(p: &Pipeline) -> anyhow::Result<usize> {
    let rows = p.store.take_undispatched(Utc::now(), BATCH).await?;
    let n = rows.len();
    let mut by_channel: BTreeMap<&'static str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for r in &rows {
        let task = PushTask {
            push_id: r.id.clone(),
            campaign_id: r.campaign_id.clone(),
        };
        by_channel
            .entry(r.channel.as_str())
            .or_default()
            .push((r.subject_id.clone(), task.encode()));
    }
    let mut ids_by_channel: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for r in &rows {
        ids_by_channel
            .entry(r.channel.as_str())
            .or_default()
            .push(r.id.clone());
    }
    for (channel, messages) in by_channel {
        let ids = ids_by_channel.remove(channel).unwrap_or_default();
        match p.bus.publish(&push_topic(channel), messages).await {
            Ok(()) => {
                p.store.confirm_dispatched(&ids, true).await?;
            }
            Err(e) => {
                // Every channel not yet published goes back to the outbox too.
                let rest: Vec<String> = ids_by_channel.into_values().flatten().chain(ids).collect();
                p.store.confirm_dispatched(&rest, false).await?;
                return Err(e.into());
            }
        }
    }
    Ok(n)
}

pub async fn run(p: Pipeline, shutdown: CancellationToken) {
    loop {
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
