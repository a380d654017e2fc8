//! Subjects with their attributes (JSON) and tags (JSON array).

use super::{corrupt, ts, SqliteStore};
use crate::{Result, SubjectStore};
use async_trait::async_trait;
use chrono::Utc;
use domain::{Subject, SubjectDoc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

const COLUMNS: &str = "id, kind, name, mobile, wechat_openid, attributes, tags";

fn subject_from_row(r: &SqliteRow) -> Result<(Subject, Vec<String>)> {
    let attributes: String = r.get("attributes");
    let tags: String = r.get("tags");
    let doc = SubjectDoc {
        id: r.get("id"),
        kind: r.get("kind"),
        name: r.get("name"),
        mobile: r.get("mobile"),
        wechat_openid: r.get("wechat_openid"),
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt("attributes", e))?,
    };
    let subject = Subject::from_doc(doc).map_err(|e| corrupt("subject", e))?;
    let tags = serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?;
    Ok((subject, tags))
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn upsert_subjects(&self, subjects: &[(Subject, Vec<String>)]) -> Result<()> {
        let now = ts(Utc::now());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (s, tags) in subjects {
            let doc = s.to_doc();
            sqlx::query(
                "INSERT INTO subjects (id, kind, name, mobile, wechat_openid, attributes, tags, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                   mobile = excluded.mobile, wechat_openid = excluded.wechat_openid,
                   attributes = excluded.attributes, tags = excluded.tags, updated_at = excluded.updated_at",
            )
            .bind(&doc.id)
            .bind(&doc.kind)
            .bind(&doc.name)
            .bind(&doc.mobile)
            .bind(&doc.wechat_openid)
            .bind(serde_json::Value::Object(doc.attributes).to_string())
            .bind(serde_json::to_string(tags).map_err(|e| corrupt("tags", e))?)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_subject(&self, id: &str) -> Result<Option<(Subject, Vec<String>)>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM subjects WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subject_from_row).transpose()
    }

    async fn subjects_page(
        &self,
        after: Option<&str>,
        batch: u32,
    ) -> Result<Vec<(Subject, Vec<String>)>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subjects WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subject_from_row).collect()
    }

    async fn count_subjects(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM subjects")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn set_tags(&self, tags: &[(String, Vec<String>)]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (id, t) in tags {
            sqlx::query("UPDATE subjects SET tags = ? WHERE id = ?")
                .bind(serde_json::to_string(t).map_err(|e| corrupt("tags", e))?)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
