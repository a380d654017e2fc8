//! Opt-outs per subject: by channel, by policy category, or of everything.

use super::{corrupt, Backend, Get, SqlStore, Q};
use crate::{OptOut, OptOutStore, Result};
use async_trait::async_trait;
use domain::Channel;

#[async_trait]
impl<DB: Backend> OptOutStore for SqlStore<DB> {
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
                "SELECT subject_id, channel, category, source, at FROM opt_outs WHERE subject_id {}",
                DB::in_list(1, chunk.len())
            );
            for r in Q::<DB>::new(&sql)
                .bind_list(chunk)
                .fetch_all(&self.pool)
                .await?
            {
                let channel: Option<String> = r.col("channel")?;
                out.push(OptOut {
                    subject_id: r.col("subject_id")?,
                    channel: match channel {
                        Some(c) => {
                            Some(Channel::parse(&c).ok_or_else(|| corrupt("opt-out channel", &c))?)
                        }
                        None => None,
                    },
                    category: r.col("category")?,
                    source: r.col("source")?,
                    at: r.col("at")?,
                });
            }
        }
        Ok(out)
    }
}
