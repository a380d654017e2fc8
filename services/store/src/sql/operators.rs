//! Operators and their API tokens (stored as SHA-256 hashes).

use super::{parsed, Backend, Get, SqlStore, Q};
use crate::{OperatorRecord, OperatorStore, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::operator::Role;

pub(super) const OPERATOR_COLUMNS: &str = "id, name, role, created_at, created_by, disabled_at";

pub(super) fn operator_from_row(r: &impl Get) -> Result<OperatorRecord> {
    Ok(OperatorRecord {
        id: r.col("id")?,
        name: r.col("name")?,
        role: parsed(r, "role", "role", Role::parse)?,
        created_at: r.col("created_at")?,
        created_by: r.col("created_by")?,
        disabled_at: r.col("disabled_at")?,
    })
}

#[async_trait]
impl<DB: Backend> OperatorStore for SqlStore<DB> {
    async fn count_operators(&self) -> Result<i64> {
        Q::<DB>::new("SELECT COUNT(*) FROM operators")
            .scalar(&self.pool)
            .await
    }

    async fn insert_operator(&self, op: &OperatorRecord, token_hash: &str) -> Result<()> {
        Q::<DB>::new(
            "INSERT INTO operators (id, name, role, token_hash, created_at, created_by, disabled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&op.id)
        .bind(&op.name)
        .bind(op.role.as_str())
        .bind(token_hash)
        .bind(op.created_at)
        .bind(&op.created_by)
        .bind(op.disabled_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn operator_by_token_hash(&self, token_hash: &str) -> Result<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE token_hash = $1");
        let row = Q::<DB>::new(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    }
}
