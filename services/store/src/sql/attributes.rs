//! The attribute catalogue (`attributes`).

use super::{Backend, Get, Json, SqlStore, Q};
use crate::{AttributeStore, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::attribute::AttributeDef;

fn def_from_row(r: &impl Get) -> Result<AttributeDef> {
    // The key column is the truth; the document carries the rest.
    let Json(mut d): Json<AttributeDef> = r.col("doc")?;
    d.name = r.col("name")?;
    Ok(d)
}

#[async_trait]
impl<DB: Backend> AttributeStore for SqlStore<DB> {
    async fn put_attribute(&self, d: &AttributeDef, at: DateTime<Utc>) -> Result<()> {
        Q::<DB>::new(
            "INSERT INTO attributes (name, doc, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
        )
        .bind(&d.name)
        .bind(Json(d))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_attributes(&self) -> Result<Vec<AttributeDef>> {
        let rows = Q::<DB>::new("SELECT name, doc FROM attributes ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(def_from_row).collect()
    }

    async fn get_attribute(&self, name: &str) -> Result<Option<AttributeDef>> {
        let row = Q::<DB>::new("SELECT name, doc FROM attributes WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(def_from_row).transpose()
    }

    async fn delete_attribute(&self, name: &str) -> Result<bool> {
        let done = Q::<DB>::new("DELETE FROM attributes WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done > 0)
    }
}
