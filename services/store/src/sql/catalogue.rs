//! Tags, policies and campaigns.

use super::{parsed, Backend, Get, Json, SqlStore, Q};
use crate::{
    CampaignChange, CampaignRecord, CatalogueStore, PolicyRecord, Result, StoreError, TagRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::campaign::{CampaignMode, CampaignStatus};
use domain::policy::PolicyStatus;

/// The campaign `id`, locked for a status change (the row lock, or SQLite's database
/// lock, makes check-and-set one step against concurrent changes); `Conflict` unless its
/// status is one of `from`.
async fn locked_campaign<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    id: &str,
    from: &[CampaignStatus],
) -> Result<CampaignRecord> {
    let lock = if DB::ROW_LOCKS { "FOR UPDATE" } else { "" };
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 {lock}");
    let current = match Q::<DB>::new(&sql).bind(id).fetch_optional(&mut *tx).await? {
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
    Ok(current)
}

const TAG_COLUMNS: &str = "name, description, rule, updated_at";

fn tag_from_row(r: &impl Get) -> Result<TagRecord> {
    Ok(TagRecord {
        name: r.col("name")?,
        description: r.col("description")?,
        rule: r.col("rule")?,
        updated_at: r.col("updated_at")?,
    })
}

const POLICY_COLUMNS: &str = "id, status, doc, created_by, created_at, published_at";

fn policy_from_row(r: &impl Get) -> Result<PolicyRecord> {
    let Json(draft) = r.col("doc")?;
    Ok(PolicyRecord {
        id: r.col("id")?,
        status: parsed(r, "status", "policy status", PolicyStatus::parse)?,
        draft,
        created_by: r.col("created_by")?,
        created_at: r.col("created_at")?,
        published_at: r.col("published_at")?,
    })
}

pub(super) const CAMPAIGN_COLUMNS: &str = "id, policy_id, name, mode, status, doc, created_by, approved_by, created_at, launched_at, planned_at, completed_at";

pub(super) fn campaign_from_row(r: &impl Get) -> Result<CampaignRecord> {
    let Json(draft) = r.col("doc")?;
    Ok(CampaignRecord {
        id: r.col("id")?,
        policy_id: r.col("policy_id")?,
        name: r.col("name")?,
        mode: parsed(r, "mode", "campaign mode", CampaignMode::parse)?,
        status: parsed(r, "status", "campaign status", CampaignStatus::parse)?,
        draft,
        created_by: r.col("created_by")?,
        approved_by: r.col("approved_by")?,
        created_at: r.col("created_at")?,
        launched_at: r.col("launched_at")?,
        planned_at: r.col("planned_at")?,
        completed_at: r.col("completed_at")?,
    })
}

impl<DB: Backend> SqlStore<DB> {
    /// Campaigns matching `filter`, in launch (or creation) order.
    async fn campaigns_where(&self, filter: &str, order: &str) -> Result<Vec<CampaignRecord>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns {filter} ORDER BY {order}, id");
        let rows = Q::<DB>::new(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(campaign_from_row).collect()
    }
}

#[async_trait]
impl<DB: Backend> CatalogueStore for SqlStore<DB> {
    async fn put_tag(&self, tag: &TagRecord) -> Result<()> {
        Q::<DB>::new(
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
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags ORDER BY name {}",
            DB::BYTE_ORDER
        );
        let rows = Q::<DB>::new(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(tag_from_row).collect()
    }

    async fn get_tag(&self, name: &str) -> Result<Option<TagRecord>> {
        let sql = format!("SELECT {TAG_COLUMNS} FROM tags WHERE name = $1");
        let row = Q::<DB>::new(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tag_from_row).transpose()
    }

    async fn insert_policy(&self, p: &PolicyRecord) -> Result<()> {
        Q::<DB>::new(
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
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1");
        let row = Q::<DB>::new(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY created_at, id");
        let rows = Q::<DB>::new(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn set_policy_status(
        &self,
        id: &str,
        status: PolicyStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let published = (status == PolicyStatus::Published).then_some(at);
        let done = Q::<DB>::new(
            "UPDATE policies SET status = $1, published_at = COALESCE($2, published_at) WHERE id = $3",
        )
        .bind(status.as_str())
        .bind(published)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done == 0 {
            return Err(StoreError::NotFound(format!("policy {id}")));
        }
        Ok(())
    }

    async fn insert_campaign(&self, c: &CampaignRecord) -> Result<()> {
        Q::<DB>::new(
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
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = Q::<DB>::new(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    async fn list_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        self.campaigns_where("", "created_at").await
    }

    async fn transition_campaign(
        &self,
        id: &str,
        from: &[CampaignStatus],
        to: CampaignStatus,
        change: CampaignChange,
    ) -> Result<CampaignRecord> {
        let mut tx = DB::begin(&self.pool).await?;
        let current = locked_campaign::<DB>(&mut tx, id, from).await?;
        Q::<DB>::new(
            "UPDATE campaigns SET status = $1, approved_by = COALESCE($2, approved_by),
               launched_at = COALESCE($3, launched_at), completed_at = COALESCE($4, completed_at)
             WHERE id = $5",
        )
        .bind(to.as_str())
        .bind(&change.approved_by)
        .bind(change.launched_at)
        .bind(change.completed_at)
        .bind(id)
        .execute(&mut tx)
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

    async fn return_to_review(&self, id: &str, from: &[CampaignStatus]) -> Result<CampaignRecord> {
        let mut tx = DB::begin(&self.pool).await?;
        let current = locked_campaign::<DB>(&mut tx, id, from).await?;
        Q::<DB>::new("UPDATE campaigns SET status = 'submitted', approved_by = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        Q::<DB>::new(
            "UPDATE campaign_ops SET approvals_needed = 1, audience = NULL, second_approved_by = NULL
             WHERE campaign_id = $1",
        )
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(CampaignRecord {
            status: CampaignStatus::Submitted,
            approved_by: None,
            ..current
        })
    }

    async fn campaigns_to_plan(&self) -> Result<Vec<CampaignRecord>> {
        self.campaigns_where(
            "WHERE status = 'running' AND planned_at IS NULL",
            "launched_at",
        )
        .await
    }

    async fn continuous_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        self.campaigns_where(
            "WHERE status = 'running' AND mode = 'continuous'",
            "launched_at",
        )
        .await
    }
}
