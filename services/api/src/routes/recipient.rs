//! Recipient pages: `GET /l/{code}` shows the policy in plain words, why this recipient
//! got it, the estimated amount, the deadline and how to apply. Opening it records a click.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use domain::rule::Explanation;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f5f6f8;color:#222;line-height:1.6}}
main{{max-width:640px;margin:0 auto;padding:16px}}
section{{background:#fff;border-radius:8px;padding:14px 16px;margin:12px 0}}
h1{{font-size:1.3em;margin:8px 0}} h2{{font-size:1.05em;margin:0 0 6px;color:#0b5394}}
.amount{{font-size:1.6em;color:#c0392b;font-weight:bold}}
.apply{{display:block;text-align:center;background:#0b5394;color:#fff;padding:12px;border-radius:6px;text-decoration:none;font-size:1.1em}}
.muted{{color:#777;font-size:.9em}} li{{margin:4px 0}}
</style></head><body><main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

fn not_found(msg: &str) -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        page(
            "链接无效",
            &format!("<section><h1>链接无效</h1><p>{}</p></section>", esc(msg)),
        ),
    )
}

pub async fn page_handler(
    s: &AppState,
    code: &str,
) -> Result<(StatusCode, Html<String>), anyhow::Error> {
    let Some(push) = s.store.push_by_link(code).await? else {
        return Ok(not_found("该链接不存在或已失效。"));
    };
    let expires = push.created_at + chrono::Duration::days(s.config.link_days);
    if chrono::Utc::now() > expires {
        return Ok((
            StatusCode::GONE,
            page(
                "链接已过期",
                "<section><h1>链接已过期</h1><p>请登录“一网通办”查询相关政策。</p></section>",
            ),
        ));
    }
    let Some(campaign) = s.store.get_campaign(&push.campaign_id).await? else {
        return Ok(not_found("该链接对应的活动不存在。"));
    };
    let Some(policy) = s.store.get_policy(&campaign.policy_id).await? else {
        return Ok(not_found("该链接对应的政策不存在。"));
    };
    s.store.record_click(&push.id, chrono::Utc::now()).await?;
    let d = &policy.draft;
    let explanation: Explanation = serde_json::from_str(&push.explanation).unwrap_or_default();
    let reasons: String = explanation
        .clauses
        .iter()
        .filter(|c| c.held)
        .map(|c| {
            let vals: Vec<String> = c.values.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!(
                "<li>{}{}</li>",
                esc(&c.clause),
                if vals.is_empty() {
                    String::new()
                } else {
                    format!(" <span class=muted>（{}）</span>", esc(&vals.join("，")))
                }
            )
        })
        .collect();
    let amount = push
        .benefit
        .map(|b| format!("<section><h2>预计可享受</h2><div class=amount>约 ¥{}</div><p class=muted>按您登记的信息估算，实际金额以审核结果为准。</p></section>", esc(&domain::template::format_yuan(b))))
        .unwrap_or_default();
    let qa: String = d
        .interpretation
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("<p>{}</p>", esc(l.trim())))
        .collect();
    let deadline = d
        .effective_to
        .map(|t| format!("<p>申请截止：<b>{t}</b></p>"))
        .unwrap_or_default();
    let apply = if d.apply_url.is_empty() {
        String::new()
    } else {
        format!(
            "<section><a class=apply href=\"{}\">去“一网通办”申请</a>{deadline}</section>",
            esc(&d.apply_url)
        )
    };
    let body = format!(
        "<h1>{title}</h1><p class=muted>{issuer} {doc}</p>\
         <section><h2>政策说明</h2><p>{summary}</p></section>\
         {amount}\
         <section><h2>为什么通知您</h2><ul>{reasons}</ul></section>\
         <section><h2>政策解读</h2>{qa}</section>\
         {apply}\
         <section class=muted>不想再收到此类通知？请回复短信“R”退订，或拨打12333。</section>",
        title = esc(&d.title),
        issuer = esc(&d.issuer),
        doc = esc(&d.doc_number),
        summary = esc(&d.summary),
    );
    Ok((StatusCode::OK, page(&d.title, &body)))
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
                page(
                    "暂时无法打开",
                    "<section><h1>暂时无法打开</h1><p>请稍后再试。</p></section>",
                ),
            )
        }
    }
}
