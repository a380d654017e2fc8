//! Campaign tallies: the counts of a campaign's pushes and skips, kept by database
//! triggers with every state change (migration `0005_campaign_tallies`), so the campaign
//! status, its report and completion detection read a few rows, never the pushes.
//!
//! A tally is keyed by campaign × bucket (the push purpose, or `skip`) × channel ×
//! district × kind × state (push status, or skip reason). On PostgreSQL the triggers
//! append each statement's net change to `campaign_tally_changes` (appends never wait on
//! each other) and [`crate::PushStore::fold_tallies`] folds them into
//! `campaign_tallies`; on SQLite the triggers update `campaign_tallies` in place. Readers
//! add both tables, so a count is exact whether or not its changes were folded yet.

use super::{Backend, Get, SqlStore, Q};
use crate::Result;

/// The bucket of skipped subjects; push tallies are bucketed by purpose.
pub(super) const SKIP: &str = "skip";

/// One key's count.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    pub bucket: String,
    pub channel: String,
    pub district: String,
    pub kind: String,
    pub state: String,
    pub n: i64,
}

/// `SUM(n)` of both tally tables over the rows where `filter` holds (a BIGINT).
pub(super) fn tally_sum(filter: &str) -> String {
    format!(
        "CAST((SELECT COALESCE(SUM(n), 0) FROM campaign_tallies WHERE {filter})
         + (SELECT COALESCE(SUM(n), 0) FROM campaign_tally_changes WHERE {filter}) AS BIGINT)"
    )
}

impl<DB: Backend> SqlStore<DB> {
    /// Every non-zero tally of a campaign.
    pub(super) async fn tallies(&self, campaign_id: &str) -> Result<Vec<Tally>> {
        let rows = Q::<DB>::new(
            "SELECT bucket, channel, district, kind, state, CAST(SUM(n) AS BIGINT) AS n FROM (
               SELECT bucket, channel, district, kind, state, n FROM campaign_tallies WHERE campaign_id = $1
               UNION ALL
               SELECT bucket, channel, district, kind, state, n FROM campaign_tally_changes WHERE campaign_id = $1
             ) t
             GROUP BY bucket, channel, district, kind, state
             HAVING SUM(n) <> 0",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tally {
                    bucket: r.col("bucket")?,
                    channel: r.col("channel")?,
                    district: r.col("district")?,
                    kind: r.col("kind")?,
                    state: r.col("state")?,
                    n: r.col("n")?,
                })
            })
            .collect()
    }

    /// Folds appended tally changes into the tallies; returns the change rows folded.
    pub(super) async fn fold_tallies(&self) -> Result<u64> {
        if !DB::TALLY_CHANGES {
            return Ok(0);
        }
        // One statement: the changes leave and their sums arrive together. Keys are
        // upserted in key order, so two folds at once never deadlock.
        let folded: Option<i64> = Q::<DB>::new(
            "WITH moved AS (
               DELETE FROM campaign_tally_changes
               RETURNING campaign_id, bucket, channel, district, kind, state, n
             ), summed AS (
               SELECT campaign_id, bucket, channel, district, kind, state, SUM(n) AS n, COUNT(*) AS rows
               FROM moved GROUP BY campaign_id, bucket, channel, district, kind, state
             ), upserted AS (
               INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n)
               SELECT campaign_id, bucket, channel, district, kind, state, n FROM summed
               ORDER BY campaign_id, bucket, channel, district, kind, state
               ON CONFLICT (campaign_id, bucket, channel, district, kind, state)
               DO UPDATE SET n = campaign_tallies.n + excluded.n
             )
             SELECT CAST(SUM(rows) AS BIGINT) FROM summed",
        )
        .scalar(&self.pool)
        .await?;
        Ok(folded.unwrap_or(0) as u64)
    }
}
