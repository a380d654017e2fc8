//! Subjects with their attributes (a JSON object) and tags (a JSON array). Upserts and
//! tag changes are bulk writes of the backend (see [`Backend::upsert_subjects`]), in one
//! transaction. Pseudonyms of subjects (`subject_pseudonyms`) resolve what the bus carries.

use super::{corrupt, Backend, Cell, Get, Json, Rows, SqlStore, Q};
use crate::{Result, SubjectStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Subject, SubjectDoc};

const COLUMNS: &str = "id, kind, name, mobile, wechat_openid, attributes, tags";

const PSEUDONYM_ROWS: &[(&str, Cell)] = &[("pseudonym", Cell::Text), ("subject_id", Cell::Text)];

fn subject_from_row(r: &impl Get) -> Result<(Subject, Vec<String>)> {
    let Json(attributes) = r.col("attributes")?;
    let Json(tags) = r.col("tags")?;
    let doc = SubjectDoc {
        id: r.col("id")?,
        kind: r.col("kind")?,
        name: r.col("name")?,
        mobile: r.col("mobile")?,
        wechat_openid: r.col("wechat_openid")?,
        attributes,
    };
    let subject = Subject::from_doc(doc).map_err(|e| corrupt("subject", e))?;
    Ok((subject, tags))
}

impl<DB: Backend> SqlStore<DB> {
    /// The subjects for which `filter` holds, where `{list}` in it stands for the list
    /// `keys` (read a chunk at a time).
    async fn subjects_where(
        &self,
        filter: &str,
        keys: &[String],
    ) -> Result<Vec<(Subject, Vec<String>)>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "SELECT {COLUMNS} FROM subjects WHERE {}",
                filter.replace("{list}", &DB::in_list(1, chunk.len()))
            );
            for r in Q::<DB>::new(&sql)
                .bind_list(chunk)
                .fetch_all(&self.pool)
                .await?
            {
                out.push(subject_from_row(&r)?);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl<DB: Backend> SubjectStore for SqlStore<DB> {
    async fn upsert_subjects(&self, subjects: &[(Subject, Vec<String>)]) -> Result<()> {
        let now = Utc::now();
        let mut tx = DB::begin(&self.pool).await?;
        DB::upsert_subjects(&mut *tx, subjects, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_subject(&self, id: &str) -> Result<Option<(Subject, Vec<String>)>> {
        let sql = format!("SELECT {COLUMNS} FROM subjects WHERE id = $1");
        let row = Q::<DB>::new(&sql)
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
        // Byte order on both (the PostgreSQL id column is COLLATE "C").
        let sql = format!("SELECT {COLUMNS} FROM subjects WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = Q::<DB>::new(&sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(batch))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subject_from_row).collect()
    }

    async fn count_subjects(&self) -> Result<i64> {
        Q::<DB>::new("SELECT COUNT(*) FROM subjects")
            .scalar(&self.pool)
            .await
    }

    async fn get_subjects(&self, ids: &[String]) -> Result<Vec<(Subject, Vec<String>)>> {
        self.subjects_where("id {list}", ids).await
    }

    async fn subject_ids_changed_since(&self, since: DateTime<Utc>) -> Result<Vec<String>> {
        Q::<DB>::new("SELECT id FROM subjects WHERE updated_at >= $1")
            .bind(since)
            .scalars(&self.pool)
            .await
    }

    async fn set_tags(&self, tags: &[(String, Vec<String>)]) -> Result<()> {
        let mut tx = DB::begin(&self.pool).await?;
        DB::set_tags(&mut *tx, tags).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_subject_pseudonyms(&self, pairs: &[(String, String)]) -> Result<()> {
        // Two parameters a pair on SQLite: chunks stay under its limit.
        for chunk in pairs.chunks(DB::LIST_CHUNK / 2) {
            let mut rows = Rows::new(PSEUDONYM_ROWS);
            for (pseudonym, subject_id) in chunk {
                rows.push([Some(pseudonym.clone()), Some(subject_id.clone())]);
            }
            // `WHERE true`: SQLite's upsert after INSERT … SELECT needs a WHERE clause.
            let sql = format!(
                "WITH {} INSERT INTO subject_pseudonyms (pseudonym, subject_id)
                 SELECT pseudonym, subject_id FROM p WHERE true
                 ON CONFLICT (pseudonym) DO NOTHING",
                rows.cte::<DB>("p", 1)
            );
            Q::<DB>::new(&sql)
                .bind_rows(&rows)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn subjects_by_pseudonym(
        &self,
        pseudonyms: &[String],
    ) -> Result<Vec<(Subject, Vec<String>)>> {
        self.subjects_where(
            "id IN (SELECT subject_id FROM subject_pseudonyms WHERE pseudonym {list})",
            pseudonyms,
        )
        .await
    }
}
