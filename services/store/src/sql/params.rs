//! Policy parameters and the sweep's questions.

use super::{Backend, Get, SqlStore, Q};
use crate::params::{assemble, ParamRecord, ParamStore};
use crate::Result;
use async_trait::async_trait;
use domain::param::ParamValue;

/// Binds the name of a `WHERE name = $1` filter, if any.
fn by_name<'q, DB: Backend>(q: Q<'q, DB>, name: Option<&'q str>) -> Q<'q, DB> {
    match name {
        Some(n) => q.bind(n),
        None => q,
    }
}

impl<DB: Backend> SqlStore<DB> {
    async fn params_where(&self, name: Option<&str>) -> Result<Vec<ParamRecord>> {
        let filter = if name.is_some() {
            "WHERE name = $1"
        } else {
            ""
        };
        let heads_sql = format!(
            "SELECT name, description, unit, updated_at FROM policy_params {filter} ORDER BY name"
        );
        let mut heads = Vec::new();
        for r in by_name(Q::new(&heads_sql), name)
            .fetch_all(&self.pool)
            .await?
        {
            heads.push((
                r.col("name")?,
                r.col("description")?,
                r.col("unit")?,
                r.col("updated_at")?,
            ));
        }
        let values_sql = format!(
            "SELECT name, effective_from, value, legal_ref FROM policy_param_values {filter} \
             ORDER BY name, effective_from"
        );
        let mut values = Vec::new();
        for r in by_name(Q::new(&values_sql), name)
            .fetch_all(&self.pool)
            .await?
        {
            values.push((
                r.col("name")?,
                ParamValue {
                    effective_from: r.col("effective_from")?,
                    value: r.col("value")?,
                    legal_ref: r.col("legal_ref")?,
                },
            ));
        }
        Ok(assemble(heads, values))
    }
}

#[async_trait]
impl<DB: Backend> ParamStore for SqlStore<DB> {
    async fn put_param(&self, p: &ParamRecord) -> Result<()> {
        let mut tx = DB::begin(&self.pool).await?;
        Q::<DB>::new(
            "INSERT INTO policy_params (name, description, unit, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
             unit = excluded.unit, updated_at = excluded.updated_at",
        )
        .bind(&p.param.name)
        .bind(&p.param.description)
        .bind(&p.param.unit)
        .bind(p.updated_at)
        .execute(&mut tx)
        .await?;
        Q::<DB>::new("DELETE FROM policy_param_values WHERE name = $1")
            .bind(&p.param.name)
            .execute(&mut tx)
            .await?;
        for v in &p.param.values {
            Q::<DB>::new(
                "INSERT INTO policy_param_values (name, effective_from, value, legal_ref) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&p.param.name)
            .bind(v.effective_from)
            .bind(v.value)
            .bind(&v.legal_ref)
            .execute(&mut tx)
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
        Q::<DB>::new(
            "SELECT subject_id FROM pushes WHERE campaign_id = $1 AND purpose = 'notice' \
             UNION SELECT subject_id FROM campaign_skips WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .scalars(&self.pool)
        .await
    }
}
