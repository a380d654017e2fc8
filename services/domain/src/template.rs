//! Message templates per channel: `{{ ... }}` variables rendered with minijinja, checked
//! when a campaign is saved (syntax, and only known variables).
//!
//! Variables: `subject.name`, `subject.<attribute>`, `policy.title`, `policy.doc_number`,
//! `policy.issuer`, `policy.apply_url`, `policy.summary`, `policy.effective_to`, `benefit`,
//! `link`.

use crate::channel::Channel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Serialize)]
pub struct RenderContext {
    /// `name` plus every attribute of the subject.
    pub subject: serde_json::Map<String, serde_json::Value>,
    /// `title`, `doc_number`, `issuer`, `apply_url`, `summary`, `effective_to`.
    pub policy: serde_json::Map<String, serde_json::Value>,
    pub benefit: Option<f64>,
    pub link: String,
}

/// A checked template for one channel.
#[derive(Debug, Clone)]
pub struct Template {
    pub channel: Channel,
    source: String,
}

impl Template {
    pub fn compile(channel: Channel, source: &str) -> Result<Template, TemplateError> {
        let _ = (channel, source);
        todo!("templates")
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(&self, ctx: &RenderContext) -> Result<String, TemplateError> {
        let _ = ctx;
        todo!("templates")
    }
}
