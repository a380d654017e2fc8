//! The sandbox log: every message a simulator accepted, persisted in its own SQLite file so
//! it survives a restart of the server (the sandbox plays the outside world; it is not the
//! product's database).
//!
//! **Durability and throughput: group commit.** A simulator answers "accepted" only after
//! the message's row is committed, so whatever a provider acknowledged before a crash is
//! still listed afterwards. To keep that fast under load (the demo sends 100k+ messages),
//! requests do not write themselves: they queue their rows on a channel to one writer task,
//! which takes whatever is queued (up to [`MAX_GROUP`] rows), inserts it in one transaction
//! with one multi-row `INSERT`, commits, and then wakes every request in the group. Under
//! load a commit carries hundreds of rows; idle, a row is committed at once. The file runs
//! in WAL mode with `synchronous=NORMAL`: a commit survives a crash of the process (not a
//! power cut), and readers ([`SandboxLog::list`]) never wait for the writer.
//!
//! `seq` is assigned by the writer (the last committed `seq` + 1 at open), so it follows
//! commit order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use tokio::sync::{mpsc, oneshot};

/// Most rows committed in one transaction.
pub const MAX_GROUP: usize = 1000;

/// Resolves the campaign and subject of a message from its push reference (`OutId`,
/// `client_msg_id`, `SessionContext` — as sent; for the voice short `OutId` that is the
/// short form). Provider APIs do not carry them; the embedding server knows them.
///
/// Called on the request path of every accepted message: it must be fast and must not
/// block (e.g. an in-memory map, or ids parsed out of the push id).
pub trait MessageAttribution: Send + Sync {
    /// `(campaign_id, subject_id)`; `None` records empty strings.
    fn attribute(&self, push_ref: &str) -> Option<(String, String)>;
}

/// Attributes nothing (standalone `policy-push simulate`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAttribution;

impl MessageAttribution for NoAttribution {
    fn attribute(&self, _push_ref: &str) -> Option<(String, String)> {
        None
    }
}

impl<F> MessageAttribution for F
where
    F: Fn(&str) -> Option<(String, String)> + Send + Sync,
{
    fn attribute(&self, push_ref: &str) -> Option<(String, String)> {
        self(push_ref)
    }
}

/// One message as a simulator received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxMessage {
    pub seq: i64,
    /// `sms`, `wechat` or `hotline`.
    pub channel: String,
    /// Mobile number (11 digits) or openid.
    pub to: String,
    /// SMS: `【sign】` + template text with parameters; WeChat: the data values joined by
    /// `\n` in keyword order, then `\n` + url; hotline: the TTS text.
    pub content: String,
    pub campaign_id: String,
    pub subject_id: String,
    /// `BizId` / `msgid` / `CallId` / `SerialNo`.
    pub provider_id: String,
    /// Our push id of this message: `OutId` / `client_msg_id` / `SessionContext` as sent
    /// ("" when none); for an Alibaba `SendBatchSms` whose `OutId` lists one push id per
    /// number (`p1,p2,…`), this number's entry.
    pub push_ref: String,
    /// The request's `OutId` as sent when it differs from `push_ref` (a `SendBatchSms`
    /// list), otherwise "". `QuerySendDetails` and `SmsReport` echo the request's `OutId`.
    pub out_id: String,
    /// Template code / id / TTS code used.
    pub template: String,
    pub received_at: DateTime<Utc>,
}

impl SandboxMessage {
    /// The reference the provider echoes (`OutId` of the request).
    pub fn wire_ref(&self) -> &str {
        if self.out_id.is_empty() {
            &self.push_ref
        } else {
            &self.out_id
        }
    }
}

/// A message to record; `seq`, attribution and time are filled in by the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewMessage {
    pub channel: &'static str,
    pub to: String,
    pub content: String,
    pub provider_id: String,
    pub push_ref: String,
    /// The request's `OutId` when it differs from `push_ref`, else "".
    pub out_id: String,
    pub template: String,
}

/// The sandbox log failed (the simulator answers the provider's system error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("sandbox writer stopped")]
    WriterGone,
}

/// Where the writer answers an insert: the assigned `seq`s, or the commit error.
type Done = oneshot::Sender<Result<Vec<i64>, String>>;

enum Command {
    Insert(Vec<SandboxMessage>, Done),
    Flush(oneshot::Sender<()>),
}

/// Handle to the sandbox log. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct SandboxLog {
    pool: SqlitePool,
    /// To the single writer task (group commit). Bounded so a stalled disk pushes back on
    /// the simulators instead of growing memory.
    writer: mpsc::Sender<Command>,
}

impl std::fmt::Debug for SandboxLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxLog").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandbox_messages (
    seq         INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    to_addr     TEXT NOT NULL,
    content     TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    push_ref    TEXT NOT NULL,
    out_id      TEXT NOT NULL DEFAULT '',
    template    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    cn_day      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sandbox_by_campaign ON sandbox_messages (campaign_id, seq);
CREATE INDEX IF NOT EXISTS sandbox_by_recipient ON sandbox_messages (to_addr, cn_day);
CREATE INDEX IF NOT EXISTS sandbox_by_ref ON sandbox_messages (push_ref);
";

impl SandboxLog {
    /// Opens (creating if missing) the log in `<data_dir>/sandbox.db`.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, SandboxError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|e| SandboxError::Db(sqlx::Error::Io(e)))?;
        Self::open(&data_dir.join("sandbox.db")).await
    }

    /// Opens (creating if missing) the log in the SQLite file `path`; creates the schema.
    pub async fn open(path: &Path) -> Result<Self, SandboxError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Self::start(pool).await
    }

    /// A log that lives in memory only (tests).
    pub async fn open_in_memory() -> Result<Self, SandboxError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to `:memory:` is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        Self::start(pool).await
    }

    async fn start(pool: SqlitePool) -> Result<Self, SandboxError> {
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        // Logs written before `out_id` existed.
        let has_out_id: bool = sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('sandbox_messages') WHERE name = 'out_id'",
        )
        .fetch_one(&pool)
        .await?;
        if !has_out_id {
            sqlx::query("ALTER TABLE sandbox_messages ADD COLUMN out_id TEXT NOT NULL DEFAULT ''")
                .execute(&pool)
                .await?;
        }
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM sandbox_messages")
            .fetch_one(&pool)
            .await?;
        let (tx, rx) = mpsc::channel(16 * 1024);
        tokio::spawn(writer(pool.clone(), rx, last.unwrap_or(0)));
        Ok(Self { pool, writer: tx })
    }

    /// Records messages and returns once they are committed (group commit).
    pub(crate) async fn record(
        &self,
        msgs: Vec<NewMessage>,
        attribution: &dyn MessageAttribution,
    ) -> Result<Vec<SandboxMessage>, SandboxError> {
        let now = Utc::now();
        let mut rows: Vec<SandboxMessage> = msgs
            .into_iter()
            .map(|m| {
                let (campaign_id, subject_id) = if m.push_ref.is_empty() {
                    None
                } else {
                    attribution.attribute(&m.push_ref)
                }
                .unwrap_or_default();
                SandboxMessage {
                    seq: 0,
                    channel: m.channel.to_string(),
                    to: m.to,
                    content: m.content,
                    campaign_id,
                    subject_id,
                    provider_id: m.provider_id,
                    push_ref: m.push_ref,
                    out_id: m.out_id,
                    template: m.template,
                    received_at: now,
                }
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Command::Insert(rows.clone(), tx))
            .await
            .map_err(|_| SandboxError::WriterGone)?;
        let seqs = rx
            .await
            .map_err(|_| SandboxError::WriterGone)?
            .map_err(|e| SandboxError::Db(sqlx::Error::Protocol(e)))?;
        for (row, seq) in rows.iter_mut().zip(seqs) {
            row.seq = seq;
        }
        Ok(rows)
    }

    /// Waits until everything queued so far is committed. Every accepted message is
    /// already committed when its request is answered; call this on shutdown anyway.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Command::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Messages with `seq > after_seq`, oldest first, at most `limit`, optionally of one
    /// campaign. On a database error: logged, and an empty list (see [`Self::try_list`]).
    pub async fn list(
        &self,
        campaign_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Vec<SandboxMessage> {
        match self.try_list(campaign_id, after_seq, limit).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "sandbox list failed");
                Vec::new()
            }
        }
    }

    /// [`Self::list`] that reports database errors.
    pub async fn try_list(
        &self,
        campaign_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<SandboxMessage>, SandboxError> {
        let rows = match campaign_id {
            Some(c) => {
                sqlx::query(
                    "SELECT * FROM sandbox_messages WHERE campaign_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                )
                .bind(c)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM sandbox_messages WHERE seq > ? ORDER BY seq LIMIT ?")
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    /// How many messages are recorded (optionally of one campaign).
    pub async fn count(&self, campaign_id: Option<&str>) -> Result<i64, SandboxError> {
        Ok(match campaign_id {
            Some(c) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM sandbox_messages WHERE campaign_id = ?")
                    .bind(c)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM sandbox_messages")
                    .fetch_one(&self.pool)
                    .await?
            }
        })
    }

    /// SMS to `to` on China-time day `cn_day` (`yyyyMMdd`): `(total, page rows)`.
    pub(crate) async fn sms_on_day(
        &self,
        to: &str,
        cn_day: &str,
        biz_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<SandboxMessage>), SandboxError> {
        let biz = biz_id.unwrap_or("");
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sandbox_messages WHERE to_addr = ? AND cn_day = ? AND channel = 'sms' AND (? = '' OR provider_id = ?)",
        )
        .bind(to)
        .bind(cn_day)
        .bind(biz)
        .bind(biz)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT * FROM sandbox_messages WHERE to_addr = ? AND cn_day = ? AND channel = 'sms' AND (? = '' OR provider_id = ?) ORDER BY seq LIMIT ? OFFSET ?",
        )
        .bind(to)
        .bind(cn_day)
        .bind(biz)
        .bind(biz)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((total, rows.iter().map(from_row).collect::<Result<_, _>>()?))
    }

    /// `(to, push_ref, provider_id, received_at)` of the messages on `channel` with a push
    /// ref received at or after `since`, newest first (scans back from the end of the log,
    /// which is in time order). Used once at start to warm WeChat's `client_msg_id`
    /// de-duplication after a restart.
    pub(crate) async fn recent(
        &self,
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, String, DateTime<Utc>)>, SandboxError> {
        let mut out = Vec::new();
        let mut before = i64::MAX;
        loop {
            let rows = sqlx::query(
                "SELECT * FROM sandbox_messages WHERE seq < ? ORDER BY seq DESC LIMIT 1000",
            )
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(out);
            }
            for r in &rows {
                let m = from_row(r)?;
                if m.received_at < since {
                    return Ok(out);
                }
                before = m.seq;
                if m.channel == channel && !m.push_ref.is_empty() {
                    out.push((m.to, m.push_ref, m.provider_id, m.received_at));
                }
            }
        }
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `yyyyMMdd` of `t` in China Standard Time (UTC+8).
pub(crate) fn cn_day(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8))
        .format("%Y%m%d")
        .to_string()
}

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Result<SandboxMessage, SandboxError> {
    let received: String = r.try_get("received_at")?;
    let received_at = DateTime::parse_from_rfc3339(&received)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| SandboxError::Db(sqlx::Error::Decode(Box::new(e))))?;
    Ok(SandboxMessage {
        seq: r.try_get("seq")?,
        channel: r.try_get("channel")?,
        to: r.try_get("to_addr")?,
        content: r.try_get("content")?,
        campaign_id: r.try_get("campaign_id")?,
        subject_id: r.try_get("subject_id")?,
        provider_id: r.try_get("provider_id")?,
        push_ref: r.try_get("push_ref")?,
        out_id: r.try_get("out_id")?,
        template: r.try_get("template")?,
        received_at,
    })
}

/// The single writer: takes whatever is queued (up to [`MAX_GROUP`] rows), commits it in
/// one transaction, answers every waiting request.
async fn writer(pool: SqlitePool, mut rx: mpsc::Receiver<Command>, mut last_seq: i64) {
    let mut carry: Option<Command> = None;
    loop {
        let first = match carry.take() {
            Some(c) => c,
            None => match rx.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let mut group: Vec<(Vec<SandboxMessage>, Done)> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut rows = 0usize;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Flush(done) => {
                    // Everything before the flush is in this group; answer after commit.
                    flushes.push(done);
                    break;
                }
                Command::Insert(msgs, done) => {
                    if rows > 0 && rows + msgs.len() > MAX_GROUP {
                        carry = Some(Command::Insert(msgs, done));
                        break;
                    }
                    rows += msgs.len();
                    group.push((msgs, done));
                }
            }
            next = rx.try_recv().ok();
        }
        if group.is_empty() {
            for f in flushes {
                let _ = f.send(());
            }
            continue;
        }
        let first_seq = last_seq + 1;
        let result = insert_group(&pool, &group, first_seq).await;
        match result {
            Ok(()) => {
                let mut seq = first_seq;
                for (msgs, done) in group {
                    let seqs: Vec<i64> = (seq..seq + msgs.len() as i64).collect();
                    seq += msgs.len() as i64;
                    let _ = done.send(Ok(seqs));
                }
                last_seq = seq - 1;
            }
            Err(e) => {
                tracing::error!(error = %e, rows, "sandbox commit failed");
                let msg = e.to_string();
                for (_, done) in group {
                    let _ = done.send(Err(msg.clone()));
                }
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

async fn insert_group(
    pool: &SqlitePool,
    group: &[(Vec<SandboxMessage>, Done)],
    first_seq: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut seq = first_seq;
    let all: Vec<&SandboxMessage> = group.iter().flat_map(|(m, _)| m.iter()).collect();
    // 11 binds a row; SQLite allows 32766 binds a statement.
    for chunk in all.chunks(1000) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO sandbox_messages (seq, channel, to_addr, content, campaign_id, subject_id, provider_id, push_ref, out_id, template, received_at, cn_day) ",
        );
        qb.push_values(chunk, |mut b, m| {
            b.push_bind(seq)
                .push_bind(&m.channel)
                .push_bind(&m.to)
                .push_bind(&m.content)
                .push_bind(&m.campaign_id)
                .push_bind(&m.subject_id)
                .push_bind(&m.provider_id)
                .push_bind(&m.push_ref)
                .push_bind(&m.out_id)
                .push_bind(&m.template)
                .push_bind(fmt_time(m.received_at))
                .push_bind(cn_day(m.received_at));
            seq += 1;
        });
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> NewMessage {
        NewMessage {
            channel: "sms",
            to: format!("1380000{i:04}"),
            content: format!("【签名】消息{i}"),
            provider_id: format!("biz{i}"),
            push_ref: format!("p{i}"),
            out_id: String::new(),
            template: "SMS_T".into(),
        }
    }

    #[tokio::test]
    async fn group_commit_orders_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let attr = |r: &str| Some((format!("c-{}", &r[1..2]), format!("s-{r}")));
        {
            let log = SandboxLog::open_in_dir(dir.path()).await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..300 {
                let log = log.clone();
                tasks.push(tokio::spawn(async move {
                    log.record(vec![msg(i)], &attr).await.unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            log.flush().await;
            assert_eq!(log.count(None).await.unwrap(), 300);
        }
        let log = SandboxLog::open_in_dir(dir.path()).await.unwrap();
        let all = log.list(None, 0, 1000).await;
        assert_eq!(all.len(), 300);
        assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        assert_eq!(all[0].seq, 1);
        let page = log.list(None, 10, 5).await;
        assert_eq!(
            page.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![11, 12, 13, 14, 15]
        );
        let c1 = log.list(Some("c-1"), 0, 1000).await;
        assert!(!c1.is_empty() && c1.iter().all(|m| m.campaign_id == "c-1"));
        // New rows continue the sequence after a reopen.
        let more = log.record(vec![msg(7)], &NoAttribution).await.unwrap();
        assert_eq!(more[0].seq, 301);
        assert_eq!(more[0].campaign_id, "");
    }

    #[tokio::test]
    async fn in_memory_log_and_day_query() {
        let log = SandboxLog::open_in_memory().await.unwrap();
        let rows = log
            .record(vec![msg(1), msg(2)], &NoAttribution)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
        let day = cn_day(rows[0].received_at);
        let (total, found) = log
            .sms_on_day(&rows[0].to, &day, None, 0, 50)
            .await
            .unwrap();
        assert_eq!(total, 1);
        assert_eq!(found[0].push_ref, "p1");
        let since = rows[0].received_at - chrono::Duration::minutes(10);
        let recent = log.recent("sms", since).await.unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!((recent[0].1.as_str(), recent[0].2.as_str()), ("p2", "biz2"));
        let later = Utc::now() + chrono::Duration::minutes(1);
        assert!(log.recent("sms", later).await.unwrap().is_empty());
    }
}
