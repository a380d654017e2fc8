//! Settles pushes a dead process left in `sending`: the provider is asked whether it has
//! the push (by our push id) before anything is sent again.
//!
//! - found: the push was sent; record it. When the provider's answer carried no provider id
//!   (Alibaba `QuerySendDetails` has no `BizId`, so a push of a `SendBatchSms` cannot be
//!   matched by its delivery report), its status is asked for at once
//!   ([`connectors::Provider::query_receipt`]) and applied if final; one still pending stays
//!   `sent` until a later status query settles it.
//! - not found: it never left; back to the queue.
//! - unknown (the provider has no lookup): WeChat de-duplicates a resend carrying the same
//!   `client_msg_id`, so it is re-queued; a voice call is never placed twice, so it is
//!   recorded as failed with the reason.
//!
//! Whose rows are they? With one connector process (the embedded default,
//! `PipelineConfig::sending_lease` = `None`) every row in `sending` at start is a dead
//! process's. With several connector processes side by side (`Some(lease)`) a row is only
//! settled once its claim is older than the lease, which is longer than any send takes:
//! a live process's fresh claims are never touched. [`run`] repeats this every quarter
//! lease, so a process that died mid-campaign is cleaned up without a restart.

use crate::delivery::outgoing;
use crate::Pipeline;
use connectors::Lookup;
use domain::Channel;
use std::time::Duration;
use store::PushOutcome;
use tokio_util::sync::CancellationToken;

pub async fn settle_sending(p: &Pipeline, channel: Channel) -> anyhow::Result<usize> {
    let claimed_before = match p.config.sending_lease {
        None => p.now(),
        Some(lease) => p.now() - chrono::Duration::from_std(lease)?,
    };
    let stuck: Vec<_> = p
        .store
        .pushes_in_sending(claimed_before, 1_000_000)
        .await?
        .into_iter()
        .filter(|r| r.channel == channel)
        .collect();
    if stuck.is_empty() {
        return Ok(0);
    }
    let provider = p.providers.get(channel).clone();
    let mut outcomes = Vec::with_capacity(stuck.len());
    let mut ask_status = Vec::new();
    for r in &stuck {
        let sent_on = r
            .updated_at
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive();
        let found = provider
            .lookup(&outgoing(r, &p.config.public_url), sent_on)
            .await;
        if matches!(&found, Lookup::Found { provider_id } if provider_id.is_empty()) {
            ask_status.push((r, sent_on));
        }
        outcomes.push(match (found, channel) {
            (Lookup::Found { provider_id }, _) => PushOutcome::Sent {
                push_id: r.id.clone(),
                provider_id,
            },
            (Lookup::NotFound, _)
            | (Lookup::Unknown, Channel::Wechat)
            | (Lookup::Unknown, Channel::Sms) => PushOutcome::Requeue {
                push_id: r.id.clone(),
                at: p.now(),
                error: "interrupted while sending; the provider does not have it".into(),
                channel: None,
                recipient: None,
                content: None,
            },
            (Lookup::Unknown, Channel::Hotline) => PushOutcome::Failed {
                push_id: r.id.clone(),
                error: "interrupted during the call; outcome unknown, not called again".into(),
            },
        });
    }
    p.store.record_outcomes(&outcomes, p.now()).await?;
    for (r, sent_on) in ask_status {
        let msg = outgoing(r, &p.config.public_url);
        let Ok(Some(receipt)) = provider.query_receipt(&msg, sent_on).await else {
            continue;
        };
        let update = store::ReceiptUpdate {
            provider_id: receipt.provider_id,
            push_id: Some(r.id.clone()),
            delivered: receipt.delivered,
            error: receipt.error,
            retry_at: None,
        };
        p.store.apply_receipt(&update, p.now()).await?;
    }
    tracing::info!(%channel, pushes = stuck.len(), "settled pushes left in sending");
    Ok(stuck.len())
}

/// Settles expired claims of `channel` every quarter `lease` until shutdown.
pub async fn run(p: Pipeline, channel: Channel, lease: Duration, shutdown: CancellationToken) {
    let every = (lease / 4).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = settle_sending(&p, channel).await {
            tracing::error!(%channel, error = %format!("{e:#}"), "reconciliation failed; retrying");
        }
    }
}
