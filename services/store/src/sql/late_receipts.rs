//! Receipts that overtook their send, kept durably (`late_receipts`) until the send is
//! recorded: [`apply_late`] runs in the transaction of `PushStore::record_outcomes` for
//! the provider ids it records, and in the sweep (`PushStore::sweep_late_receipts`),
//! which also deletes the expired ones. A kept receipt is deleted in the transaction that
//! applies it, so it applies once, whichever process records the send, restarts included.

use super::pushes::apply_receipt_chunk;
use super::{Backend, Get, SqlStore, Q};
use crate::{LateReceiptLimits, LateSweep, ReceiptUpdate, Result};
use chrono::{DateTime, Utc};

/// Columns of a kept receipt, as [`late_from_row`] reads them.
const LATE_COLUMNS: &str = "id, provider_id, push_id, delivered, error, retry_at";

fn late_from_row(r: &impl Get) -> Result<(i64, ReceiptUpdate)> {
    Ok((
        r.col("id")?,
        ReceiptUpdate {
            provider_id: Some(r.col("provider_id")?),
            push_id: r.col("push_id")?,
            delivered: r.col("delivered")?,
            error: r.col("error")?,
            retry_at: r.col("retry_at")?,
        },
    ))
}

/// Takes (deletes) the unexpired kept receipts whose push now waits for a receipt under
/// their provider id, among `provider_ids` when given, and applies them in `tx`, oldest
/// first; the receipts that changed a push.
pub(super) async fn apply_late<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    provider_ids: Option<&[String]>,
    now: DateTime<Utc>,
    events: &mut Vec<domain::push_event::PushEvent>,
) -> Result<u64> {
    let mut taken: Vec<(i64, ReceiptUpdate)> = Vec::new();
    let chunks: Vec<Option<&[String]>> = match provider_ids {
        Some(ids) => ids.chunks(DB::LIST_CHUNK).map(Some).collect(),
        None => vec![None],
    };
    for chunk in chunks {
        let among = match chunk {
            Some(c) => format!("AND l.provider_id {}", DB::in_list(2, c.len())),
            None => String::new(),
        };
        let sql = format!(
            "DELETE FROM late_receipts WHERE id IN (
               SELECT l.id FROM late_receipts l JOIN pushes p ON p.provider_id = l.provider_id
               WHERE p.status IN ('sending', 'sent') AND l.expires_at > $1 {among})
             RETURNING {LATE_COLUMNS}"
        );
        let mut q = Q::<DB>::new(&sql).bind(now);
        if let Some(c) = chunk {
            q = q.bind_list(c);
        }
        for row in q.fetch_all(&mut *tx).await? {
            taken.push(late_from_row(&row)?);
        }
    }
    taken.sort_by_key(|(id, _)| *id);
    let receipts: Vec<ReceiptUpdate> = taken.into_iter().map(|(_, r)| r).collect();
    let mut applied = 0;
    for chunk in receipts.chunks(DB::LIST_CHUNK / 2) {
        let matched = apply_receipt_chunk::<DB>(&mut *tx, chunk, now, events).await?;
        applied += matched.iter().filter(|m| **m).count() as u64;
    }
    Ok(applied)
}

impl<DB: Backend> SqlStore<DB> {
    pub(super) async fn keep_late(
        &self,
        receipts: &[ReceiptUpdate],
        now: DateTime<Utc>,
        limits: LateReceiptLimits,
    ) -> Result<u64> {
        let keep: Vec<&ReceiptUpdate> = receipts
            .iter()
            .filter(|r| r.provider_id.is_some())
            .collect();
        if keep.is_empty() {
            return Ok(0);
        }
        let mut tx = DB::begin(&self.pool).await?;
        for r in &keep {
            Q::<DB>::new(
                "INSERT INTO late_receipts (provider_id, push_id, delivered, error, retry_at, received_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&r.provider_id)
            .bind(&r.push_id)
            .bind(r.delivered)
            .bind(&r.error)
            .bind(r.retry_at)
            .bind(now)
            .bind(now + limits.ttl)
            .execute(&mut tx)
            .await?;
        }
        // The bound: the oldest beyond `capacity` go.
        let dropped = Q::<DB>::new(
            "DELETE FROM late_receipts WHERE id <= (
               SELECT id FROM late_receipts ORDER BY id DESC LIMIT 1 OFFSET $1)",
        )
        .bind(limits.capacity)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        if dropped > 0 {
            tracing::warn!(
                receipts = dropped,
                "late receipts over their bound; dropped the oldest (the settling job asks the provider)"
            );
        }
        Ok(keep.len() as u64)
    }

    pub(super) async fn sweep_late(&self, now: DateTime<Utc>) -> Result<LateSweep> {
        // Nothing kept (the common case): no write transaction.
        let kept: i64 = Q::<DB>::new("SELECT COUNT(*) FROM late_receipts")
            .scalar(&self.pool)
            .await?;
        if kept == 0 {
            return Ok(LateSweep::default());
        }
        let mut tx = DB::begin(&self.pool).await?;
        let expired = Q::<DB>::new("DELETE FROM late_receipts WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut tx)
            .await?;
        let mut events = Vec::new();
        let applied = apply_late::<DB>(&mut tx, None, now, &mut events).await?;
        let waiting: i64 = Q::<DB>::new("SELECT COUNT(*) FROM late_receipts")
            .scalar(&mut tx)
            .await?;
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(LateSweep {
            applied,
            expired,
            waiting,
        })
    }
}
