//! The registry of provider templates (`provider_templates`).

use super::{parsed, Backend, Get, Json, SqlStore, Q};
use crate::{ProviderTemplateStore, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::provider_template::{Provider, ProviderTemplate};

fn template_from_row(r: &impl Get) -> Result<ProviderTemplate> {
    // The key columns are the truth; the document carries the rest.
    let provider = parsed(r, "provider", "template provider", Provider::parse)?;
    let Json(mut t): Json<ProviderTemplate> = r.col("doc")?;
    t.provider = provider;
    t.code = r.col("code")?;
    Ok(t)
}

#[async_trait]
impl<DB: Backend> ProviderTemplateStore for SqlStore<DB> {
    async fn put_provider_template(&self, t: &ProviderTemplate, at: DateTime<Utc>) -> Result<()> {
        Q::<DB>::new(
            "INSERT INTO provider_templates (provider, code, channel, doc, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (provider, code) DO UPDATE SET channel = excluded.channel,
               doc = excluded.doc, updated_at = excluded.updated_at",
        )
        .bind(t.provider.as_str())
        .bind(&t.code)
        .bind(t.channel().as_str())
        .bind(Json(t))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_provider_templates(&self) -> Result<Vec<ProviderTemplate>> {
        let rows = Q::<DB>::new(
            "SELECT provider, code, doc FROM provider_templates ORDER BY provider, code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    async fn get_provider_template(
        &self,
        provider: Provider,
        code: &str,
    ) -> Result<Option<ProviderTemplate>> {
        let row = Q::<DB>::new(
            "SELECT provider, code, doc FROM provider_templates WHERE provider = $1 AND code = $2",
        )
        .bind(provider.as_str())
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn delete_provider_template(&self, provider: Provider, code: &str) -> Result<bool> {
        let done = Q::<DB>::new("DELETE FROM provider_templates WHERE provider = $1 AND code = $2")
            .bind(provider.as_str())
            .bind(code)
            .execute(&self.pool)
            .await?;
        Ok(done > 0)
    }
}
