//! The append-only audit log of operator actions.

use super::{Backend, Get, Json, SqlStore, Q};
use crate::{AuditEntry, AuditStore, Result};
use async_trait::async_trait;

#[async_trait]
impl<DB: Backend> AuditStore for SqlStore<DB> {
    async fn audit(&self, e: &AuditEntry) -> Result<()> {
        Q::<DB>::new(
            "INSERT INTO audit_log (operator_id, action, target, detail, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&e.operator_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(Json(&e.detail))
        .bind(e.at)
        .execute(&self.pool)
        .await?;
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
        rows.iter()
            .map(|r| {
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
            })
            .collect()
    }
}
