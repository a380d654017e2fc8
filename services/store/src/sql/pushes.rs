//! The outbox (`pushes`), campaign plans, receipts and clicks.
//!
//! On PostgreSQL several processes share these rows. A running campaign's planned rows
//! (`dispatched = 3`) are handed to the bus in `seq` order by moving the campaign's
//! relay cursor (`relay_cursors`, taken with `FOR UPDATE SKIP LOCKED`: one relay per
//! campaign at a time, one write per batch); rows put back in the outbox one by one
//! (`dispatched = 0`: retries, deferrals, replays) are taken with `FOR UPDATE SKIP
//! LOCKED` and marked, so two relays never hand over the same row. A connector's claim
//! locks its rows in id order and waits for a locked one (a relay may be marking it as
//! on the bus), then moves only rows still `queued` to `sending`, so two connector
//! workers never both claim a row. On SQLite every writer holds the database lock.
//!
//! Every state change appends its events (`super::events`) in its own transaction.

use super::events::{outcome_events, planned_events, receipt_event, step_events, Sealed};
use super::tallies::{tally_sum, SKIP};
use super::{corrupt, parsed, Backend, Cell, Get, Rows, SqlStore, Ts, Q};
use crate::{
    CampaignCounts, HandOver, LateReceiptLimits, LateSweep, NewPush, PushOutcome, PushRecord,
    PushStore, ReceiptUpdate, Result,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::{PushPurpose, PushStatus, SkipReason};
use domain::push_event::{EventType, PushEvent};
use domain::Channel;
use std::collections::HashMap;

pub(super) const COLUMNS: &str = "id, campaign_id, subject_id, purpose, seq, channel, recipient, status, content, link_code, explanation, benefit, segments, provider_id, error, attempts, created_at, updated_at";

fn push_from_row(r: &impl Get) -> Result<PushRecord> {
    Ok(PushRecord {
        id: r.col("id")?,
        campaign_id: r.col("campaign_id")?,
        subject_id: r.col("subject_id")?,
        purpose: parsed(r, "purpose", "push purpose", PushPurpose::parse)?,
        seq: r.col("seq")?,
        channel: parsed(r, "channel", "channel", Channel::parse)?,
        recipient: r.col("recipient")?,
        status: parsed(r, "status", "push status", PushStatus::parse)?,
        content: r.col("content")?,
        link_code: r.col("link_code")?,
        explanation: r.col("explanation")?,
        benefit: r.col("benefit")?,
        segments: r.col("segments")?,
        provider_id: r.col("provider_id")?,
        error: r.col("error")?,
        attempts: r.col("attempts")?,
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
    })
}

fn pushes_from_rows(rows: &[impl Get]) -> Result<Vec<PushRecord>> {
    rows.iter().map(push_from_row).collect()
}

/// Rows of `UPDATE … RETURNING`, which has no order, in plan order.
fn returned_pushes(rows: &[impl Get]) -> Result<Vec<PushRecord>> {
    let mut out = pushes_from_rows(rows)?;
    out.sort_by(|a, b| (&a.campaign_id, a.seq).cmp(&(&b.campaign_id, b.seq)));
    Ok(out)
}

/// Columns of the rows a chunk of final receipts writes: the push, its new status and
/// error, and the receipt's own keys (checked again as the row is written).
const FINAL_ROWS: &[(&str, Cell)] = &[
    ("target", Cell::Text),
    ("outcome", Cell::Text),
    ("error", Cell::Text),
    ("by_provider", Cell::Text),
    ("by_push", Cell::Text),
];

/// The pushes a receipt chunk writes that still wait for a receipt (locked in id order
/// where rows are locked).
const TARGETS_WAITING: &str = "id IN (SELECT target FROM u) AND status IN ('sending', 'sent')";

/// Columns of the rows a chunk of call-again receipts writes.
const RETRY_ROWS: &[(&str, Cell)] = &[
    ("target", Cell::Text),
    ("at", Cell::Time),
    ("error", Cell::Text),
    ("by_provider", Cell::Text),
];

/// Applies a chunk of receipts in `tx`, as [`PushStore::apply_receipts`] says: one read
/// of the pushes the chunk names that still wait for a receipt, then one write of the
/// final receipts and one of the call-again receipts, each by push id.
///
/// Which push a receipt takes is decided here in slice order, as applying them one at a
/// time would: a receipt takes every waiting push that carries its provider id or (a
/// final receipt only) has its push id, unless an earlier receipt of the batch took it.
/// The writes check status and keys again, so a push that changed since the read is left
/// alone and its receipt reported unmatched (to be tried again), never misapplied.
pub(super) async fn apply_receipt_chunk<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    receipts: &[ReceiptUpdate],
    now: DateTime<Utc>,
    events: &mut Vec<PushEvent>,
) -> Result<Vec<bool>> {
    let mut keys: Vec<String> = receipts
        .iter()
        .flat_map(|r| [r.provider_id.clone(), r.push_id.clone()])
        .flatten()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut taken_by: Vec<Option<usize>> = Vec::new();
    let mut waiting: Vec<(String, Option<String>)> = Vec::new();
    if !keys.is_empty() {
        let list = DB::in_list(1, keys.len());
        let sql = format!(
            "SELECT id, provider_id FROM pushes
             WHERE status IN ('sending', 'sent') AND (provider_id {list} OR id {list})"
        );
        for row in Q::<DB>::new(&sql)
            .bind_list(&keys)
            .fetch_all(&mut *tx)
            .await?
        {
            waiting.push((row.col("id")?, row.col("provider_id")?));
        }
        taken_by = vec![None; waiting.len()];
    }
    let mut by_provider: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, (id, provider_id)) in waiting.iter().enumerate() {
        by_id.insert(id, i);
        if let Some(p) = provider_id {
            by_provider.entry(p).or_default().push(i);
        }
    }
    let mut finals = Rows::new(FINAL_ROWS);
    let mut retries = Rows::new(RETRY_ROWS);
    for (n, r) in receipts.iter().enumerate() {
        let mut targets: Vec<usize> = r
            .provider_id
            .as_deref()
            .and_then(|p| by_provider.get(p))
            .cloned()
            .unwrap_or_default();
        if r.retry_at.is_none() {
            targets.extend(r.push_id.as_deref().and_then(|id| by_id.get(id)).copied());
        }
        for t in targets {
            if taken_by[t].is_some() {
                continue;
            }
            taken_by[t] = Some(n);
            let target = Some(waiting[t].0.clone());
            match r.retry_at {
                Some(at) => retries.push([
                    target,
                    Some(Ts(at).text()),
                    r.error.clone(),
                    r.provider_id.clone(),
                ]),
                None => finals.push([
                    target,
                    Some(if r.delivered { "delivered" } else { "failed" }.to_string()),
                    r.error.clone(),
                    r.provider_id.clone(),
                    r.push_id.clone(),
                ]),
            }
        }
    }
    let mut written: HashMap<String, String> = HashMap::new();
    // `= NULL` is never true, so an absent key matches nothing.
    written.extend(
        write_receipts::<DB>(
            tx,
            &finals,
            "status = u.outcome, error = COALESCE(u.error, pushes.error),
             provider_id = COALESCE(pushes.provider_id, u.by_provider)",
            "(pushes.provider_id = u.by_provider OR pushes.id = u.by_push)",
            now,
        )
        .await?,
    );
    // Only the attempt the receipt is about (its provider id), so a late receipt of an
    // earlier call never touches a newer one.
    written.extend(
        write_receipts::<DB>(
            tx,
            &retries,
            "status = 'queued', dispatched = 0, next_attempt_at = u.at, error = u.error",
            "pushes.provider_id = u.by_provider",
            now,
        )
        .await?,
    );
    let mut matched = vec![false; receipts.len()];
    for (t, by) in taken_by.iter().enumerate() {
        if let Some(n) = by {
            if let Some(channel) = written.get(&waiting[t].0) {
                matched[*n] = true;
                events.push(receipt_event(&waiting[t].0, channel, &receipts[*n], now));
            }
        }
    }
    Ok(matched)
}

/// One receipt write of [`apply_receipt_chunk`]: `set` on the pushes named by `rows` (the
/// `WITH` table `u`) that still wait for a receipt and pass `filter`; the ids written,
/// with their channels.
async fn write_receipts<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    rows: &Rows,
    set: &str,
    filter: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH {} UPDATE pushes SET {set}, updated_at = $1
         FROM u
         WHERE pushes.id = u.target AND {} AND pushes.status IN ('sending', 'sent') AND {filter}
         RETURNING pushes.id, pushes.channel",
        rows.cte::<DB>("u", 2),
        DB::locked_in_id_order(TARGETS_WAITING)
    );
    let rows = Q::<DB>::new(&sql)
        .bind(now)
        .bind_rows(rows)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter().map(|r| Ok((r.col(0)?, r.col(1)?))).collect()
}

/// Marks due rows put back in the outbox one by one `dispatched = 2` (on the bus) and
/// returns them; rows another transaction holds are skipped.
fn take_outbox_sql<DB: Backend>() -> String {
    format!(
        "UPDATE pushes SET dispatched = 2 WHERE id IN (
           SELECT p.id FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
           WHERE p.status = 'queued' AND p.dispatched = 0 AND p.next_attempt_at <= $1
             AND c.status IN ('running', 'completed')
           ORDER BY p.next_attempt_at LIMIT $2 {})
         RETURNING {COLUMNS}",
        DB::SKIP_LOCKED
    )
}

/// Planned first sends of one running campaign past its relay cursor (rows marked
/// `dispatched = 3` when planned), up to `room` in `seq` order, stopping before a row not
/// yet due; the cursor is moved past them in `tx`. Campaigns whose cursor another relay
/// holds are skipped. Rows past the cursor no longer queued (cancelled, skipped) or put
/// back on the per-row outbox (`dispatched = 0`) are passed over.
async fn take_past_cursor<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    now: DateTime<Utc>,
    room: i64,
) -> Result<Vec<PushRecord>> {
    let lock = if DB::ROW_LOCKS {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    // The least recently served campaign first, so campaigns running side by side take
    // turns batch by batch and a large one never holds a small one back.
    let cursors = Q::<DB>::new(&format!(
        "SELECT campaign_id, handed FROM relay_cursors
         WHERE campaign_id IN (SELECT id FROM campaigns WHERE status = 'running')
         ORDER BY served_at, campaign_id {lock}"
    ))
    .fetch_all(&mut *tx)
    .await?;
    for cursor in &cursors {
        let campaign_id: String = cursor.col("campaign_id")?;
        let handed: i64 = cursor.col("handed")?;
        let rows = Q::<DB>::new(&format!(
            "SELECT {COLUMNS}, CAST(dispatched AS BIGINT) AS dispatched, next_attempt_at FROM pushes
             WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(campaign_id.as_str())
        .bind(handed)
        .bind(room)
        .fetch_all(&mut *tx)
        .await?;
        let mut taken = Vec::with_capacity(rows.len());
        let mut to = handed;
        for row in &rows {
            let due: DateTime<Utc> = row.col("next_attempt_at")?;
            if due > now {
                break;
            }
            let push = push_from_row(row)?;
            to = push.seq;
            let dispatched: i64 = row.col("dispatched")?;
            if push.status == PushStatus::Queued && dispatched == i64::from(PLANNED) {
                taken.push(push);
            }
        }
        if to > handed {
            Q::<DB>::new(
                "UPDATE relay_cursors SET handed = $2, served_at = $3 WHERE campaign_id = $1",
            )
            .bind(campaign_id.as_str())
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !taken.is_empty() {
            return Ok(taken);
        }
    }
    Ok(Vec::new())
}

/// `pushes.dispatched` of a row planned while its campaign ran: handed to the bus by the
/// campaign's relay cursor, not row by row.
pub(super) const PLANNED: i16 = 3;

/// [`PushStore::hand_over`]'s open transaction.
struct SqlHandOver<DB: Backend> {
    tx: sqlx::Transaction<'static, DB>,
    pushes: Vec<PushRecord>,
    sealed: Sealed,
}

#[async_trait]
impl<DB: Backend> HandOver for SqlHandOver<DB> {
    fn pushes(&self) -> &[PushRecord] {
        &self.pushes
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        self.sealed.committed();
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Pushes selected by `sql` (columns [`COLUMNS`]) with the one argument `key`.
    async fn pushes_by(&self, sql: &str, key: &str) -> Result<Option<PushRecord>> {
        let row = Q::<DB>::new(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(push_from_row).transpose()
    }
}

#[async_trait]
impl<DB: Backend> PushStore for SqlStore<DB> {
    async fn insert_plan_batch(
        &self,
        campaign_id: &str,
        pushes: &[NewPush],
        skips: &[(String, SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = DB::begin(&self.pool).await?;
        // Planners of one campaign take turns: the lock keeps `seq` unique and increasing,
        // and rows commit in `seq` order, which the relay cursor relies on.
        let lock = if DB::ROW_LOCKS { "FOR UPDATE" } else { "" };
        let status: Option<String> = Q::<DB>::new(&format!(
            "SELECT status FROM campaigns WHERE id = $1 {lock}"
        ))
        .bind(campaign_id)
        .scalars(&mut tx)
        .await?
        .pop();
        // A running campaign's rows go out by its relay cursor; any other's row by row,
        // once it runs (a paused campaign's continuous plan, a follow-up after completion).
        let dispatched = if status.as_deref() == Some("running") {
            Q::<DB>::new(
                "INSERT INTO relay_cursors (campaign_id, handed, served_at) VALUES ($1, 0, $2)
                 ON CONFLICT (campaign_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(now)
            .execute(&mut tx)
            .await?;
            PLANNED
        } else {
            0
        };
        let seq: i64 =
            Q::<DB>::new("SELECT COALESCE(MAX(seq), 0) FROM pushes WHERE campaign_id = $1")
                .bind(campaign_id)
                .scalar(&mut tx)
                .await?;
        let inserted =
            DB::insert_pushes(&mut *tx, campaign_id, seq, dispatched, pushes, now).await?;
        DB::insert_skips(&mut *tx, campaign_id, skips).await?;
        let events = planned_events::<DB>(&mut tx, pushes, inserted, now).await?;
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(inserted)
    }

    async fn finish_plan(&self, campaign_id: &str, at: DateTime<Utc>) -> Result<()> {
        let sql = format!(
            "UPDATE campaigns SET planned_at = $2, eligible = {}, unreachable = {} WHERE id = $1",
            tally_sum("campaign_id = $1"),
            tally_sum(&format!(
                "campaign_id = $1 AND bucket = '{SKIP}' AND state = 'unreachable'"
            )),
        );
        Q::<DB>::new(&sql)
            .bind(campaign_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn hand_over(&self, now: DateTime<Utc>, limit: u32) -> Result<Box<dyn HandOver>> {
        let mut tx = DB::begin(&self.pool).await?;
        // Pushes back in the outbox one by one (retries, deferrals, replays, plans of a
        // campaign that was not running): each row marked as on the bus.
        let sql = take_outbox_sql::<DB>();
        let rows = Q::<DB>::new(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut tx)
            .await?;
        let mut pushes = returned_pushes(&rows)?;
        // First sends: a running campaign's rows past its relay cursor, in plan order;
        // one cursor write for the whole batch.
        let room = i64::from(limit) - pushes.len() as i64;
        if room > 0 {
            pushes.extend(take_past_cursor(&mut tx, now, room).await?);
        }
        let events = step_events(&pushes, EventType::Bus, "relay", now);
        let sealed = self.append_events(&mut tx, &events).await?;
        Ok(Box::new(SqlHandOver { tx, pushes, sealed }))
    }

    async fn reset_dispatched(&self, unconfirmed_only: bool) -> Result<u64> {
        let sql = if unconfirmed_only {
            "UPDATE pushes SET dispatched = 0 WHERE status = 'queued' AND dispatched = 1"
        } else {
            "UPDATE pushes SET dispatched = 0 WHERE status = 'queued' AND dispatched <> 0"
        };
        Q::<DB>::new(sql).execute(&self.pool).await
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
        let mut tx = DB::begin(&self.pool).await?;
        for chunk in ids.chunks(DB::LIST_CHUNK) {
            let filter = format!("id {} AND status = 'queued'", DB::in_list(2, chunk.len()));
            let sql = format!(
                "UPDATE pushes SET status = 'sending', attempts = attempts + 1, updated_at = $1
                 WHERE {} AND status = 'queued'
                 RETURNING {COLUMNS}",
                DB::locked_in_id_order(&filter)
            );
            let rows = Q::<DB>::new(&sql)
                .bind(now)
                .bind_list(chunk)
                .fetch_all(&mut tx)
                .await?;
            out.extend(returned_pushes(&rows)?);
        }
        let actor = format!("connector@{}", self.process());
        let sealed = self
            .append_events(&mut tx, &step_events(&out, EventType::Claimed, &actor, now))
            .await?;
        tx.commit().await?;
        sealed.committed();
        Ok(out)
    }

    async fn record_outcomes(&self, outcomes: &[PushOutcome], now: DateTime<Utc>) -> Result<()> {
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut tx = DB::begin(&self.pool).await?;
        let actor = format!("connector@{}", self.process());
        let mut events = outcome_events::<DB>(&mut tx, outcomes, &actor, now).await?;
        for o in outcomes {
            match o {
                PushOutcome::Sent {
                    push_id,
                    provider_id,
                } => sent.push((push_id.as_str(), provider_id.as_str())),
                PushOutcome::Failed { push_id, error } => {
                    failed.push((push_id.as_str(), error.as_str()))
                }
                PushOutcome::Defer {
                    push_id,
                    at,
                    reason,
                } => {
                    // Not an attempt: the claim's count is given back.
                    Q::<DB>::new(
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = $1, error = $2,
                           attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $3
                         WHERE id = $4 AND status = 'sending'",
                    )
                    .bind(*at)
                    .bind(reason)
                    .bind(now)
                    .bind(push_id)
                    .execute(&mut tx)
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
                    Q::<DB>::new(
                        "UPDATE pushes SET status = 'queued', dispatched = 0, next_attempt_at = $1, error = $2,
                           channel = COALESCE($3, channel), recipient = COALESCE($4, recipient),
                           content = COALESCE($5, content), updated_at = $6
                         WHERE id = $7 AND status = 'sending'",
                    )
                    .bind(*at)
                    .bind(error)
                    .bind(channel.map(|c| c.as_str()))
                    .bind(recipient)
                    .bind(content)
                    .bind(now)
                    .bind(push_id)
                    .execute(&mut tx)
                    .await?;
                }
            }
        }
        // The common outcomes go as bulk writes.
        if !sent.is_empty() {
            DB::record_sent(&mut *tx, &sent, now).await?;
            // Receipts that overtook these sends apply now, in the same transaction.
            let provider_ids: Vec<String> = sent.iter().map(|(_, p)| p.to_string()).collect();
            super::late_receipts::apply_late::<DB>(&mut tx, Some(&provider_ids), now, &mut events)
                .await?;
        }
        if !failed.is_empty() {
            DB::record_failed(&mut *tx, &failed, now).await?;
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(())
    }

    async fn pushes_in_sending(
        &self,
        claimed_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pushes WHERE status = 'sending' AND updated_at <= $1 ORDER BY updated_at LIMIT $2"
        );
        let rows = Q::<DB>::new(&sql)
            .bind(claimed_before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        pushes_from_rows(&rows)
    }

    async fn apply_receipt(&self, r: &ReceiptUpdate, now: DateTime<Utc>) -> Result<bool> {
        let matched = self.apply_receipts(std::slice::from_ref(r), now).await?;
        Ok(matched.first().copied().unwrap_or(false))
    }

    async fn apply_receipts(
        &self,
        receipts: &[ReceiptUpdate],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut matched = Vec::with_capacity(receipts.len());
        if receipts.is_empty() {
            return Ok(matched);
        }
        let mut tx = DB::begin(&self.pool).await?;
        let mut events = Vec::new();
        // A chunk's statements see the chunks before it, so the batch acts as if applied
        // one receipt at a time.
        for chunk in receipts.chunks(DB::LIST_CHUNK / 2) {
            matched.extend(apply_receipt_chunk::<DB>(&mut tx, chunk, now, &mut events).await?);
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(matched)
    }

    async fn keep_late_receipts(
        &self,
        receipts: &[ReceiptUpdate],
        now: DateTime<Utc>,
        limits: LateReceiptLimits,
    ) -> Result<u64> {
        self.keep_late(receipts, now, limits).await
    }

    async fn sweep_late_receipts(&self, now: DateTime<Utc>) -> Result<LateSweep> {
        self.sweep_late(now).await
    }

    async fn get_pushes(&self, ids: &[String]) -> Result<Vec<PushRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "SELECT {COLUMNS} FROM pushes WHERE id {}",
                DB::in_list(1, chunk.len())
            );
            let rows = Q::<DB>::new(&sql)
                .bind_list(chunk)
                .fetch_all(&self.pool)
                .await?;
            out.extend(pushes_from_rows(&rows)?);
        }
        Ok(out)
    }

    async fn sent_without_receipt(
        &self,
        channel: Channel,
        sent_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pushes
             WHERE status = 'sent' AND channel = $1 AND updated_at <= $2
               AND ($3 IS NULL OR updated_at > $3 OR (updated_at = $3 AND id {order} > $4))
             ORDER BY updated_at, id {order} LIMIT $5",
            order = DB::BYTE_ORDER
        );
        let (after_at, after_id) = after.unzip();
        let rows = Q::<DB>::new(&sql)
            .bind(channel.as_str())
            .bind(sent_before)
            .bind(after_at)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        pushes_from_rows(&rows)
    }

    async fn get_push(&self, id: &str) -> Result<Option<PushRecord>> {
        self.pushes_by(&format!("SELECT {COLUMNS} FROM pushes WHERE id = $1"), id)
            .await
    }

    async fn push_by_link(&self, code: &str) -> Result<Option<PushRecord>> {
        self.pushes_by(
            &format!("SELECT {COLUMNS} FROM pushes WHERE link_code = $1"),
            code,
        )
        .await
    }

    async fn record_click(&self, push_id: &str, at: DateTime<Utc>) -> Result<()> {
        let mut tx = DB::begin(&self.pool).await?;
        Q::<DB>::new(
            "INSERT INTO clicks (push_id, clicked_at, campaign_id)
             SELECT $1, $2, (SELECT campaign_id FROM pushes WHERE id = $1)",
        )
        .bind(push_id)
        .bind(at)
        .execute(&mut tx)
        .await?;
        let event = PushEvent::new(push_id, at, EventType::Clicked).actor("recipient");
        let sealed = self.append_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(())
    }

    async fn campaign_pushes(
        &self,
        campaign_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pushes WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        let rows = Q::<DB>::new(&sql)
            .bind(campaign_id)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        pushes_from_rows(&rows)
    }

    async fn campaign_counts(&self, campaign_id: &str) -> Result<CampaignCounts> {
        let mut c = CampaignCounts::default();
        for t in self.tallies(campaign_id).await? {
            c.eligible += t.n;
            if t.bucket == SKIP {
                *c.skipped.entry(t.state.clone()).or_default() += t.n;
                match t.state.as_str() {
                    "unreachable" => c.unreachable += t.n,
                    "opted_out" => c.opted_out += t.n,
                    _ => {}
                }
                continue;
            }
            match PushStatus::parse(&t.state) {
                Some(PushStatus::Queued) => c.queued += t.n,
                Some(PushStatus::Sending) => c.sending += t.n,
                Some(PushStatus::Sent) => c.sent += t.n,
                Some(PushStatus::Delivered) => c.delivered += t.n,
                Some(PushStatus::Failed) => c.failed += t.n,
                None => return Err(corrupt("push status", &t.state)),
            }
            *c.by_channel.entry(t.channel).or_default() += t.n;
        }
        c.clicked =
            Q::<DB>::new("SELECT COUNT(DISTINCT push_id) FROM clicks WHERE campaign_id = $1")
                .bind(campaign_id)
                .scalar(&self.pool)
                .await?;
        Ok(c)
    }

    async fn fold_tallies(&self) -> Result<u64> {
        SqlStore::fold_tallies(self).await
    }

    async fn complete_finished_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        // Pushes still to send are read off the tallies, not the pushes.
        let sql = format!(
            "UPDATE campaigns SET status = 'completed', completed_at = $1
             WHERE status = 'running' AND mode = 'once' AND planned_at IS NOT NULL
               AND {} = 0
               -- a recurring campaign waits for its next run
               AND NOT EXISTS (SELECT 1 FROM campaign_ops o WHERE o.campaign_id = campaigns.id
                               AND o.next_run_at IS NOT NULL)
             RETURNING id",
            tally_sum(&format!(
                "campaign_id = campaigns.id AND bucket <> '{SKIP}' AND state IN ('queued', 'sending')"
            ))
        );
        Q::<DB>::new(&sql).bind(now).scalars(&self.pool).await
    }

    async fn count_pushes(&self, status: PushStatus) -> Result<i64> {
        // Off the tallies of every campaign (a few rows each), not an index of the pushes.
        let sql = format!(
            "SELECT {}",
            tally_sum(&format!("bucket <> '{SKIP}' AND state = $1"))
        );
        Q::<DB>::new(&sql)
            .bind(status.as_str())
            .scalar(&self.pool)
            .await
    }

    async fn failed_pushes(
        &self,
        campaign_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pushes WHERE status = 'failed' AND ($1 IS NULL OR campaign_id = $1) AND seq > $2
             ORDER BY campaign_id {}, seq LIMIT $3",
            DB::BYTE_ORDER
        );
        let rows = Q::<DB>::new(&sql)
            .bind(campaign_id)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        pushes_from_rows(&rows)
    }

    async fn replay_failed(&self, push_ids: &[String], now: DateTime<Utc>) -> Result<u64> {
        let mut moved = Vec::new();
        let mut tx = DB::begin(&self.pool).await?;
        for chunk in push_ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "UPDATE pushes SET status = 'queued', dispatched = 0, attempts = 0, next_attempt_at = $1, updated_at = $1
                 WHERE status = 'failed' AND id {}
                 RETURNING {COLUMNS}",
                DB::in_list(2, chunk.len())
            );
            let rows = Q::<DB>::new(&sql)
                .bind(now)
                .bind_list(chunk)
                .fetch_all(&mut tx)
                .await?;
            moved.extend(pushes_from_rows(&rows)?);
        }
        let mut events = step_events(&moved, EventType::Queued, "operator", now);
        for e in &mut events {
            e.detail = Some(serde_json::json!({"reason": "dead letter replayed"}));
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(moved.len() as u64)
    }
}
