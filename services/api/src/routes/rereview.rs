//! Four eyes that hold after approval: a change to a tag or a parameter that may change
//! an approved campaign's audience sends the campaign back to review, and is refused
//! while such a campaign is launched.
//!
//! A campaign's audience is its policy's eligibility and its audience filter. A change
//! may alter it when either rule reads the changed parameter, or reads the changed tag
//! (by name, or `tags` in a way that names no tag), directly or through tags whose rules
//! read it. Only campaigns carrying an approval count: with approvals off
//! (`POLICY_PUSH_REQUIRE_APPROVAL=false`) a campaign launched unapproved has nothing to
//! protect, and continuous campaigns follow the change as before.
//!
//! - `approved` (not launched), or `submitted` with a first approval (waiting for a
//!   second reviewer): back to `submitted` with its approvals cleared, audited as
//!   `campaign.rereview` with before/after and the change.
//! - `scheduled`, `running`, `paused`: the change is refused with 409
//!   `campaign_running`, naming the campaigns; cancel them (or wait until they end)
//!   first. Sending on under an audience nobody approved is what the rule prevents, and
//!   pausing a live campaign for review behind the operator's back would be a surprise.
//!
//! Policies have no update route: their eligibility is fixed when created.

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use domain::campaign::CampaignStatus;
use domain::rule::Rule;
use store::CampaignRecord;

/// What changed.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Tag(&'a str),
    Param(&'a str),
}

impl Change<'_> {
    fn describe(&self) -> serde_json::Value {
        match self {
            Change::Tag(t) => serde_json::json!({"tag": t}),
            Change::Param(p) => serde_json::json!({"param": p}),
        }
    }
}

/// Statuses of a campaign approved (or half approved) but not launched.
const NOT_LAUNCHED: [CampaignStatus; 2] = [CampaignStatus::Approved, CampaignStatus::Submitted];

/// Statuses of a launched campaign, whose audience may not change under its approval.
const LAUNCHED: [CampaignStatus; 3] = [
    CampaignStatus::Scheduled,
    CampaignStatus::Running,
    CampaignStatus::Paused,
];

/// The approved or half-approved campaigns (not launched) whose audience `change` may alter; refuses with
/// 409 `campaign_running` when a launched approved campaign's may change. Call before
/// writing the change; pass the answer to [`return_to_review`] after.
pub async fn check(s: &AppState, change: Change<'_>) -> ApiResult<Vec<CampaignRecord>> {
    let campaigns: Vec<CampaignRecord> = s
        .store
        .list_campaigns()
        .await?
        .into_iter()
        .filter(|c| {
            c.approved_by.is_some()
                && (NOT_LAUNCHED.contains(&c.status) || LAUNCHED.contains(&c.status))
        })
        .collect();
    if campaigns.is_empty() {
        return Ok(Vec::new());
    }
    let tags = s.store.list_tags().await?;
    let tag_rules: Vec<(String, Rule)> = tags
        .iter()
        .filter_map(|t| Rule::parse(&t.rule).ok().map(|r| (t.name.clone(), r)))
        .collect();
    // The tags whose membership the change may alter: the tag itself, or the tags that
    // read the parameter; then every tag reading one of those, until nothing is added.
    let mut touched: Vec<String> = match change {
        Change::Tag(t) => vec![t.to_string()],
        Change::Param(p) => tag_rules
            .iter()
            .filter(|(_, r)| r.params().iter().any(|x| x == p))
            .map(|(n, _)| n.clone())
            .collect(),
    };
    loop {
        let more: Vec<String> = tag_rules
            .iter()
            .filter(|(n, r)| !touched.contains(n) && touched.iter().any(|t| r.may_read_tag(t)))
            .map(|(n, _)| n.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        touched.extend(more);
    }
    let affects = |r: &Rule| {
        let param = matches!(change, Change::Param(p) if r.params().iter().any(|x| x == p));
        param || touched.iter().any(|t| r.may_read_tag(t))
    };
    let mut approved = Vec::new();
    let mut launched = Vec::new();
    for c in campaigns {
        let mut rules = Vec::new();
        if let Some(p) = s.store.get_policy(&c.policy_id).await? {
            rules.extend(Rule::parse(&p.draft.eligibility).ok());
        }
        if let Some(f) = &c.draft.audience_filter {
            rules.extend(Rule::parse(f).ok());
        }
        if !rules.iter().any(affects) {
            continue;
        }
        if NOT_LAUNCHED.contains(&c.status) {
            approved.push(c);
        } else {
            launched.push(c);
        }
    }
    if !launched.is_empty() {
        let names: Vec<String> = launched
            .iter()
            .map(|c| format!("{} ({})", c.id, c.status.as_str()))
            .collect();
        return Err(ApiError::conflict(
            "campaign_running",
            format!(
                "this change may alter the audience of approved campaigns that are launched: {}; cancel them or wait until they end, then change it",
                names.join(", ")
            ),
        ));
    }
    Ok(approved)
}

/// After the change: each approved campaign of [`check`] goes back to review, audited as
/// `campaign.rereview` with before/after and what changed. The ids sent back.
pub async fn return_to_review(
    s: &AppState,
    op: &Operator,
    campaigns: Vec<CampaignRecord>,
    change: Change<'_>,
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for c in campaigns {
        // A campaign launched or changed meanwhile is left as it is.
        let Ok(after) = s.store.return_to_review(&c.id, &NOT_LAUNCHED).await else {
            continue;
        };
        s.audit(
            op,
            "campaign.rereview",
            &c.id,
            serde_json::json!({
                "before": {"status": c.status.as_str(), "approved_by": c.approved_by},
                "after": {"status": after.status.as_str(), "approved_by": null},
                "change": change.describe(),
            }),
        )
        .await?;
        ids.push(c.id);
    }
    Ok(ids)
}
