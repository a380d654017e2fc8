//! The store written once: every query of both backends, generic over [`Backend`].
//!
//! # Layout
//! - [`SqlStore`]: the store over a pool of either database; `sqlite::SqliteStore` and
//!   `postgres::PgStore` are its two instances.
//! - [`Backend`]: the dialect seam, implemented in `crate::sqlite` and `crate::postgres`:
//!   how a transaction begins (`BEGIN IMMEDIATE` on SQLite), row locks (`FOR UPDATE`,
//!   `SKIP LOCKED`), id lists (`= ANY($n)` or `IN ($n, …)`), JSON extraction, byte-order
//!   collation, and the bulk writes (`UNNEST` statements on PostgreSQL, one prepared
//!   statement a row in one transaction on SQLite).
//! - [`Param`] and [`Column`]: how a Rust value is bound and read on each backend, so
//!   that each query binds and each row maps once; [`Ts`] is a timestamp column
//!   (`TIMESTAMPTZ`, or fixed-width UTC text on SQLite so that text order is time order),
//!   JSON columns go through [`Json`] (`JSONB`, or text on SQLite).
//! - [`Q`]: a statement with its arguments, run on a pool or in a transaction.
//! - [`Rows`]: a table of values bound as arguments (`UNNEST` arrays or multi-row
//!   `VALUES`), which set-based writes join as a `WITH` table.
//! - One module a trait, each `impl<DB: Backend> …Store for SqlStore<DB>`: `operators`,
//!   `subjects`, `catalogue`, `pushes`, `audit`, `optouts`, `params`, `reports`,
//!   `operations`, `templates`, `attributes`; `late_receipts` keeps receipts that overtook
//!   their send (part of `PushStore`); `operators` also holds the console sessions.
//! - `events`: the push event log: [`SqlStore::append_events`] writes a store call's
//!   events and their hash-chain segment in the caller's transaction (one multi-row
//!   insert); `chains` ([`crate::RecordStore`]): reading a push's events, the chain
//!   heads, and verifying the audit and event chains.

mod attributes;
mod audit;
mod catalogue;
mod chains;
mod events;
mod late_receipts;
mod operations;
mod operators;
mod optouts;
mod params;
mod pushes;
mod reports;
mod subjects;
mod tallies;
mod templates;

use crate::{NewPush, Result, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use domain::push::SkipReason;
use domain::Subject;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{ColumnIndex, Database, Pool, Postgres, Sqlite, Transaction};
use std::future::Future;

pub use sqlx::types::Json;

/// The store over a pool of `DB`.
pub struct SqlStore<DB: Database> {
    pub(crate) pool: Pool<DB>,
    /// This process's push-event chain streams (see [`events`]).
    pub(crate) streams: std::sync::Arc<events::Streams>,
}

impl<DB: Database> SqlStore<DB> {
    pub(crate) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            streams: std::sync::Arc::new(events::Streams::new()),
        }
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// A statement as sqlx holds it.
pub type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Where a statement runs: the pool, or an open transaction.
pub enum Exec<'a, DB: Database> {
    Pool(&'a Pool<DB>),
    Conn(&'a mut DB::Connection),
}

impl<'a, DB: Database> From<&'a Pool<DB>> for Exec<'a, DB> {
    fn from(p: &'a Pool<DB>) -> Self {
        Exec::Pool(p)
    }
}

impl<'a, 't, DB: Database> From<&'a mut Transaction<'t, DB>> for Exec<'a, DB> {
    fn from(tx: &'a mut Transaction<'t, DB>) -> Self {
        Exec::Conn(&mut **tx)
    }
}

/// What differs between the databases. Everything else is shared SQL with `$N`
/// placeholders.
pub trait Backend: Database<Row: Get> {
    /// Whether `SELECT … FOR UPDATE` locks rows (PostgreSQL). SQLite has one writer at a
    /// time and takes the database lock with `BEGIN IMMEDIATE` instead.
    const ROW_LOCKS: bool;
    /// Ids per statement where a statement takes a list of ids.
    const LIST_CHUNK: usize;
    /// The collation that orders text by bytes.
    const BYTE_ORDER: &'static str;
    /// The lock clause that ends a query taking outbox rows `p` nobody else holds.
    const SKIP_LOCKED: &'static str;
    /// Whether writers append campaign tally changes to `campaign_tally_changes` for
    /// [`crate::PushStore::fold_tallies`] to fold in (PostgreSQL: concurrent writers never
    /// wait on a shared counter row), rather than updating `campaign_tallies` in place
    /// (SQLite: one writer at a time).
    const TALLY_CHANGES: bool;
    /// Whether a `WITH` clause may hold an `INSERT` (PostgreSQL), so that a push-event
    /// segment and its events go in one statement.
    const WRITABLE_CTE: bool;

    /// The test `IN` a list of `n` values bound by [`Q::bind_list`] from placeholder
    /// `$first` on: `= ANY($first)` or `IN ($first, …)`.
    fn in_list(first: usize, n: usize) -> String;
    /// Placeholders an [`Backend::in_list`] of `n` values takes (the next one is
    /// `$first + list_params(n)`).
    fn list_params(n: usize) -> usize;
    /// Text of member `key` of the JSON object in `column`, `NULL` when absent.
    fn json_text(column: &str, key: &str) -> String;
    /// `filter` on `pushes`, with the rows it selects locked in id order (so that two
    /// writers never deadlock) where the database locks rows.
    fn locked_in_id_order(filter: &str) -> String;

    /// Binds `v` as the next argument, as [`Param`] says for this database.
    fn bind<'q, T: Param<'q>>(q: Query<'q, Self>, v: T) -> Query<'q, Self>;
    /// Binds the values of an [`Backend::in_list`] test.
    fn bind_list<'q>(q: Query<'q, Self>, items: &'q [String]) -> Query<'q, Self>;
    /// The `WITH` table `name(column, …)` of `rows` rows whose cells [`Backend::bind_rows`]
    /// binds from placeholder `$first` on: `AS (SELECT * FROM UNNEST($first::text[], …))`
    /// or `AS (VALUES ($first, …), …)`.
    fn rows_cte(name: &str, first: usize, columns: &[(&str, Cell)], rows: usize) -> String;
    /// Binds the cells of a [`Backend::rows_cte`] table, given by column.
    fn bind_rows<'q>(q: Query<'q, Self>, columns: &'q [Vec<Option<String>>]) -> Query<'q, Self>;

    /// Begins a transaction that writes (on SQLite it takes the write lock at once, so
    /// that two writers never deadlock upgrading a read lock).
    fn begin(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>>> + Send;
    /// Runs `q`; rows affected. (These three are `run_on_exec!` in both backends.)
    fn execute<'a, 'q: 'a>(
        q: Query<'q, Self>,
        e: Exec<'a, Self>,
    ) -> impl Future<Output = Result<u64>> + Send + 'a;
    fn fetch_all<'a, 'q: 'a>(
        q: Query<'q, Self>,
        e: Exec<'a, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Row>>> + Send + 'a;
    fn fetch_optional<'a, 'q: 'a>(
        q: Query<'q, Self>,
        e: Exec<'a, Self>,
    ) -> impl Future<Output = Result<Option<Self::Row>>> + Send + 'a;

    // Bulk writes, in an open transaction.

    /// Inserts a plan batch's pushes (`queued`, numbered from `after_seq + 1` in slice
    /// order, with `dispatched` as given) unless the campaign has a push of that subject and purpose or has skipped
    /// the subject at send time; returns the pushes inserted.
    fn insert_pushes<'a>(
        conn: &'a mut Self::Connection,
        campaign_id: &'a str,
        after_seq: i64,
        dispatched: i16,
        pushes: &'a [NewPush],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send + 'a;
    /// Inserts a campaign's skips, leaving those it already has.
    fn insert_skips<'a>(
        conn: &'a mut Self::Connection,
        campaign_id: &'a str,
        skips: &'a [(String, SkipReason)],
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Inserts or replaces subjects with their tags (the later of two entries of one id
    /// wins).
    fn upsert_subjects<'a>(
        conn: &'a mut Self::Connection,
        subjects: &'a [(Subject, Vec<String>)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Replaces the tags of subjects (the later of two entries of one id wins).
    fn set_tags<'a>(
        conn: &'a mut Self::Connection,
        tags: &'a [(String, Vec<String>)],
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Moves pushes in `sending` to `sent` with their provider ids `(push id, provider id)`.
    fn record_sent<'a>(
        conn: &'a mut Self::Connection,
        sent: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// Moves pushes in `sending` to `failed` with their errors `(push id, error)`.
    fn record_failed<'a>(
        conn: &'a mut Self::Connection,
        failed: &'a [(&'a str, &'a str)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
}

/// The executor methods of a [`Backend`] implementation: the same text for both, but
/// sqlx's executors are concrete types.
macro_rules! run_on_exec {
    () => {
        async fn execute<'a, 'q: 'a>(
            q: $crate::sql::Query<'q, Self>,
            e: $crate::sql::Exec<'a, Self>,
        ) -> $crate::Result<u64> {
            let done = match e {
                $crate::sql::Exec::Pool(p) => q.execute(p).await?,
                $crate::sql::Exec::Conn(c) => q.execute(c).await?,
            };
            Ok(done.rows_affected())
        }

        async fn fetch_all<'a, 'q: 'a>(
            q: $crate::sql::Query<'q, Self>,
            e: $crate::sql::Exec<'a, Self>,
        ) -> $crate::Result<Vec<Self::Row>> {
            Ok(match e {
                $crate::sql::Exec::Pool(p) => q.fetch_all(p).await?,
                $crate::sql::Exec::Conn(c) => q.fetch_all(c).await?,
            })
        }

        async fn fetch_optional<'a, 'q: 'a>(
            q: $crate::sql::Query<'q, Self>,
            e: $crate::sql::Exec<'a, Self>,
        ) -> $crate::Result<Option<Self::Row>> {
            Ok(match e {
                $crate::sql::Exec::Pool(p) => q.fetch_optional(p).await?,
                $crate::sql::Exec::Conn(c) => q.fetch_optional(c).await?,
            })
        }
    };
}
pub(crate) use run_on_exec;

/// A statement with its arguments.
pub struct Q<'q, DB: Backend>(Query<'q, DB>);

impl<'q, DB: Backend> Q<'q, DB> {
    pub fn new(sql: &'q str) -> Self {
        Q(sqlx::query(sql))
    }

    pub fn bind<T: Param<'q>>(self, v: T) -> Self {
        Q(DB::bind(self.0, v))
    }

    /// Binds a list of ids for an [`Backend::in_list`] test.
    pub fn bind_list(self, items: &'q [String]) -> Self {
        Q(DB::bind_list(self.0, items))
    }

    /// Binds the cells of `rows` (its [`Rows::cte`] names the placeholders).
    pub fn bind_rows(self, rows: &'q Rows) -> Self {
        Q(DB::bind_rows(self.0, &rows.cells))
    }

    /// Rows affected.
    pub async fn execute<'a>(self, e: impl Into<Exec<'a, DB>>) -> Result<u64>
    where
        'q: 'a,
    {
        DB::execute(self.0, e.into()).await
    }

    pub async fn fetch_all<'a>(self, e: impl Into<Exec<'a, DB>>) -> Result<Vec<DB::Row>>
    where
        'q: 'a,
    {
        DB::fetch_all(self.0, e.into()).await
    }

    pub async fn fetch_optional<'a>(self, e: impl Into<Exec<'a, DB>>) -> Result<Option<DB::Row>>
    where
        'q: 'a,
    {
        DB::fetch_optional(self.0, e.into()).await
    }

    /// The first column of every row.
    pub async fn scalars<'a, T: Column>(self, e: impl Into<Exec<'a, DB>>) -> Result<Vec<T>>
    where
        'q: 'a,
    {
        self.fetch_all(e).await?.iter().map(|r| r.col(0)).collect()
    }

    /// The first column of the one row the statement returns.
    pub async fn scalar<'a, T: Column>(self, e: impl Into<Exec<'a, DB>>) -> Result<T>
    where
        'q: 'a,
    {
        match self.fetch_optional(e).await? {
            Some(row) => row.col(0),
            None => Err(sqlx::Error::RowNotFound.into()),
        }
    }
}

/// The type of a [`Rows`] column. Cells are bound as text either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Text,
    /// A timestamp, written by [`Ts::text`].
    Time,
    /// A JSON document (`JSONB` on PostgreSQL, text on SQLite).
    Json,
}

/// A table of values that one set-based statement joins, as `WITH name(column, …)`:
/// `UNNEST` of one array a column on PostgreSQL, multi-row `VALUES` on SQLite.
#[derive(Debug, Clone)]
pub struct Rows {
    columns: &'static [(&'static str, Cell)],
    /// By column; `None` is NULL.
    cells: Vec<Vec<Option<String>>>,
}

impl Rows {
    pub fn new(columns: &'static [(&'static str, Cell)]) -> Self {
        Self {
            columns,
            cells: vec![Vec::new(); columns.len()],
        }
    }

    /// Adds a row, one cell a column in column order.
    pub fn push(&mut self, row: impl IntoIterator<Item = Option<String>>) {
        let mut n = 0;
        for (col, cell) in self.cells.iter_mut().zip(row) {
            col.push(cell);
            n += 1;
        }
        assert_eq!(n, self.columns.len(), "a row has one cell a column");
    }

    pub fn len(&self) -> usize {
        self.cells.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `name(column, …) AS (…)` for a `WITH` clause, its cells bound from `$first` on by
    /// [`Q::bind_rows`].
    pub fn cte<DB: Backend>(&self, name: &str, first: usize) -> String {
        DB::rows_cte(name, first, self.columns, self.len())
    }
}

/// A value bound as a statement argument, the same way on both backends.
pub trait Param<'q>: Send + 'q {
    fn bind_sqlite(self, q: Query<'q, Sqlite>) -> Query<'q, Sqlite>;
    fn bind_pg(self, q: Query<'q, Postgres>) -> Query<'q, Postgres>;
}

/// Types sqlx binds alike on both databases.
macro_rules! native_params {
    ($q:lifetime; $($t:ty),* $(,)?) => {$(
        impl<$q> Param<$q> for $t {
            fn bind_sqlite(self, q: Query<$q, Sqlite>) -> Query<$q, Sqlite> {
                q.bind(self)
            }
            fn bind_pg(self, q: Query<$q, Postgres>) -> Query<$q, Postgres> {
                q.bind(self)
            }
        }
    )*};
}

native_params!('q;
    &'q str, Option<&'q str>, &'q String, &'q Option<String>, String, Option<String>,
    i64, Option<i64>, i16, f64, Option<f64>, bool, NaiveDate, Ts, Option<Ts>,
);

impl<'q, T: serde::Serialize + Sync + 'q> Param<'q> for Json<&'q T> {
    fn bind_sqlite(self, q: Query<'q, Sqlite>) -> Query<'q, Sqlite> {
        q.bind(self)
    }
    fn bind_pg(self, q: Query<'q, Postgres>) -> Query<'q, Postgres> {
        q.bind(self)
    }
}

/// Times are bound as [`Ts`], never with sqlx's own SQLite text format.
impl<'q> Param<'q> for DateTime<Utc> {
    fn bind_sqlite(self, q: Query<'q, Sqlite>) -> Query<'q, Sqlite> {
        q.bind(Ts(self))
    }
    fn bind_pg(self, q: Query<'q, Postgres>) -> Query<'q, Postgres> {
        q.bind(Ts(self))
    }
}

impl<'q> Param<'q> for Option<DateTime<Utc>> {
    fn bind_sqlite(self, q: Query<'q, Sqlite>) -> Query<'q, Sqlite> {
        q.bind(self.map(Ts))
    }
    fn bind_pg(self, q: Query<'q, Postgres>) -> Query<'q, Postgres> {
        q.bind(self.map(Ts))
    }
}

/// A column value read the same way on both backends.
pub trait Column: Sized {
    fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self>;
    fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self>;
}

/// Types sqlx decodes alike on both databases.
macro_rules! native_columns {
    ($($t:ty),* $(,)?) => {$(
        impl Column for $t {
            fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self> {
                Ok(sqlx::Row::try_get(row, i)?)
            }
            fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self> {
                Ok(sqlx::Row::try_get(row, i)?)
            }
        }
    )*};
}

native_columns!(
    String,
    Option<String>,
    i16,
    Option<i16>,
    i64,
    Option<i64>,
    f64,
    Option<f64>,
    bool,
    NaiveDate,
    Ts,
    Option<Ts>,
);

impl<T: serde::de::DeserializeOwned> Column for Json<T> {
    fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self> {
        Ok(sqlx::Row::try_get(row, i)?)
    }
    fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self> {
        Ok(sqlx::Row::try_get(row, i)?)
    }
}

impl<T: serde::de::DeserializeOwned> Column for Option<Json<T>> {
    fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self> {
        Ok(sqlx::Row::try_get(row, i)?)
    }
    fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self> {
        Ok(sqlx::Row::try_get(row, i)?)
    }
}

impl Column for DateTime<Utc> {
    fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self> {
        Ts::from_sqlite(row, i).map(|t| t.0)
    }
    fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self> {
        Ts::from_pg(row, i).map(|t| t.0)
    }
}

impl Column for Option<DateTime<Utc>> {
    fn from_sqlite<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, i: I) -> Result<Self> {
        Ok(Option::<Ts>::from_sqlite(row, i)?.map(|t| t.0))
    }
    fn from_pg<I: ColumnIndex<PgRow>>(row: &PgRow, i: I) -> Result<Self> {
        Ok(Option::<Ts>::from_pg(row, i)?.map(|t| t.0))
    }
}

/// Reading columns of a row of either backend.
pub trait Get {
    /// Column `i` (a name or a position).
    fn col<T: Column>(&self, i: impl ColumnIndex<SqliteRow> + ColumnIndex<PgRow>) -> Result<T>;
}

impl Get for SqliteRow {
    fn col<T: Column>(&self, i: impl ColumnIndex<SqliteRow> + ColumnIndex<PgRow>) -> Result<T> {
        T::from_sqlite(self, i)
    }
}

impl Get for PgRow {
    fn col<T: Column>(&self, i: impl ColumnIndex<SqliteRow> + ColumnIndex<PgRow>) -> Result<T> {
        T::from_pg(self, i)
    }
}

/// A timestamp column: `TIMESTAMPTZ` on PostgreSQL; on SQLite fixed-width UTC text
/// (`2026-11-29T06:03:23.000000Z`), so that text order is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// The SQLite column text, which PostgreSQL reads as a `TIMESTAMPTZ` too.
    pub fn text(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

mod ts {
    use super::Ts;
    use chrono::{DateTime, Utc};
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
    use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
    use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

    impl Type<Sqlite> for Ts {
        fn type_info() -> SqliteTypeInfo {
            <String as Type<Sqlite>>::type_info()
        }
        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <String as Type<Sqlite>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Sqlite> for Ts {
        fn encode_by_ref(
            &self,
            buf: &mut Vec<SqliteArgumentValue<'q>>,
        ) -> Result<IsNull, BoxDynError> {
            <String as Encode<'q, Sqlite>>::encode(self.text(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Ts {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let s = <&str as Decode<'r, Sqlite>>::decode(value)?;
            let t = DateTime::parse_from_rfc3339(s).map_err(|e| format!("timestamp {s:?}: {e}"))?;
            Ok(Ts(t.with_timezone(&Utc)))
        }
    }

    impl Type<Postgres> for Ts {
        fn type_info() -> PgTypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }
        fn compatible(ty: &PgTypeInfo) -> bool {
            <DateTime<Utc> as Type<Postgres>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Postgres> for Ts {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Ts {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            Ok(Ts(<DateTime<Utc> as Decode<'r, Postgres>>::decode(value)?))
        }
    }
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A text column holding a name `parse` knows.
pub(crate) fn parsed<T>(
    r: &impl Get,
    col: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    let s: String = r.col(col)?;
    parse(&s).ok_or_else(|| corrupt(what, &s))
}
