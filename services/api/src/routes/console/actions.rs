//! The console's form handlers. Each one checks the form's CSRF token, then calls the
//! route function the JSON API uses for the same action, and redirects back with what
//! happened.

use super::super::{
    attributes, campaigns, operations, operators, opt_outs, policies, provider_templates, tags,
};
use super::session::{self, Session};
use super::{back, failed, page_ctx, render};
use crate::auth::token_hash;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use bytes::Bytes;
use chrono::{NaiveDateTime, TimeZone};
use minijinja::{context, Value};
use serde_json::{json, Map};
use std::collections::HashMap;

type F = Form<HashMap<String, String>>;

fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(|s| s.trim()).unwrap_or("")
}

/// A non-empty field, or nothing.
fn opt(f: &HashMap<String, String>, k: &str) -> Option<String> {
    Some(field(f, k).to_string()).filter(|s| !s.is_empty())
}

fn csrf_ok(sess: &Session, f: &HashMap<String, String>) -> bool {
    f.get("csrf").is_some_and(|c| *c == sess.csrf)
}

const STALE: &str = "页面已过期，请刷新后重试";

/// `POST /console/login`: the operator's token → a session cookie.
pub async fn login(State(s): State<AppState>, Form(f): F) -> Response {
    let token = field(&f, "token");
    let op = if token.is_empty() {
        None
    } else {
        match s.store.operator_by_token_hash(&token_hash(token)).await {
            Ok(op) => op,
            Err(e) => {
                tracing::error!(error = %e, "console sign-in lookup failed");
                return back("/console/login", Err("暂时无法登录，请稍后再试".into()));
            }
        }
    };
    let Some(op) = op else {
        return back("/console/login", Err("令牌无效".into()));
    };
    let cookie = match session::sign_in(&s, &op.id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "console session could not be recorded");
            return back("/console/login", Err("暂时无法登录，请稍后再试".into()));
        }
    };
    (
        [(header::SET_COOKIE, session::set_cookie(&s, &cookie))],
        Redirect::to("/console/"),
    )
        .into_response()
}

/// `POST /console/logout`: the session is revoked on the server, the cookie cleared.
pub async fn logout(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    session::sign_out(&s, &headers).await;
    (
        [(header::SET_COOKIE, session::clear_cookie(&s))],
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// `POST /console/tags`: create or replace a tag (`PUT /api/v1/tags/{name}`).
pub async fn put_tag(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/tags", Err(STALE.into()));
    }
    let name = field(&f, "name").to_string();
    let body = json!({"description": field(&f, "description"), "rule": field(&f, "rule")});
    match tags::put(
        State(s),
        sess.op.clone(),
        Path(name.clone()),
        Bytes::from(body.to_string()),
    )
    .await
    {
        Ok(_) => back("/console/tags", Ok(format!("标签 {name} 已保存"))),
        Err(e) => back("/console/tags", Err(failed(e))),
    }
}

/// `POST /console/attributes`: declare or replace an attribute
/// (`PUT /api/v1/attributes/{name}`); value labels one `value=名称` a line.
pub async fn put_attribute(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/attributes", Err(STALE.into()));
    }
    let name = field(&f, "name").to_string();
    let values: serde_json::Map<String, serde_json::Value> = field(&f, "values")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().into()))
        .collect();
    let body = json!({
        "label": field(&f, "label"), "type": field(&f, "type"), "unit": field(&f, "unit"),
        "values": values, "personal": field(&f, "personal") == "1",
    });
    match attributes::put(
        State(s),
        sess.op.clone(),
        Path(name.clone()),
        Bytes::from(body.to_string()),
    )
    .await
    {
        Ok(_) => back("/console/attributes", Ok(format!("属性 {name} 已保存"))),
        Err(e) => back("/console/attributes", Err(failed(e))),
    }
}

const TEMPLATES: &str = "/console/provider-templates";

/// Template variables, one a line: `name`, `name:kind` or `name:kind:max_chars`
/// (`1:text:12`, `amount:amount`). Checked by the API, not here: a `max_chars` that is
/// not a number is passed on as text for the API to refuse.
fn parse_variables(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, ':').map(str::trim);
            let mut var = Map::new();
            var.insert("name".into(), json!(parts.next().unwrap_or("")));
            if let Some(kind) = parts.next().filter(|k| !k.is_empty()) {
                var.insert("kind".into(), json!(kind));
            }
            if let Some(max) = parts.next().filter(|m| !m.is_empty()) {
                let max = max.parse::<u64>().map_or_else(|_| json!(max), |n| json!(n));
                var.insert("max_chars".into(), max);
            }
            serde_json::Value::Object(var)
        })
        .collect()
}

/// `POST /console/provider-templates`: register or replace a template
/// (`PUT /api/v1/provider-templates/{provider}/{code}`).
pub async fn put_provider_template(
    State(s): State<AppState>,
    sess: Session,
    Form(f): F,
) -> Response {
    provider_template_form(s, sess, f, false).await
}

/// `POST /console/provider-templates/delete`: remove a template no live campaign binds
/// (`DELETE /api/v1/provider-templates/{provider}/{code}`).
pub async fn delete_provider_template(
    State(s): State<AppState>,
    sess: Session,
    Form(f): F,
) -> Response {
    provider_template_form(s, sess, f, true).await
}

async fn provider_template_form(
    s: AppState,
    sess: Session,
    f: HashMap<String, String>,
    delete: bool,
) -> Response {
    if !csrf_ok(&sess, &f) {
        return back(TEMPLATES, Err(STALE.into()));
    }
    let (provider, code) = (
        field(&f, "provider").to_string(),
        field(&f, "code").to_string(),
    );
    let (st, op, path) = (
        State(s),
        sess.op.clone(),
        Path((provider.clone(), code.clone())),
    );
    let (result, done) = if delete {
        let r = provider_templates::delete(st, op, path).await;
        (r.map(drop), "已删除")
    } else {
        let body = json!({
            "name": field(&f, "name"),
            "text": f.get("text").map(|t| t.trim().replace("\r\n", "\n")).unwrap_or_default(),
            "sign_name": opt(&f, "sign_name"),
            "variables": parse_variables(field(&f, "variables")),
            "enterprise": field(&f, "enterprise") == "1",
        });
        let r = provider_templates::put(st, op, path, Bytes::from(body.to_string())).await;
        (r.map(drop), "已保存")
    };
    match result {
        Ok(()) => back(TEMPLATES, Ok(format!("模板 {provider}/{code} {done}"))),
        Err(e) => back(TEMPLATES, Err(failed(e))),
    }
}

/// FAQ text: blocks separated by a blank line; a block's first line is the question,
/// the rest its answer.
fn parse_faq(text: &str) -> Vec<serde_json::Value> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines().map(str::trim).filter(|l| !l.is_empty());
            let q = lines.next()?;
            let a: Vec<&str> = lines.collect();
            (!a.is_empty()).then(|| json!({"q": q, "a": a.join("\n")}))
        })
        .collect()
}

/// `POST /console/policies`: create a policy (`POST /api/v1/policies`).
pub async fn create_policy(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/policies", Err(STALE.into()));
    }
    let mut body = Map::new();
    for k in [
        "title",
        "doc_number",
        "issuer",
        "category",
        "summary",
        "interpretation",
        "apply_url",
        "eligibility",
    ] {
        body.insert(k.into(), json!(field(&f, k)));
    }
    for k in ["effective_from", "effective_to", "benefit"] {
        if let Some(x) = opt(&f, k) {
            body.insert(k.into(), json!(x));
        }
    }
    let faq = parse_faq(f.get("faq").map(String::as_str).unwrap_or(""));
    if !faq.is_empty() {
        body.insert("faq".into(), json!(faq));
    }
    let bytes = Bytes::from(serde_json::Value::Object(body).to_string());
    match policies::create(State(s), sess.op.clone(), bytes).await {
        Ok((_, Json(p))) => back(
            &format!("/console/policies/{}", p["id"].as_str().unwrap_or("")),
            Ok("政策已创建（草稿）".into()),
        ),
        Err(e) => back("/console/policies", Err(failed(e))),
    }
}

/// `POST /console/policies/{id}/publish`
pub async fn publish_policy(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    let here = format!("/console/policies/{id}");
    if !csrf_ok(&sess, &f) {
        return back(&here, Err(STALE.into()));
    }
    match policies::publish(State(s), sess.op.clone(), Path(id)).await {
        Ok(_) => back(&here, Ok("政策已发布".into())),
        Err(e) => back(&here, Err(failed(e))),
    }
}

/// `POST /console/policies/{id}/withdraw`: withdraws a published policy through
/// `POST /api/v1/policies/{id}/withdraw` once the operator confirmed it (`confirm=1`).
pub async fn withdraw_policy(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    let here = format!("/console/policies/{id}");
    if !csrf_ok(&sess, &f) {
        return back(&here, Err(STALE.into()));
    }
    if field(&f, "confirm") != "1" {
        return back(&here, Err("请勾选确认后再撤回政策".into()));
    }
    match policies::withdraw(State(s), sess.op.clone(), Path(id)).await {
        Ok(Json(v)) => back(
            &here,
            Ok(format!(
                "政策已撤回：取消推送活动 {} 个，未发出的推送 {} 条已取消；已记入审计日志",
                v["cancelled_campaigns"].as_array().map_or(0, Vec::len),
                v["skipped_pushes"].as_u64().unwrap_or(0)
            )),
        ),
        Err(e) => back(&here, Err(failed(e))),
    }
}

/// `POST /console/policies/{id}/review`: the disclosure review (公开属性认定 and 保密审查),
/// through `POST /api/v1/policies/{id}/review`.
pub async fn review_policy(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    let here = format!("/console/policies/{id}");
    if !csrf_ok(&sess, &f) {
        return back(&here, Err(STALE.into()));
    }
    let body = json!({
        "disclosure": field(&f, "disclosure"),
        "confidentiality_checked": field(&f, "confidentiality_checked") == "1",
        "note": field(&f, "note"),
    });
    match operations::review_policy(
        State(s),
        sess.op.clone(),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await
    {
        Ok((_, Json(r))) if r["passed"] == true => back(&here, Ok("审查通过，可以发布".into())),
        Ok(_) => back(&here, Ok("审查已记录：未通过，不能发布".into())),
        Err(e) => back(&here, Err(failed(e))),
    }
}

/// A `datetime-local` value, Asia/Shanghai wall clock, as RFC 3339.
fn shanghai_time(local: &str) -> Option<String> {
    let t = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let t = domain::campaign::SCHEDULE_TZ
        .from_local_datetime(&t)
        .earliest()?;
    Some(t.with_timezone(&chrono::Utc).to_rfc3339())
}

/// `POST /console/campaigns`: create a campaign (`POST /api/v1/campaigns`).
pub async fn create_campaign(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/campaigns", Err(STALE.into()));
    }
    let mut channels: Vec<String> = Vec::new();
    for k in ["channel_1", "channel_2", "channel_3"] {
        if let Some(c) = opt(&f, k) {
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
    }
    let templates: Map<String, serde_json::Value> = channels
        .iter()
        .filter_map(|c| opt(&f, &format!("template_{c}")).map(|t| (c.clone(), json!(t))))
        .collect();
    let at = match opt(&f, "schedule_at") {
        None => None,
        Some(x) => match shanghai_time(&x) {
            Some(t) => Some(t),
            None => return back("/console/campaigns", Err(format!("发送时间 {x} 无法识别"))),
        },
    };
    let mut body = json!({
        "policy_id": field(&f, "policy_id"), "name": field(&f, "name"),
        "mode": opt(&f, "mode").unwrap_or_else(|| "once".into()),
        "channels": channels, "templates": templates,
        "audience_filter": opt(&f, "audience_filter"),
    });
    if at.is_some() || opt(&f, "schedule_cron").is_some() {
        body["schedule"] = json!({"at": at, "cron": opt(&f, "schedule_cron")});
    }
    match campaigns::create(State(s), sess.op.clone(), Bytes::from(body.to_string())).await {
        Ok((_, Json(c))) => back(
            &format!("/console/campaigns/{}", c["id"].as_str().unwrap_or("")),
            Ok("推送活动已创建（草稿）".into()),
        ),
        Err(e) => back("/console/campaigns", Err(failed(e))),
    }
}

/// `POST /console/campaigns/{id}/{submit|approve|launch|pause|resume}`
pub async fn campaign_action(
    State(s): State<AppState>,
    sess: Session,
    Path((id, action)): Path<(String, String)>,
    Form(f): F,
) -> Response {
    let here = format!("/console/campaigns/{id}");
    if !csrf_ok(&sess, &f) {
        return back(&here, Err(STALE.into()));
    }
    let (st, op, p) = (State(s), sess.op.clone(), Path(id));
    let (result, done) = match action.as_str() {
        "submit" => (campaigns::submit(st, op, p).await, "已提交审批"),
        "approve" => (campaigns::approve(st, op, p).await, "已批准"),
        "launch" => (campaigns::launch(st, op, p).await, "已启动推送"),
        "pause" => (campaigns::pause(st, op, p).await, "已暂停"),
        "resume" => (campaigns::resume(st, op, p).await, "已恢复推送"),
        _ => return back(&here, Err(format!("未知操作 {action}"))),
    };
    match result {
        Ok(_) => back(&here, Ok(done.into())),
        Err(e) => back(&here, Err(failed(e))),
    }
}

/// The operators page showing a token once (a new operator's, or a rotated one).
async fn operators_with_token(
    s: &AppState,
    sess: &Session,
    message: String,
    name: Option<String>,
    token: Option<String>,
) -> Response {
    let ops = s.store.list_operators().await.unwrap_or_default();
    let q = HashMap::from([("ok".to_string(), message)]);
    let ctx = context! {
        operators => Value::from_serialize(&ops),
        may_manage => sess.op.may(domain::operator::Action::ManageOperators),
        new_token => token,
        new_name => name,
    };
    render("operators.html", page_ctx(sess, &q, "operators", ctx))
}

/// `POST /console/operators`: create an operator (`POST /api/v1/operators`); the new
/// token is shown once, on this answer.
pub async fn create_operator(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/operators", Err(STALE.into()));
    }
    let body = json!({"name": field(&f, "name"), "role": field(&f, "role")});
    match operators::create(
        State(s.clone()),
        sess.op.clone(),
        Bytes::from(body.to_string()),
    )
    .await
    {
        Ok((_, Json(v))) => {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let token = v["token"].as_str().map(str::to_string);
            operators_with_token(
                &s,
                &sess,
                format!("操作员 {name} 已创建"),
                Some(name),
                token,
            )
            .await
        }
        Err(e) => back("/console/operators", Err(failed(e))),
    }
}

/// `POST /console/operators/{id}/{action}`: `disable` (`POST /api/v1/operators/{id}/disable`)
/// or `token` (`POST /api/v1/operators/{id}/token`, the new token shown once).
pub async fn operator_action(
    State(s): State<AppState>,
    sess: Session,
    Path((id, action)): Path<(String, String)>,
    Form(f): F,
) -> Response {
    if !csrf_ok(&sess, &f) {
        return back("/console/operators", Err(STALE.into()));
    }
    let (st, op, p) = (State(s.clone()), sess.op.clone(), Path(id.clone()));
    match action.as_str() {
        "disable" => match operators::disable(st, op, p).await {
            Ok(_) => back("/console/operators", Ok(format!("操作员 {id} 已停用"))),
            Err(e) => back("/console/operators", Err(failed(e))),
        },
        "token" => match operators::rotate_token(st, op, p).await {
            // Rotating one's own token leaves the console session as it is.
            Ok(Json(v)) => {
                let token = v["token"].as_str().map(str::to_string);
                operators_with_token(
                    &s,
                    &sess,
                    format!("操作员 {id} 的令牌已更换"),
                    Some(id),
                    token,
                )
                .await
            }
            Err(e) => back("/console/operators", Err(failed(e))),
        },
        _ => back("/console/operators", Err(format!("未知操作 {action}"))),
    }
}

/// `POST /console/opt-outs/undo`: undo one opt-out with a reason
/// (`POST /api/v1/opt-outs/undo`), back to the subject's page.
pub async fn undo_opt_out(State(s): State<AppState>, sess: Session, Form(f): F) -> Response {
    let subject = field(&f, "subject_id").to_string();
    let here = format!(
        "/console/subjects?{}",
        serde_urlencoded::to_string([("id", subject.as_str())]).unwrap_or_default()
    );
    if !csrf_ok(&sess, &f) {
        return back(&here, Err(STALE.into()));
    }
    let req = opt_outs::Undo {
        subject_id: subject.clone(),
        channel: opt(&f, "channel"),
        category: opt(&f, "category"),
        reason: field(&f, "reason").to_string(),
    };
    match opt_outs::undo_one(&s, &sess.op, req).await {
        Ok(_) => back(&here, Ok("退订已撤销".into())),
        Err(e) => back(&here, Err(failed(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_blocks() {
        let faq = parse_faq("谁可以申请？\r\n本市登记失业人员。\r\n\r\n补贴多少？\n每人 1000 元。\n另有说明。\n\n只有问题");
        assert_eq!(
            faq,
            vec![
                json!({"q": "谁可以申请？", "a": "本市登记失业人员。"}),
                json!({"q": "补贴多少？", "a": "每人 1000 元。\n另有说明。"}),
            ]
        );
    }

    #[test]
    fn template_variables_one_a_line() {
        assert_eq!(
            parse_variables("1:text:12\n\n amount : amount \nname\nx::many"),
            vec![
                json!({"name": "1", "kind": "text", "max_chars": 12}),
                json!({"name": "amount", "kind": "amount"}),
                json!({"name": "name"}),
                json!({"name": "x", "max_chars": "many"}),
            ]
        );
    }

    #[test]
    fn schedule_times_are_shanghai_wall_clock() {
        assert_eq!(
            shanghai_time("2026-12-01T09:30").as_deref(),
            Some("2026-12-01T01:30:00+00:00")
        );
        assert_eq!(shanghai_time("tomorrow"), None);
    }
}
