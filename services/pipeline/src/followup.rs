//! What a recipient's answer asks for:
//! - hotline key **1**: the recipient link by SMS (a second push of the same campaign, purpose
//!   `link_by_sms`, at most one per subject per campaign, through the outbox like any push);
//! - hotline key **0**, or a number the SMS provider reports blacklisted: an opt-out, honoured
//!   before every later push.

use crate::planner::CampaignPlan;
use crate::{codes, Pipeline};
use domain::push::PushPurpose;
use domain::Channel;
use store::{NewPush, OptOut, PushRecord};

/// Queues the recipient link by SMS for the subject of `push` (a hotline call). Returns
/// false when the subject has no mobile, opted out of SMS, or already got it.
pub async fn link_by_sms(p: &Pipeline, push: &PushRecord) -> anyhow::Result<bool> {
    let Some(campaign) = p.store.get_campaign(&push.campaign_id).await? else {
        return Ok(false);
    };
    let Some((subject, _)) = p.store.get_subject(&push.subject_id).await? else {
        return Ok(false);
    };
    let Some(mobile) = subject.mobile.as_ref() else {
        return Ok(false);
    };
    let plan = CampaignPlan::load(p, campaign).await?;
    let opt_outs = p
        .store
        .opt_outs_of(std::slice::from_ref(&push.subject_id))
        .await?;
    let category = plan.policy.draft.category.clone();
    if opt_outs.iter().any(|o| o.forbids(Channel::Sms, &category)) {
        return Ok(false);
    }
    let link_code = codes::link_code();
    let link = format!("{}/l/{link_code}", plan.public_url);
    // The campaign's own SMS message (free text or its bound template) when it has one;
    // otherwise a fixed text through the catch-all template.
    let own_sms = plan.checked.templates.contains_key(&Channel::Sms)
        || plan.checked.bindings.contains_key(&Channel::Sms);
    let content = if own_sms {
        plan.render(
            Channel::Sms,
            &subject,
            push.benefit,
            &why_of(&push.explanation),
            &link,
        )?
    } else {
        format!(
            "您在12333来电中选择获取办理指引：{}，详情 {link} 拒收请回复R",
            plan.policy.draft.title
        )
    };
    let new = NewPush {
        id: codes::push_id(),
        subject_id: push.subject_id.clone(),
        purpose: PushPurpose::LinkBySms,
        channel: Channel::Sms,
        recipient: mobile.as_str().to_string(),
        segments: Some(i64::from(domain::provider_template::sms_segments(
            &p.config.sms_sign_name,
            &content,
        ))),
        content,
        link_code,
        explanation: push.explanation.clone(),
        benefit: push.benefit,
    };
    let inserted = p
        .store
        .insert_plan_batch(&push.campaign_id, &[new], &[], p.now())
        .await?
        > 0;
    if inserted {
        p.wake.notify_waiters();
    }
    Ok(inserted)
}

/// Records that the subject refused `channel` (or everything, when `None`).
pub async fn opt_out(
    p: &Pipeline,
    subject_id: &str,
    channel: Option<Channel>,
    source: &str,
) -> anyhow::Result<bool> {
    Ok(p.store
        .record_opt_out(&OptOut {
            subject_id: subject_id.to_string(),
            channel,
            category: None,
            source: source.to_string(),
            at: p.now(),
        })
        .await?)
}

/// The reasons in plain words of a stored explanation (empty when it has none).
pub(crate) fn why_of(explanation: &str) -> String {
    serde_json::from_str::<domain::rule::Explanation>(explanation)
        .map(|e| e.why())
        .unwrap_or_default()
}
