//! Tags, policies and campaigns.

use super::{corrupt, PgStore};
use crate::{
    CampaignChange, CampaignRecord, CatalogueStore, PolicyRecord, Result, StoreError, TagRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::campaign::{CampaignMode, CampaignStatus};
use domain::policy::PolicyStatus;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

fn tag_from_row(r: &PgRow) -> TagRecord {
    TagRecord {
        name: r.get("name"),
        description: r.get("description"),
        rule: r.get("rule"),
        updated_at: r.get("updated_at"),
    }
}

const POLICY_COLUMNS: &str = "id, status, doc, created_by, created_at, published_at";

fn policy_from_row(r: &PgRow) -> Result<PolicyRecord> {
    let status: String = r.get("status");
    let Json(doc): Json<serde_json::Value> = r.get("doc");
    Ok(PolicyRecord {
        id: r.get("id"),
        status: PolicyStatus::parse(&status).ok_or_else(|| corrupt("policy status", &status))?,
        draft: serde_json::from_value(doc).map_err(|e| corrupt("policy doc", e))?,
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        published_at: r.get("published_at"),
    })
}

const CAMPAIGN_COLUMNS: &str = "id, policy_id, name, mode, status, doc, created_by, approved_by, created_at, launched_at, planned_at, completed_at";

fn campaign_from_row(r: &PgRow) -> Result<CampaignRecord> {
    let status: String = r.get("status");
    let mode: String = r.get("mode");
    let Json(doc): Json<serde_json::Value> = r.get("doc");
    Ok(CampaignRecord {
        id: r.get("id"),
        policy_id: r.get("policy_id"),
        name: r.get("name"),
        mode: CampaignMode::parse(&mode).ok_or_else(|| corrupt("campaign mode", &mode))?,
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| corrupt("campaign status", &status))?,
        draft: serde_json::from_value(doc).map_err(|e| corrupt("campaign doc", e))?,
        created_by: r.get("created_by"),
        approved_by: r.get("approved_by"),
        created_at: r.get("created_at"),
        launched_at: r.get("launched_at"),
        planned_at: r.get("planned_at"),
        completed_at: r.get("completed_at"),
    })
}

#[async_trait]
impl CatalogueStore for PgStore {
    async fn put_tag(&self, tag: &TagRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tags (name, description, rule, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description,
               rule = excluded.rule, updated_at = excluded.updated_at",
        )
        .bind(&tag.name)
        .bind(&tag.description)
        .bind(&tag.rule)
        .bind(tag.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_tags(&self) -> Result<Vec<TagRecord>> {
        let rows = sqlx::query(
            "SELECT name, description, rule, updated_at FROM tags ORDER BY name COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(tag_from_row).collect())
    }

    async fn get_tag(&self, name: &str) -> Result<Option<TagRecord>> {
        let row =
            sqlx::query("SELECT name, description, rule, updated_at FROM tags WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(tag_from_row))
    }

    async fn insert_policy(&self, p: &PolicyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO policies (id, status, doc, created_by, created_at, published_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(p.status.as_str())
        .bind(Json(&p.draft))
        .bind(&p.created_by)
        .bind(p.created_at)
        .bind(p.published_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_policy(&self, id: &str) -> Result<Option<PolicyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn set_policy_status(
        &self,
        id: &str,
        status: PolicyStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let published = (status == PolicyStatus::Published).then_some(at);
        let done = sqlx::query(
            "UPDATE policies SET status = $1, published_at = COALESCE($2, published_at) WHERE id = $3",
        )
        .bind(status.as_str())
        .bind(published)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("policy {id}")));
        }
        Ok(())
    }

    async fn insert_campaign(&self, c: &CampaignRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO campaigns (id, policy_id, name, mode, status, doc, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.policy_id)
        .bind(&c.name)
        .bind(c.mode.as_str())
        .bind(c.status.as_str())
        .bind(Json(&c.draft))
        .bind(&c.created_by)
        .bind(c.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_campaign(&self, id: &str) -> Result<Option<CampaignRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    async fn list_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn transition_campaign(
        &self,
        id: &str,
        from: &[CampaignStatus],
        to: CampaignStatus,
        change: CampaignChange,
    ) -> Result<CampaignRecord> {
        let mut tx = self.pool.begin().await?;
        // The row lock makes check-and-set one step against concurrent transitions.
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = match row {
            Some(r) => campaign_from_row(&r)?,
            None => return Err(StoreError::NotFound(format!("campaign {id}"))),
        };
        if !from.contains(&current.status) {
            return Err(StoreError::Conflict(format!(
                "campaign {id} is {}, not {}",
                current.status.as_str(),
                from.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        sqlx::query(
            "UPDATE campaigns SET status = $1, approved_by = COALESCE($2, approved_by),
               launched_at = COALESCE($3, launched_at), completed_at = COALESCE($4, completed_at)
             WHERE id = $5",
        )
        .bind(to.as_str())
        .bind(&change.approved_by)
        .bind(change.launched_at)
        .bind(change.completed_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CampaignRecord {
            status: to,
            approved_by: change.approved_by.or(current.approved_by),
            launched_at: change.launched_at.or(current.launched_at),
            completed_at: change.completed_at.or(current.completed_at),
            ..current
        })
    }

    async fn campaigns_to_plan(&self) -> Result<Vec<CampaignRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'running' AND planned_at IS NULL ORDER BY launched_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn continuous_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'running' AND mode = 'continuous' ORDER BY launched_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }
}
