//! Recipient pages: `GET /l/{code}` shows the policy in plain words, why this recipient
//! got it, the estimated amount, the deadline, how to apply, and controls to unsubscribe
//! from the channel or the policy's category (forms posting to `/l/{code}/unsubscribe`).
//! Opening it records a click. The page is a minijinja template (`recipient.html`).
//!
//! "Why" is shown in sentences only (`domain::rule::Explanation::sentences`, worded when
//! the push was planned), never the rule's clauses; a push planned before explanations
//! had sentences is worded now from the subject's current record.
//!
//! The code is 22 random alphanumeric characters (about 130 bits, `pipeline::codes`), so
//! links cannot be guessed or enumerated; a link expires `link_days` after its push was
//! written (410 Gone).

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use domain::rule::Explanation;

fn env() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.add_template("recipient.html", include_str!("recipient.html"))
            .expect("recipient page template");
        env
    })
}

fn render(ctx: minijinja::Value) -> Html<String> {
    let html = env()
        .get_template("recipient.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "recipient page template failed");
            "<!doctype html><meta charset=utf-8><p>暂时无法打开，请稍后再试。</p>".into()
        });
    Html(html)
}

fn message(title: &str, message: &str) -> Html<String> {
    render(minijinja::context! { title, message })
}

fn not_found(msg: &str) -> (StatusCode, Html<String>) {
    (StatusCode::NOT_FOUND, message("链接无效", msg))
}

/// The policy's questions and answers: its `faq`, or its interpretation when that is
/// written as `问：… 答：…` lines.
pub fn faq_of(d: &domain::policy::PolicyDraft) -> Vec<domain::policy::FaqEntry> {
    if !d.faq.is_empty() {
        return d.faq.clone();
    }
    let mut out: Vec<domain::policy::FaqEntry> = Vec::new();
    for line in d
        .interpretation
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let q = line
            .strip_prefix("问：")
            .or_else(|| line.strip_prefix("问:"));
        let a = line
            .strip_prefix("答：")
            .or_else(|| line.strip_prefix("答:"));
        match (q, a, out.last_mut()) {
            (Some(q), _, _) => out.push(domain::policy::FaqEntry {
                q: q.trim().to_string(),
                a: String::new(),
            }),
            (None, Some(a), Some(last)) if last.a.is_empty() => last.a = a.trim().to_string(),
            (None, _, Some(last)) if !last.a.is_empty() => {
                last.a.push('\n');
                last.a.push_str(line);
            }
            _ => return Vec::new(),
        }
    }
    if out.iter().any(|f| f.a.is_empty()) {
        return Vec::new();
    }
    out
}

/// The reasons in words for a push stored without them: the policy's eligibility for the
/// subject as recorded today (nothing when the subject is gone or no longer matches).
async fn worded_now(
    s: &AppState,
    policy: &domain::policy::PolicyDraft,
    subject_id: &str,
) -> anyhow::Result<Vec<String>> {
    let Some((subject, tags)) = s.store.get_subject(subject_id).await? else {
        return Ok(Vec::new());
    };
    let Ok(checked) = policy.clone().check() else {
        return Ok(Vec::new());
    };
    let today = s.pipeline.today();
    let params = pipeline::matching::params_on(s.store.as_ref(), today).await?;
    let glossary = pipeline::matching::glossary(s.store.as_ref()).await?;
    let facts = domain::Facts::new(&subject, &tags, today);
    let e = checked
        .eligibility
        .bind(&params)
        .explain_in_words(&facts, &glossary);
    Ok(e.sentences().into_iter().map(str::to_string).collect())
}

pub async fn page_handler(
    s: &AppState,
    code: &str,
) -> Result<(StatusCode, Html<String>), anyhow::Error> {
    let Some(push) = s.store.push_by_link(code).await? else {
        return Ok(not_found("该链接不存在或已失效。"));
    };
    let expires = push.created_at + chrono::Duration::days(s.config.link_days);
    if s.pipeline.now() > expires {
        return Ok((
            StatusCode::GONE,
            message("链接已过期", "请登录“一网通办”或拨打 12333 查询相关政策。"),
        ));
    }
    let Some(campaign) = s.store.get_campaign(&push.campaign_id).await? else {
        return Ok(not_found("该链接对应的活动不存在。"));
    };
    let Some(policy) = s.store.get_policy(&campaign.policy_id).await? else {
        return Ok(not_found("该链接对应的政策不存在。"));
    };
    s.store.record_click(&push.id, s.pipeline.now()).await?;
    let d = &policy.draft;
    let explanation: Explanation = serde_json::from_str(&push.explanation).unwrap_or_default();
    let mut reasons: Vec<String> = explanation
        .sentences()
        .into_iter()
        .map(str::to_string)
        .collect();
    if reasons.is_empty() {
        reasons = worded_now(s, &policy.draft, &push.subject_id).await?;
    }
    let faq = faq_of(d);
    let paragraphs: Vec<&str> = if faq.is_empty() {
        d.interpretation
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    // The hotline's link arrives by SMS: unsubscribing "from this channel" means SMS.
    let channel = match push.purpose {
        domain::push::PushPurpose::LinkBySms => domain::Channel::Sms,
        domain::push::PushPurpose::Notice => push.channel,
    };
    let channel_name = match channel {
        domain::Channel::Sms => "短信",
        domain::Channel::Wechat => "微信",
        domain::Channel::Hotline => "12333 电话",
    };
    let ctx = minijinja::context! {
        title => d.title.clone(),
        p => minijinja::Value::from_serialize(d),
        code,
        amount => push.benefit.map(domain::template::format_yuan),
        deadline => d.effective_to.map(|t| t.format("%Y年%-m月%-d日").to_string()),
        reasons,
        faq => minijinja::Value::from_serialize(&faq),
        paragraphs,
        channel => channel.as_str(),
        channel_name,
    };
    Ok((StatusCode::OK, render(ctx)))
}

pub async fn show(
    State(s): State<AppState>,
    Path(code): Path<String>,
) -> (StatusCode, Html<String>) {
    match page_handler(&s, &code).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "recipient page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                message("暂时无法打开", "请稍后再试。"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::policy::{FaqEntry, PolicyDraft};

    fn draft(interpretation: &str, faq: Vec<FaqEntry>) -> PolicyDraft {
        let mut d: PolicyDraft =
            serde_json::from_value(serde_json::json!({"title": "t", "eligibility": "true"}))
                .unwrap();
        d.interpretation = interpretation.into();
        d.faq = faq;
        d
    }

    #[test]
    fn faq_comes_from_the_policy_or_its_interpretation() {
        let qa = |q: &str, a: &str| FaqEntry {
            q: q.into(),
            a: a.into(),
        };
        assert_eq!(
            faq_of(&draft(
                "问：谁？\n答：你。\n问：多少？\n答：一千元。\n另有说明。",
                vec![]
            )),
            vec![qa("谁？", "你。"), qa("多少？", "一千元。\n另有说明。")]
        );
        assert_eq!(
            faq_of(&draft("问：谁？\n答：你。", vec![qa("何时？", "现在。")])),
            vec![qa("何时？", "现在。")],
            "an explicit faq wins"
        );
        assert!(faq_of(&draft("这是一段普通的解读。", vec![])).is_empty());
        assert!(faq_of(&draft("问：只有问题", vec![])).is_empty());
    }

    #[test]
    fn the_message_page_renders() {
        let Html(html) = message("链接已过期", "请拨打 12333。");
        assert!(html.contains("链接已过期") && html.contains("viewport"));
    }
}
