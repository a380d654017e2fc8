//! Campaign reports, subject histories, applications and the operator list.

use super::operators::{operator_from_row, OPERATOR_COLUMNS};
use super::tallies::SKIP;
use super::{corrupt, Backend, Get, SqlStore, Q};
use crate::{
    Application, HistoryPush, HistorySkip, OperatorRecord, PushCell, ReportCells, ReportStore,
    Result, SkipCell, SubjectHistory,
};
use async_trait::async_trait;
use domain::push::{PushPurpose, PushStatus};
use domain::push_event::{EventType, PushEvent};
use std::collections::BTreeMap;

/// The cells of a campaign's notice pushes, grouped by channel, district, kind and
/// status, whose subject opened any link of the campaign (the SMS a hotline key press
/// asked for included): driven by the campaign's clicks, one push lookup per clicking
/// subject.
const CLICKED_CELLS: &str = "
SELECT p.channel, p.district, p.kind, p.status, COUNT(*) AS n
FROM (SELECT DISTINCT q.subject_id FROM clicks k JOIN pushes q ON q.id = k.push_id
      WHERE k.campaign_id = $1) c
JOIN pushes p ON p.campaign_id = $1 AND p.subject_id = c.subject_id AND p.purpose = 'notice'
GROUP BY p.channel, p.district, p.kind, p.status";

/// The same cells for subjects who applied for the campaign's policy after their push
/// was written: driven by the policy's applications.
const APPLIED_CELLS: &str = "
SELECT p.channel, p.district, p.kind, p.status, COUNT(*) AS n
FROM campaigns c
JOIN applications a ON a.policy_id = c.policy_id
JOIN pushes p ON p.campaign_id = c.id AND p.subject_id = a.subject_id AND p.purpose = 'notice'
WHERE c.id = $1 AND a.applied_at >= p.created_at
GROUP BY p.channel, p.district, p.kind, p.status";

type CellKey = (String, String, String, String);

#[async_trait]
impl<DB: Backend> ReportStore for SqlStore<DB> {
    async fn report_cells(&self, campaign_id: &str) -> Result<ReportCells> {
        // Counts come from the tallies; clicks and applications are read from their own
        // (much smaller) tables.
        let mut pushes: BTreeMap<CellKey, PushCell> = BTreeMap::new();
        let mut cells = ReportCells::default();
        for t in self.tallies(campaign_id).await? {
            if t.bucket == SKIP {
                cells.skips.push(SkipCell {
                    district: t.district,
                    kind: t.kind,
                    reason: t.state,
                    subjects: t.n,
                });
                continue;
            }
            if t.bucket != PushPurpose::Notice.as_str() {
                continue;
            }
            let status =
                PushStatus::parse(&t.state).ok_or_else(|| corrupt("push status", &t.state))?;
            let key = (t.channel, t.district, t.kind, t.state);
            pushes.insert(
                key.clone(),
                PushCell {
                    channel: key.0,
                    district: key.1,
                    kind: key.2,
                    status,
                    pushes: t.n,
                    clicked: 0,
                    applied: 0,
                },
            );
        }
        for (sql, clicked) in [(CLICKED_CELLS, true), (APPLIED_CELLS, false)] {
            for r in Q::<DB>::new(sql)
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await?
            {
                let key: CellKey = (
                    r.col("channel")?,
                    r.col("district")?,
                    r.col("kind")?,
                    r.col("status")?,
                );
                let n: i64 = r.col("n")?;
                // A push written after its tally was read has no cell yet: skipped here
                // and counted on the next read.
                if let Some(cell) = pushes.get_mut(&key) {
                    if clicked {
                        cell.clicked = n.min(cell.pushes);
                    } else {
                        cell.applied = n.min(cell.pushes);
                    }
                }
            }
        }
        cells.pushes = pushes.into_values().collect();
        Ok(cells)
    }

    async fn record_application(&self, a: &Application) -> Result<bool> {
        let mut tx = DB::begin(&self.pool).await?;
        let done = Q::<DB>::new(
            "INSERT INTO applications (subject_id, policy_id, applied_at, source, reference, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id, policy_id) DO NOTHING",
        )
        .bind(&a.subject_id)
        .bind(&a.policy_id)
        .bind(a.applied_at)
        .bind(&a.source)
        .bind(&a.reference)
        .bind(a.recorded_at)
        .execute(&mut tx)
        .await?;
        // The pushes of the policy to the subject each get an `applied` event.
        let mut events = Vec::new();
        if done == 1 {
            for r in Q::<DB>::new(
                "SELECT p.id, p.channel FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
                 WHERE p.subject_id = $1 AND c.policy_id = $2 ORDER BY p.id",
            )
            .bind(&a.subject_id)
            .bind(&a.policy_id)
            .fetch_all(&mut tx)
            .await?
            {
                let id: String = r.col("id")?;
                let e = PushEvent::new(id, a.recorded_at, EventType::Applied)
                    .actor(format!("source:{}", a.source))
                    .detail(serde_json::json!({ "applied_at": a.applied_at.to_rfc3339() }));
                let channel: String = r.col("channel")?;
                events.push(match domain::Channel::parse(&channel) {
                    Some(c) => e.channel(c),
                    None => e,
                });
            }
        }
        let sealed = self.append_events(&mut tx, &events).await?;
        tx.commit().await?;
        sealed.committed();
        Ok(done == 1)
    }

    async fn subject_history(&self, subject_id: &str, limit: u32) -> Result<SubjectHistory> {
        let mut h = SubjectHistory::default();
        for r in Q::<DB>::new(
            "SELECT p.id, p.campaign_id, c.name AS campaign_name, c.policy_id, p.purpose, p.channel,
                    p.recipient, p.status, p.content, p.error, p.attempts, p.created_at, p.updated_at,
                    (SELECT MIN(k.clicked_at) FROM clicks k WHERE k.push_id = p.id) AS clicked_at
             FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
             WHERE p.subject_id = $1 ORDER BY p.created_at DESC, p.id LIMIT $2",
        )
        .bind(subject_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        {
            let status: String = r.col("status")?;
            h.pushes.push(HistoryPush {
                push_id: r.col("id")?,
                campaign_id: r.col("campaign_id")?,
                campaign_name: r.col("campaign_name")?,
                policy_id: r.col("policy_id")?,
                purpose: r.col("purpose")?,
                channel: r.col("channel")?,
                recipient: r.col("recipient")?,
                status: PushStatus::parse(&status).ok_or_else(|| corrupt("push status", &status))?,
                content: r.col("content")?,
                error: r.col("error")?,
                attempts: r.col("attempts")?,
                created_at: r.col("created_at")?,
                updated_at: r.col("updated_at")?,
                clicked_at: r.col("clicked_at")?,
            });
        }
        for r in Q::<DB>::new(
            "SELECT k.campaign_id, c.name AS campaign_name, c.policy_id, k.reason
             FROM campaign_skips k JOIN campaigns c ON c.id = k.campaign_id
             WHERE k.subject_id = $1 ORDER BY c.created_at DESC, k.campaign_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?
        {
            h.skips.push(HistorySkip {
                campaign_id: r.col("campaign_id")?,
                campaign_name: r.col("campaign_name")?,
                policy_id: r.col("policy_id")?,
                reason: r.col("reason")?,
            });
        }
        for r in Q::<DB>::new(
            "SELECT subject_id, policy_id, applied_at, source, reference, recorded_at
             FROM applications WHERE subject_id = $1 ORDER BY applied_at DESC, policy_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?
        {
            h.applications.push(Application {
                subject_id: r.col("subject_id")?,
                policy_id: r.col("policy_id")?,
                applied_at: r.col("applied_at")?,
                source: r.col("source")?,
                reference: r.col("reference")?,
                recorded_at: r.col("recorded_at")?,
            });
        }
        Ok(h)
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY created_at, id");
        Q::<DB>::new(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1");
        Q::<DB>::new(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }
}
