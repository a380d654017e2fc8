//! Policy parameters and the sweep's questions.

use super::{corrupt, parse_ts, ts, SqliteStore};
use crate::params::{assemble, ParamRecord, ParamStore};
use crate::Result;
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::param::ParamValue;
use sqlx::Row;

impl SqliteStore {
    async fn params_where(&self, name: Option<&str>) -> Result<Vec<ParamRecord>> {
        let filter = if name.is_some() { "WHERE name = ?" } else { "" };
        let heads_sql = format!(
            "SELECT name, description, unit, updated_at FROM policy_params {filter} ORDER BY name"
        );
        let mut q = sqlx::query(&heads_sql);
        if let Some(n) = name {
            q = q.bind(n);
        }
        let mut heads = Vec::new();
        for r in q.fetch_all(self.pool()).await? {
            heads.push((
                r.get("name"),
                r.get("description"),
                r.get("unit"),
                parse_ts(r.get("updated_at"))?,
            ));
        }
        let values_sql = format!(
            "SELECT name, effective_from, value, legal_ref FROM policy_param_values {filter} \
             ORDER BY name, effective_from"
        );
        let mut q = sqlx::query(&values_sql);
        if let Some(n) = name {
            q = q.bind(n);
        }
        let mut values = Vec::new();
        for r in q.fetch_all(self.pool()).await? {
            let from: String = r.get("effective_from");
            let effective_from = NaiveDate::parse_from_str(&from, "%Y-%m-%d")
                .map_err(|e| corrupt("parameter effective_from", e))?;
            values.push((
                r.get("name"),
                ParamValue {
                    effective_from,
                    value: r.get("value"),
                    legal_ref: r.get("legal_ref"),
                },
            ));
        }
        Ok(assemble(heads, values))
    }
}

#[async_trait]
impl ParamStore for SqliteStore {
    async fn put_param(&self, p: &ParamRecord) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO policy_params (name, description, unit, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
             unit = excluded.unit, updated_at = excluded.updated_at",
        )
        .bind(&p.param.name)
        .bind(&p.param.description)
        .bind(&p.param.unit)
        .bind(ts(p.updated_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM policy_param_values WHERE name = ?")
            .bind(&p.param.name)
            .execute(&mut *tx)
            .await?;
        for v in &p.param.values {
            sqlx::query(
                "INSERT INTO policy_param_values (name, effective_from, value, legal_ref) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&p.param.name)
            .bind(v.effective_from.format("%Y-%m-%d").to_string())
            .bind(v.value)
            .bind(&v.legal_ref)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_param(&self, name: &str) -> Result<Option<ParamRecord>> {
        Ok(self.params_where(Some(name)).await?.into_iter().next())
    }

    async fn list_params(&self) -> Result<Vec<ParamRecord>> {
        self.params_where(None).await
    }

    async fn campaign_subjects(&self, campaign_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT subject_id FROM pushes WHERE campaign_id = ? AND purpose = 'notice' \
             UNION SELECT subject_id FROM campaign_skips WHERE campaign_id = ?",
        )
        .bind(campaign_id)
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }
}
