//! Operators and their API tokens (stored as SHA-256 hashes).

use super::{corrupt, PgStore};
use crate::{OperatorRecord, OperatorStore, Result};
use async_trait::async_trait;
use domain::operator::Role;
use sqlx::Row;

#[async_trait]
impl OperatorStore for PgStore {
    async fn count_operators(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn insert_operator(&self, op: &OperatorRecord, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO operators (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&op.id)
        .bind(&op.name)
        .bind(op.role.as_str())
        .bind(token_hash)
        .bind(op.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn operator_by_token_hash(&self, token_hash: &str) -> Result<Option<OperatorRecord>> {
        let row =
            sqlx::query("SELECT id, name, role, created_at FROM operators WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let role: String = r.get("role");
            Ok(OperatorRecord {
                id: r.get("id"),
                name: r.get("name"),
                role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
                created_at: r.get("created_at"),
            })
        })
        .transpose()
    }
}
