//! Opt-outs per subject: by channel, by policy category, or of everything.

use super::{corrupt, parse_ts, ts, SqliteStore};
use crate::{OptOut, OptOutStore, Result};
use async_trait::async_trait;
use domain::Channel;
use sqlx::Row;

#[async_trait]
impl OptOutStore for SqliteStore {
    async fn record_opt_out(&self, o: &OptOut) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO opt_outs (subject_id, channel, category, source, at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&o.subject_id)
        .bind(o.channel.map(|c| c.as_str()))
        .bind(&o.category)
        .bind(&o.source)
        .bind(ts(o.at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn opt_outs_of(&self, subject_ids: &[String]) -> Result<Vec<OptOut>> {
        let mut out = Vec::new();
        for chunk in subject_ids.chunks(500) {
            let sql = format!(
                "SELECT subject_id, channel, category, source, at FROM opt_outs WHERE subject_id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                let channel: Option<String> = r.get("channel");
                out.push(OptOut {
                    subject_id: r.get("subject_id"),
                    channel: match channel {
                        Some(c) => {
                            Some(Channel::parse(&c).ok_or_else(|| corrupt("opt-out channel", &c))?)
                        }
                        None => None,
                    },
                    category: r.get("category"),
                    source: r.get("source"),
                    at: parse_ts(r.get("at"))?,
                });
            }
        }
        Ok(out)
    }
}
