//! Opt-outs per subject: by channel, by policy category, or of everything; listed for
//! operators' review and removed when an operator undoes one.

use super::{corrupt, Backend, Get, SqlStore, Q};
use crate::{OptOut, OptOutFilter, OptOutStore, Result};
use async_trait::async_trait;
use domain::Channel;

const OPT_OUT_COLUMNS: &str = "subject_id, channel, category, source, at";

fn opt_out_from_row(r: &impl Get) -> Result<OptOut> {
    let channel: Option<String> = r.col("channel")?;
    Ok(OptOut {
        subject_id: r.col("subject_id")?,
        channel: match channel {
            Some(c) => Some(Channel::parse(&c).ok_or_else(|| corrupt("opt-out channel", &c))?),
            None => None,
        },
        category: r.col("category")?,
        source: r.col("source")?,
        at: r.col("at")?,
    })
}

/// The key of one opt-out: subject, channel (or none), category (or none).
const ONE_OPT_OUT: &str =
    "subject_id = $1 AND COALESCE(channel, '') = COALESCE($2, '') AND COALESCE(category, '') = COALESCE($3, '')";

#[async_trait]
impl<DB: Backend> OptOutStore for SqlStore<DB> {
    async fn list_opt_outs(
        &self,
        f: &OptOutFilter,
        offset: i64,
        limit: u32,
    ) -> Result<Vec<OptOut>> {
        let sql = format!(
            "SELECT {OPT_OUT_COLUMNS} FROM opt_outs
             WHERE ($1 IS NULL OR subject_id = $1) AND ($2 IS NULL OR COALESCE(channel, 'all') = $2)
               AND ($3 IS NULL OR source = $3) AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5)
             ORDER BY at DESC, subject_id {order}, COALESCE(channel, '') {order}, COALESCE(category, '') {order}
             LIMIT $6 OFFSET $7",
            order = DB::BYTE_ORDER
        );
        let rows = Q::<DB>::new(&sql)
            .bind(&f.subject_id)
            .bind(&f.channel)
            .bind(&f.source)
            .bind(f.since)
            .bind(f.until)
            .bind(i64::from(limit))
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(opt_out_from_row).collect()
    }

    async fn remove_opt_out(
        &self,
        subject_id: &str,
        channel: Option<Channel>,
        category: Option<&str>,
    ) -> Result<Option<OptOut>> {
        let mut tx = DB::begin(&self.pool).await?;
        let sql = format!("SELECT {OPT_OUT_COLUMNS} FROM opt_outs WHERE {ONE_OPT_OUT}");
        let row = Q::<DB>::new(&sql)
            .bind(subject_id)
            .bind(channel.map(|c| c.as_str()))
            .bind(category)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let before = opt_out_from_row(&row)?;
        let sql = format!("DELETE FROM opt_outs WHERE {ONE_OPT_OUT}");
        Q::<DB>::new(&sql)
            .bind(subject_id)
            .bind(channel.map(|c| c.as_str()))
            .bind(category)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    async fn record_opt_out(&self, o: &OptOut) -> Result<bool> {
        let done = Q::<DB>::new(
            "INSERT INTO opt_outs (subject_id, channel, category, source, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&o.subject_id)
        .bind(o.channel.map(|c| c.as_str()))
        .bind(&o.category)
        .bind(&o.source)
        .bind(o.at)
        .execute(&self.pool)
        .await?;
        Ok(done > 0)
    }

    async fn opt_outs_of(&self, subject_ids: &[String]) -> Result<Vec<OptOut>> {
        let mut out = Vec::new();
        for chunk in subject_ids.chunks(DB::LIST_CHUNK) {
            let sql = format!(
                "SELECT {OPT_OUT_COLUMNS} FROM opt_outs WHERE subject_id {}",
                DB::in_list(1, chunk.len())
            );
            for r in Q::<DB>::new(&sql)
                .bind_list(chunk)
                .fetch_all(&self.pool)
                .await?
            {
                out.push(opt_out_from_row(&r)?);
            }
        }
        Ok(out)
    }
}
