//! Policy parameters and the sweep's questions.

use super::PgStore;
use crate::params::{assemble, ParamRecord, ParamStore};
use crate::Result;
use async_trait::async_trait;
use domain::param::ParamValue;
use sqlx::Row;

impl PgStore {
    async fn params_where(&self, name: Option<&str>) -> Result<Vec<ParamRecord>> {
        let filter = if name.is_some() {
            "WHERE name = $1"
        } else {
            ""
        };
        let heads_sql = format!(
            "SELECT name, description, unit, updated_at FROM policy_params {filter} ORDER BY name"
        );
        let mut q = sqlx::query(&heads_sql);
        if let Some(n) = name {
            q = q.bind(n);
        }
        let heads = q
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                (
                    r.get("name"),
                    r.get("description"),
                    r.get("unit"),
                    r.get("updated_at"),
                )
            })
            .collect();
        let values_sql = format!(
            "SELECT name, effective_from, value, legal_ref FROM policy_param_values {filter} \
             ORDER BY name, effective_from"
        );
        let mut q = sqlx::query(&values_sql);
        if let Some(n) = name {
            q = q.bind(n);
        }
        let values = q
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                (
                    r.get("name"),
                    ParamValue {
                        effective_from: r.get("effective_from"),
                        value: r.get("value"),
                        legal_ref: r.get("legal_ref"),
                    },
                )
            })
            .collect();
        Ok(assemble(heads, values))
    }
}

#[async_trait]
impl ParamStore for PgStore {
    async fn put_param(&self, p: &ParamRecord) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO policy_params (name, description, unit, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
             unit = excluded.unit, updated_at = excluded.updated_at",
        )
        .bind(&p.param.name)
        .bind(&p.param.description)
        .bind(&p.param.unit)
        .bind(p.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM policy_param_values WHERE name = $1")
            .bind(&p.param.name)
            .execute(&mut *tx)
            .await?;
        for v in &p.param.values {
            sqlx::query(
                "INSERT INTO policy_param_values (name, effective_from, value, legal_ref) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&p.param.name)
            .bind(v.effective_from)
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
            "SELECT subject_id FROM pushes WHERE campaign_id = $1 AND purpose = 'notice' \
             UNION SELECT subject_id FROM campaign_skips WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }
}
