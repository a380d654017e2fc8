//! The push event log, written in one place: [`SqlStore::append_events`] appends a store
//! call's events to `push_events` in the caller's transaction, as one multi-row insert a
//! chunk, each chunk sealed by one `event_segments` row (a link of a hash chain).
//!
//! No global chain head: a process keeps [`SLOTS`] writer streams ([`Streams`]); a store
//! call takes a free one for the length of its transaction, so concurrent writers never
//! wait on each other or on the database for a chain head. A stream whose transaction
//! did not commit (or whose commit is in doubt) is abandoned and a new one started, so a
//! stream never forks. `docs/security.md` describes the design and what it detects.

use super::{corrupt, Backend, Cell, Get, Rows, SqlStore, Ts, Q};
use crate::{NewPush, PushOutcome, PushRecord, ReceiptUpdate, Result};
use chrono::{DateTime, Utc};
use domain::push_event::{channel_code, timestamp_text, EventType, PushEvent};
use domain::Channel;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The hash before the first link of every chain.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writer streams a process keeps: more than the connections of a pool, so a store call
/// practically never waits for one.
pub(crate) const SLOTS: usize = 32;

/// The columns of the events a statement inserts.
const EVENT_ROWS: &[(&str, Cell)] = &[
    ("push_id", Cell::Text),
    ("at", Cell::Time),
    ("type", Cell::Text),
    ("channel", Cell::Text),
    ("actor", Cell::Text),
    ("detail", Cell::Json),
];

/// The last link of one writer stream.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    stream: String,
    seq: i64,
    hash: String,
}

impl Head {
    fn fresh(process: &str) -> Self {
        Head {
            stream: format!("{process}/{}", uuid::Uuid::new_v4().simple()),
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// This process's writer streams.
pub(crate) struct Streams {
    /// `host:pid`: names the streams and the connector process that claims a push.
    process: String,
    /// Each the head of one stream, held by one store call at a time.
    slots: Vec<Arc<Mutex<Head>>>,
    next: AtomicUsize,
}

impl Streams {
    pub(crate) fn new() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let process = format!("{host}:{}", std::process::id());
        let slots = (0..SLOTS)
            .map(|_| Arc::new(Mutex::new(Head::fresh(&process))))
            .collect();
        Streams {
            process,
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// `host:pid` of this process.
    pub(crate) fn process(&self) -> &str {
        &self.process
    }

    /// A free stream, the first free one (so that, written by few callers at a time,
    /// the links gather in few long chains); waits only when every slot is busy.
    async fn take(&self) -> OwnedMutexGuard<Head> {
        for slot in &self.slots {
            if let Ok(g) = slot.clone().try_lock_owned() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        self.slots[i].clone().lock_owned().await
    }
}

/// The events of a store call, written in its open transaction: call
/// [`Sealed::committed`] once the transaction committed. Dropped otherwise, the stream is
/// abandoned (its next link would point at a segment that may not exist).
#[must_use = "call committed() after the transaction commits"]
pub(crate) struct Sealed {
    held: Option<(OwnedMutexGuard<Head>, Head)>,
    process: String,
}

impl Sealed {
    fn none() -> Self {
        Sealed {
            held: None,
            process: String::new(),
        }
    }

    /// The transaction committed: the stream moves on to the segments written.
    pub(crate) fn committed(mut self) {
        if let Some((mut guard, head)) = self.held.take() {
            *guard = head;
        }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if let Some((mut guard, _)) = self.held.take() {
            *guard = Head::fresh(&self.process);
        }
    }
}

/// The hash of a segment: SHA-256 of the hash before it, its stream, place and size, and
/// the canonical texts of its events in byte order (so the order the database assigns
/// ids within one statement does not matter).
pub(crate) fn segment_hash(prev: &str, stream: &str, seq: i64, lines: &mut [String]) -> String {
    lines.sort_unstable();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(format!("\n{stream}\n{seq}\n{}\n", lines.len()).as_bytes());
    for l in lines.iter() {
        h.update(l.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A random positive segment id (the writer picks it, so the segment and its events go
/// in one statement).
fn segment_id() -> i64 {
    (uuid::Uuid::new_v4().as_u128() as u64 >> 1) as i64
}

/// The `event_segments` row of a chunk.
struct Link {
    id: i64,
    stream: String,
    seq: i64,
    n: i64,
    prev: String,
    hash: String,
    at: DateTime<Utc>,
}

impl Link {
    /// Binds `$1`…`$7` of the segment insert.
    fn bind<DB: Backend>(self, q: Q<'_, DB>) -> Q<'_, DB> {
        q.bind(self.id)
            .bind(self.stream)
            .bind(self.seq)
            .bind(self.n)
            .bind(self.prev)
            .bind(self.hash)
            .bind(self.at)
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// `host:pid` of this process (the actor of a claim).
    pub(crate) fn process(&self) -> &str {
        self.streams.process()
    }

    /// Appends `events` in `tx`: per chunk one segment row and one multi-row insert (one
    /// statement on PostgreSQL). Call [`Sealed::committed`] after committing `tx`.
    pub(crate) async fn append_events(
        &self,
        tx: &mut sqlx::Transaction<'static, DB>,
        events: &[PushEvent],
    ) -> Result<Sealed> {
        if events.is_empty() {
            return Ok(Sealed::none());
        }
        let guard = self.streams.take().await;
        let mut head = guard.clone();
        // Abandons the stream if a statement below fails.
        let mut sealed = Sealed {
            held: Some((guard, head.clone())),
            process: self.streams.process().to_string(),
        };
        for chunk in events.chunks(DB::LIST_CHUNK) {
            let mut lines: Vec<String> = chunk.iter().map(PushEvent::canonical).collect();
            let seq = head.seq + 1;
            let hash = segment_hash(&head.hash, &head.stream, seq, &mut lines);
            let at = chunk.iter().map(|e| e.at).max().unwrap_or_default();
            let id = segment_id();
            let mut rows = Rows::new(EVENT_ROWS);
            for e in chunk {
                rows.push([
                    Some(e.push_id.clone()),
                    Some(Ts(e.at).text()),
                    Some(e.kind.code().to_string()),
                    e.channel.map(|c| channel_code(c).to_string()),
                    e.actor.clone(),
                    e.detail.as_ref().map(|d| d.to_string()),
                ]);
            }
            let segment = "INSERT INTO event_segments (id, stream, seq, n, prev_hash, hash, at)
                           VALUES ($1, $2, $3, $4, $5, $6, $7)";
            let insert =
                "INSERT INTO push_events (segment, push_id, at, type, channel, actor, detail)
                 SELECT $1, u.push_id, u.at, CAST(u.type AS SMALLINT), CAST(u.channel AS SMALLINT),
                        u.actor, u.detail FROM u";
            let link = Link {
                id,
                stream: head.stream.clone(),
                seq,
                n: chunk.len() as i64,
                prev: head.hash.clone(),
                hash: hash.clone(),
                at,
            };
            if DB::WRITABLE_CTE {
                let sql = format!("WITH s AS ({segment}), {} {insert}", rows.cte::<DB>("u", 8));
                link.bind(Q::<DB>::new(&sql))
                    .bind_rows(&rows)
                    .execute(&mut *tx)
                    .await?;
            } else {
                link.bind(Q::<DB>::new(segment)).execute(&mut *tx).await?;
                let sql = format!("WITH {} {insert}", rows.cte::<DB>("u", 2));
                Q::<DB>::new(&sql)
                    .bind(id)
                    .bind_rows(&rows)
                    .execute(&mut *tx)
                    .await?;
            }
            head = Head {
                stream: head.stream,
                seq,
                hash,
            };
        }
        if let Some((_, h)) = sealed.held.as_mut() {
            *h = head;
        }
        Ok(sealed)
    }
}

/// One event of `kind` per push, on the push's channel.
pub(crate) fn step_events(
    pushes: &[PushRecord],
    kind: EventType,
    actor: &str,
    now: DateTime<Utc>,
) -> Vec<PushEvent> {
    pushes
        .iter()
        .map(|p| {
            PushEvent::new(&p.id, now, kind)
                .channel(p.channel)
                .actor(actor)
        })
        .collect()
}

/// `planned` events of the pushes of a plan batch that were inserted (`inserted` of
/// them: all, unless the campaign had some of these subjects already).
pub(crate) async fn planned_events<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    pushes: &[NewPush],
    inserted: u64,
    now: DateTime<Utc>,
) -> Result<Vec<PushEvent>> {
    let mut kept: Option<HashSet<String>> = None;
    if inserted < pushes.len() as u64 {
        let ids: Vec<String> = pushes.iter().map(|p| p.id.clone()).collect();
        let mut found = HashSet::new();
        for chunk in ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "SELECT id FROM pushes WHERE id {}",
                DB::in_list(1, chunk.len())
            );
            found.extend(
                Q::<DB>::new(&sql)
                    .bind_list(chunk)
                    .scalars::<String>(&mut *tx)
                    .await?,
            );
        }
        kept = Some(found);
    }
    Ok(pushes
        .iter()
        .filter(|p| kept.as_ref().is_none_or(|k| k.contains(&p.id)))
        .map(|p| {
            PushEvent::new(&p.id, now, EventType::Planned)
                .channel(p.channel)
                .actor("planner")
        })
        .collect())
}

/// The events of a connector's outcomes, for the pushes still `sending` (the ones the
/// outcomes will change): read in `tx` before the outcomes are written, for the channel
/// each push was tried on.
pub(crate) async fn outcome_events<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    outcomes: &[PushOutcome],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<PushEvent>> {
    let ids: Vec<String> = outcomes
        .iter()
        .map(|o| outcome_push(o).to_string())
        .collect();
    let mut channels: HashMap<String, Channel> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(DB::LIST_CHUNK) {
        let sql = format!(
            "SELECT id, channel FROM pushes WHERE status = 'sending' AND id {}",
            DB::in_list(1, chunk.len())
        );
        for r in Q::<DB>::new(&sql)
            .bind_list(chunk)
            .fetch_all(&mut *tx)
            .await?
        {
            let channel: String = r.col("channel")?;
            let channel = Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?;
            channels.insert(r.col("id")?, channel);
        }
    }
    let mut out = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let Some(&channel) = channels.get(outcome_push(o)) else {
            continue;
        };
        let e = |kind| {
            PushEvent::new(outcome_push(o), now, kind)
                .channel(channel)
                .actor(actor)
        };
        out.push(match o {
            PushOutcome::Sent { provider_id, .. } => {
                e(EventType::Sent).detail(json!({ "provider_id": provider_id }))
            }
            PushOutcome::Failed { error, .. } => {
                e(EventType::Failed).detail(json!({ "error": error }))
            }
            PushOutcome::Defer { at, reason, .. } => e(EventType::Deferred)
                .detail(json!({ "reason": reason, "next_attempt": at.to_rfc3339() })),
            PushOutcome::Requeue {
                at,
                error,
                channel: Some(to),
                ..
            } if *to != channel => e(EventType::Fallback).detail(json!({
                "to": to.as_str(), "answer": error, "next_attempt": at.to_rfc3339()
            })),
            PushOutcome::Requeue { at, error, .. } => e(EventType::Retry)
                .detail(json!({ "reason": error, "next_attempt": at.to_rfc3339() })),
        });
    }
    Ok(out)
}

fn outcome_push(o: &PushOutcome) -> &str {
    match o {
        PushOutcome::Sent { push_id, .. }
        | PushOutcome::Failed { push_id, .. }
        | PushOutcome::Defer { push_id, .. }
        | PushOutcome::Requeue { push_id, .. } => push_id,
    }
}

/// The event of a receipt applied to a push on `channel`.
pub(crate) fn receipt_event(
    push_id: &str,
    channel: &str,
    r: &ReceiptUpdate,
    now: DateTime<Utc>,
) -> PushEvent {
    let e = |kind| {
        let e = PushEvent::new(push_id, now, kind).actor("provider");
        match Channel::parse(channel) {
            Some(c) => e.channel(c),
            None => e,
        }
    };
    match r.retry_at {
        Some(at) => e(EventType::Retry).detail(json!({
            "reason": r.error, "next_attempt": at.to_rfc3339(), "receipt": true
        })),
        None => match &r.error {
            Some(error) => {
                e(EventType::Receipt).detail(json!({ "delivered": r.delivered, "error": error }))
            }
            None => e(EventType::Receipt).detail(json!({ "delivered": r.delivered })),
        },
    }
}

/// The canonical text of an audit entry, as its chain hashes it.
pub(crate) fn audit_hash(prev: &str, seq: i64, e: &crate::AuditEntry) -> String {
    let mut detail = String::new();
    domain::push_event::canonical_json(&e.detail, &mut detail);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(
        format!(
            "\n{seq}\n{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{detail}\n",
            e.operator_id,
            e.action,
            e.target,
            timestamp_text(e.at)
        )
        .as_bytes(),
    );
    hex::encode(h.finalize())
}

/// `at` as both databases keep it.
pub(crate) fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    domain::push_event::micros(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_hash_covers_every_event_and_the_link_before_it() {
        let mut a = vec!["p1\u{1f}x\n".to_string(), "p2\u{1f}y\n".to_string()];
        let mut b = vec!["p2\u{1f}y\n".to_string(), "p1\u{1f}x\n".to_string()];
        let h = segment_hash(GENESIS, "s", 1, &mut a);
        assert_eq!(h, segment_hash(GENESIS, "s", 1, &mut b), "order-free");
        assert_ne!(h, segment_hash(GENESIS, "s", 2, &mut a));
        assert_ne!(h, segment_hash(&h, "s", 1, &mut a));
        let mut fewer = vec!["p1\u{1f}x\n".to_string()];
        assert_ne!(h, segment_hash(GENESIS, "s", 1, &mut fewer));
    }

    #[test]
    fn an_abandoned_stream_starts_again() {
        let streams = Streams::new();
        let process = streams.process().to_string();
        let slot = streams.slots[0].clone();
        let before = slot.try_lock().unwrap().stream.clone();
        let guard = slot.clone().try_lock_owned().unwrap();
        let mut next = guard.clone();
        next.seq = 1;
        drop(Sealed {
            held: Some((guard, next.clone())),
            process: process.clone(),
        });
        let h = slot.try_lock().unwrap().clone();
        assert_ne!(h.stream, before);
        assert_eq!(h.seq, 0);
        let guard = slot.clone().try_lock_owned().unwrap();
        let mut next = guard.clone();
        next.seq = 1;
        Sealed {
            held: Some((guard, next)),
            process,
        }
        .committed();
        assert_eq!(slot.try_lock().unwrap().seq, 1);
    }
}
