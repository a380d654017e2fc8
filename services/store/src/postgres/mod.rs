//! The production store: PostgreSQL through sqlx, with a connection pool shared by the
//! roles of a process; the dialect side of [`crate::sql::Backend`] for PostgreSQL.
//!
//! # Layout
//! - this module: connecting (`?pool_max=N`), migrations, and what PostgreSQL does its
//!   own way: row locks, `= ANY($n)` id lists, `UNNEST` rows tables (receipt batches),
//!   `->>` JSON extraction, and the bulk writes
//!   (subject upserts, tags, plan batches, sent and failed outcomes) as one multi-row
//!   `UNNEST` statement a chunk. The queries themselves are in [`crate::sql`], shared
//!   with SQLite (the conformance suite in `services/store/tests/` runs the same cases on
//!   both).
//! - [`admin`]: creating and dropping databases (tests, `policy-push migrate`).
//!
//! Differences from SQLite that matter: several processes share the database, so the
//! relay takes outbox rows with `FOR UPDATE SKIP LOCKED` and connectors claim them in id
//! order with `FOR UPDATE` (two relays or two claimers never take the same push), a
//! campaign's plan batches lock the campaign row so `seq` stays unique, and bulk paths
//! are one multi-row `UNNEST` insert. Timestamps are `TIMESTAMPTZ`, documents `JSONB`;
//! migrations live in `migrations/postgres/`.

pub mod admin;

use crate::sql::{Backend, Cell, Param, Query, SqlStore, Ts};
use crate::{NewPush, Result, StoreError};
use chrono::{DateTime, Utc};
use domain::push::SkipReason;
use domain::Subject;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Connections per process unless the URL says otherwise (`?pool_max=N`, removed from the
/// URL before connecting).
const DEFAULT_POOL_MAX: u32 = 10;

/// Rows per multi-row statement: large enough to amortise the round trip, small enough
/// to keep each statement's arrays modest.
const CHUNK: usize = 5_000;

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to the database at `url` and applies pending migrations (sqlx takes an
    /// advisory lock, so processes starting together migrate once).
    pub async fn open(url: &str) -> Result<Self> {
        let (url, pool_max) = split_pool_max(url)?;
        let opts = PgConnectOptions::from_str(&url)?.application_name("policy-push");
        let pool = PgPoolOptions::new()
            // Bounded so that many role processes stay under the server's max_connections.
            .max_connections(pool_max)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self::new(pool))
    }
}

/// Takes `pool_max=N` out of the URL's query string.
fn split_pool_max(url: &str) -> Result<(String, u32)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_POOL_MAX));
    };
    let mut max = DEFAULT_POOL_MAX;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("pool_max=") {
            Some(n) => {
                max = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| StoreError::UnsupportedUrl(format!("pool_max={n}")))?;
            }
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, max))
}

/// Keeps the last of several entries for one id, in first-seen order: a batch naming a
/// subject twice ends as the later one (as sequential upserts would), and PostgreSQL
/// refuses to update one row twice in a statement.
fn last_per_key<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut at: HashMap<K, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match at.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                at.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Runs `sql` on `pairs` as two text arrays `$1`, `$2` (with `now` as `$3`), a chunk at
/// a time.
async fn update_pairs(
    conn: &mut PgConnection,
    sql: &str,
    pairs: &[(&str, &str)],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in pairs.chunks(CHUNK) {
        let (a, b): (Vec<&str>, Vec<&str>) = chunk.iter().copied().unzip();
        sqlx::query(sql)
            .bind(&a)
            .bind(&b)
            .bind(Ts(now))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Backend for Postgres {
    const ROW_LOCKS: bool = true;
    const LIST_CHUNK: usize = CHUNK;
    const BYTE_ORDER: &'static str = "COLLATE \"C\"";
    const SKIP_LOCKED: &'static str = "FOR UPDATE OF p SKIP LOCKED";
    const TALLY_CHANGES: bool = true;
    const WRITABLE_CTE: bool = true;

    fn in_list(first: usize, _n: usize) -> String {
        format!("= ANY(${first})")
    }

    fn list_params(_n: usize) -> usize {
        1
    }

    fn json_text(column: &str, key: &str) -> String {
        format!("{column}->>'{key}'")
    }

    fn locked_in_id_order(filter: &str) -> String {
        format!("id IN (SELECT id FROM pushes WHERE {filter} ORDER BY id FOR UPDATE)")
    }

    fn bind<'q, T: Param<'q>>(q: Query<'q, Self>, v: T) -> Query<'q, Self> {
        v.bind_pg(q)
    }

    fn bind_list<'q>(q: Query<'q, Self>, items: &'q [String]) -> Query<'q, Self> {
        q.bind(items)
    }

    fn rows_cte(name: &str, first: usize, columns: &[(&str, Cell)], _rows: usize) -> String {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, cell))| match cell {
                Cell::Text => format!("${}::text[]", first + i),
                Cell::Time => format!("${}::text[]::timestamptz[]", first + i),
                Cell::Json => format!("${}::text[]::jsonb[]", first + i),
            })
            .collect();
        format!(
            "{name}({}) AS (SELECT * FROM UNNEST({}))",
            names.join(", "),
            arrays.join(", ")
        )
    }

    fn bind_rows<'q>(q: Query<'q, Self>, columns: &'q [Vec<Option<String>>]) -> Query<'q, Self> {
        columns.iter().fold(q, |q, col| q.bind(col))
    }

    async fn begin(pool: &Pool<Self>) -> Result<Transaction<'static, Self>> {
        Ok(pool.begin().await?)
    }

    crate::sql::run_on_exec!();

    async fn insert_pushes<'a>(
        conn: &'a mut PgConnection,
        campaign_id: &'a str,
        after_seq: i64,
        dispatched: i16,
        pushes: &'a [NewPush],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut seq = after_seq;
        let mut inserted = 0;
        for chunk in pushes.chunks(CHUNK) {
            let col = |f: fn(&NewPush) -> &str| chunk.iter().map(f).collect::<Vec<_>>();
            let benefits: Vec<_> = chunk.iter().map(|p| p.benefit).collect();
            let segments: Vec<_> = chunk.iter().map(|p| p.segments).collect();
            let done = sqlx::query(
                "INSERT INTO pushes (id, campaign_id, subject_id, purpose, seq, channel, recipient, status,
                   content, link_code, explanation, benefit, segments, next_attempt_at, created_at, updated_at,
                   district, kind, dispatched)
                 SELECT u.id, $1, u.subject_id, u.purpose, $2 + u.ord, u.channel, u.recipient, 'queued',
                   u.content, u.link_code, u.explanation, u.benefit, u.segments, $3, $3, $3,
                   COALESCE(s.attributes->>'district', ''), COALESCE(s.kind, ''), $14
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::text[], $12::float8[], $13::int8[])
                      WITH ORDINALITY AS u(id, subject_id, purpose, channel, recipient, content,
                                           link_code, explanation, benefit, segments, ord)
                 LEFT JOIN subjects s ON s.id = u.subject_id
                 -- A subject skipped at send time (capped, duplicate, opted out) stays skipped.
                 WHERE NOT EXISTS (SELECT 1 FROM campaign_skips k WHERE k.campaign_id = $1
                                   AND k.subject_id = u.subject_id AND k.reason <> 'unreachable')
                 ORDER BY u.ord
                 ON CONFLICT (campaign_id, subject_id, purpose) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(seq)
            .bind(Ts(now))
            .bind(col(|p| &p.id))
            .bind(col(|p| &p.subject_id))
            .bind(col(|p| p.purpose.as_str()))
            .bind(col(|p| p.channel.as_str()))
            .bind(col(|p| &p.recipient))
            .bind(col(|p| &p.content))
            .bind(col(|p| &p.link_code))
            .bind(col(|p| &p.explanation))
            .bind(&benefits)
            .bind(&segments)
            .bind(dispatched)
            .execute(&mut *conn)
            .await?;
            seq += chunk.len() as i64;
            inserted += done.rows_affected();
        }
        Ok(inserted)
    }

    async fn insert_skips<'a>(
        conn: &'a mut PgConnection,
        campaign_id: &'a str,
        skips: &'a [(String, SkipReason)],
    ) -> Result<()> {
        for chunk in skips.chunks(CHUNK) {
            let (subjects, reasons): (Vec<&str>, Vec<&str>) =
                chunk.iter().map(|(s, r)| (s.as_str(), r.as_str())).unzip();
            sqlx::query(
                "INSERT INTO campaign_skips (campaign_id, subject_id, reason, district, kind)
                 SELECT $1, u.subject_id, u.reason, COALESCE(s.attributes->>'district', ''), COALESCE(s.kind, '')
                 FROM UNNEST($2::text[], $3::text[]) AS u(subject_id, reason)
                 LEFT JOIN subjects s ON s.id = u.subject_id
                 ON CONFLICT DO NOTHING",
            )
            .bind(campaign_id)
            .bind(&subjects)
            .bind(&reasons)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn upsert_subjects<'a>(
        conn: &'a mut PgConnection,
        subjects: &'a [(Subject, Vec<String>)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let unique = last_per_key(subjects, |(s, _)| s.id.as_str().to_string());
        for chunk in unique.chunks(CHUNK) {
            let n = chunk.len();
            let (mut ids, mut kinds, mut names) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut mobiles, mut openids, mut attrs, mut tags) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for (s, t) in chunk {
                let doc = s.to_doc();
                ids.push(doc.id);
                kinds.push(doc.kind);
                names.push(doc.name);
                mobiles.push(doc.mobile);
                openids.push(doc.wechat_openid);
                attrs.push(serde_json::Value::Object(doc.attributes).to_string());
                tags.push(serde_json::to_string(t).map_err(|e| crate::sql::corrupt("tags", e))?);
            }
            sqlx::query(
                "INSERT INTO subjects (id, kind, name, mobile, wechat_openid, attributes, tags, updated_at)
                 SELECT u.id, u.kind, u.name, u.mobile, u.openid, u.attributes::jsonb, u.tags::jsonb, $8
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                      AS u(id, kind, name, mobile, openid, attributes, tags)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                   mobile = excluded.mobile, wechat_openid = excluded.wechat_openid,
                   attributes = excluded.attributes, tags = excluded.tags, updated_at = excluded.updated_at",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(&names)
            .bind(&mobiles)
            .bind(&openids)
            .bind(&attrs)
            .bind(&tags)
            .bind(Ts(now))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn set_tags<'a>(
        conn: &'a mut PgConnection,
        tags: &'a [(String, Vec<String>)],
    ) -> Result<()> {
        let unique = last_per_key(tags, |(id, _)| id.clone());
        for chunk in unique.chunks(CHUNK) {
            let mut ids = Vec::with_capacity(chunk.len());
            let mut values = Vec::with_capacity(chunk.len());
            for (id, t) in chunk {
                ids.push(id.as_str());
                values.push(serde_json::to_string(t).map_err(|e| crate::sql::corrupt("tags", e))?);
            }
            sqlx::query(
                "UPDATE subjects s SET tags = u.tags::jsonb
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, tags) WHERE s.id = u.id",
            )
            .bind(&ids)
            .bind(&values)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn record_sent<'a>(
        conn: &'a mut PgConnection,
        sent: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        update_pairs(
            conn,
            "UPDATE pushes p SET status = 'sent', provider_id = u.provider_id, error = NULL, updated_at = $3
             FROM UNNEST($1::text[], $2::text[]) AS u(id, provider_id)
             WHERE p.id = u.id AND p.status = 'sending'",
            sent,
            now,
        )
        .await
    }

    async fn record_failed<'a>(
        conn: &'a mut PgConnection,
        failed: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        update_pairs(
            conn,
            "UPDATE pushes p SET status = 'failed', error = u.error, updated_at = $3
             FROM UNNEST($1::text[], $2::text[]) AS u(id, error)
             WHERE p.id = u.id AND p.status = 'sending'",
            failed,
            now,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{last_per_key, split_pool_max};

    #[test]
    fn last_entry_per_key_wins_in_first_seen_order() {
        let items = [("a", 1), ("b", 2), ("a", 3)];
        let got: Vec<_> = last_per_key(&items, |(k, _)| *k)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(got, vec![("a", 3), ("b", 2)]);
    }

    #[test]
    fn pool_max_is_taken_out_of_the_url() {
        assert_eq!(
            split_pool_max("postgres://h/db").unwrap(),
            ("postgres://h/db".into(), 10)
        );
        assert_eq!(
            split_pool_max("postgres://h/db?sslmode=disable&pool_max=40").unwrap(),
            ("postgres://h/db?sslmode=disable".into(), 40)
        );
        assert_eq!(
            split_pool_max("postgres://h/db?pool_max=3").unwrap(),
            ("postgres://h/db".into(), 3)
        );
        assert!(split_pool_max("postgres://h/db?pool_max=0").is_err());
    }
}
