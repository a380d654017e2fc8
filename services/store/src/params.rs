//! Policy parameters (thresholds with dated values, see `domain::param`) and what the
//! daily sweep asks of the store.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::PolicyParam;
use serde::Serialize;

/// A stored parameter with its values, sorted by `effective_from`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamRecord {
    #[serde(flatten)]
    pub param: PolicyParam,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait ParamStore: Send + Sync {
    /// Creates or replaces a parameter with all its values, in one transaction.
    async fn put_param(&self, p: &ParamRecord) -> Result<()>;
    async fn get_param(&self, name: &str) -> Result<Option<ParamRecord>>;
    /// Every parameter, by name.
    async fn list_params(&self) -> Result<Vec<ParamRecord>>;
    /// The subjects a campaign has a notice push or a skip for (whom it has planned).
    async fn campaign_subjects(&self, campaign_id: &str) -> Result<Vec<String>>;
}

/// Groups `(name, description, unit, updated_at)` rows with their value rows (both in
/// name order, values by date) into records.
pub(crate) fn assemble(
    heads: Vec<(String, String, String, DateTime<Utc>)>,
    values: Vec<(String, domain::param::ParamValue)>,
) -> Vec<ParamRecord> {
    let mut out: Vec<ParamRecord> = heads
        .into_iter()
        .map(|(name, description, unit, updated_at)| ParamRecord {
            param: PolicyParam {
                name,
                description,
                unit,
                values: Vec::new(),
            },
            updated_at,
        })
        .collect();
    for (name, v) in values {
        if let Ok(i) = out.binary_search_by(|r| r.param.name.as_str().cmp(&name)) {
            out[i].param.values.push(v);
        }
    }
    out
}
