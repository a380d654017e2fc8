//! Policies: the measures the bureau publishes, with an eligibility rule and an optional
//! benefit estimate.

use crate::rule::{Rule, RuleError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    Draft,
    Review,
    Published,
    Expired,
    Withdrawn,
}

impl PolicyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Draft => "draft",
            PolicyStatus::Review => "review",
            PolicyStatus::Published => "published",
            PolicyStatus::Expired => "expired",
            PolicyStatus::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Review,
            Self::Published,
            Self::Expired,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One question and its answer of a policy's plain-language interpretation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaqEntry {
    pub q: String,
    pub a: String,
}

/// A policy as the operator writes it (the API's request body).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyDraft {
    pub title: String,
    #[serde(default)]
    pub doc_number: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub effective_from: Option<NaiveDate>,
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub interpretation: String,
    /// The interpretation as questions and answers, shown on the recipient page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faq: Vec<FaqEntry>,
    #[serde(default)]
    pub apply_url: String,
    pub eligibility: String,
    #[serde(default)]
    pub benefit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("eligibility: {0}")]
    Eligibility(RuleError),
    #[error("benefit: {0}")]
    Benefit(RuleError),
}

/// A checked policy draft with its compiled rules.
#[derive(Debug, Clone)]
pub struct CheckedPolicy {
    pub draft: PolicyDraft,
    pub eligibility: Rule,
    pub benefit: Option<Rule>,
}

impl PolicyDraft {
    pub fn check(self) -> Result<CheckedPolicy, PolicyError> {
        if self.title.trim().is_empty() {
            return Err(PolicyError::Invalid("title is required".into()));
        }
        if let (Some(from), Some(to)) = (self.effective_from, self.effective_to) {
            if to < from {
                return Err(PolicyError::Invalid(format!(
                    "effective_to {to} is before effective_from {from}"
                )));
            }
        }
        let web = self.apply_url.starts_with("https://") || self.apply_url.starts_with("http://");
        if !self.apply_url.is_empty() && !web {
            return Err(PolicyError::Invalid(
                "apply_url must be an http(s) URL".into(),
            ));
        }
        if self
            .faq
            .iter()
            .any(|f| f.q.trim().is_empty() || f.a.trim().is_empty())
        {
            return Err(PolicyError::Invalid(
                "faq entries need a question (q) and an answer (a)".into(),
            ));
        }
        let eligibility = Rule::parse(&self.eligibility).map_err(PolicyError::Eligibility)?;
        let benefit = match self.benefit.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(src) => Some(Rule::parse_number(src).map_err(PolicyError::Benefit)?),
        };
        Ok(CheckedPolicy {
            draft: self,
            eligibility,
            benefit,
        })
    }
}
