//! Settles pushes the provider accepted but whose delivery receipt never arrived (the
//! callback was lost: the provider gave up on it, or the process died between queueing it
//! and writing it), so that no push stays `sent` for good.
//!
//! Every round (a quarter of the receipt deadline, at most a minute) for one channel:
//!
//! 1. Receipts the provider holds for pulling ([`connectors::Provider::pull_receipts`],
//!    Tencent `PullSmsSendStatus`) are pulled and applied; repeats of receipts the
//!    callbacks already applied change nothing. Pulled receipts that matched no push
//!    (their send not recorded yet) are tried once more the next round.
//! 2. Pushes of the channel `sent` longer than [`crate::PipelineConfig::receipt_deadline`]
//!    ago without a receipt, oldest first, are asked about one by one
//!    ([`connectors::Provider::query_receipt`], Alibaba `QuerySendDetails`; a few at
//!    once); a final status is applied as its receipt would have been.
//! 3. A push still without a final status
//!    [`crate::PipelineConfig::receipt_give_up`] after it was sent (providers keep
//!    receipts about three days) is failed with [`NO_RECEIPT`]. On a provider without a
//!    per-push query (WeChat, voice, Tencent) this is the only way such a push settles.
//!
//! Everything is written with [`store::PushStore::apply_receipts`], so a receipt arriving
//! by callback at the same moment is applied once. Connector processes side by side each
//! run this for their channel; they only repeat each other's questions.

use crate::delivery::outgoing;
use crate::Pipeline;
use chrono::{DateTime, Utc};
use connectors::{PullError, Receipt};
use domain::Channel;
use futures::stream::{self, StreamExt};
use std::time::Duration;
use store::{PushRecord, ReceiptUpdate};
use tokio_util::sync::CancellationToken;

/// The error of a push failed because no receipt ever came.
pub const NO_RECEIPT: &str = "no receipt from provider";
/// Pushes read per page.
const PAGE: u32 = 500;
/// Status queries to the provider at once.
const QUERIES_IN_FLIGHT: usize = 8;
/// Receipts pulled per round, at most.
const PULL_LIMIT: usize = 20_000;

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Pulled receipts that changed a push.
    pub pulled: usize,
    /// Pushes whose final status was asked of the provider.
    pub asked: usize,
    /// Pushes failed for want of a receipt.
    pub given_up: usize,
}

/// One round for `channel`; `carry` holds pulled receipts that matched nothing, tried
/// again in the next round.
pub async fn settle_channel(
    p: &Pipeline,
    channel: Channel,
    carry: &mut Vec<ReceiptUpdate>,
) -> anyhow::Result<Settled> {
    let now = p.now();
    let deadline = now - chrono::Duration::from_std(p.config.receipt_deadline)?;
    let give_up = now - chrono::Duration::from_std(p.config.receipt_give_up)?;
    let provider = p.providers.get(channel).clone();
    let mut done = Settled::default();

    // 1. Pulled receipts.
    let mut pulled: Vec<ReceiptUpdate> = std::mem::take(carry);
    let fresh_from = pulled.len();
    match provider.pull_receipts(PULL_LIMIT).await {
        Ok(receipts) => pulled.extend(receipts.into_iter().map(final_update)),
        Err(PullError::Unsupported) => {}
        Err(PullError::Failed(o)) => {
            tracing::warn!(%channel, code = ?o.code(), "cannot pull receipts; trying again next round")
        }
    }
    if !pulled.is_empty() {
        let matched = p.store.apply_receipts(&pulled, p.now()).await?;
        done.pulled = matched.iter().filter(|m| **m).count();
        *carry = pulled
            .into_iter()
            .zip(matched)
            .skip(fresh_from)
            .filter(|(r, m)| !m && r.provider_id.is_some())
            .map(|(r, _)| r)
            .collect();
    }

    // 2 and 3. Pushes past the deadline, oldest first.
    let mut cutoff = deadline;
    let mut ask = true;
    let mut after: Option<(DateTime<Utc>, String)> = None;
    loop {
        let page = p
            .store
            .sent_without_receipt(channel, cutoff, after.clone(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.id.clone()));
        let mut updates = Vec::new();
        let mut answers = Vec::new();
        if ask {
            // Futures built first (not in a stream closure) so the task's future is Send.
            let asks: Vec<_> = page.iter().map(|r| ask_provider(p, &provider, r)).collect();
            answers = stream::iter(asks)
                .buffered(QUERIES_IN_FLIGHT)
                .collect()
                .await;
        }
        for (i, r) in page.iter().enumerate() {
            match answers.get(i) {
                Some(Ok(Some(receipt))) => {
                    updates.push(ReceiptUpdate {
                        push_id: Some(r.id.clone()),
                        provider_id: r.provider_id.clone(),
                        ..final_update(receipt.clone())
                    });
                    done.asked += 1;
                    continue;
                }
                Some(Err(PullError::Unsupported)) if ask => {
                    // No per-push query: only pushes past the give-up deadline remain.
                    ask = false;
                    cutoff = cutoff.min(give_up);
                }
                Some(Err(PullError::Failed(o))) => {
                    tracing::warn!(%channel, push_id = %r.id, code = ?o.code(), "cannot ask the provider for a receipt");
                }
                _ => {}
            }
            if r.updated_at <= give_up {
                updates.push(ReceiptUpdate {
                    provider_id: None,
                    push_id: Some(r.id.clone()),
                    delivered: false,
                    error: Some(format!(
                        "{NO_RECEIPT} within {} h of sending",
                        p.config.receipt_give_up.as_secs() / 3600
                    )),
                    retry_at: None,
                });
                done.given_up += 1;
            }
        }
        if !updates.is_empty() {
            p.store.apply_receipts(&updates, p.now()).await?;
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    let m = telemetry::metrics();
    m.receipts
        .with_label_values(&["settled"])
        .inc_by((done.pulled + done.asked) as u64);
    m.receipts
        .with_label_values(&["given_up"])
        .inc_by(done.given_up as u64);
    if done != Settled::default() {
        tracing::info!(%channel, pulled = done.pulled, asked = done.asked, given_up = done.given_up,
            "settled pushes whose receipt did not come");
    }
    Ok(done)
}

/// A provider's receipt as a final update (never a call-again: a push asked about has
/// waited past the deadline).
fn final_update(r: Receipt) -> ReceiptUpdate {
    ReceiptUpdate {
        provider_id: r.provider_id,
        push_id: r.push_id,
        delivered: r.delivered,
        error: r.error,
        retry_at: None,
    }
}

/// The push's final status at the provider, asked on the day (China Standard Time) it
/// was sent, and the day before when it was sent in the first minute of a day (the
/// provider took it before midnight).
async fn ask_provider(
    p: &Pipeline,
    provider: &std::sync::Arc<dyn connectors::Provider>,
    r: &PushRecord,
) -> Result<Option<Receipt>, PullError> {
    let msg = outgoing(r, &p.config.public_url);
    let local = r.updated_at.with_timezone(&chrono_tz::Asia::Shanghai);
    let day = local.date_naive();
    let found = provider.query_receipt(&msg, day).await?;
    let just_after_midnight =
        local.time() < chrono::NaiveTime::from_hms_opt(0, 1, 0).unwrap_or_default();
    match (found, day.pred_opt()) {
        (None, Some(before)) if just_after_midnight => provider.query_receipt(&msg, before).await,
        (found, _) => Ok(found),
    }
}

/// How often [`run`] settles: a quarter of the deadline, between 100 ms and a minute.
pub fn every(deadline: Duration) -> Duration {
    (deadline / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Settles `channel` every [`every`] until shutdown.
pub async fn run(p: Pipeline, channel: Channel, shutdown: CancellationToken) {
    let every = every(p.config.receipt_deadline);
    let mut carry = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = settle_channel(&p, channel, &mut carry).await {
            tracing::error!(%channel, error = %format!("{e:#}"), "settling receipts failed; retrying");
        }
    }
}
