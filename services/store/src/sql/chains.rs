//! Reading the push event log, and checking the audit and push-event chains
//! ([`RecordStore`]).

use super::events::{audit_hash, segment_hash, GENESIS};
use super::{corrupt, Backend, Get, Json, SqlStore, Q};
use crate::{AuditEntry, ChainHead, ChainHeads, ChainReport, RecordStore, Result, StoredEvent};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push_event::{channel_from_code, EventType, PushEvent};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rows read a page while verifying.
const PAGE: i64 = 10_000;

const EVENT_COLUMNS: &str = "id, segment, push_id, at, type, channel, actor, detail";

fn event_from_row(r: &impl Get) -> Result<(i64, StoredEvent)> {
    let code: i16 = r.col("type")?;
    let kind = EventType::from_code(code).ok_or_else(|| corrupt("event type", code))?;
    let channel = match r.col::<Option<i16>>("channel")? {
        Some(c) => Some(channel_from_code(c).ok_or_else(|| corrupt("event channel", c))?),
        None => None,
    };
    let detail: Option<Json<serde_json::Value>> = r.col("detail")?;
    Ok((
        r.col("segment")?,
        StoredEvent {
            id: r.col("id")?,
            event: PushEvent {
                push_id: r.col("push_id")?,
                at: r.col("at")?,
                kind,
                channel,
                actor: r.col("actor")?,
                detail: detail.map(|Json(d)| d),
            },
        },
    ))
}

/// A segment as stored.
struct Segment {
    id: i64,
    stream: String,
    seq: i64,
    n: i64,
    prev: String,
    hash: String,
}

/// The events of a segment seen so far while scanning.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    first: i64,
    last: i64,
}

impl<DB: Backend> SqlStore<DB> {
    /// The next page of `sql` (`id > $1 ORDER BY id LIMIT $2`) after `after`, which moves
    /// on to the page's last id.
    async fn page(&self, sql: &str, after: &mut i64) -> Result<Vec<DB::Row>> {
        let rows = Q::<DB>::new(sql)
            .bind(*after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
        if let Some(last) = rows.last() {
            *after = last.col("id")?;
        }
        Ok(rows)
    }

    async fn segments(&self) -> Result<Vec<Segment>> {
        let rows = Q::<DB>::new(
            "SELECT id, stream, seq, n, prev_hash, hash FROM event_segments ORDER BY stream, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Segment {
                    id: r.col("id")?,
                    stream: r.col("stream")?,
                    seq: r.col("seq")?,
                    n: r.col("n")?,
                    prev: r.col("prev_hash")?,
                    hash: r.col("hash")?,
                })
            })
            .collect()
    }

    /// Checks the audit chain into `report`; the hash of every chained entry by place.
    async fn verify_audit(&self, report: &mut ChainReport) -> Result<BTreeMap<i64, String>> {
        let mut hashes = BTreeMap::new();
        let mut after = 0i64;
        let mut prev = GENESIS.to_string();
        let mut expected = 1i64;
        loop {
            let rows = self
                .page(
                    "SELECT id, seq, prev_hash, hash, operator_id, action, target, detail, at
                     FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                    &mut after,
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id: i64 = r.col("id")?;
                let stored: Option<String> = r.col("hash")?;
                let Some(stored) = stored else {
                    if hashes.is_empty() {
                        report.audit_unchained += 1;
                    } else {
                        report
                            .broken
                            .push(format!("audit entry {id}: its hash was removed"));
                    }
                    continue;
                };
                report.audit_entries += 1;
                let seq: Option<i64> = r.col("seq")?;
                let link: Option<String> = r.col("prev_hash")?;
                let Json(detail) = r.col("detail")?;
                let entry = AuditEntry {
                    operator_id: r.col("operator_id")?,
                    action: r.col("action")?,
                    target: r.col("target")?,
                    detail,
                    at: r.col("at")?,
                };
                let seq = seq.unwrap_or(0);
                if seq != expected {
                    report.broken.push(format!(
                        "audit entry {id}: place {seq} where {expected} was due (entries before it deleted)"
                    ));
                }
                if link.as_deref() != Some(prev.as_str()) {
                    report.broken.push(format!(
                        "audit entry {id}: does not link to the entry before it"
                    ));
                }
                let link = link.unwrap_or_default();
                if audit_hash(&link, seq, &entry) != stored {
                    report.broken.push(format!(
                        "audit entry {id} ({} {} by {}): edited (hash mismatch)",
                        entry.action, entry.target, entry.operator_id
                    ));
                }
                hashes.insert(seq, stored.clone());
                prev = stored;
                expected = seq + 1;
            }
        }
        let head = Q::<DB>::new("SELECT seq, hash FROM chain_heads WHERE chain = 'audit'")
            .fetch_optional(&self.pool)
            .await?;
        if let Some(head) = head {
            let (seq, hash): (i64, String) = (head.col("seq")?, head.col("hash")?);
            if seq != expected - 1 || hash != prev {
                report.broken.push(format!(
                    "audit log: the head is entry {seq} but the chain ends at entry {} (entries deleted or the head rewritten)",
                    expected - 1
                ));
            }
        }
        Ok(hashes)
    }

    /// Checks the event streams' links into `report`; the segments by id.
    fn verify_links(segments: Vec<Segment>, report: &mut ChainReport) -> HashMap<i64, Segment> {
        let mut by_id = HashMap::with_capacity(segments.len());
        let mut stream: Option<String> = None;
        let mut prev = GENESIS.to_string();
        let mut expected = 1;
        for s in segments {
            if stream.as_deref() != Some(s.stream.as_str()) {
                report.streams += 1;
                stream = Some(s.stream.clone());
                prev = GENESIS.to_string();
                expected = 1;
            }
            report.segments += 1;
            if s.seq != expected {
                report.broken.push(format!(
                    "event segment {} (stream {} link {}): link {expected} is missing",
                    s.id, s.stream, s.seq
                ));
            }
            if s.prev != prev {
                report.broken.push(format!(
                    "event segment {} (stream {} link {}): does not link to the segment before it",
                    s.id, s.stream, s.seq
                ));
            }
            prev = s.hash.clone();
            expected = s.seq + 1;
            by_id.insert(s.id, s);
        }
        by_id
    }

    /// Checks every event against its segment's hash into `report`.
    async fn verify_events(
        &self,
        segments: &HashMap<i64, Segment>,
        report: &mut ChainReport,
    ) -> Result<()> {
        let mut open: HashMap<i64, Seen> = HashMap::new();
        let mut done: HashSet<i64> = HashSet::new();
        let mut after = 0i64;
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM push_events WHERE id > $1 ORDER BY id LIMIT $2");
        loop {
            let rows = self.page(&sql, &mut after).await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let (segment, e) = event_from_row(r)?;
                report.events += 1;
                let Some(s) = segments.get(&segment) else {
                    report.broken.push(format!(
                        "event {} (push {}): its segment {segment} does not exist",
                        e.id, e.event.push_id
                    ));
                    continue;
                };
                if done.contains(&segment) {
                    report.broken.push(format!(
                        "event {} (push {}): more events than its segment {segment} holds (inserted)",
                        e.id, e.event.push_id
                    ));
                    continue;
                }
                let seen = open.entry(segment).or_insert_with(|| Seen {
                    first: e.id,
                    ..Seen::default()
                });
                seen.lines.push(e.event.canonical());
                seen.last = e.id;
                if seen.lines.len() as i64 == s.n {
                    let mut seen = open.remove(&segment).unwrap_or_default();
                    done.insert(segment);
                    if segment_hash(&s.prev, &s.stream, s.seq, &mut seen.lines) != s.hash {
                        report.broken.push(format!(
                            "events {}..{} (segment {segment}, stream {} link {}): edited (hash mismatch)",
                            seen.first, seen.last, s.stream, s.seq
                        ));
                    }
                }
            }
        }
        // Segments short of events: some were deleted.
        let mut short: Vec<(i64, i64, &Segment, usize)> = segments
            .values()
            .filter(|s| !done.contains(&s.id))
            .map(|s| match open.get(&s.id) {
                Some(seen) => (seen.first, s.id, s, seen.lines.len()),
                None => (i64::MAX, s.id, s, 0),
            })
            .collect();
        short.sort_by_key(|(first, id, ..)| (*first, *id));
        for (_, id, s, n) in short {
            report.broken.push(format!(
                "event segment {id} (stream {} link {}): {n} of its {} events present (deleted)",
                s.stream, s.seq, s.n
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<DB: Backend> RecordStore for SqlStore<DB> {
    async fn push_events(&self, push_id: &str) -> Result<Vec<StoredEvent>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM push_events WHERE push_id = $1 ORDER BY id");
        let rows = Q::<DB>::new(&sql)
            .bind(push_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(event_from_row(r)?.1)).collect()
    }

    async fn events_of_pushes(&self, push_ids: &[String]) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for chunk in push_ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM push_events WHERE push_id {}",
                DB::in_list(1, chunk.len())
            );
            for r in Q::<DB>::new(&sql)
                .bind_list(chunk)
                .fetch_all(&self.pool)
                .await?
            {
                out.push(event_from_row(&r)?.1);
            }
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    async fn chain_heads(&self, at: DateTime<Utc>) -> Result<ChainHeads> {
        let mut heads = Vec::new();
        if let Some(r) = Q::<DB>::new("SELECT seq, hash FROM chain_heads WHERE chain = 'audit'")
            .fetch_optional(&self.pool)
            .await?
        {
            heads.push(ChainHead {
                chain: "audit".to_string(),
                seq: r.col("seq")?,
                hash: r.col("hash")?,
            });
        }
        let rows = Q::<DB>::new(
            "SELECT stream, seq, hash FROM event_segments s
             WHERE seq = (SELECT MAX(seq) FROM event_segments t WHERE t.stream = s.stream)
             ORDER BY stream",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            heads.push(ChainHead {
                chain: r.col("stream")?,
                seq: r.col("seq")?,
                hash: r.col("hash")?,
            });
        }
        Ok(ChainHeads { at, heads })
    }

    async fn verify_chains(&self, published: &[ChainHeads]) -> Result<ChainReport> {
        let mut report = ChainReport::default();
        let audit = self.verify_audit(&mut report).await?;
        let segments = self.segments().await?;
        let mut links: HashMap<(String, i64), String> = HashMap::with_capacity(segments.len());
        for s in &segments {
            links.insert((s.stream.clone(), s.seq), s.hash.clone());
        }
        let by_id = Self::verify_links(segments, &mut report);
        self.verify_events(&by_id, &mut report).await?;
        for p in published {
            for h in &p.heads {
                let found = if h.chain == "audit" {
                    h.seq == 0 || audit.get(&h.seq) == Some(&h.hash)
                } else {
                    links.get(&(h.chain.clone(), h.seq)) == Some(&h.hash)
                };
                report.published_checked += 1;
                if !found {
                    report.broken.push(format!(
                        "published head of {} ({} link {}) is no longer in the chain (rewritten or deleted)",
                        p.at.format("%Y-%m-%d"),
                        h.chain,
                        h.seq
                    ));
                }
            }
        }
        Ok(report)
    }
}
