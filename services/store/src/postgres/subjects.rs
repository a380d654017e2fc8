//! Subjects with their attributes and tags (JSONB). Upserts are one multi-row
//! `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO UPDATE` per chunk, in one transaction.

use super::{corrupt, PgStore};
use crate::{Result, SubjectStore};
use async_trait::async_trait;
use chrono::Utc;
use domain::{Subject, SubjectDoc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use std::collections::HashMap;

const COLUMNS: &str = "id, kind, name, mobile, wechat_openid, attributes, tags";
/// Rows per statement: large enough to amortise the round trip, small enough to keep
/// each statement's arrays modest.
const CHUNK: usize = 5_000;

fn subject_from_row(r: &PgRow) -> Result<(Subject, Vec<String>)> {
    let Json(attributes): Json<serde_json::Map<String, serde_json::Value>> = r.get("attributes");
    let Json(tags): Json<Vec<String>> = r.get("tags");
    let doc = SubjectDoc {
        id: r.get("id"),
        kind: r.get("kind"),
        name: r.get("name"),
        mobile: r.get("mobile"),
        wechat_openid: r.get("wechat_openid"),
        attributes,
    };
    let subject = Subject::from_doc(doc).map_err(|e| corrupt("subject", e))?;
    Ok((subject, tags))
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

#[async_trait]
impl SubjectStore for PgStore {
    async fn upsert_subjects(&self, subjects: &[(Subject, Vec<String>)]) -> Result<()> {
        let now = Utc::now();
        let unique = last_per_key(subjects, |(s, _)| s.id.as_str().to_string());
        let mut tx = self.pool.begin().await?;
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
                tags.push(serde_json::to_string(t).map_err(|e| corrupt("tags", e))?);
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
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_subject(&self, id: &str) -> Result<Option<(Subject, Vec<String>)>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM subjects WHERE id = $1"))
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
        // The id column is COLLATE "C": byte order, as SQLite compares text.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subjects WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(batch))
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
        let unique = last_per_key(tags, |(id, _)| id.clone());
        let mut tx = self.pool.begin().await?;
        for chunk in unique.chunks(CHUNK) {
            let mut ids = Vec::with_capacity(chunk.len());
            let mut values = Vec::with_capacity(chunk.len());
            for (id, t) in chunk {
                ids.push(id.as_str());
                values.push(serde_json::to_string(t).map_err(|e| corrupt("tags", e))?);
            }
            sqlx::query(
                "UPDATE subjects s SET tags = u.tags::jsonb
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, tags) WHERE s.id = u.id",
            )
            .bind(&ids)
            .bind(&values)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::last_per_key;

    #[test]
    fn last_entry_per_key_wins_in_first_seen_order() {
        let items = [("a", 1), ("b", 2), ("a", 3)];
        let got: Vec<_> = last_per_key(&items, |(k, _)| *k)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(got, vec![("a", 3), ("b", 2)]);
    }
}
