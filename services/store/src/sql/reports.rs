//! Campaign reports, subject histories, applications and the operator list.

use super::operators::{operator_from_row, OPERATOR_COLUMNS};
use super::{corrupt, Backend, Get, SqlStore, Q};
use crate::{
    Application, HistoryPush, HistorySkip, OperatorRecord, PushCell, ReportCells, ReportStore,
    Result, SkipCell, SubjectHistory,
};
use async_trait::async_trait;
use domain::push::PushStatus;

/// Notice pushes of a campaign grouped by channel, district, kind and status. A push
/// counts as clicked when its subject opened any link of the campaign (the SMS a hotline
/// key press asked for included), and as applied when the subject applied for the
/// campaign's policy after the push was written.
fn push_cells<DB: Backend>() -> String {
    format!(
        "
SELECT p.channel AS channel,
       COALESCE({district}, '') AS district,
       COALESCE(s.kind, '') AS kind,
       p.status AS status,
       COUNT(*) AS n,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM pushes q JOIN clicks k ON k.push_id = q.id
                             WHERE q.campaign_id = p.campaign_id AND q.subject_id = p.subject_id)
           THEN 1 ELSE 0 END) AS clicked,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM applications a
                             WHERE a.subject_id = p.subject_id AND a.policy_id = c.policy_id
                               AND a.applied_at >= p.created_at)
           THEN 1 ELSE 0 END) AS applied
FROM pushes p
JOIN campaigns c ON c.id = p.campaign_id
LEFT JOIN subjects s ON s.id = p.subject_id
WHERE p.campaign_id = $1 AND p.purpose = 'notice'
GROUP BY 1, 2, 3, 4",
        district = DB::json_text("s.attributes", "district")
    )
}

/// A campaign's skips grouped by district, kind and reason.
fn skip_cells<DB: Backend>() -> String {
    format!(
        "
SELECT COALESCE({district}, '') AS district,
       COALESCE(s.kind, '') AS kind,
       k.reason AS reason,
       COUNT(*) AS n
FROM campaign_skips k
LEFT JOIN subjects s ON s.id = k.subject_id
WHERE k.campaign_id = $1
GROUP BY 1, 2, 3",
        district = DB::json_text("s.attributes", "district")
    )
}

#[async_trait]
impl<DB: Backend> ReportStore for SqlStore<DB> {
    async fn report_cells(&self, campaign_id: &str) -> Result<ReportCells> {
        let mut cells = ReportCells::default();
        let sql = push_cells::<DB>();
        for r in Q::<DB>::new(&sql)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?
        {
            let status: String = r.col("status")?;
            cells.pushes.push(PushCell {
                channel: r.col("channel")?,
                district: r.col("district")?,
                kind: r.col("kind")?,
                status: PushStatus::parse(&status)
                    .ok_or_else(|| corrupt("push status", &status))?,
                pushes: r.col("n")?,
                clicked: r.col("clicked")?,
                applied: r.col("applied")?,
            });
        }
        let sql = skip_cells::<DB>();
        for r in Q::<DB>::new(&sql)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?
        {
            cells.skips.push(SkipCell {
                district: r.col("district")?,
                kind: r.col("kind")?,
                reason: r.col("reason")?,
                subjects: r.col("n")?,
            });
        }
        Ok(cells)
    }

    async fn record_application(&self, a: &Application) -> Result<bool> {
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
        .execute(&self.pool)
        .await?;
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
