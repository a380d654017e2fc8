//! Campaign reports, subject histories, applications and the operator list.

use super::{corrupt, parse_opt_ts, parse_ts, ts, SqliteStore};
use crate::{
    Application, HistoryPush, HistorySkip, OperatorRecord, PushCell, ReportCells, ReportStore,
    Result, SkipCell, SubjectHistory,
};
use async_trait::async_trait;
use domain::operator::Role;
use domain::push::PushStatus;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// Notice pushes of a campaign grouped by channel, district, kind and status. A push
/// counts as clicked when its subject opened any link of the campaign (the SMS a hotline
/// key press asked for included), and as applied when the subject applied for the
/// campaign's policy after the push was written.
const PUSH_CELLS: &str = "
SELECT p.channel AS channel,
       COALESCE(CAST(json_extract(s.attributes, '$.district') AS TEXT), '') AS district,
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
WHERE p.campaign_id = ? AND p.purpose = 'notice'
GROUP BY 1, 2, 3, 4";

const SKIP_CELLS: &str = "
SELECT COALESCE(CAST(json_extract(s.attributes, '$.district') AS TEXT), '') AS district,
       COALESCE(s.kind, '') AS kind,
       k.reason AS reason,
       COUNT(*) AS n
FROM campaign_skips k
LEFT JOIN subjects s ON s.id = k.subject_id
WHERE k.campaign_id = ?
GROUP BY 1, 2, 3";

fn operator_from_row(r: &SqliteRow) -> Result<OperatorRecord> {
    let role: String = r.get("role");
    Ok(OperatorRecord {
        id: r.get("id"),
        name: r.get("name"),
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_at: parse_ts(r.get("created_at"))?,
    })
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn report_cells(&self, campaign_id: &str) -> Result<ReportCells> {
        let mut cells = ReportCells::default();
        for r in sqlx::query(PUSH_CELLS)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?
        {
            let status: String = r.get("status");
            cells.pushes.push(PushCell {
                channel: r.get("channel"),
                district: r.get("district"),
                kind: r.get("kind"),
                status: PushStatus::parse(&status)
                    .ok_or_else(|| corrupt("push status", &status))?,
                pushes: r.get("n"),
                clicked: r.get("clicked"),
                applied: r.get("applied"),
            });
        }
        for r in sqlx::query(SKIP_CELLS)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?
        {
            cells.skips.push(SkipCell {
                district: r.get("district"),
                kind: r.get("kind"),
                reason: r.get("reason"),
                subjects: r.get("n"),
            });
        }
        Ok(cells)
    }

    async fn record_application(&self, a: &Application) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO applications (subject_id, policy_id, applied_at, source, reference, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject_id, policy_id) DO NOTHING",
        )
        .bind(&a.subject_id)
        .bind(&a.policy_id)
        .bind(ts(a.applied_at))
        .bind(&a.source)
        .bind(&a.reference)
        .bind(ts(a.recorded_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn subject_history(&self, subject_id: &str, limit: u32) -> Result<SubjectHistory> {
        let mut h = SubjectHistory::default();
        for r in sqlx::query(
            "SELECT p.id, p.campaign_id, c.name AS campaign_name, c.policy_id, p.purpose, p.channel,
                    p.recipient, p.status, p.content, p.error, p.attempts, p.created_at, p.updated_at,
                    (SELECT MIN(k.clicked_at) FROM clicks k WHERE k.push_id = p.id) AS clicked_at
             FROM pushes p JOIN campaigns c ON c.id = p.campaign_id
             WHERE p.subject_id = ? ORDER BY p.created_at DESC, p.id LIMIT ?",
        )
        .bind(subject_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        {
            let status: String = r.get("status");
            h.pushes.push(HistoryPush {
                push_id: r.get("id"),
                campaign_id: r.get("campaign_id"),
                campaign_name: r.get("campaign_name"),
                policy_id: r.get("policy_id"),
                purpose: r.get("purpose"),
                channel: r.get("channel"),
                recipient: r.get("recipient"),
                status: PushStatus::parse(&status).ok_or_else(|| corrupt("push status", &status))?,
                content: r.get("content"),
                error: r.get("error"),
                attempts: r.get("attempts"),
                created_at: parse_ts(r.get("created_at"))?,
                updated_at: parse_ts(r.get("updated_at"))?,
                clicked_at: parse_opt_ts(r.get("clicked_at"))?,
            });
        }
        for r in sqlx::query(
            "SELECT k.campaign_id, c.name AS campaign_name, c.policy_id, k.reason
             FROM campaign_skips k JOIN campaigns c ON c.id = k.campaign_id
             WHERE k.subject_id = ? ORDER BY c.created_at DESC, k.campaign_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?
        {
            h.skips.push(HistorySkip {
                campaign_id: r.get("campaign_id"),
                campaign_name: r.get("campaign_name"),
                policy_id: r.get("policy_id"),
                reason: r.get("reason"),
            });
        }
        for r in sqlx::query(
            "SELECT subject_id, policy_id, applied_at, source, reference, recorded_at
             FROM applications WHERE subject_id = ? ORDER BY applied_at DESC, policy_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?
        {
            h.applications.push(Application {
                subject_id: r.get("subject_id"),
                policy_id: r.get("policy_id"),
                applied_at: parse_ts(r.get("applied_at"))?,
                source: r.get("source"),
                reference: r.get("reference"),
                recorded_at: parse_ts(r.get("recorded_at"))?,
            });
        }
        Ok(h)
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>> {
        sqlx::query("SELECT id, name, role, created_at FROM operators ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>> {
        sqlx::query("SELECT id, name, role, created_at FROM operators WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }
}
