//! The end of a policy: it **expires** the day after its `effective_to` (Asia/Shanghai)
//! or is **withdrawn** by a reviewer. Either way nothing more of it is sent:
//!
//! - [`end_policy`] sets the policy's status, ends every campaign of it that is not over
//!   (an expired policy's campaigns complete, a withdrawn policy's are cancelled), and
//!   turns their pushes still queued into skips `policy_ended`; each step is audited
//!   (`policy.expire` / `policy.withdraw`, `campaign.complete` / `campaign.cancel`);
//! - [`expire_due`] ends every published policy whose `effective_to` has passed; the
//!   calendar sweep runs it at start and every day ([`crate::sweep`]);
//! - at send time the connector skips (`policy_ended`) a claimed push whose policy is no
//!   longer published or is past its `effective_to` ([`crate::guard`]), so a push taken
//!   before the sweep, or handed to the bus before a withdrawal, is not sent either.

use crate::Pipeline;
use domain::campaign::CampaignStatus;
use domain::policy::PolicyStatus;
use domain::push::SkipReason;
use store::{AuditEntry, CampaignChange, PolicyRecord};

/// What ending a policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ended {
    /// The campaigns ended (completed or cancelled).
    pub campaigns: Vec<String>,
    /// Pushes that were still queued and will never be sent.
    pub skipped: u64,
}

/// Whether pushes of `policy` may still be sent on `today`: it is published and its
/// `effective_to` (if any) has not passed.
pub fn open(policy: &PolicyRecord, today: chrono::NaiveDate) -> bool {
    policy.status == PolicyStatus::Published
        && policy.draft.effective_to.is_none_or(|to| today <= to)
}

/// Ends `policy_id` with `status` (`Expired` or `Withdrawn`) as operator `by`; see the
/// module documentation.
pub async fn end_policy(
    p: &Pipeline,
    policy_id: &str,
    status: PolicyStatus,
    by: &str,
) -> anyhow::Result<Ended> {
    let (verb, to) = match status {
        PolicyStatus::Withdrawn => ("withdraw", CampaignStatus::Cancelled),
        _ => ("expire", CampaignStatus::Completed),
    };
    let now = p.now();
    p.store.set_policy_status(policy_id, status, now).await?;
    let mut ended = Ended::default();
    let live = CampaignStatus::NOT_OVER;
    for c in p.store.list_campaigns().await? {
        if c.policy_id != policy_id || !live.contains(&c.status) {
            continue;
        }
        let change = CampaignChange {
            completed_at: (to == CampaignStatus::Completed).then_some(now),
            ..Default::default()
        };
        if p.store
            .transition_campaign(&c.id, &live, to, change)
            .await
            .is_err()
        {
            continue; // ended meanwhile
        }
        let skipped = p
            .store
            .skip_queued(&c.id, SkipReason::PolicyEnded, p.now())
            .await?;
        audit(
            p,
            by,
            &format!(
                "campaign.{}",
                if to == CampaignStatus::Completed {
                    "complete"
                } else {
                    "cancel"
                }
            ),
            &c.id,
            serde_json::json!({"reason": format!("policy {verb}"), "skipped": skipped}),
        )
        .await?;
        ended.skipped += skipped;
        ended.campaigns.push(c.id);
    }
    audit(
        p,
        by,
        &format!("policy.{verb}"),
        policy_id,
        serde_json::json!({"after": status.as_str(), "campaigns": ended.campaigns, "skipped": ended.skipped}),
    )
    .await?;
    Ok(ended)
}

/// Expires every published policy whose `effective_to` is before today; answers their
/// ids.
pub async fn expire_due(p: &Pipeline) -> anyhow::Result<Vec<String>> {
    let today = p.today();
    let mut expired = Vec::new();
    for policy in p.store.list_policies().await? {
        let past = policy.draft.effective_to.is_some_and(|to| to < today);
        if policy.status == PolicyStatus::Published && past {
            let ended = end_policy(p, &policy.id, PolicyStatus::Expired, "system").await?;
            tracing::info!(policy = %policy.id, campaigns = ended.campaigns.len(), skipped = ended.skipped, "policy expired");
            expired.push(policy.id);
        }
    }
    Ok(expired)
}

async fn audit(
    p: &Pipeline,
    by: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    p.store
        .audit(&AuditEntry {
            operator_id: by.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
            at: p.now(),
        })
        .await?;
    Ok(())
}
