//! Disclosure review of a policy before publication (公开属性认定 and 保密审查): a
//! reviewer decides whether the policy is public, public on request or not public, and
//! confirms the confidentiality check. Only a passed review lets a policy be published
//! (and pushed to residents).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// 主动公开: may be published and pushed.
    Public,
    /// 依申请公开: published on request; may be pushed to those it concerns.
    PublicOnRequest,
    /// 不予公开: never published.
    NotPublic,
}

impl Disclosure {
    pub fn as_str(self) -> &'static str {
        match self {
            Disclosure::Public => "public",
            Disclosure::PublicOnRequest => "public_on_request",
            Disclosure::NotPublic => "not_public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Public, Self::PublicOnRequest, Self::NotPublic]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// A reviewer's decision, as the API receives it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    pub disclosure: Disclosure,
    /// The confidentiality check (保密审查) was done and found nothing secret.
    pub confidentiality_checked: bool,
    #[serde(default)]
    pub note: String,
}

impl ReviewDecision {
    /// A review passes when the policy may be disclosed and the confidentiality check
    /// was done.
    pub fn passed(&self) -> bool {
        self.disclosure != Disclosure::NotPublic && self.confidentiality_checked
    }

    /// Why the review did not pass, in words for the operator.
    pub fn refusal(&self) -> Option<String> {
        if self.disclosure == Disclosure::NotPublic {
            Some("the disclosure review found the policy not public (不予公开)".into())
        } else if !self.confidentiality_checked {
            Some("the confidentiality check (保密审查) was not confirmed".into())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_only_when_disclosable_and_checked() {
        let d = |disclosure, confidentiality_checked| ReviewDecision {
            disclosure,
            confidentiality_checked,
            note: String::new(),
        };
        assert!(d(Disclosure::Public, true).passed());
        assert!(d(Disclosure::PublicOnRequest, true).passed());
        assert!(!d(Disclosure::Public, false).passed());
        assert!(!d(Disclosure::NotPublic, true).passed());
        assert!(d(Disclosure::NotPublic, true)
            .refusal()
            .unwrap()
            .contains("not public"));
        assert_eq!(
            Disclosure::parse("public_on_request"),
            Some(Disclosure::PublicOnRequest)
        );
    }
}
