//! The append-only audit log of operator actions.

use super::PgStore;
use crate::{AuditEntry, AuditStore, Result};
use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::Row;

#[async_trait]
impl AuditStore for PgStore {
    async fn audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
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
        let rows = sqlx::query(
            "SELECT id, operator_id, action, target, detail, at FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let Json(detail): Json<serde_json::Value> = r.get("detail");
                (
                    r.get("id"),
                    AuditEntry {
                        operator_id: r.get("operator_id"),
                        action: r.get("action"),
                        target: r.get("target"),
                        detail,
                        at: r.get("at"),
                    },
                )
            })
            .collect())
    }
}
