//! The operator console: server-rendered pages under `/console/`, in Chinese, with no
//! front-end build. Templates (minijinja) are compiled into the binary; forms post to the
//! console's own handlers, which call the same route functions as the JSON API, so every
//! business rule (roles, four-eyes approval, state transitions, audit) is the API's.
//!
//! # Layout
//! - [`session`]: sign-in with the operator's token → a server-side session (revoked at
//!   sign-out and when the operator is disabled) and its signed cookie; CSRF tokens.
//! - [`pages`]: the `GET` pages (dashboard, tags, attributes, provider templates,
//!   policies, campaigns, reports, operators, audit log, a subject's delivery history,
//!   one push's record of events).
//! - [`actions`]: the form handlers (`POST`), answered with a redirect and a message.

mod actions;
mod pages;
pub(crate) mod session;

use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Environment, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

pub use session::Session;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console/", get(pages::dashboard))
        .route(
            "/console/login",
            get(pages::login)
                .post(actions::login)
                .route_layer(axum::middleware::from_fn_with_state(
                    state,
                    crate::guard::limit_sign_in,
                ))
                // Strangers reach the sign-in: a small body, whatever the console takes.
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::routes::body_limits::DEFAULT,
                )),
        )
        .route("/console/logout", post(actions::logout))
        .route("/console/tags", get(pages::tags).post(actions::put_tag))
        .route(
            "/console/attributes",
            get(pages::attributes).post(actions::put_attribute),
        )
        .route(
            "/console/provider-templates",
            get(pages::provider_templates).post(actions::put_provider_template),
        )
        .route(
            "/console/provider-templates/delete",
            post(actions::delete_provider_template),
        )
        .route(
            "/console/policies",
            get(pages::policies).post(actions::create_policy),
        )
        .route("/console/policies/{id}", get(pages::policy))
        .route(
            "/console/policies/{id}/publish",
            post(actions::publish_policy),
        )
        .route(
            "/console/policies/{id}/withdraw",
            post(actions::withdraw_policy),
        )
        .route(
            "/console/policies/{id}/review",
            post(actions::review_policy),
        )
        .route(
            "/console/campaigns",
            get(pages::campaigns).post(actions::create_campaign),
        )
        .route("/console/campaigns/{id}", get(pages::campaign))
        .route("/console/campaigns/{id}/report", get(pages::report))
        .route("/console/campaigns/{id}/report.csv", get(pages::report_csv))
        .route(
            "/console/campaigns/{id}/{action}",
            post(actions::campaign_action),
        )
        .route(
            "/console/operators",
            get(pages::operators).post(actions::create_operator),
        )
        .route(
            "/console/operators/{id}/{action}",
            post(actions::operator_action),
        )
        .route("/console/opt-outs/undo", post(actions::undo_opt_out))
        .route("/console/audit", get(pages::audit))
        .route("/console/subjects", get(pages::subject))
        .route("/console/pushes/{id}", get(pages::push))
}

/// Chinese labels of the codes the pages show.
fn zh(code: &str) -> String {
    match code {
        "admin" => "管理员",
        "editor" => "编辑",
        "reviewer" => "审核员",
        "viewer" => "只读",
        "draft" => "草稿",
        "review" => "审查中",
        "submitted" => "待审批",
        "approved" => "已批准",
        "scheduled" => "已排期",
        "running" => "推送中",
        "paused" => "已暂停",
        "completed" => "已完成",
        "cancelled" => "已取消",
        "published" => "已发布",
        "expired" => "已过期",
        "withdrawn" => "已撤回",
        "once" => "一次性",
        "continuous" => "持续",
        "wechat" => "微信",
        "sms" => "短信",
        "hotline" => "12333外呼",
        "aliyun_sms" => "阿里云短信",
        "tencent_sms" => "腾讯云短信",
        "aliyun_voice" => "阿里云语音通知",
        "person" => "个人",
        "enterprise" => "企业",
        "queued" => "排队中",
        "sending" => "发送中",
        "sent" => "已发送",
        "delivered" => "已送达",
        "failed" => "失败",
        "unreachable" => "无法触达",
        "opted_out" => "已退订",
        "capped" => "频次上限",
        "duplicate" => "重复推送",
        "policy_ended" => "政策已结束",
        "awaiting" => "待发送/待回执",
        "notice" => "通知",
        "link_by_sms" => "按键索取链接",
        "public" => "主动公开",
        "public_on_request" => "依申请公开",
        "not_public" => "不予公开",
        "string" => "文本",
        "integer" => "整数",
        "number" => "数值",
        "boolean" => "是/否",
        "date" => "日期",
        "list" => "列表",
        other => other,
    }
    .to_string()
}

/// A stored UTC timestamp as operators read it: Asia/Shanghai, to the second. Anything
/// else (none, a date, free text) is shown as it is.
fn local_time(v: Value) -> Value {
    match v
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => Value::from(
            t.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
        ),
        None => v,
    }
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("dashboard.html", include_str!("templates/dashboard.html")),
            ("tags.html", include_str!("templates/tags.html")),
            ("attributes.html", include_str!("templates/attributes.html")),
            (
                "provider_templates.html",
                include_str!("templates/provider_templates.html"),
            ),
            ("policies.html", include_str!("templates/policies.html")),
            ("policy.html", include_str!("templates/policy.html")),
            ("campaigns.html", include_str!("templates/campaigns.html")),
            ("campaign.html", include_str!("templates/campaign.html")),
            ("report.html", include_str!("templates/report.html")),
            ("operators.html", include_str!("templates/operators.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("subject.html", include_str!("templates/subject.html")),
            ("push.html", include_str!("templates/push.html")),
            ("bars.html", include_str!("templates/bars.html")),
        ] {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("console template {name}: {e}"));
        }
        env.add_filter("zh", |s: String| zh(&s));
        env.add_filter("event_zh", |s: String| {
            domain::push_event::EventType::ALL
                .into_iter()
                .find(|t| t.as_str() == s)
                .map_or(s, |t| t.label_zh().to_string())
        });
        env.add_filter("local", local_time);
        env
    })
}

/// Renders a page; a template error is a 500 with a short page (details in the log).
fn render(name: &str, ctx: Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), template = name, "console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><meta charset=utf-8><h1>页面暂时无法显示</h1>".to_string()),
            )
                .into_response()
        }
    }
}

/// The values every signed-in page has: the operator, the CSRF token, the flash message.
fn page_ctx(sess: &Session, q: &HashMap<String, String>, nav: &str, extra: Value) -> Value {
    context! {
        me => context! {
            id => sess.op.id(), name => sess.op.0.name.clone(), role => sess.op.role().as_str(),
        },
        csrf => sess.csrf.clone(),
        ok => q.get("ok").cloned(),
        err => q.get("err").cloned(),
        nav => nav,
        ..extra
    }
}

/// A redirect to `path` with a message shown on the next page.
fn back(path: &str, result: Result<String, String>) -> Response {
    let (k, v) = match result {
        Ok(m) => ("ok", m),
        Err(m) => ("err", m),
    };
    let q = serde_urlencoded::to_string([(k, v)]).unwrap_or_default();
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}{q}")).into_response()
}

/// An API error as the console says it.
fn failed(e: ApiError) -> String {
    format!("操作未完成（{}）：{}", e.code, e.message)
}

/// A bar chart's rows: label, value, and the bar's length out of 400 (the largest value
/// is a full bar).
fn bars(rows: &[(String, f64, String)]) -> Value {
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    bars_to(rows, max)
}

/// Bars scaled so that `max` is a full bar (1.0 for rates).
fn bars_to(rows: &[(String, f64, String)], max: f64) -> Value {
    let items: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (label, v, text))| {
            let w = if max > 0.0 {
                (v / max * 400.0).round()
            } else {
                0.0
            };
            let y = i * 26;
            context! {
                label => label, text => text, w => w, y => y + 4, ty => y + 18, tx => 176.0 + w,
            }
        })
        .collect();
    context! { items => items, height => rows.len() * 26 + 4 }
}

/// `0.4567` → `45.7%`.
fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = env();
        for name in [
            "login.html",
            "dashboard.html",
            "campaign.html",
            "report.html",
        ] {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn the_attribute_catalogue_page_lists_labels_and_value_labels() {
        let status = domain::attribute::AttributeDef {
            name: "employment_status".into(),
            label: "就业状态".into(),
            ty: domain::attribute::AttrType::String,
            unit: String::new(),
            values: [("registered_unemployed".to_string(), "登记失业".to_string())].into(),
            personal: false,
        };
        let html = env()
            .get_template("attributes.html")
            .unwrap()
            .render(context! { attributes => vec![status], may_write => true, csrf => "c" })
            .unwrap();
        assert!(html.contains("就业状态") && html.contains("文本"), "{html}");
        assert!(
            html.contains("registered_unemployed</code> 登记失业"),
            "{html}"
        );
        assert!(html.contains(r#"action="/console/attributes""#));
    }

    fn provider_templates_page(may_write: bool) -> String {
        let t = context! {
            channel => "sms", provider => "tencent_sms", code => "1843021",
            name => "补贴到账提醒", text => "您可申领{1}，详见{2}", sign_name => "上海人社",
            variables => vec![
                context! { name => "1", kind => "text", max => 12 },
                context! { name => "2", kind => "code", max => 12 },
            ],
        };
        env()
            .get_template("provider_templates.html")
            .unwrap()
            .render(context! {
                templates => vec![t], providers => vec!["aliyun_sms", "tencent_sms"],
                may_write, csrf => "c",
            })
            .unwrap()
    }

    #[test]
    fn the_provider_templates_page_lists_registrations_and_offers_the_form_to_writers() {
        let html = provider_templates_page(true);
        assert!(
            html.contains("短信") && html.contains("腾讯云短信") && html.contains("1843021"),
            "{html}"
        );
        assert!(
            html.contains("您可申领{1}，详见{2}") && html.contains("【上海人社】"),
            "{html}"
        );
        assert!(html.contains("<code>1</code> text，≤12 字"), "{html}");
        assert!(html.contains(r#"action="/console/provider-templates""#));
        assert!(html.contains(r#"action="/console/provider-templates/delete""#));
        // Whoever may not write sees the registrations and no form.
        let html = provider_templates_page(false);
        assert!(html.contains("1843021"), "{html}");
        assert!(!html.contains("<form"), "{html}");
    }

    #[test]
    fn the_campaign_page_shows_each_channels_binding() {
        let c = serde_json::json!({
            "id": "c1", "name": "补贴提醒", "status": "draft", "channels": ["sms"],
            "counts": {},
            "bindings": {"sms": {"template": "SMS_468201",
                "variables": {"title": "{{ policy.title }}", "link": "{{ link_code }}"}}},
        });
        let html = env()
            .get_template("campaign.html")
            .unwrap()
            .render(context! { c => Value::from_serialize(&c), names => context! {} })
            .unwrap();
        assert!(html.contains("<code>SMS_468201</code>"), "{html}");
        assert!(
            html.contains("<code>title</code> ← <code>{{ policy.title }}</code>"),
            "{html}"
        );
        // Without bindings, no binding row.
        let mut plain = c.clone();
        plain["bindings"] = serde_json::json!({});
        let html = env()
            .get_template("campaign.html")
            .unwrap()
            .render(context! { c => Value::from_serialize(&plain), names => context! {} })
            .unwrap();
        assert!(!html.contains("id=\"bindings\""), "{html}");
    }

    #[test]
    fn the_sign_in_page_renders_in_chinese() {
        let html = env()
            .get_template("login.html")
            .unwrap()
            .render(context! { err => "令牌无效" })
            .unwrap();
        assert!(html.contains("操作员令牌") && html.contains("令牌无效"));
        assert!(html.contains("lang=\"zh-CN\""));
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let b = bars(&[
            ("甲".into(), 10.0, "10".into()),
            ("乙".into(), 5.0, "5".into()),
            ("丙".into(), 0.0, "0".into()),
        ]);
        let html = env()
            .render_str(
                "{% from 'bars.html' import chart %}{{ chart(b) }}",
                context! { b },
            )
            .unwrap();
        assert!(html.contains("width=\"400.0\""), "{html}");
        assert!(html.contains("width=\"200.0\""), "{html}");
        assert!(html.contains("width=\"0.0\""), "{html}");
        assert_eq!(pct(0.4567), "45.7%");
        assert_eq!(zh("capped"), "频次上限");
        assert_eq!(zh("something_new"), "something_new");
    }
}
