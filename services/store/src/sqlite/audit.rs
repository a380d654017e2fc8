//! The append-only audit log of operator actions.

use super::{corrupt, parse_ts, ts, SqliteStore};
use crate::{AuditEntry, AuditStore, Result};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (operator_id, action, target, detail, at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&e.operator_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(e.detail.to_string())
        .bind(ts(e.at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(&self, after_id: i64, limit: u32) -> Result<Vec<(i64, AuditEntry)>> {
        let rows = sqlx::query(
            "SELECT id, operator_id, action, target, detail, at FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let detail: String = r.get("detail");
                Ok((
                    r.get("id"),
                    AuditEntry {
                        operator_id: r.get("operator_id"),
                        action: r.get("action"),
                        target: r.get("target"),
                        detail: serde_json::from_str(&detail)
                            .map_err(|e| corrupt("audit detail", e))?,
                        at: parse_ts(r.get("at"))?,
                    },
                ))
            })
            .collect()
    }
}
