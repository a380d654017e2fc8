//! Reports: per campaign and per channel counts (eligible, unreachable, capped, opted out,
//! duplicate, queued, sent, delivered, failed, clicked, applied), reach of the eligible
//! population by district and subject kind, CSV export; a subject's delivery history for
//! the hotline agents, each push with its record of events (masked unless the role may
//! see personal data); and the
//! "applied" events the bureau's systems report, so conversions are counted.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::operator::Action;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Application, CampaignRecord, CampaignReport, FunnelCounts};

/// Skip reasons reported in columns of their own; others are summed as `other_skipped`.
pub const SKIP_REASONS: [&str; 4] = ["unreachable", "opted_out", "capped", "duplicate"];

/// A campaign and its report (shared by the API and the console).
pub async fn campaign_report(
    s: &AppState,
    id: &str,
) -> ApiResult<(CampaignRecord, CampaignReport)> {
    let c = s
        .store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("campaign {id}")))?;
    let report = s.store.report_cells(id).await?.report();
    Ok((c, report))
}

/// Failed, or not (yet) confirmed delivered: queued and sent-without-receipt.
pub fn awaiting(f: &FunnelCounts) -> i64 {
    f.queued + f.sent
}

fn other_skipped(f: &FunnelCounts) -> i64 {
    f.skipped
        .iter()
        .filter(|(k, _)| !SKIP_REASONS.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum()
}

/// The counts of one slice as the API answers them.
pub fn funnel_json(f: &FunnelCounts) -> Value {
    json!({
        "eligible": f.eligible,
        "unreachable": f.skipped("unreachable"), "opted_out": f.skipped("opted_out"),
        "capped": f.skipped("capped"), "duplicate": f.skipped("duplicate"),
        "skipped": f.skipped,
        "queued": f.queued, "sent": f.sent, "delivered": f.delivered, "failed": f.failed,
        "clicked": f.clicked, "applied": f.applied,
        "reach_rate": f.reach_rate(),
    })
}

/// Why the eligible subjects of a slice were not reached: skip reasons, failures, and
/// pushes still waiting to be sent or for a receipt.
pub fn not_reached(f: &FunnelCounts) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &f.skipped {
        m.insert(k.clone(), json!(v));
    }
    m.insert("failed".into(), json!(f.failed));
    m.insert("awaiting".into(), json!(awaiting(f)));
    Value::Object(m)
}

pub fn report_json(c: &CampaignRecord, r: &CampaignReport) -> Value {
    let by_channel: Vec<Value> = r
        .by_channel
        .iter()
        .map(|(ch, f)| {
            let mut v = funnel_json(f);
            v["channel"] = json!(ch);
            v
        })
        .collect();
    let reach: Vec<Value> = r
        .reach
        .iter()
        .map(|row| {
            json!({
                "district": row.district, "kind": row.kind,
                "eligible": row.counts.eligible, "reached": row.counts.delivered,
                "reach_rate": row.counts.reach_rate(),
                "not_reached": not_reached(&row.counts),
            })
        })
        .collect();
    json!({
        "campaign": {"id": c.id, "name": c.name, "status": c.status.as_str(), "policy_id": c.policy_id},
        "total": funnel_json(&r.total),
        "by_channel": by_channel,
        "reach": reach,
    })
}

/// `GET /api/v1/campaigns/{id}/report`
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/report",
    operation_id = "reports_report",
    tag = "reports",
    summary = "A campaign's report: counts per channel, reach by district and group",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The report", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn report(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    op.require(Action::Read)?;
    let (c, r) = campaign_report(&s, &id).await?;
    Ok(Json(report_json(&c, &r)))
}

/// The report as CSV: one row for the campaign, one per channel, one per district × kind.
pub fn report_csv_bytes(r: &CampaignReport) -> anyhow::Result<Vec<u8>> {
    // A byte-order mark so that spreadsheet programs read the Chinese text as UTF-8.
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record([
        "scope",
        "channel",
        "district",
        "kind",
        "eligible",
        "unreachable",
        "opted_out",
        "capped",
        "duplicate",
        "other_skipped",
        "queued",
        "sent",
        "delivered",
        "failed",
        "clicked",
        "applied",
        "reach_rate",
    ])?;
    let mut row = |scope: &str, channel: &str, district: &str, kind: &str, f: &FunnelCounts| {
        let mut rec = vec![
            scope.to_string(),
            channel.to_string(),
            district.to_string(),
            kind.to_string(),
            f.eligible.to_string(),
        ];
        rec.extend(SKIP_REASONS.iter().map(|k| f.skipped(k).to_string()));
        rec.extend(
            [
                other_skipped(f),
                f.queued,
                f.sent,
                f.delivered,
                f.failed,
                f.clicked,
                f.applied,
            ]
            .map(|n| n.to_string()),
        );
        rec.push(format!("{:.4}", f.reach_rate()));
        w.write_record(&rec)
    };
    row("campaign", "", "", "", &r.total)?;
    for (ch, f) in &r.by_channel {
        row("channel", ch, "", "", f)?;
    }
    for x in &r.reach {
        row("reach", "", &x.district, &x.kind, &x.counts)?;
    }
    Ok(w.into_inner()?)
}

/// `GET /api/v1/campaigns/{id}/report.csv`
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/report.csv",
    operation_id = "reports_report_csv",
    tag = "reports",
    summary = "A campaign's report as CSV",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "The report rows", body = String, content_type = "text/csv"),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn report_csv(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    op.require(Action::Read)?;
    let (c, r) = campaign_report(&s, &id).await?;
    let body = report_csv_bytes(&r)?;
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[serde(default)]
    limit: Option<u32>,
    /// Why personal data is read (audited; `unspecified` when absent).
    #[serde(default)]
    reason: Option<String>,
}

/// A subject's history as the API answers it: masked unless `personal`.
pub async fn history_json(s: &AppState, id: &str, personal: bool, limit: u32) -> ApiResult<Value> {
    let subject = s.store.get_subject(id).await?;
    let h = s.store.subject_history(id, limit).await?;
    if subject.is_none() && h.pushes.is_empty() && h.skips.is_empty() && h.applications.is_empty() {
        return Err(ApiError::not_found("subject"));
    }
    let subject = subject.map(|(subj, tags)| {
        let doc = if personal {
            subj.to_doc()
        } else {
            subj.to_masked_doc()
        };
        let mut v = serde_json::to_value(doc).expect("subject serialises");
        v["tags"] = json!(tags);
        v
    });
    let opt_outs: Vec<Value> = s
        .store
        .opt_outs_of(&[id.to_string()])
        .await?
        .iter()
        .map(|o| json!({"channel": o.channel, "category": o.category, "source": o.source, "at": o.at}))
        .collect();
    // Each push's record (one read for all of them).
    let ids: Vec<String> = h.pushes.iter().map(|p| p.push_id.clone()).collect();
    let mut trails: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for e in s.store.events_of_pushes(&ids).await? {
        let item = super::pushes::event_json(&e, None, personal);
        trails
            .entry(e.event.push_id.clone())
            .or_default()
            .push(item);
    }
    let pushes: Vec<Value> = h
        .pushes
        .iter()
        .map(|p| {
            let recipient = if personal {
                p.recipient.clone()
            } else {
                mask_recipient(&p.recipient)
            };
            json!({
                "push_id": p.push_id, "campaign_id": p.campaign_id, "campaign_name": p.campaign_name,
                "policy_id": p.policy_id, "purpose": p.purpose, "channel": p.channel,
                "to": recipient, "status": p.status, "error": p.error, "attempts": p.attempts,
                // The content names the subject and carries their link: personal data.
                "content": personal.then(|| p.content.clone()),
                "created_at": p.created_at, "updated_at": p.updated_at, "clicked_at": p.clicked_at,
                "events": trails.remove(&p.push_id).unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({
        "subject_id": if personal { id.to_string() } else { domain::ids::mask_subject_id(id) },
        "subject": subject,
        "pushes": pushes,
        "skips": h.skips,
        "applications": h.applications.iter().map(|a| json!({
            "policy_id": a.policy_id, "applied_at": a.applied_at, "source": a.source,
            "reference": a.reference, "recorded_at": a.recorded_at,
        })).collect::<Vec<_>>(),
        "opt_outs": opt_outs,
        "masked": !personal,
    }))
}

/// A mobile number or openid, masked for screens.
pub fn mask_recipient(r: &str) -> String {
    if let Ok(m) = domain::ids::MobileNumber::parse(r) {
        m.masked()
    } else if let Ok(o) = domain::ids::OpenId::parse(r) {
        o.masked()
    } else {
        domain::ids::mask_any(r)
    }
}

/// `GET /api/v1/subjects/{id}/history?limit=`
#[utoipa::path(
    get,
    path = "/api/v1/subjects/{id}/history",
    operation_id = "reports_history",
    tag = "subjects",
    summary = "Every push to one subject and its steps",
    params(("id" = String, Path, description = "The id"), HistoryQuery),
    responses(
        (status = 200, description = "The subject's pushes with their events", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn history(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    op.require(Action::Read)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let personal = op.may(Action::ReadPersonal);
    let h = history_json(&s, &id, personal, limit).await?;
    if personal {
        super::subjects::audit_personal_read(&s, &op, "history", &id, q.reason.as_deref()).await?;
    }
    Ok(Json(h))
}

/// An "applied" event: by push id, by recipient link code, or by subject and policy.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationEvent {
    #[serde(default)]
    push_id: Option<String>,
    #[serde(default)]
    link_code: Option<String>,
    #[serde(default)]
    subject_id: Option<String>,
    #[serde(default)]
    policy_id: Option<String>,
    /// When the subject applied; now when absent.
    #[serde(default)]
    applied_at: Option<DateTime<Utc>>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

/// `POST /api/v1/applications`: 201 when recorded, 200 when that subject's application
/// for that policy was already recorded.
#[utoipa::path(
    post,
    path = "/api/v1/applications",
    operation_id = "reports_applications",
    tag = "reports",
    summary = "Record that a subject applied for a policy",
    request_body = ApplicationEvent,
    responses(
        (status = 201, description = "Recorded", body = serde_json::Value),
        (status = 200, description = "Already recorded for this subject and policy", body = serde_json::Value),
        (status = 400, description = "`invalid_json` or `invalid_application`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn applications(
    State(s): State<AppState>,
    op: Operator,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    op.require(Action::WriteSubjects)?;
    let ev: ApplicationEvent = parse_json(&body)?;
    let invalid = |m: &str| ApiError::bad_request("invalid_application", m.to_string());
    let push = match (&ev.push_id, &ev.link_code) {
        (Some(id), None) => Some(
            s.store
                .get_push(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("push {id}")))?,
        ),
        (None, Some(code)) => Some(
            s.store
                .push_by_link(code)
                .await?
                .ok_or_else(|| ApiError::not_found("link"))?,
        ),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(invalid("give push_id or link_code, not both")),
    };
    let (subject_id, policy_id) = match push {
        Some(p) => {
            if ev.subject_id.is_some() || ev.policy_id.is_some() {
                return Err(invalid(
                    "subject_id and policy_id come from the push; do not give them too",
                ));
            }
            let c = s
                .store
                .get_campaign(&p.campaign_id)
                .await?
                .ok_or_else(|| ApiError::not_found("campaign"))?;
            (p.subject_id, c.policy_id)
        }
        None => match (ev.subject_id, ev.policy_id) {
            (Some(sub), Some(pol)) if !sub.trim().is_empty() => {
                if s.store.get_policy(&pol).await?.is_none() {
                    return Err(ApiError::not_found(format!("policy {pol}")));
                }
                (sub.trim().to_string(), pol)
            }
            _ => {
                return Err(invalid(
                    "give push_id, link_code, or subject_id and policy_id",
                ))
            }
        },
    };
    let now = s.pipeline.now();
    let app = Application {
        subject_id,
        policy_id,
        applied_at: ev.applied_at.unwrap_or(now),
        source: ev
            .source
            .filter(|x| !x.trim().is_empty())
            .unwrap_or_else(|| "api".into()),
        reference: ev.reference,
        recorded_at: now,
    };
    let recorded = s.store.record_application(&app).await?;
    if recorded {
        s.audit(
            &op,
            "application.record",
            &app.policy_id,
            json!({"subject_id": domain::ids::mask_subject_id(&app.subject_id), "source": app.source}),
        )
        .await?;
    }
    let status = if recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "recorded": recorded, "policy_id": app.policy_id, "applied_at": app.applied_at,
        })),
    ))
}
