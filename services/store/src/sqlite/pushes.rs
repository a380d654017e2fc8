//! The outbox (`pushes`), campaign plans, receipts and clicks.

use super::{corrupt, parse_ts, ts, SqliteStore};
use crate::{CampaignCounts, NewPush, PushOutcome, PushRecord, PushStore, ReceiptUpdate, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::{PushPurpose, PushStatus, SkipReason};
use domain::Channel;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

const COLUMNS: &str = "id, campaign_id, subject_id, purpose, seq, channel, recipient, status, content, link_code, explanation, benefit, segments, provider_id, error, attempts, created_at, updated_at";

fn push_from_row(r: &SqliteRow) -> Result<PushRecord> {
    let channel: String = r.get("channel");
    let status: String = r.get("status");
    Ok(PushRecord {
        id: r.get("id"),
        campaign_id: r.get("campaign_id"),
        subject_id: r.get("subject_id"),
        purpose: {
            let p: String = r.get("purpose");
            PushPurpose::parse(&p).ok_or_else(|| corrupt("push purpose", &p))?
        },
        seq: r.get("seq"),
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        recipient: r.get("recipient"),
        status: PushStatus::parse(&status).ok_or_else(|| corrupt("push status", &status))?,
        content: r.get("content"),
        link_code: r.get("link_code"),
        explanation: r.get("explanation"),
        benefit: r.get("benefit"),
        segments: r.get("segments"),
        provider_id: r.get("provider_id"),
        error: r.get("error"),
        attempts: r.get("attempts"),
        created_at: parse_ts(r.get("created_at"))?,
        updated_at: parse_ts(r.get("updated_at"))?,
    })
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn insert_plan_batch(
        &self,
        campaign_id: &str,
        pushes: &[NewPush],
        skips: &[(String, SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let now = ts(now);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut seq: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM pushes WHERE campaign_id = ?")
                .bind(campaign_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut inserted = 0;
        for p in pushes {
            seq += 1;
            let done = sqlx::query(
                "INSERT INTO pushes (id, campaign_id, subject_id, purpose, seq, channel, recipient, status, content, link_code,
                   explanation, benefit, segments, next_attempt_at, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
                 -- A subject skipped at send time (capped, duplicate, opted out) stays skipped.
                 WHERE NOT EXISTS (SELECT 1 FROM campaign_skips k WHERE k.campaign_id = ?2
                                   AND k.subject_id = ?3 AND k.reason <> 'unreachable')
                 ON CONFLICT (campaign_id, subject_id, purpose) DO NOTHING",
            )
            .bind(&p.id)
            .bind(campaign_id)
            .bind(&p.subject_id)
            .bind(p.purpose.as_str())
            .bind(seq)
            .bind(p.channel.as_str())
            .bind(&p.recipient)
            .bind(&p.content)
            .bind(&p.link_code)
            .bind(&p.explanation)
            .bind(p.benefit)
            .bind(p.segments)
            .bind(&now)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            inserted += done.rows_affected();
        }
        for (subject_id, reason) in skips {
            sqlx::query(
                "INSERT INTO campaign_skips (campaign_id, subject_id, reason) VALUES (?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )
            .bind(campaign_id)
            .bind(subject_id)
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn finish_plan(&self, campaign_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE campaigns SET planned_at = ?2,
               eligible = (SELECT COUNT(*) FROM pushes WHERE campaign_id = ?1)
                        + (SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = ?1),
               unreachable = (SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = ?1 AND reason = 'unreachable')
             WHERE id = ?1",
        )
        .bind(campaign_id)
        .bind(ts(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_undispatched(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<PushRecord>> {
        let rows = sqlx::query(&format!(
            "UPDATE pushes SET dispatched = 1 WHERE id IN (
               SELECT p.id FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
               WHERE p.status = 'queued' AND p.dispatched = 0 AND p.next_attempt_at <= ?
                 AND c.status IN ('running', 'completed')
               ORDER BY p.next_attempt_at LIMIT ?)
             RETURNING {COLUMNS}"
        ))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn confirm_dispatched(&self, ids: &[String], published: bool) -> Result<u64> {
        // 1: taken by a relay; 2: on the bus; 0: not handed over.
        let to = if published { 2 } else { 0 };
        let mut changed = 0;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE pushes SET dispatched = ? WHERE status = 'queued' AND dispatched = 1 AND id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(to);
            for id in chunk {
                q = q.bind(id);
            }
            changed += q.execute(&self.pool).await?.rows_affected();
        }
        Ok(changed)
    }

    async fn reset_dispatched(&self, unconfirmed_only: bool) -> Result<u64> {
        let sql = if unconfirmed_only {
            "UPDATE pushes SET dispatched = 0 WHERE status = 'queued' AND dispatched = 1"
        } else {
            "UPDATE pushes SET dispatched = 0 WHERE status = 'queued' AND dispatched <> 0"
        };
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    async fn claim_for_sending(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<PushRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE pushes SET status = 'sending', attempts = attempts + 1, updated_at = ?
                 WHERE status = 'queued' AND id IN ({}) RETURNING {COLUMNS}",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(ts(now));
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(push_from_row(&r)?);
            }
        }
        Ok(out)
    }

    async fn record_outcomes(&self, outcomes: &[PushOutcome], now: DateTime<Utc>) -> Result<()> {
        let now = ts(now);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for o in outcomes {
            match o {
                PushOutcome::Sent {
                    push_id,
                    provider_id,
                } => {
                    sqlx::query(
                        "UPDATE pushes SET status = 'sent', provider_id = ?, error = NULL, updated_at = ?
                         WHERE id = ? AND status = 'sending'",
                    )
                    .bind(provider_id)
                    .bind(&now)
                    .bind(push_id)
                    .execute(&mut *tx)
                    .await?;
                }
                PushOutcome::Failed { push_id, error } => {
                    sqlx::query(
                        "UPDATE pushes SET status = 'failed', error = ?, updated_at = ?
                         WHERE id = ? AND status = 'sending'",
                    )
                    .bind(error)
                    .bind(&now)
                    .bind(push_id)
                    .execute(&mut *tx)
                    .await?;
                }
                PushOutcome::Defer {
                    push_id,
                    at,
                    reason,
                } => {
                    sqlx::query(
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = ?, error = ?,
                           attempts = MAX(attempts - 1, 0), updated_at = ?
                         WHERE id = ? AND status = 'sending'",
                    )
                    .bind(ts(*at))
                    .bind(reason)
                    .bind(&now)
                    .bind(push_id)
                    .execute(&mut *tx)
                    .await?;
                }
                PushOutcome::Requeue {
                    push_id,
                    at,
                    error,
                    channel,
                    recipient,
                    content,
                } => {
                    sqlx::query(
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = ?, error = ?,
                           channel = COALESCE(?, channel), recipient = COALESCE(?, recipient),
                           content = COALESCE(?, content), updated_at = ?
                         WHERE id = ? AND status = 'sending'",
                    )
                    .bind(ts(*at))
                    .bind(error)
                    .bind(channel.map(|c| c.as_str()))
                    .bind(recipient)
                    .bind(content)
                    .bind(&now)
                    .bind(push_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pushes_in_sending(
        &self,
        claimed_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE status = 'sending' AND updated_at <= ? ORDER BY updated_at LIMIT ?"
        ))
        .bind(ts(claimed_before))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn apply_receipt(&self, r: &ReceiptUpdate, now: DateTime<Utc>) -> Result<bool> {
        if let Some(at) = r.retry_at {
            // Only the attempt the receipt is about (its provider id), so a late receipt
            // of an earlier call never touches a newer one.
            let done = sqlx::query(
                "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = ?, error = ?, updated_at = ?
                 WHERE status IN ('sending', 'sent') AND provider_id = ?",
            )
            .bind(ts(at))
            .bind(&r.error)
            .bind(ts(now))
            .bind(&r.provider_id)
            .execute(&self.pool)
            .await?;
            return Ok(done.rows_affected() > 0);
        }
        let status = if r.delivered { "delivered" } else { "failed" };
        // A repeated receipt matches no row in 'sending'/'sent' any more and changes nothing.
        let done = sqlx::query(
            "UPDATE pushes SET status = ?, error = COALESCE(?, error),
               provider_id = COALESCE(provider_id, ?), updated_at = ?
             WHERE status IN ('sending', 'sent')
               AND ((? IS NOT NULL AND provider_id = ?) OR (? IS NOT NULL AND id = ?))",
        )
        .bind(status)
        .bind(&r.error)
        .bind(&r.provider_id)
        .bind(ts(now))
        .bind(&r.provider_id)
        .bind(&r.provider_id)
        .bind(&r.push_id)
        .bind(&r.push_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_push(&self, id: &str) -> Result<Option<PushRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pushes WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(push_from_row).transpose()
    }

    async fn push_by_link(&self, code: &str) -> Result<Option<PushRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pushes WHERE link_code = ?"))
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(push_from_row).transpose()
    }

    async fn record_click(&self, push_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO clicks (push_id, clicked_at) VALUES (?, ?)")
            .bind(push_id)
            .bind(ts(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn campaign_pushes(
        &self,
        campaign_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE campaign_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(campaign_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn campaign_counts(&self, campaign_id: &str) -> Result<CampaignCounts> {
        let mut c = CampaignCounts::default();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM pushes WHERE campaign_id = ? GROUP BY status",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        let mut pushes = 0;
        for r in rows {
            let status: String = r.get("status");
            let n: i64 = r.get("n");
            pushes += n;
            match PushStatus::parse(&status) {
                Some(PushStatus::Queued) => c.queued = n,
                Some(PushStatus::Sending) => c.sending = n,
                Some(PushStatus::Sent) => c.sent = n,
                Some(PushStatus::Delivered) => c.delivered = n,
                Some(PushStatus::Failed) => c.failed = n,
                None => return Err(corrupt("push status", status)),
            }
        }
        for r in sqlx::query(
            "SELECT channel, COUNT(*) AS n FROM pushes WHERE campaign_id = ? GROUP BY channel",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?
        {
            c.by_channel.insert(r.get("channel"), r.get("n"));
        }
        c.opted_out = sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = ? AND reason = 'opted_out'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        c.unreachable = sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = ? AND reason = 'unreachable'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        let skips: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = ?")
                .bind(campaign_id)
                .fetch_one(&self.pool)
                .await?;
        c.eligible = pushes + skips;
        c.clicked = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT k.push_id) FROM clicks k JOIN pushes p ON p.id = k.push_id WHERE p.campaign_id = ?",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(c)
    }

    async fn complete_finished_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'completed', completed_at = ?
             WHERE status = 'running' AND mode = 'once' AND planned_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pushes p WHERE p.campaign_id = campaigns.id
                               AND p.status IN ('queued', 'sending'))
               -- a recurring campaign waits for its next run
               AND NOT EXISTS (SELECT 1 FROM campaign_ops o WHERE o.campaign_id = campaigns.id
                               AND o.next_run_at IS NOT NULL)
             RETURNING id",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    async fn count_pushes(&self, status: PushStatus) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM pushes WHERE status = ?")
                .bind(status.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn failed_pushes(
        &self,
        campaign_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE status = 'failed' AND (? IS NULL OR campaign_id = ?) AND seq > ?
             ORDER BY campaign_id, seq LIMIT ?"
        ))
        .bind(campaign_id)
        .bind(campaign_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn replay_failed(&self, push_ids: &[String], now: DateTime<Utc>) -> Result<u64> {
        let mut moved = 0;
        for chunk in push_ids.chunks(500) {
            let sql = format!(
                "UPDATE pushes SET status = 'queued', dispatched = 0, attempts = 0, next_attempt_at = ?, updated_at = ?
                 WHERE status = 'failed' AND id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(ts(now)).bind(ts(now));
            for id in chunk {
                q = q.bind(id);
            }
            moved += q.execute(&self.pool).await?.rows_affected();
        }
        Ok(moved)
    }
}
