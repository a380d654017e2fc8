//! The console's pages. Data come from the same route functions the JSON API answers
//! with (so roles and masking are the API's), rendered by the templates.

use super::super::{campaigns, operations, operators, policies, pushes, reports};
use super::session::{session, Session};
use super::{bars, page_ctx, pct, render, zh};
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::operator::Action;
use domain::provider_template::{Provider, ProviderTemplate};
use domain::Facts;
use minijinja::{context, Value};
use pipeline::matching::audience_from_index;
use serde_json::json;
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

fn v(x: impl serde::Serialize) -> Value {
    Value::from_serialize(x)
}

/// An error page inside the layout (e.g. a campaign that does not exist).
fn error_page(sess: &Session, q: &HashMap<String, String>, e: ApiError) -> Response {
    let status = e.status;
    let mut r = render(
        "base.html",
        page_ctx(sess, q, "", context! { error => super::failed(e) }),
    );
    *r.status_mut() = status;
    r
}

macro_rules! try_page {
    ($sess:expr, $q:expr, $e:expr) => {
        match $e {
            Ok(x) => x,
            Err(e) => return error_page(&$sess, &$q, e),
        }
    };
}

/// `GET /console/login`
pub async fn login(Query(q): Q) -> Response {
    render("login.html", context! { err => q.get("err").cloned() })
}

/// `GET /console/`: the sign-in page when not signed in, else the dashboard.
pub async fn dashboard(State(s): State<AppState>, headers: HeaderMap, Query(q): Q) -> Response {
    let Some(sess) = session(&s, &headers).await else {
        return render("login.html", context! { err => q.get("err").cloned() });
    };
    let data = try_page!(sess, q, dashboard_data(&s, &sess.op).await);
    render("dashboard.html", page_ctx(&sess, &q, "dashboard", data))
}

async fn dashboard_data(s: &AppState, op: &Operator) -> ApiResult<Value> {
    let Json(list) = campaigns::list(State(s.clone()), op.clone()).await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut totals: HashMap<&str, i64> = HashMap::new();
    for c in &items {
        for k in ["eligible", "sent", "delivered", "failed", "clicked"] {
            *totals.entry(k).or_default() += c["counts"][k].as_i64().unwrap_or(0);
        }
    }
    let waiting: Vec<&serde_json::Value> = items
        .iter()
        .filter(|c| c["status"] == "submitted" && c["created_by"] != op.id())
        .collect();
    Ok(context! {
        campaigns => v(&items),
        waiting => v(&waiting),
        may_approve => op.may(Action::Approve),
        totals => v(&totals),
        subjects => s.store.count_subjects().await?,
        policies => s.store.list_policies().await?.len(),
        tags => s.store.list_tags().await?.len(),
    })
}

/// `GET /console/tags`
pub async fn tags(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let tags = try_page!(sess, q, s.store.list_tags().await.map_err(ApiError::from));
    let ctx = context! {
        tags => v(&tags),
        may_write => sess.op.may(Action::WriteCatalogue),
    };
    render("tags.html", page_ctx(&sess, &q, "tags", ctx))
}

/// `GET /console/attributes`: the attribute catalogue; admins declare attributes.
pub async fn attributes(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let attributes = try_page!(
        sess,
        q,
        s.store.list_attributes().await.map_err(ApiError::from)
    );
    let ctx = context! {
        attributes => v(&attributes),
        may_write => sess.op.may(Action::WriteAttributes),
    };
    render("attributes.html", page_ctx(&sess, &q, "attributes", ctx))
}

/// `GET /console/provider-templates`: the templates registered with the providers, by
/// channel and provider; those who write the catalogue register, replace and delete them.
pub async fn provider_templates(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let Json(list) = try_page!(
        sess,
        q,
        super::super::provider_templates::list(State(s.clone()), sess.op.clone()).await
    );
    let mut items: Vec<ProviderTemplate> =
        serde_json::from_value(list["items"].clone()).unwrap_or_default();
    items.sort_by_key(|t| (t.channel().as_str(), t.provider, t.code.clone()));
    let templates: Vec<Value> = items
        .iter()
        .map(|t| {
            let variables: Vec<Value> = t
                .variables
                .iter()
                .map(|x| context! { name => x.name.clone(), kind => v(x.kind), max => t.max_chars(x) })
                .collect();
            context! {
                channel => t.channel().as_str(), provider => t.provider.as_str(),
                code => t.code.clone(), name => t.name.clone(), text => t.text.clone(),
                sign_name => t.sign_name.clone(), catch_all => t.catch_all,
                enterprise => t.enterprise, variables,
            }
        })
        .collect();
    let ctx = context! {
        templates,
        providers => Provider::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        may_write => sess.op.may(Action::WriteCatalogue),
    };
    render(
        "provider_templates.html",
        page_ctx(&sess, &q, "provider_templates", ctx),
    )
}

/// `GET /console/policies`
pub async fn policies(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let Json(list) = try_page!(
        sess,
        q,
        policies::list(State(s.clone()), sess.op.clone()).await
    );
    let ctx = context! {
        policies => v(&list["items"]),
        may_write => sess.op.may(Action::WriteCatalogue),
    };
    render("policies.html", page_ctx(&sess, &q, "policies", ctx))
}

/// The audience of a policy (with a campaign's extra filter) through the API's preview:
/// count, breakdown by kind and district, reachable per channel; masked sample.
async fn audience(
    s: &AppState,
    op: &Operator,
    policy_id: &str,
    filter: Option<&str>,
) -> ApiResult<serde_json::Value> {
    let query: policies::AudienceQuery =
        serde_json::from_value(json!({"filter": filter, "sample": 10}))
            .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let Json(a) = policies::audience(
        State(s.clone()),
        op.clone(),
        Path(policy_id.to_string()),
        Query(query),
    )
    .await?;
    Ok(a)
}

/// Bars of a `{name: count}` breakdown, largest first.
fn breakdown_bars(m: &serde_json::Value, label: impl Fn(&str) -> String) -> Value {
    let mut rows: Vec<(String, f64, String)> = m
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| {
                    let n = n.as_f64().unwrap_or(0.0);
                    (label(k), n, format!("{n}"))
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    bars(&rows)
}

fn district_label(d: &str) -> String {
    if d.is_empty() {
        "（未登记）".into()
    } else {
        d.to_string()
    }
}

fn audience_ctx(a: &serde_json::Value) -> Value {
    context! {
        count => a["count"].as_u64().unwrap_or(0),
        sample => v(&a["sample"]),
        elapsed_ms => format!("{:.1}", a["elapsed_ms"].as_f64().unwrap_or(0.0)),
        by_kind => breakdown_bars(&a["by_kind"], zh),
        by_district => breakdown_bars(&a["by_district"], district_label),
        reachable => breakdown_bars(&a["reachable"], zh),
    }
}

/// `GET /console/policies/{id}`
pub async fn policy(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let Json(p) = try_page!(
        sess,
        q,
        policies::get(State(s.clone()), sess.op.clone(), Path(id.clone())).await
    );
    let aud = audience(&s, &sess.op, &id, None).await;
    let review = operations::get_review(State(s.clone()), sess.op.clone(), Path(id.clone()))
        .await
        .ok()
        .map(|Json(r)| r);
    let campaigns = try_page!(
        sess,
        q,
        s.store.list_campaigns().await.map_err(ApiError::from)
    );
    let campaigns: Vec<Value> = campaigns
        .iter()
        .filter(|c| c.policy_id == id)
        .map(|c| context! { id => c.id.clone(), name => c.name.clone(), status => c.status.as_str() })
        .collect();
    // The policy's own audit trail (publication, withdrawal, expiry).
    let trail: Vec<Value> = try_page!(
        sess,
        q,
        s.store
            .audit_of_target(&id, 20)
            .await
            .map_err(ApiError::from)
    )
    .into_iter()
    .map(|(n, e)| {
        context! { id => n, at => v(e.at), who => e.operator_id, action => e.action,
        detail => e.detail.to_string() }
    })
    .collect();
    let ctx = context! {
        p => v(&p),
        trail => trail,
        review => review.map(v),
        audience => aud.as_ref().ok().map(audience_ctx),
        audience_error => aud.err().map(super::failed),
        campaigns => campaigns,
        may_publish => sess.op.may(Action::Publish),
        may_write => sess.op.may(Action::WriteCatalogue),
    };
    render("policy.html", page_ctx(&sess, &q, "policies", ctx))
}

/// `GET /console/campaigns`
pub async fn campaigns(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let Json(list) = try_page!(
        sess,
        q,
        campaigns::list(State(s.clone()), sess.op.clone()).await
    );
    let Json(pols) = try_page!(
        sess,
        q,
        policies::list(State(s.clone()), sess.op.clone()).await
    );
    let ctx = context! {
        campaigns => v(&list["items"]),
        policies => v(&pols["items"]),
        selected_policy => q.get("policy_id").cloned(),
        may_write => sess.op.may(Action::WriteCatalogue),
    };
    render("campaigns.html", page_ctx(&sess, &q, "campaigns", ctx))
}

/// Sample messages of a campaign, one per channel of its plan: rendered by the planner's
/// own code for a subject of the audience (the link is a placeholder), with the SMS
/// parts billed. Names are masked unless the operator may see personal data.
async fn samples(
    s: &AppState,
    c: &store::CampaignRecord,
    personal: bool,
) -> anyhow::Result<Vec<Value>> {
    let plan = pipeline::planner::CampaignPlan::load(&s.pipeline, c.clone()).await?;
    let day = s.pipeline.today();
    let ids = {
        let index = s.pipeline.index.read().expect("population index lock");
        audience_from_index(&index, &plan.criteria, day, 20).sample
    };
    let mut subjects = Vec::new();
    for id in ids {
        if let Some(x) = s.store.get_subject(&id).await? {
            subjects.push(x);
        }
    }
    let link = format!("{}/l/SAMPLE0000000000000000", plan.public_url);
    let mut out = Vec::new();
    for &channel in &plan.checked.channels {
        let Some((subject, tags)) = subjects
            .iter()
            .find(|(x, _)| channel.reaches(x))
            .or(subjects.first())
        else {
            break;
        };
        let facts = Facts::new(subject, tags, day);
        let benefit = plan
            .policy
            .benefit
            .as_ref()
            .and_then(|b| b.eval_number(&facts));
        let mut shown = subject.clone();
        if !personal {
            shown.name = domain::ids::mask_any(&shown.name);
        }
        let why = plan.criteria.explain_in_words(&facts, &plan.glossary).why();
        let (raw, error) = match plan.render(channel, &shown, benefit, &why, &link) {
            Ok(t) => (t, None),
            Err(e) => (String::new(), Some(e.to_string())),
        };
        // A bound template shows the text as the provider delivers it.
        let bound = domain::provider_template::BoundContent::from_content(&raw);
        let content = domain::provider_template::display_text(&raw).into_owned();
        let chars = content.chars().count();
        let (segments, sms_chars) = match (channel, &bound) {
            (domain::Channel::Sms, None) => (
                Some(domain::sms::segments(&plan.sms_sign_name, &content)),
                Some(domain::sms::total_chars(&plan.sms_sign_name, &content)),
            ),
            (domain::Channel::Sms, Some(_)) => (
                Some(domain::provider_template::sms_segments(
                    &plan.sms_sign_name,
                    &raw,
                )),
                Some(chars),
            ),
            _ => (None, None),
        };
        out.push(context! {
            channel => channel.as_str(),
            subject => if personal { subject.id.as_str().to_string() } else { subject.id.masked() },
            content, error, chars, segments, sms_chars,
            // A bound text already begins with its 【signature】.
            sign => if bound.is_some() { String::new() } else { plan.sms_sign_name.clone() },
            hotline_max => domain::template::HOTLINE_MAX_CHARS,
        });
    }
    Ok(out)
}

/// `GET /console/campaigns/{id}`
pub async fn campaign(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let Json(c) = try_page!(
        sess,
        q,
        campaigns::get(State(s.clone()), sess.op.clone(), Path(id.clone())).await
    );
    let rec = try_page!(
        sess,
        q,
        s.store
            .get_campaign(&id)
            .await
            .map_err(ApiError::from)
            .and_then(|c| c.ok_or_else(|| ApiError::not_found("campaign")))
    );
    let policy = s.store.get_policy(&rec.policy_id).await.ok().flatten();
    let aud = audience(
        &s,
        &sess.op,
        &rec.policy_id,
        rec.draft.audience_filter.as_deref(),
    )
    .await;
    let samples = samples(&s, &rec, sess.op.may(Action::ReadPersonal)).await;
    let mut names = HashMap::new();
    for id in [Some(&rec.created_by), rec.approved_by.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Ok(Some(o)) = s.store.get_operator(id).await {
            names.insert(id.clone(), o.name);
        }
    }
    let ctx = context! {
        c => v(&c),
        policy_title => policy.as_ref().map(|p| p.draft.title.clone()),
        policy_status => policy.as_ref().map(|p| p.status.as_str()),
        audience => aud.as_ref().ok().map(audience_ctx),
        audience_error => aud.err().map(super::failed),
        samples => samples.as_ref().ok().cloned(),
        samples_error => samples.err().map(|e| format!("{e:#}")),
        names => v(&names),
        mine => rec.created_by == sess.op.id(),
        may_write => sess.op.may(Action::WriteCatalogue),
        may_approve => sess.op.may(Action::Approve),
        may_launch => sess.op.may(Action::Launch),
    };
    render("campaign.html", page_ctx(&sess, &q, "campaigns", ctx))
}

/// `GET /console/campaigns/{id}/report`: counts, per channel, reach by district × kind,
/// with bar charts.
pub async fn report(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    if let Err(e) = sess.op.require(Action::Read) {
        return error_page(&sess, &q, e);
    }
    let (c, r) = try_page!(sess, q, reports::campaign_report(&s, &id).await);
    let t = &r.total;
    let funnel_rows: Vec<(String, f64, String)> = [
        ("符合条件", t.eligible),
        ("已送达", t.delivered),
        ("已发送（待回执）", t.sent),
        ("排队中", t.queued),
        ("失败", t.failed),
        ("无法触达", t.skipped("unreachable")),
        ("已退订", t.skipped("opted_out")),
        ("频次上限", t.skipped("capped")),
        ("重复推送", t.skipped("duplicate")),
        ("已点击", t.clicked),
        ("已申请", t.applied),
    ]
    .into_iter()
    .map(|(l, n)| (l.to_string(), n as f64, n.to_string()))
    .collect();
    // Worst reached first: who did we fail to reach.
    let mut worst_first: Vec<&store::ReachRow> = r.reach.iter().collect();
    worst_first.sort_by(|a, b| {
        a.counts
            .reach_rate()
            .total_cmp(&b.counts.reach_rate())
            .then(b.counts.eligible.cmp(&a.counts.eligible))
    });
    let reach_rows: Vec<(String, f64, String)> = worst_first
        .into_iter()
        .map(|x| {
            (
                format!("{} · {}", district_label(&x.district), zh(&x.kind)),
                x.counts.reach_rate(),
                format!(
                    "{}（{}/{}）",
                    pct(x.counts.reach_rate()),
                    x.counts.delivered,
                    x.counts.eligible
                ),
            )
        })
        .collect();
    let channels: Vec<Value> = r
        .by_channel
        .iter()
        .map(|(ch, f)| context! { channel => ch, f => v(reports::funnel_json(f)), click_rate => pct(if f.eligible > 0 { f.clicked as f64 / f.eligible as f64 } else { 0.0 }) })
        .collect();
    let reach: Vec<Value> = r
        .reach
        .iter()
        .map(|x| {
            context! {
                district => district_label(&x.district), kind => x.kind.clone(),
                eligible => x.counts.eligible, reached => x.counts.delivered,
                rate => pct(x.counts.reach_rate()),
                not_reached => v(reports::not_reached(&x.counts)),
            }
        })
        .collect();
    let ctx = context! {
        c => context! { id => c.id.clone(), name => c.name.clone(), status => c.status.as_str() },
        t => v(reports::funnel_json(t)),
        reach_rate => pct(t.reach_rate()),
        funnel => bars(&funnel_rows),
        reach_bars => super::bars_to(&reach_rows, 1.0),
        channels, reach,
    };
    render("report.html", page_ctx(&sess, &q, "campaigns", ctx))
}

/// `GET /console/campaigns/{id}/report.csv`: the API's CSV, for the signed-in operator.
pub async fn report_csv(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
) -> Response {
    let out: ApiResult<Response> = async {
        sess.op.require(Action::Read)?;
        let (c, r) = reports::campaign_report(&s, &id).await?;
        let body = reports::report_csv_bytes(&r)?;
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"campaign-{}-report.csv\"", c.id),
                ),
            ],
            body,
        )
            .into_response())
    }
    .await;
    out.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /console/operators`
pub async fn operators(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let ops = try_page!(
        sess,
        q,
        s.store.list_operators().await.map_err(ApiError::from)
    );
    let ctx = context! {
        operators => v(&ops),
        may_manage => sess.op.may(Action::ManageOperators),
        new_token => None::<String>,
    };
    render("operators.html", page_ctx(&sess, &q, "operators", ctx))
}

/// `GET /console/audit?cursor=`
pub async fn audit(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let query: operators::AuditQuery = match serde_json::from_value(json!({
        "cursor": q.get("cursor").and_then(|c| c.parse::<i64>().ok()),
    })) {
        Ok(x) => x,
        Err(e) => {
            return error_page(
                &sess,
                &q,
                ApiError::bad_request("invalid_cursor", e.to_string()),
            )
        }
    };
    let Json(log) = try_page!(
        sess,
        q,
        operators::audit_log(State(s.clone()), sess.op.clone(), Query(query)).await
    );
    let names: HashMap<String, String> = s
        .store
        .list_operators()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    let items: Vec<Value> = log["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let who = e["operator_id"].as_str().unwrap_or("");
                    context! {
                        id => e["id"].as_i64(), at => e["at"].as_str().map(str::to_string),
                        who => names.get(who).cloned().unwrap_or_else(|| who.to_string()),
                        action => e["action"].as_str().map(str::to_string),
                        target => e["target"].as_str().map(str::to_string),
                        detail => e["detail"].to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = context! { items, next => v(&log["next"]) };
    render("audit.html", page_ctx(&sess, &q, "audit", ctx))
}

/// `GET /console/subjects?id=`: a subject's delivery history (hotline agents).
pub async fn subject(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let id = q
        .get("id")
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty());
    let reason = q.get("reason").map(|r| r.trim().to_string());
    let personal = sess.op.may(Action::ReadPersonal);
    let history = match &id {
        None => None,
        Some(id) => {
            let h = reports::history_json(&s, id, personal, 200).await;
            // Personal data shown: recorded with the agent's reason.
            if personal && h.is_ok() {
                if let Err(e) = super::super::subjects::audit_personal_read(
                    &s,
                    &sess.op,
                    "history",
                    id,
                    reason.as_deref(),
                )
                .await
                {
                    return e.into_response();
                }
            }
            Some(h)
        }
    };
    let ctx = context! {
        query => id,
        reason => reason,
        h => history.as_ref().and_then(|h| h.as_ref().ok()).map(v),
        not_found => matches!(history, Some(Err(_))),
        may_undo => sess.op.may(Action::WriteSubjects),
    };
    render("subject.html", page_ctx(&sess, &q, "subjects", ctx))
}

/// `GET /console/pushes/{id}`: one push and its record, oldest step first.
pub async fn push(
    State(s): State<AppState>,
    sess: Session,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    try_page!(sess, q, sess.op.require(Action::Read));
    let personal = sess.op.may(Action::ReadPersonal);
    let (push, mut items) = try_page!(sess, q, pushes::push_trail(&s, &id, personal).await);
    for e in &mut items {
        if !e["detail"].is_null() {
            e["detail_text"] = json!(e["detail"].to_string());
        }
    }
    let push = push.map(|p| {
        json!({
            "campaign_id": p.campaign_id,
            "subject_id": if personal { p.subject_id.clone() } else { domain::ids::mask_subject_id(&p.subject_id) },
            "channel": p.channel.as_str(),
            "to": if personal { p.recipient.clone() } else { reports::mask_recipient(&p.recipient) },
            "status": p.status.as_str(),
            "attempts": p.attempts,
        })
    });
    let ctx = context! { id => id, push => v(push), items => v(items), masked => !personal };
    render("push.html", page_ctx(&sess, &q, "subjects", ctx))
}
