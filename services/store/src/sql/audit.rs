//! The append-only audit log of operator actions, hash-chained: each entry carries its
//! place, the hash of the entry before it and its own (`sql::chains` checks them).

use super::events::{audit_hash, stored_time};
use super::{corrupt, Backend, Get, Json, SqlStore, Q};
use crate::{AuditEntry, AuditStore, Result};
use async_trait::async_trait;

#[async_trait]
impl<DB: Backend> AuditStore for SqlStore<DB> {
    async fn audit(&self, e: &AuditEntry) -> Result<()> {
        // One chain: the head row's lock orders the writers (operator actions are few).
        let mut e = e.clone();
        e.at = stored_time(e.at);
        let mut tx = DB::begin(&self.pool).await?;
        let head = Q::<DB>::new(
            "UPDATE chain_heads SET seq = seq + 1 WHERE chain = 'audit' RETURNING seq, hash",
        )
        .fetch_optional(&mut tx)
        .await?
        .ok_or_else(|| corrupt("chain_heads", "no audit head"))?;
        let (seq, prev): (i64, String) = (head.col("seq")?, head.col("hash")?);
        let hash = audit_hash(&prev, seq, &e);
        Q::<DB>::new(
            "INSERT INTO audit_log (operator_id, action, target, detail, at, seq, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&e.operator_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(Json(&e.detail))
        .bind(e.at)
        .bind(seq)
        .bind(prev)
        .bind(hash.clone())
        .execute(&mut tx)
        .await?;
        Q::<DB>::new("UPDATE chain_heads SET hash = $1 WHERE chain = 'audit'")
            .bind(hash)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, after_id: i64, limit: u32) -> Result<Vec<(i64, AuditEntry)>> {
        let rows = Q::<DB>::new(
            "SELECT id, operator_id, action, target, detail, at FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn audit_of_target(&self, target: &str, limit: u32) -> Result<Vec<(i64, AuditEntry)>> {
        let rows = Q::<DB>::new(
            "SELECT id, operator_id, action, target, detail, at FROM audit_log WHERE target = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(target)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }
}

fn entry_from_row(r: &impl Get) -> Result<(i64, AuditEntry)> {
    let Json(detail) = r.col("detail")?;
    Ok((
        r.col("id")?,
        AuditEntry {
            operator_id: r.col("operator_id")?,
            action: r.col("action")?,
            target: r.col("target")?,
            detail,
            at: r.col("at")?,
        },
    ))
}
