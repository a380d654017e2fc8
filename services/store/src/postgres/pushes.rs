//! The outbox (`pushes`), campaign plans, receipts and clicks.
//!
//! Several processes share these rows. Relays take rows with `FOR UPDATE SKIP LOCKED`, so
//! two relays never hand over the same row. A connector's claim locks its rows in id order
//! and waits for a locked one (the relay may be marking it as on the bus), then moves only
//! rows still `queued` to `sending`, so two connector workers never both claim a row.

use super::{corrupt, PgStore};
use crate::{CampaignCounts, NewPush, PushOutcome, PushRecord, PushStore, ReceiptUpdate, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::{PushPurpose, PushStatus, SkipReason};
use domain::Channel;
use sqlx::postgres::PgRow;
use sqlx::Row;

const COLUMNS: &str = "id, campaign_id, subject_id, purpose, seq, channel, recipient, status, content, link_code, explanation, benefit, segments, provider_id, error, attempts, created_at, updated_at";

/// Rows per multi-row statement.
const CHUNK: usize = 5_000;

fn push_from_row(r: &PgRow) -> Result<PushRecord> {
    let channel: String = r.get("channel");
    let status: String = r.get("status");
    let purpose: String = r.get("purpose");
    Ok(PushRecord {
        id: r.get("id"),
        campaign_id: r.get("campaign_id"),
        subject_id: r.get("subject_id"),
        purpose: PushPurpose::parse(&purpose).ok_or_else(|| corrupt("push purpose", &purpose))?,
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
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

fn rows_to_pushes(rows: &[PgRow]) -> Result<Vec<PushRecord>> {
    let mut out: Vec<PushRecord> = rows.iter().map(push_from_row).collect::<Result<_>>()?;
    // RETURNING has no order; hand rows on in plan order, as the SQLite store does.
    out.sort_by(|a, b| (&a.campaign_id, a.seq).cmp(&(&b.campaign_id, b.seq)));
    Ok(out)
}

#[async_trait]
impl PushStore for PgStore {
    async fn insert_plan_batch(
        &self,
        campaign_id: &str,
        pushes: &[NewPush],
        skips: &[(String, SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // Planners of one campaign take turns: the lock keeps `seq` unique and increasing.
        sqlx::query("SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE")
            .bind(campaign_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut seq: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM pushes WHERE campaign_id = $1")
                .bind(campaign_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut inserted = 0;
        for chunk in pushes.chunks(CHUNK) {
            let n = chunk.len();
            let mut ids = Vec::with_capacity(n);
            let mut subjects = Vec::with_capacity(n);
            let mut purposes = Vec::with_capacity(n);
            let mut channels = Vec::with_capacity(n);
            let mut recipients = Vec::with_capacity(n);
            let mut contents = Vec::with_capacity(n);
            let mut links = Vec::with_capacity(n);
            let mut explanations = Vec::with_capacity(n);
            let mut benefits = Vec::with_capacity(n);
            let mut segments = Vec::with_capacity(n);
            for p in chunk {
                ids.push(p.id.as_str());
                subjects.push(p.subject_id.as_str());
                purposes.push(p.purpose.as_str());
                channels.push(p.channel.as_str());
                recipients.push(p.recipient.as_str());
                contents.push(p.content.as_str());
                links.push(p.link_code.as_str());
                explanations.push(p.explanation.as_str());
                benefits.push(p.benefit);
                segments.push(p.segments);
            }
            let done = sqlx::query(
                "INSERT INTO pushes (id, campaign_id, subject_id, purpose, seq, channel, recipient, status,
                   content, link_code, explanation, benefit, segments, next_attempt_at, created_at, updated_at)
                 SELECT u.id, $1, u.subject_id, u.purpose, $2 + u.ord, u.channel, u.recipient, 'queued',
                   u.content, u.link_code, u.explanation, u.benefit, u.segments, $3, $3, $3
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::text[], $12::float8[], $13::int8[])
                      WITH ORDINALITY AS u(id, subject_id, purpose, channel, recipient, content,
                                           link_code, explanation, benefit, segments, ord)
                 -- A subject skipped at send time (capped, duplicate, opted out) stays skipped.
                 WHERE NOT EXISTS (SELECT 1 FROM campaign_skips k WHERE k.campaign_id = $1
                                   AND k.subject_id = u.subject_id AND k.reason <> 'unreachable')
                 ORDER BY u.ord
                 ON CONFLICT (campaign_id, subject_id, purpose) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(seq)
            .bind(now)
            .bind(&ids)
            .bind(&subjects)
            .bind(&purposes)
            .bind(&channels)
            .bind(&recipients)
            .bind(&contents)
            .bind(&links)
            .bind(&explanations)
            .bind(&benefits)
            .bind(&segments)
            .execute(&mut *tx)
            .await?;
            seq += n as i64;
            inserted += done.rows_affected();
        }
        for chunk in skips.chunks(CHUNK) {
            let subjects: Vec<&str> = chunk.iter().map(|(s, _)| s.as_str()).collect();
            let reasons: Vec<&str> = chunk.iter().map(|(_, r)| r.as_str()).collect();
            sqlx::query(
                "INSERT INTO campaign_skips (campaign_id, subject_id, reason)
                 SELECT $1, u.subject_id, u.reason FROM UNNEST($2::text[], $3::text[]) AS u(subject_id, reason)
                 ON CONFLICT DO NOTHING",
            )
            .bind(campaign_id)
            .bind(&subjects)
            .bind(&reasons)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn finish_plan(&self, campaign_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE campaigns SET planned_at = $2,
               eligible = (SELECT COUNT(*) FROM pushes WHERE campaign_id = $1)
                        + (SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = $1),
               unreachable = (SELECT COUNT(*) FROM campaign_skips WHERE campaign_id = $1 AND reason = 'unreachable')
             WHERE id = $1",
        )
        .bind(campaign_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_undispatched(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<PushRecord>> {
        let rows = sqlx::query(&format!(
            "UPDATE pushes SET dispatched = 1 WHERE id IN (
               SELECT p.id FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
               WHERE p.status = 'queued' AND p.dispatched = 0 AND p.next_attempt_at <= $1
                 AND c.status IN ('running', 'completed')
               ORDER BY p.next_attempt_at LIMIT $2 FOR UPDATE OF p SKIP LOCKED)
             RETURNING {COLUMNS}"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows_to_pushes(&rows)
    }

    async fn confirm_dispatched(&self, ids: &[String], published: bool) -> Result<u64> {
        // 1: taken by a relay; 2: on the bus; 0: not handed over.
        let to: i16 = if published { 2 } else { 0 };
        let mut changed = 0;
        // Rows are locked in id order, as connectors claim them, so the two never deadlock.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        for chunk in ids.chunks(CHUNK) {
            changed += sqlx::query(
                "UPDATE pushes SET dispatched = $1
                 WHERE id IN (SELECT id FROM pushes
                              WHERE id = ANY($2) AND status = 'queued' AND dispatched = 1
                              ORDER BY id FOR UPDATE)
                   AND status = 'queued' AND dispatched = 1",
            )
            .bind(to)
            .bind(chunk)
            .execute(&self.pool)
            .await?
            .rows_affected();
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
        // A locked row is waited for, not skipped: the lock may be the relay marking the
        // row as on the bus (the task then arrives before the mark commits), and a skipped
        // row whose task is acknowledged would never be sent. After the wait the row is
        // checked again, so one another connector claimed meanwhile is left alone. Locks
        // are taken in id order (as the relay takes them) so claimers never deadlock.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        for chunk in ids.chunks(CHUNK) {
            let rows = sqlx::query(&format!(
                "UPDATE pushes SET status = 'sending', attempts = attempts + 1, updated_at = $1
                 WHERE id IN (SELECT id FROM pushes WHERE id = ANY($2) AND status = 'queued'
                              ORDER BY id FOR UPDATE)
                   AND status = 'queued'
                 RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(chunk)
            .fetch_all(&self.pool)
            .await?;
            out.extend(rows_to_pushes(&rows)?);
        }
        Ok(out)
    }

    async fn record_outcomes(&self, outcomes: &[PushOutcome], now: DateTime<Utc>) -> Result<()> {
        let mut sent = (Vec::new(), Vec::new());
        let mut failed = (Vec::new(), Vec::new());
        let mut tx = self.pool.begin().await?;
        for o in outcomes {
            match o {
                PushOutcome::Sent {
                    push_id,
                    provider_id,
                } => {
                    sent.0.push(push_id.as_str());
                    sent.1.push(provider_id.as_str());
                }
                PushOutcome::Failed { push_id, error } => {
                    failed.0.push(push_id.as_str());
                    failed.1.push(error.as_str());
                }
                PushOutcome::Defer {
                    push_id,
                    at,
                    reason,
                } => {
                    // Not an attempt: the claim's count is given back.
                    sqlx::query(
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = $1, error = $2,
                           attempts = GREATEST(attempts - 1, 0), updated_at = $3
                         WHERE id = $4 AND status = 'sending'",
                    )
                    .bind(at)
                    .bind(reason)
                    .bind(now)
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
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = $1, error = $2,
                           channel = COALESCE($3, channel), recipient = COALESCE($4, recipient),
                           content = COALESCE($5, content), updated_at = $6
                         WHERE id = $7 AND status = 'sending'",
                    )
                    .bind(at)
                    .bind(error)
                    .bind(channel.map(|c| c.as_str()))
                    .bind(recipient)
                    .bind(content)
                    .bind(now)
                    .bind(push_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        // The common outcomes go as one statement each per batch.
        if !sent.0.is_empty() {
            sqlx::query(
                "UPDATE pushes p SET status = 'sent', provider_id = u.provider_id, error = NULL, updated_at = $3
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, provider_id)
                 WHERE p.id = u.id AND p.status = 'sending'",
            )
            .bind(&sent.0)
            .bind(&sent.1)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !failed.0.is_empty() {
            sqlx::query(
                "UPDATE pushes p SET status = 'failed', error = u.error, updated_at = $3
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, error)
                 WHERE p.id = u.id AND p.status = 'sending'",
            )
            .bind(&failed.0)
            .bind(&failed.1)
            .bind(now)
            .execute(&mut *tx)
            .await?;
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
            "SELECT {COLUMNS} FROM pushes WHERE status = 'sending' AND updated_at <= $1 ORDER BY updated_at LIMIT $2"
        ))
        .bind(claimed_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn apply_receipt(&self, r: &ReceiptUpdate, now: DateTime<Utc>) -> Result<bool> {
        if let Some(at) = r.retry_at {
            // Only the attempt the receipt is about (its provider id).
            let done = sqlx::query(
                "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = $1, error = $2, updated_at = $3
                 WHERE status IN ('sending', 'sent') AND provider_id = $4",
            )
            .bind(at)
            .bind(&r.error)
            .bind(now)
            .bind(&r.provider_id)
            .execute(&self.pool)
            .await?;
            return Ok(done.rows_affected() > 0);
        }
        let status = if r.delivered { "delivered" } else { "failed" };
        // A repeated receipt matches no row in 'sending'/'sent' any more and changes nothing.
        // `= NULL` is never true, so an absent id matches nothing.
        let done = sqlx::query(
            "UPDATE pushes SET status = $1, error = COALESCE($2, error),
               provider_id = COALESCE(provider_id, $3), updated_at = $4
             WHERE status IN ('sending', 'sent') AND (provider_id = $3 OR id = $5)",
        )
        .bind(status)
        .bind(&r.error)
        .bind(&r.provider_id)
        .bind(now)
        .bind(&r.push_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_push(&self, id: &str) -> Result<Option<PushRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pushes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(push_from_row).transpose()
    }

    async fn push_by_link(&self, code: &str) -> Result<Option<PushRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE link_code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(push_from_row).transpose()
    }

    async fn record_click(&self, push_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO clicks (push_id, clicked_at) VALUES ($1, $2)")
            .bind(push_id)
            .bind(at)
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
            "SELECT {COLUMNS} FROM pushes WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(campaign_id)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn campaign_counts(&self, campaign_id: &str) -> Result<CampaignCounts> {
        let mut c = CampaignCounts::default();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM pushes WHERE campaign_id = $1 GROUP BY status",
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
            "SELECT channel, COUNT(*) AS n FROM pushes WHERE campaign_id = $1 GROUP BY channel",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?
        {
            c.by_channel.insert(r.get("channel"), r.get("n"));
        }
        let skips = sqlx::query(
            "SELECT COUNT(*) AS all_skips, COUNT(*) FILTER (WHERE reason = 'unreachable') AS unreachable,
               COUNT(*) FILTER (WHERE reason = 'opted_out') AS opted_out
             FROM campaign_skips WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        c.unreachable = skips.get("unreachable");
        c.opted_out = skips.get("opted_out");
        c.eligible = pushes + skips.get::<i64, _>("all_skips");
        c.clicked = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT k.push_id) FROM clicks k JOIN pushes p ON p.id = k.push_id WHERE p.campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(c)
    }

    async fn complete_finished_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'completed', completed_at = $1
             WHERE status = 'running' AND mode = 'once' AND planned_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pushes p WHERE p.campaign_id = campaigns.id
                               AND p.status IN ('queued', 'sending'))
               -- a recurring campaign waits for its next run
               AND NOT EXISTS (SELECT 1 FROM campaign_ops o WHERE o.campaign_id = campaigns.id
                               AND o.next_run_at IS NOT NULL)
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    async fn count_pushes(&self, status: PushStatus) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM pushes WHERE status = $1")
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
            "SELECT {COLUMNS} FROM pushes WHERE status = 'failed' AND ($1::text IS NULL OR campaign_id = $1) AND seq > $2
             ORDER BY campaign_id COLLATE \"C\", seq LIMIT $3"
        ))
        .bind(campaign_id)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_from_row).collect()
    }

    async fn replay_failed(&self, push_ids: &[String], now: DateTime<Utc>) -> Result<u64> {
        let mut moved = 0;
        for chunk in push_ids.chunks(CHUNK) {
            moved += sqlx::query(
                "UPDATE pushes SET status = 'queued', dispatched = 0, attempts = 0, next_attempt_at = $1, updated_at = $1
                 WHERE status = 'failed' AND id = ANY($2)",
            )
            .bind(now)
            .bind(chunk)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(moved)
    }
}
