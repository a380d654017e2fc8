//! The embedded default store: SQLite through sqlx, in WAL mode; the dialect side of
//! [`crate::sql::Backend`] for SQLite.
//!
//! Timestamps are stored as fixed-width UTC text (`2026-11-29T06:03:23.000000Z`) so that
//! text order is time order (see [`crate::sql::Ts`]), documents as JSON text. Writers
//! take the database lock up front (`BEGIN IMMEDIATE`); bulk writes are one prepared
//! statement a row inside that one transaction (no network round trip to amortise);
//! rows tables (receipt batches) are a multi-row `VALUES`.

use crate::sql::{Backend, Cell, Json, Param, Query, SqlStore, Ts};
use crate::{NewPush, Result};
use chrono::{DateTime, Utc};
use domain::push::SkipReason;
use domain::Subject;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Pool, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed transaction survives a killed process.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // SQLite has one writer at a time; a few connections let readers overlap it.
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        Ok(Self::new(pool))
    }
}

/// Runs `sql` once a row in `rows`, each bound by `bind`, on `conn`; rows affected.
async fn each_row<'q, T>(
    conn: &mut SqliteConnection,
    sql: &'q str,
    rows: impl IntoIterator<Item = T>,
    bind: impl Fn(Query<'q, Sqlite>, T) -> Query<'q, Sqlite>,
) -> Result<u64> {
    let mut done = 0;
    for row in rows {
        let q = bind(sqlx::query(sql), row);
        done += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(done)
}

impl Backend for Sqlite {
    const ROW_LOCKS: bool = false;
    const LIST_CHUNK: usize = 500;
    const BYTE_ORDER: &'static str = "COLLATE BINARY";
    const SKIP_LOCKED: &'static str = "";
    const TALLY_CHANGES: bool = false;
    const WRITABLE_CTE: bool = false;

    fn in_list(first: usize, n: usize) -> String {
        let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
        format!("IN ({})", list.join(", "))
    }

    fn list_params(n: usize) -> usize {
        n
    }

    fn json_text(column: &str, key: &str) -> String {
        format!("CAST(json_extract({column}, '$.{key}') AS TEXT)")
    }

    fn locked_in_id_order(filter: &str) -> String {
        filter.to_string()
    }

    fn bind<'q, T: Param<'q>>(q: Query<'q, Self>, v: T) -> Query<'q, Self> {
        v.bind_sqlite(q)
    }

    fn bind_list<'q>(q: Query<'q, Self>, items: &'q [String]) -> Query<'q, Self> {
        items.iter().fold(q, |q, id| q.bind(id))
    }

    fn rows_cte(name: &str, first: usize, columns: &[(&str, Cell)], rows: usize) -> String {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let width = columns.len();
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let row: Vec<String> = (0..width)
                    .map(|c| format!("${}", first + r * width + c))
                    .collect();
                format!("({})", row.join(", "))
            })
            .collect();
        format!(
            "{name}({}) AS (VALUES {})",
            names.join(", "),
            values.join(", ")
        )
    }

    fn bind_rows<'q>(q: Query<'q, Self>, columns: &'q [Vec<Option<String>>]) -> Query<'q, Self> {
        let rows = columns.first().map_or(0, Vec::len);
        (0..rows).fold(q, |q, r| {
            columns.iter().fold(q, |q, col| q.bind(col[r].as_deref()))
        })
    }

    async fn begin(pool: &Pool<Self>) -> Result<Transaction<'static, Self>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    crate::sql::run_on_exec!();

    async fn insert_pushes<'a>(
        conn: &'a mut SqliteConnection,
        campaign_id: &'a str,
        after_seq: i64,
        dispatched: i16,
        pushes: &'a [NewPush],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        each_row(
            conn,
            "INSERT INTO pushes (id, campaign_id, subject_id, purpose, seq, channel, recipient, status,
               content, link_code, explanation, benefit, segments, next_attempt_at, created_at, updated_at,
               district, kind, dispatched)
             SELECT $1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13, $13, $13,
               COALESCE(CAST(json_extract(s.attributes, '$.district') AS TEXT), ''), COALESCE(s.kind, ''), $14
             FROM (SELECT 1) AS one LEFT JOIN subjects s ON s.id = $3
             -- A subject skipped at send time (capped, duplicate, opted out) stays skipped.
             WHERE NOT EXISTS (SELECT 1 FROM campaign_skips k WHERE k.campaign_id = $2
                               AND k.subject_id = $3 AND k.reason <> 'unreachable')
             ON CONFLICT (campaign_id, subject_id, purpose) DO NOTHING",
            pushes.iter().zip(after_seq + 1..),
            |q, (p, seq)| {
                q.bind(&p.id)
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
                    .bind(Ts(now))
                    .bind(dispatched)
            },
        )
        .await
    }

    async fn insert_skips<'a>(
        conn: &'a mut SqliteConnection,
        campaign_id: &'a str,
        skips: &'a [(String, SkipReason)],
    ) -> Result<()> {
        each_row(
            conn,
            "INSERT INTO campaign_skips (campaign_id, subject_id, reason, district, kind)
             SELECT $1, $2, $3,
               COALESCE(CAST(json_extract(s.attributes, '$.district') AS TEXT), ''), COALESCE(s.kind, '')
             FROM (SELECT 1) AS one LEFT JOIN subjects s ON s.id = $2 WHERE true
             ON CONFLICT DO NOTHING",
            skips,
            |q, (subject_id, reason)| q.bind(campaign_id).bind(subject_id).bind(reason.as_str()),
        )
        .await?;
        Ok(())
    }

    async fn upsert_subjects<'a>(
        conn: &'a mut SqliteConnection,
        subjects: &'a [(Subject, Vec<String>)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        each_row(
            conn,
            "INSERT INTO subjects (id, kind, name, mobile, wechat_openid, attributes, tags, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
               mobile = excluded.mobile, wechat_openid = excluded.wechat_openid,
               attributes = excluded.attributes, tags = excluded.tags, updated_at = excluded.updated_at",
            subjects,
            |q, (s, tags)| {
                let doc = s.to_doc();
                q.bind(doc.id)
                    .bind(doc.kind)
                    .bind(doc.name)
                    .bind(doc.mobile)
                    .bind(doc.wechat_openid)
                    .bind(serde_json::Value::Object(doc.attributes).to_string())
                    .bind(Json(tags))
                    .bind(Ts(now))
            },
        )
        .await?;
        Ok(())
    }

    async fn set_tags<'a>(
        conn: &'a mut SqliteConnection,
        tags: &'a [(String, Vec<String>)],
    ) -> Result<()> {
        each_row(
            conn,
            "UPDATE subjects SET tags = $1 WHERE id = $2",
            tags,
            |q, (id, t)| q.bind(Json(t)).bind(id),
        )
        .await?;
        Ok(())
    }

    async fn record_sent<'a>(
        conn: &'a mut SqliteConnection,
        sent: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        each_row(
            conn,
            "UPDATE pushes SET status = 'sent', provider_id = $2, error = NULL, updated_at = $3
             WHERE id = $1 AND status = 'sending'",
            sent,
            |q, (id, provider_id)| q.bind(*id).bind(*provider_id).bind(Ts(now)),
        )
        .await?;
        Ok(())
    }

    async fn record_failed<'a>(
        conn: &'a mut SqliteConnection,
        failed: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        each_row(
            conn,
            "UPDATE pushes SET status = 'failed', error = $2, updated_at = $3
             WHERE id = $1 AND status = 'sending'",
            failed,
            |q, (id, error)| q.bind(*id).bind(*error).bind(Ts(now)),
        )
        .await?;
        Ok(())
    }
}
