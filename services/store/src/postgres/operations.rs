//! Campaign operations on PostgreSQL (see [`crate::operations`]).

use super::{corrupt, PgStore};
use crate::{
    CampaignOps, CampaignRecord, CatalogueStore, OperationsStore, PolicyReview, RecentSend, Result,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::SkipReason;
use domain::review::Disclosure;
use sqlx::Row;

#[async_trait]
impl OperationsStore for PgStore {
    async fn skip_sending(&self, skips: &[(String, SkipReason)]) -> Result<u64> {
        if skips.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut done = 0;
        for (push_id, reason) in skips {
            let row = sqlx::query(
                "DELETE FROM pushes WHERE id = $1 AND status = 'sending' RETURNING campaign_id, subject_id",
            )
            .bind(push_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            let campaign_id: String = row.get("campaign_id");
            let subject_id: String = row.get("subject_id");
            sqlx::query(
                "INSERT INTO campaign_skips (campaign_id, subject_id, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (campaign_id, subject_id) DO UPDATE SET reason = excluded.reason",
            )
            .bind(&campaign_id)
            .bind(&subject_id)
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?;
            done += 1;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn subjects_with_policy(
        &self,
        policy_id: &str,
        except_campaign: &str,
        subject_ids: &[String],
        sent_only: bool,
    ) -> Result<Vec<String>> {
        let statuses: &[&str] = if sent_only {
            &["sent", "delivered"]
        } else {
            &["queued", "sending", "sent", "delivered"]
        };
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT p.subject_id FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
             WHERE c.policy_id = $1 AND p.campaign_id <> $2 AND p.purpose = 'notice'
               AND p.status = ANY($3) AND p.subject_id = ANY($4)",
        )
        .bind(policy_id)
        .bind(except_campaign)
        .bind(statuses)
        .bind(subject_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn subjects_by_mobile(&self, mobile: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM subjects WHERE mobile = $1 ORDER BY id")
                .bind(mobile)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn get_campaign_ops(&self, campaign_id: &str) -> Result<Option<CampaignOps>> {
        let row = sqlx::query(
            "SELECT campaign_id, next_run_at, runs, ends_at, approvals_needed, audience, second_approved_by
             FROM campaign_ops WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CampaignOps {
            campaign_id: r.get("campaign_id"),
            next_run_at: r.get("next_run_at"),
            runs: r.get("runs"),
            ends_at: r.get("ends_at"),
            approvals_needed: r.get("approvals_needed"),
            audience: r.get("audience"),
            second_approved_by: r.get("second_approved_by"),
        }))
    }

    async fn put_campaign_ops(&self, o: &CampaignOps) -> Result<()> {
        sqlx::query(
            "INSERT INTO campaign_ops (campaign_id, next_run_at, runs, ends_at, approvals_needed, audience, second_approved_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (campaign_id) DO UPDATE SET next_run_at = excluded.next_run_at, runs = excluded.runs,
               ends_at = excluded.ends_at, approvals_needed = excluded.approvals_needed,
               audience = excluded.audience, second_approved_by = excluded.second_approved_by",
        )
        .bind(&o.campaign_id)
        .bind(o.next_run_at)
        .bind(o.runs)
        .bind(o.ends_at)
        .bind(o.approvals_needed)
        .bind(o.audience)
        .bind(&o.second_approved_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<CampaignRecord>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT c.id FROM campaigns c JOIN campaign_ops o ON o.campaign_id = c.id
             WHERE o.next_run_at IS NOT NULL AND o.next_run_at <= $1 AND c.status IN ('scheduled', 'running')
             ORDER BY o.next_run_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.get_campaign(&id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn start_run(
        &self,
        campaign_id: &str,
        due: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let won = sqlx::query(
            "UPDATE campaign_ops SET next_run_at = $1, runs = runs + 1
             WHERE campaign_id = $2 AND next_run_at = $3
               AND EXISTS (SELECT 1 FROM campaigns WHERE id = $2 AND status IN ('scheduled', 'running'))",
        )
        .bind(next)
        .bind(campaign_id)
        .bind(due)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if won {
            sqlx::query(
                "UPDATE campaigns SET status = 'running', planned_at = NULL,
                   launched_at = COALESCE(launched_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(won)
    }

    async fn complete_ended_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE campaigns SET status = 'completed', completed_at = $1
             WHERE status IN ('scheduled', 'running', 'paused')
               AND id IN (SELECT campaign_id FROM campaign_ops WHERE ends_at IS NOT NULL AND ends_at <= $1)
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE campaign_ops SET next_run_at = NULL WHERE campaign_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn recent_notice_sends(&self, since: DateTime<Utc>) -> Result<Vec<RecentSend>> {
        let rows = sqlx::query(
            "SELECT p.id, p.subject_id, c.policy_id, p.updated_at FROM pushes p
             JOIN campaigns c ON c.id = p.campaign_id
             WHERE p.purpose = 'notice' AND p.status IN ('sent', 'delivered') AND p.updated_at >= $1
             ORDER BY p.updated_at",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| RecentSend {
                push_id: r.get("id"),
                subject_id: r.get("subject_id"),
                policy_id: r.get("policy_id"),
                at: r.get("updated_at"),
            })
            .collect())
    }

    async fn insert_policy_review(&self, r: &PolicyReview) -> Result<()> {
        sqlx::query(
            "INSERT INTO policy_reviews (policy_id, disclosure, confidentiality_checked, passed, note, reviewed_by, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.policy_id)
        .bind(r.disclosure.as_str())
        .bind(r.confidentiality_checked)
        .bind(r.passed)
        .bind(&r.note)
        .bind(&r.reviewed_by)
        .bind(r.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_policy_review(&self, policy_id: &str) -> Result<Option<PolicyReview>> {
        let row = sqlx::query(
            "SELECT policy_id, disclosure, confidentiality_checked, passed, note, reviewed_by, at
             FROM policy_reviews WHERE policy_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(policy_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let d: String = r.get("disclosure");
            Ok(PolicyReview {
                policy_id: r.get("policy_id"),
                disclosure: Disclosure::parse(&d).ok_or_else(|| corrupt("disclosure", &d))?,
                confidentiality_checked: r.get("confidentiality_checked"),
                passed: r.get("passed"),
                note: r.get("note"),
                reviewed_by: r.get("reviewed_by"),
                at: r.get("at"),
            })
        })
        .transpose()
    }
}
