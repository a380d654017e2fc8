//! Persistence for policy-push, behind small traits so that roles never know which
//! database they run on.
//!
//! # Layout
//! - [`records`]: the rows as the rest of the product sees them.
//! - [`OperatorStore`]: operators (who created them, disabled ones), their token hashes
//!   and the console sessions.
//! - [`Store`]: the union of [`OperatorStore`], [`SubjectStore`], [`CatalogueStore`],
//!   [`PushStore`], [`AuditStore`], [`OptOutStore`], [`ReportStore`],
//!   [`OperationsStore`], [`ParamStore`], [`ProviderTemplateStore`],
//!   [`AttributeStore`] (the attribute catalogue) and [`RecordStore`] (the record);
//!   roles hold an `Arc<dyn Store>`.
//! - [`operations`] ([`OperationsStore`]): send-time skips, de-duplication, schedules,
//!   second approvals, disclosure reviews.
//! - [`reports`]: campaign reports, subject histories and applications.
//! - [`sql`]: every query, written once for both databases: [`sql::SqlStore`] implements
//!   the traits over a pool of either, through the small dialect seam [`sql::Backend`]
//!   (transactions, row locks, id lists, rows tables, JSON extraction, bulk writes) and one
//!   bind/decode path per value ([`sql::Param`], [`sql::Column`], [`sql::Ts`] for times).
//! - [`sqlite`]: the embedded default (sqlx + SQLite, migrations under
//!   `migrations/sqlite/`; writers take `BEGIN IMMEDIATE`).
//! - [`postgres`]: the production store (sqlx + PostgreSQL, pooled, migrations under
//!   `migrations/postgres/`; the outbox is handed over by per-campaign relay cursors and `FOR UPDATE SKIP LOCKED`, bulk
//!   writes are `UNNEST` statements).
//! - [`trail`] ([`RecordStore`]): the record (全过程留痕): a push's events (written by
//!   the push functions in the same transaction as each state change), the hash chains
//!   of the audit log and the push events, their heads, and `audit verify`'s checks.
//! - [`open`]: picks the backend from a database URL.
//!
//! `tests/conformance.rs` runs the same cases against both backends.
//!
//! The outbox is the `pushes` table: a push row is committed before anything sends it;
//! connectors claim a row (`queued` → `sending`) in one statement, so a push handed to
//! two workers is sent by one.

pub mod operations;
pub mod params;
pub mod postgres;
pub mod records;
pub mod reports;
pub mod sql;
pub mod sqlite;
pub mod trail;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push::PushStatus;
use domain::Subject;
pub use operations::*;
pub use params::{ParamRecord, ParamStore};
pub use records::*;
pub use reports::*;
pub use trail::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// The database did not answer (gone, restarting, unreachable, shutting down, out of
    /// connections): worth waiting out and trying again, unlike a conflict or a bad row.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08 (connection exception), 57P0x (the server shutting down or
            // starting), 53300 (too many connections).
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait OperatorStore: Send + Sync {
    async fn count_operators(&self) -> Result<i64>;
    /// Whether the database answers: `SELECT 1` on an idle pooled connection, else on a
    /// fresh one, so that a database that went away is seen at once (a refused or broken
    /// connection) rather than after the pool's acquire timeout.
    async fn ping(&self) -> Result<()> {
        self.count_operators().await.map(|_| ())
    }
    async fn insert_operator(&self, op: &OperatorRecord, token_hash: &str) -> Result<()>;
    /// The operator holding this token, unless disabled.
    async fn operator_by_token_hash(&self, token_hash: &str) -> Result<Option<OperatorRecord>>;
    /// Disables an operator (its token stops working) and revokes its console sessions;
    /// false when there is no such operator or it was disabled already.
    async fn disable_operator(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Replaces an enabled operator's token; false when there is none such.
    async fn set_operator_token(&self, id: &str, token_hash: &str) -> Result<bool>;
    /// Records a console session (the SHA-256 of its random id) until `expires_at`.
    async fn insert_session(
        &self,
        id_hash: &str,
        operator_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The operator of a session that is neither revoked nor expired, unless disabled.
    async fn session_operator(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OperatorRecord>>;
    /// Revokes a session (sign-out); false when it was unknown or revoked already.
    async fn revoke_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<bool>;
}

#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// Inserts or replaces subjects with their tags, in one transaction.
    async fn upsert_subjects(&self, subjects: &[(Subject, Vec<String>)]) -> Result<()>;
    async fn get_subject(&self, id: &str) -> Result<Option<(Subject, Vec<String>)>>;
    /// Every subject with its tags, in id order, `batch` at a time from `after`.
    async fn subjects_page(
        &self,
        after: Option<&str>,
        batch: u32,
    ) -> Result<Vec<(Subject, Vec<String>)>>;
    async fn count_subjects(&self) -> Result<i64>;
    /// The subjects of `ids` that exist, with their tags (in no particular order).
    async fn get_subjects(&self, ids: &[String]) -> Result<Vec<(Subject, Vec<String>)>>;
    /// The ids of subjects written at or after `since` (one index range scan; read the
    /// rows with [`SubjectStore::get_subjects`]).
    async fn subject_ids_changed_since(&self, since: DateTime<Utc>) -> Result<Vec<String>>;
    /// Replaces the tags of many subjects at once.
    async fn set_tags(&self, tags: &[(String, Vec<String>)]) -> Result<()>;
    /// Records `(pseudonym, subject id)` pairs (`domain::pseudonym`) so a process that
    /// reads a pseudonym off the bus can resolve it; pairs already known are kept.
    async fn put_subject_pseudonyms(&self, pairs: &[(String, String)]) -> Result<()>;
    /// The subjects, with their tags, whose pseudonyms are among `pseudonyms` (recorded
    /// by [`SubjectStore::put_subject_pseudonyms`]), in no particular order.
    async fn subjects_by_pseudonym(
        &self,
        pseudonyms: &[String],
    ) -> Result<Vec<(Subject, Vec<String>)>>;
}

#[async_trait]
pub trait CatalogueStore: Send + Sync {
    async fn put_tag(&self, tag: &TagRecord) -> Result<()>;
    async fn list_tags(&self) -> Result<Vec<TagRecord>>;
    async fn get_tag(&self, name: &str) -> Result<Option<TagRecord>>;

    async fn insert_policy(&self, p: &PolicyRecord) -> Result<()>;
    async fn get_policy(&self, id: &str) -> Result<Option<PolicyRecord>>;
    async fn list_policies(&self) -> Result<Vec<PolicyRecord>>;
    async fn set_policy_status(
        &self,
        id: &str,
        status: domain::policy::PolicyStatus,
        at: DateTime<Utc>,
    ) -> Result<()>;

    async fn insert_campaign(&self, c: &CampaignRecord) -> Result<()>;
    async fn get_campaign(&self, id: &str) -> Result<Option<CampaignRecord>>;
    async fn list_campaigns(&self) -> Result<Vec<CampaignRecord>>;
    /// Moves a campaign from one of `from` to `to`; `Conflict` when it is in none of them.
    async fn transition_campaign(
        &self,
        id: &str,
        from: &[domain::campaign::CampaignStatus],
        to: domain::campaign::CampaignStatus,
        change: CampaignChange,
    ) -> Result<CampaignRecord>;
    /// Sends an approved campaign back to review: from one of `from` to `submitted`, its
    /// approvals (first and second) cleared; `Conflict` when it is in none of `from`.
    async fn return_to_review(
        &self,
        id: &str,
        from: &[domain::campaign::CampaignStatus],
    ) -> Result<CampaignRecord>;
    /// Campaigns in `running` whose audience has not been fully written yet.
    async fn campaigns_to_plan(&self) -> Result<Vec<CampaignRecord>>;
    /// Running campaigns of mode `continuous`.
    async fn continuous_campaigns(&self) -> Result<Vec<CampaignRecord>>;
}

/// Outbox rows taken by [`PushStore::hand_over`], in an open transaction.
#[async_trait]
pub trait HandOver: Send {
    /// The rows taken, in outbox order.
    fn pushes(&self) -> &[PushRecord];
    /// Makes "on the bus" durable (call after the bus acknowledged every row).
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Gives the rows back to the outbox now (the publish failed). Dropping a hand-over
    /// gives them back too, but only once its connection is next used: until then other
    /// relays skip them.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

#[async_trait]
pub trait PushStore: Send + Sync {
    /// Writes a batch of a campaign's plan: pushes and unreachable subjects. Subjects the
    /// campaign already has a push or skip for are left alone. Returns pushes inserted.
    async fn insert_plan_batch(
        &self,
        campaign_id: &str,
        pushes: &[NewPush],
        skips: &[(String, domain::push::SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Marks a campaign's audience as fully written, with its counts.
    async fn finish_plan(&self, campaign_id: &str, at: DateTime<Utc>) -> Result<()>;
    /// Queued pushes due by `now` not yet handed to the bus, marked as on the bus in a
    /// transaction left open until [`HandOver::commit`], after the bus acknowledged them:
    /// a running campaign's planned pushes in plan order, by moving its relay cursor (one
    /// write per batch); pushes put back in the outbox (retries, deferrals, replays) by
    /// marking each row. Dropped without a commit (the publish failed, the process
    /// died), the rows go back to the outbox as they were. Rows another caller holds are
    /// skipped, so each row is taken by one caller however many relays run.
    async fn hand_over(&self, now: DateTime<Utc>, limit: u32) -> Result<Box<dyn HandOver>>;
    /// Forgets which queued pushes were handed over: all of them (a bus that does not keep
    /// messages), or `unconfirmed_only` those taken but never confirmed (a relay died
    /// between taking and publishing; with a durable bus the confirmed ones are safe).
    async fn reset_dispatched(&self, unconfirmed_only: bool) -> Result<u64>;
    /// Claims pushes for sending at `now`: `queued` → `sending`; returns the ones this
    /// caller won.
    async fn claim_for_sending(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<PushRecord>>;
    /// Records what happened to pushes that were `sending`.
    async fn record_outcomes(&self, outcomes: &[PushOutcome], now: DateTime<Utc>) -> Result<()>;
    /// Pushes left in `sending` (a process died mid-call) whose claim is no later than
    /// `claimed_before`: now when one process owns every connector, now minus a lease when
    /// several connector processes share a channel (a live one's claims are younger).
    async fn pushes_in_sending(
        &self,
        claimed_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PushRecord>>;
    /// Applies a provider receipt by provider id or push id; false when it matched nothing.
    async fn apply_receipt(&self, receipt: &ReceiptUpdate, now: DateTime<Utc>) -> Result<bool>;
    /// Applies receipts in one transaction with a few set-based statements a chunk, with
    /// the outcome of applying them one at a time in slice order: whether each changed a
    /// push. A final receipt moves a push still waiting for one (`sending`/`sent`) that
    /// carries its provider id or has its push id to `delivered`/`failed`; a call-again
    /// receipt (`retry_at`) moves only the push carrying its provider id back to the
    /// queue. A repeated receipt (in the batch or after it) changes nothing; a receipt
    /// whose push is not recorded as sent yet matches nothing (`false`: keep it and try
    /// again, see [`PushStore::keep_late_receipts`]).
    async fn apply_receipts(
        &self,
        receipts: &[ReceiptUpdate],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>>;
    /// Keeps receipts that matched nothing because their send is not recorded yet (they
    /// overtook the provider's answer), durably, until `now + limits.ttl`; receipts
    /// without a provider id are not kept. At most `limits.capacity` are kept (the oldest
    /// go first). [`PushStore::record_outcomes`] applies the kept receipts of the provider
    /// ids it records, in its transaction; each applies once. Returns the receipts kept.
    async fn keep_late_receipts(
        &self,
        receipts: &[ReceiptUpdate],
        now: DateTime<Utc>,
        limits: LateReceiptLimits,
    ) -> Result<u64>;
    /// Deletes expired kept receipts and applies (and deletes) those whose push now waits
    /// for a receipt under their provider id (a send recorded in a way that missed them).
    async fn sweep_late_receipts(&self, now: DateTime<Utc>) -> Result<LateSweep>;
    async fn get_push(&self, id: &str) -> Result<Option<PushRecord>>;
    /// The pushes with these ids that exist, in no particular order.
    async fn get_pushes(&self, ids: &[String]) -> Result<Vec<PushRecord>>;
    /// Pushes of `channel` the provider accepted (`sent`) but no receipt settled, whose
    /// last change is no later than `sent_before`: oldest first, after `after` (the
    /// `updated_at` and id of the last push of the previous page).
    async fn sent_without_receipt(
        &self,
        channel: domain::Channel,
        sent_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<PushRecord>>;
    async fn push_by_link(&self, code: &str) -> Result<Option<PushRecord>>;
    async fn record_click(&self, push_id: &str, at: DateTime<Utc>) -> Result<()>;
    async fn campaign_pushes(
        &self,
        campaign_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>>;
    /// A campaign's counts, read off its tallies (kept with every state change), never
    /// by scanning its pushes.
    async fn campaign_counts(&self, campaign_id: &str) -> Result<CampaignCounts>;
    /// Folds tally changes appended by concurrent writers into the campaign tallies
    /// (PostgreSQL; nothing to do on SQLite); returns the change rows folded. Counts are
    /// exact either way: this only keeps what readers add up small.
    async fn fold_tallies(&self) -> Result<u64>;
    /// Completes running `once` campaigns whose plan is written and whose pushes are all final.
    async fn complete_finished_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>>;
    /// Pushes in the given statuses (for reconciliation and tests).
    async fn count_pushes(&self, status: PushStatus) -> Result<i64>;
    /// Dead letters: pushes that failed for good, with their last error, in campaign order.
    async fn failed_pushes(
        &self,
        campaign_id: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PushRecord>>;
    /// Puts failed pushes back in the queue (attempts reset); returns how many moved.
    /// Pushes in any other status are left alone.
    async fn replay_failed(&self, push_ids: &[String], now: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Records an opt-out; false when the same one was already recorded.
    async fn record_opt_out(&self, o: &OptOut) -> Result<bool>;
    /// Every opt-out of the given subjects.
    async fn opt_outs_of(&self, subject_ids: &[String]) -> Result<Vec<OptOut>>;
    /// Opt-outs that pass `filter`, newest first, `limit` of them from `offset`.
    async fn list_opt_outs(
        &self,
        filter: &OptOutFilter,
        offset: i64,
        limit: u32,
    ) -> Result<Vec<OptOut>>;
    /// Removes the opt-out of `subject_id` for exactly this channel and category (`None`:
    /// the opt-out has none); the opt-out removed, `None` when there was none.
    async fn remove_opt_out(
        &self,
        subject_id: &str,
        channel: Option<domain::Channel>,
        category: Option<&str>,
    ) -> Result<Option<OptOut>>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn audit_log(&self, after_id: i64, limit: u32) -> Result<Vec<(i64, AuditEntry)>>;
    /// The latest entries about one target (newest first, at most `limit`).
    async fn audit_of_target(&self, target: &str, limit: u32) -> Result<Vec<(i64, AuditEntry)>>;
}

/// What reports, the per-subject delivery history and the operator console read, and the
/// conversions ("applied" events) the bureau's systems report.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// A campaign's notice pushes and skips, grouped (see [`ReportCells`]).
    async fn report_cells(&self, campaign_id: &str) -> Result<ReportCells>;
    /// Records an application; false when that subject's application for that policy was
    /// already recorded (the first report is kept).
    async fn record_application(&self, a: &Application) -> Result<bool>;
    /// A subject's pushes (newest first, at most `limit`), skips and applications.
    async fn subject_history(&self, subject_id: &str, limit: u32) -> Result<SubjectHistory>;
    /// Every operator, oldest first.
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>>;
    async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>>;
}

/// Campaign operations: limits at send time, schedules, approvals, reviews (see
/// [`operations`]).
#[async_trait]
pub trait OperationsStore: Send + Sync {
    /// Ends pushes a connector claimed (`sending`) without sending them: each push row
    /// becomes a skip of its campaign with `reason` (capped, duplicate, opted out). Rows
    /// not in `sending` are left alone. Returns the pushes skipped.
    async fn skip_sending(
        &self,
        skips: &[(String, domain::push::SkipReason)],
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Ends every push of the campaign still `queued` (not yet claimed) without sending
    /// it: each becomes a skip with `reason`, in one transaction. Returns how many.
    async fn skip_queued(
        &self,
        campaign_id: &str,
        reason: domain::push::SkipReason,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Of `subject_ids`, those with a notice push of `policy_id` in a campaign other than
    /// `except_campaign`: not failed (`sent_only`: sent or delivered).
    async fn subjects_with_policy(
        &self,
        policy_id: &str,
        except_campaign: &str,
        subject_ids: &[String],
        sent_only: bool,
    ) -> Result<Vec<String>>;
    /// Subjects whose mobile number is `mobile` (11 digits).
    async fn subjects_by_mobile(&self, mobile: &str) -> Result<Vec<String>>;
    async fn get_campaign_ops(&self, campaign_id: &str) -> Result<Option<CampaignOps>>;
    /// Inserts or replaces a campaign's operations row.
    async fn put_campaign_ops(&self, ops: &CampaignOps) -> Result<()>;
    /// Scheduled or running campaigns whose next run is due by `now`.
    async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<CampaignRecord>>;
    /// Starts a due run: only if the next run is still `due` (so two schedulers start it
    /// once), the campaign goes `scheduled`/`running` → `running`, its plan is to be
    /// written again (new eligible subjects), `launched_at` set if unset, and the next run
    /// becomes `next`. False when another scheduler won or the campaign moved on.
    async fn start_run(
        &self,
        campaign_id: &str,
        due: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Completes scheduled, running or paused campaigns whose end date has passed.
    async fn complete_ended_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<String>>;
    /// Notice pushes sent or delivered whose last update is at or after `since`.
    async fn recent_notice_sends(&self, since: DateTime<Utc>) -> Result<Vec<RecentSend>>;
    async fn insert_policy_review(&self, r: &PolicyReview) -> Result<()>;
    /// The latest review of a policy.
    async fn latest_policy_review(&self, policy_id: &str) -> Result<Option<PolicyReview>>;
}

/// The registry of provider templates (`domain::provider_template`), one per provider and
/// code.
#[async_trait]
pub trait ProviderTemplateStore: Send + Sync {
    /// Inserts or replaces the template of `t.provider` and `t.code`.
    async fn put_provider_template(
        &self,
        t: &domain::provider_template::ProviderTemplate,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Every registered template, by provider and code.
    async fn list_provider_templates(
        &self,
    ) -> Result<Vec<domain::provider_template::ProviderTemplate>>;
    async fn get_provider_template(
        &self,
        provider: domain::provider_template::Provider,
        code: &str,
    ) -> Result<Option<domain::provider_template::ProviderTemplate>>;
    /// False when there was no such template.
    async fn delete_provider_template(
        &self,
        provider: domain::provider_template::Provider,
        code: &str,
    ) -> Result<bool>;
}

/// The attribute catalogue (`domain::attribute`), one definition per attribute name.
#[async_trait]
pub trait AttributeStore: Send + Sync {
    /// Inserts or replaces the definition of `d.name`.
    async fn put_attribute(
        &self,
        d: &domain::attribute::AttributeDef,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Every definition, by name.
    async fn list_attributes(&self) -> Result<Vec<domain::attribute::AttributeDef>>;
    async fn get_attribute(&self, name: &str) -> Result<Option<domain::attribute::AttributeDef>>;
    /// False when there was no such definition.
    async fn delete_attribute(&self, name: &str) -> Result<bool>;
}

/// Everything the product persists.
pub trait Store:
    OperatorStore
    + SubjectStore
    + CatalogueStore
    + PushStore
    + AuditStore
    + OptOutStore
    + ReportStore
    + OperationsStore
    + ParamStore
    + ProviderTemplateStore
    + AttributeStore
    + RecordStore
{
}
impl<
        T: OperatorStore
            + SubjectStore
            + CatalogueStore
            + PushStore
            + AuditStore
            + OptOutStore
            + ReportStore
            + OperationsStore
            + ParamStore
            + ProviderTemplateStore
            + AttributeStore
            + RecordStore,
    > Store for T
{
}

/// Opens the store a database URL names and applies pending migrations.
/// `sqlite://path` (created if missing) is the embedded default; `postgres://…` (or
/// `postgresql://…`; `?pool_max=N` sets the pool size) is the production store.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let s = sqlite::SqliteStore::open(url).await?;
        Ok(std::sync::Arc::new(s))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let s = postgres::PgStore::open(url).await?;
        Ok(std::sync::Arc::new(s))
    } else {
        Err(StoreError::UnsupportedUrl(format!(
            "{}: use sqlite://PATH or postgres://USER@HOST/DB",
            url.split(':').next().unwrap_or("")
        )))
    }
}
