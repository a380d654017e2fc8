//! Campaign operations (see [`crate::operations`]).

use super::{corrupt, Backend, Get, SqlStore, Q};
use crate::{
    CampaignOps, CampaignRecord, CatalogueStore, OperationsStore, PolicyReview, RecentSend, Result,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::SkipReason;
use domain::push_event::{EventType, PushEvent};
use domain::review::Disclosure;

#[async_trait]
impl<DB: Backend> OperationsStore for SqlStore<DB> {
    async fn skip_sending(
        &self,
        skips: &[(String, SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if skips.is_empty() {
            return Ok(0);
        }
        let mut tx = DB::begin(&self.pool).await?;
        let mut events = Vec::new();
        for (push_id, reason) in skips {
            let row = Q::<DB>::new(
                "DELETE FROM pushes WHERE id = $1 AND status = 'sending'
                 RETURNING id, channel, campaign_id, subject_id, district, kind",
            )
            .bind(push_id)
            .fetch_optional(&mut tx)
            .await?;
            let Some(row) = row else { continue };
            skip_row(&mut tx, &row, *reason).await?;
            events.push(skip_event(
                &row,
                EventType::Skipped,
                *reason,
                "connector",
                now,
            )?);
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(events.len() as u64)
    }

    async fn skip_queued(
        &self,
        campaign_id: &str,
        reason: SkipReason,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = DB::begin(&self.pool).await?;
        let rows = Q::<DB>::new(
            "DELETE FROM pushes WHERE campaign_id = $1 AND status = 'queued'
             RETURNING id, channel, campaign_id, subject_id, district, kind",
        )
        .bind(campaign_id)
        .fetch_all(&mut tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            skip_row(&mut tx, row, reason).await?;
            events.push(skip_event(
                row,
                EventType::Cancelled,
                reason,
                "lifecycle",
                now,
            )?);
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(rows.len() as u64)
    }

    async fn subjects_with_policy(
        &self,
        policy_id: &str,
        except_campaign: &str,
        subject_ids: &[String],
        sent_only: bool,
    ) -> Result<Vec<String>> {
        let statuses = if sent_only {
            "('sent', 'delivered')"
        } else {
            "('queued', 'sending', 'sent', 'delivered')"
        };
        // The policy's other campaigns first (usually none, and then nothing to read);
        // then the pushes by subject and campaign, an index lookup per subject.
        let campaigns: Vec<String> =
            Q::<DB>::new("SELECT id FROM campaigns WHERE policy_id = $1 AND id <> $2")
                .bind(policy_id)
                .bind(except_campaign)
                .scalars(&self.pool)
                .await?;
        let mut out = Vec::new();
        if campaigns.is_empty() || subject_ids.is_empty() {
            return Ok(out);
        }
        for campaigns in campaigns.chunks(DB::LIST_CHUNK / 2) {
            let step = DB::LIST_CHUNK - campaigns.len();
            for chunk in subject_ids.chunks(step) {
                let sql = format!(
                    "SELECT DISTINCT subject_id FROM pushes
                     WHERE subject_id {} AND campaign_id {}
                       AND purpose = 'notice' AND status IN {statuses}",
                    DB::in_list(1, chunk.len()),
                    DB::in_list(1 + DB::list_params(chunk.len()), campaigns.len()),
                );
                let found: Vec<String> = Q::<DB>::new(&sql)
                    .bind_list(chunk)
                    .bind_list(campaigns)
                    .scalars(&self.pool)
                    .await?;
                out.extend(found);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn subjects_by_mobile(&self, mobile: &str) -> Result<Vec<String>> {
        Q::<DB>::new("SELECT id FROM subjects WHERE mobile = $1 ORDER BY id")
            .bind(mobile)
            .scalars(&self.pool)
            .await
    }

    async fn get_campaign_ops(&self, campaign_id: &str) -> Result<Option<CampaignOps>> {
        let row = Q::<DB>::new(
            "SELECT campaign_id, next_run_at, runs, ends_at, approvals_needed, audience, second_approved_by
             FROM campaign_ops WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CampaignOps {
                campaign_id: r.col("campaign_id")?,
                next_run_at: r.col("next_run_at")?,
                runs: r.col("runs")?,
                ends_at: r.col("ends_at")?,
                approvals_needed: r.col("approvals_needed")?,
                audience: r.col("audience")?,
                second_approved_by: r.col("second_approved_by")?,
            })
        })
        .transpose()
    }

    async fn put_campaign_ops(&self, o: &CampaignOps) -> Result<()> {
        Q::<DB>::new(
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
        let ids: Vec<String> = Q::<DB>::new(
            "SELECT c.id FROM campaigns c JOIN campaign_ops o ON o.campaign_id = c.id
             WHERE o.next_run_at IS NOT NULL AND o.next_run_at <= $1 AND c.status IN ('scheduled', 'running')
             ORDER BY o.next_run_at",
        )
        .bind(now)
        .scalars(&self.pool)
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
        let mut tx = DB::begin(&self.pool).await?;
        let won = Q::<DB>::new(
            "UPDATE campaign_ops SET next_run_at = $1, runs = runs + 1
             WHERE campaign_id = $2 AND next_run_at = $3
               AND EXISTS (SELECT 1 FROM campaigns WHERE id = $2 AND status IN ('scheduled', 'running'))",
        )
        .bind(next)
        .bind(campaign_id)
        .bind(due)
        .execute(&mut tx)
        .await?
            > 0;
        if won {
            Q::<DB>::new(
                "UPDATE campaigns SET status = 'running', planned_at = NULL,
                   launched_at = COALESCE(launched_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(campaign_id)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(won)
    }

    async fn complete_ended_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let mut tx = DB::begin(&self.pool).await?;
        let ids: Vec<String> = Q::<DB>::new(
            "UPDATE campaigns SET status = 'completed', completed_at = $1
             WHERE status IN ('scheduled', 'running', 'paused')
               AND id IN (SELECT campaign_id FROM campaign_ops WHERE ends_at IS NOT NULL AND ends_at <= $1)
             RETURNING id",
        )
        .bind(now)
        .scalars(&mut tx)
        .await?;
        for chunk in ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "UPDATE campaign_ops SET next_run_at = NULL WHERE campaign_id {}",
                DB::in_list(1, chunk.len())
            );
            Q::<DB>::new(&sql).bind_list(chunk).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn recent_notice_sends(&self, since: DateTime<Utc>) -> Result<Vec<RecentSend>> {
        let rows = Q::<DB>::new(
            "SELECT p.id, p.subject_id, c.policy_id, p.updated_at FROM pushes p
             JOIN campaigns c ON c.id = p.campaign_id
             WHERE p.purpose = 'notice' AND p.status IN ('sent', 'delivered') AND p.updated_at >= $1
             ORDER BY p.updated_at",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentSend {
                    push_id: r.col("id")?,
                    subject_id: r.col("subject_id")?,
                    policy_id: r.col("policy_id")?,
                    at: r.col("updated_at")?,
                })
            })
            .collect()
    }

    async fn insert_policy_review(&self, r: &PolicyReview) -> Result<()> {
        Q::<DB>::new(
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
        let row = Q::<DB>::new(
            "SELECT policy_id, disclosure, confidentiality_checked, passed, note, reviewed_by, at
             FROM policy_reviews WHERE policy_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(policy_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let d: String = r.col("disclosure")?;
            Ok(PolicyReview {
                policy_id: r.col("policy_id")?,
                disclosure: Disclosure::parse(&d).ok_or_else(|| corrupt("disclosure", &d))?,
                confidentiality_checked: r.col("confidentiality_checked")?,
                passed: r.col("passed")?,
                note: r.col("note")?,
                reviewed_by: r.col("reviewed_by")?,
                at: r.col("at")?,
            })
        })
        .transpose()
    }
}

/// Records the skip of the push `row` (its campaign, subject, district and kind) in
/// `campaign_skips`, replacing an earlier reason.
/// The event of a push row (`id`, `channel`) that became a skip.
fn skip_event(
    row: &impl Get,
    kind: EventType,
    reason: SkipReason,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<PushEvent> {
    let id: String = row.col("id")?;
    let channel: String = row.col("channel")?;
    let e = PushEvent::new(id, now, kind)
        .actor(actor)
        .detail(serde_json::json!({ "reason": reason.as_str() }));
    Ok(match domain::Channel::parse(&channel) {
        Some(c) => e.channel(c),
        None => e,
    })
}

async fn skip_row<DB: Backend>(
    tx: &mut sqlx::Transaction<'_, DB>,
    row: &DB::Row,
    reason: SkipReason,
) -> Result<()> {
    let campaign_id: String = row.col("campaign_id")?;
    let subject_id: String = row.col("subject_id")?;
    let district: String = row.col("district")?;
    let kind: String = row.col("kind")?;
    Q::<DB>::new(
        "INSERT INTO campaign_skips (campaign_id, subject_id, reason, district, kind)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (campaign_id, subject_id) DO UPDATE SET reason = excluded.reason",
    )
    .bind(&campaign_id)
    .bind(&subject_id)
    .bind(reason.as_str())
    .bind(&district)
    .bind(&kind)
    .execute(tx)
    .await?;
    Ok(())
}
