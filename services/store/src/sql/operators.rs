//! Operators and their API tokens (stored as SHA-256 hashes), who created them, disabling
//! and token rotation; console sessions (stored as SHA-256 hashes of their ids).

use super::{parsed, Backend, Exec, Get, SqlStore, Q};
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

    async fn ping(&self) -> Result<()> {
        use sqlx::Connection;
        match self.pool.try_acquire() {
            Some(mut conn) => {
                Q::<DB>::new("SELECT 1")
                    .execute(Exec::Conn(&mut *conn))
                    .await?;
            }
            None => {
                let mut conn = DB::Connection::connect_with(&self.pool.connect_options()).await?;
                Q::<DB>::new("SELECT 1")
                    .execute(Exec::Conn(&mut conn))
                    .await?;
                let _ = conn.close().await;
            }
        }
        Ok(())
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
        let sql = format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators WHERE token_hash = $1 AND disabled_at IS NULL"
        );
        let row = Q::<DB>::new(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    async fn disable_operator(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut tx = DB::begin(&self.pool).await?;
        let done = Q::<DB>::new(
            "UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut tx)
        .await?;
        Q::<DB>::new(
            "UPDATE console_sessions SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn set_operator_token(&self, id: &str, token_hash: &str) -> Result<bool> {
        let done = Q::<DB>::new(
            "UPDATE operators SET token_hash = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done > 0)
    }

    async fn insert_session(
        &self,
        id_hash: &str,
        operator_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = DB::begin(&self.pool).await?;
        // Sessions long over are forgotten as new ones begin.
        Q::<DB>::new("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now - chrono::Duration::days(1))
            .execute(&mut tx)
            .await?;
        Q::<DB>::new(
            "INSERT INTO console_sessions (id_hash, operator_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(operator_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_operator(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OperatorRecord>> {
        let cols = OPERATOR_COLUMNS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM console_sessions s JOIN operators o ON o.id = s.operator_id
             WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
               AND o.disabled_at IS NULL"
        );
        let row = Q::<DB>::new(&sql)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    async fn revoke_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = Q::<DB>::new(
            "UPDATE console_sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id_hash)
        .execute(&self.pool)
        .await?;
        Ok(done > 0)
    }
}
