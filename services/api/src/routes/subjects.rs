//! Subjects: streaming import, upsert, read (masked unless the role may see personal data),
//! and the policies one subject qualifies for today.
//!
//! A read that returns a subject's personal data unmasked (the record here, the history
//! in `reports`, the console's subject page) is audited as `subject.read` with who, what
//! and the reason given (`?reason=`, the console's reason field); a read without a reason
//! is answered and recorded with the reason `unspecified` ([`audit_personal_read`]).

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::{import, AppState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use bytes::Bytes;
use domain::operator::Action;
use domain::{Subject, SubjectDoc};

#[utoipa::path(
    post,
    path = "/api/v1/subjects/import",
    operation_id = "subjects_import",
    tag = "subjects",
    summary = "Import subjects (streamed NDJSON or CSV)",
    request_body(content((String = "application/x-ndjson"), (String = "text/csv")), description = "One subject per line (NDJSON), or a CSV with the columns `id,kind,name,mobile,wechat_openid` then one per attribute"),
    responses(
        (status = 200, description = "Accepted count and the rejected lines with reasons", body = crate::import::ImportReport),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 413, description = "`payload_too_large`: a line over the limit", body = crate::error::ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = crate::error::ErrorBody),
    )
)]
pub async fn import(
    State(s): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<import::ImportReport>> {
    op.require(Action::WriteSubjects)?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let stream = body.into_data_stream();
    let report = match ct.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            import::ndjson(&s, stream).await?
        }
        "text/csv" => import::csv(&s, stream).await?,
        other => {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?}: send application/x-ndjson or text/csv"),
            ))
        }
    };
    s.audit(
        &op,
        "subjects.import",
        "subjects",
        serde_json::json!({"accepted": report.accepted, "rejected": report.rejected_count}),
    )
    .await?;
    Ok(Json(report))
}

fn subject_json(s: &Subject, tags: &[String], op: &Operator) -> serde_json::Value {
    let doc = if op.may(Action::ReadPersonal) {
        s.to_doc()
    } else {
        s.to_masked_doc()
    };
    let mut v = serde_json::to_value(doc).expect("subject serialises");
    v["tags"] = serde_json::json!(tags);
    v
}

#[utoipa::path(
    put,
    path = "/api/v1/subjects/{id}",
    operation_id = "subjects_put",
    tag = "subjects",
    summary = "Upsert one subject",
    params(("id" = String, Path, description = "The id")),
    request_body = domain::subject::SubjectDoc,
    responses(
        (status = 200, description = "The subject with `tags` and `new_pushes`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_subject`, `invalid_resident_id`, `invalid_credit_code`, `invalid_mobile`, `invalid_openid`, `invalid_kind`, `invalid_attribute` or `id_mismatch`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::WriteSubjects)?;
    let mut doc: SubjectDoc = parse_json(&body)?;
    if doc.id.is_empty() {
        doc.id = id.clone();
    }
    if !doc.id.trim().eq_ignore_ascii_case(id.trim()) {
        return Err(ApiError::bad_request(
            "id_mismatch",
            "the body's id differs from the path's",
        ));
    }
    let subject =
        Subject::from_doc(doc).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    // Declared attributes must have their declared types (as in an import).
    let subject = domain::attribute::Catalogue::new(s.store.list_attributes().await?)
        .conform(subject, false)
        .map_err(|e| ApiError::bad_request("invalid_attribute", e.0))?;
    let tags = s
        .current_tag_rules()
        .await?
        .tags_for(&subject, s.pipeline.today());
    let pair = vec![(subject, tags)];
    s.store.upsert_subjects(&pair).await?;
    pipeline::matching::index_subjects(&s.pipeline.index, &pair);
    pipeline::events::subjects_changed(&s.pipeline, &pair);
    let planned = pipeline::planner::plan_subjects(&s.pipeline, &pair).await?;
    let (subject, tags) = &pair[0];
    s.audit(
        &op,
        "subject.upsert",
        &subject.id.masked(),
        serde_json::json!({}),
    )
    .await?;
    let mut v = subject_json(subject, tags, &op);
    v["new_pushes"] = serde_json::json!(planned);
    Ok(Json(v))
}

/// The reason of a read that may return personal data (`?reason=`).
#[derive(serde::Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The reason recorded for a read of personal data that gave none.
pub const UNSPECIFIED_REASON: &str = "unspecified";

/// Records that `op` read subject `id`'s personal data unmasked: `what` is `record` or
/// `history`; the reason as given (at most 200 characters), else `unspecified`. The
/// audit names the subject masked and by its keyed pseudonym, never in clear.
pub async fn audit_personal_read(
    s: &AppState,
    op: &Operator,
    what: &str,
    id: &str,
    reason: Option<&str>,
) -> ApiResult<()> {
    let reason: String = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(200).collect())
        .unwrap_or_else(|| UNSPECIFIED_REASON.to_string());
    s.audit(
        op,
        "subject.read",
        &domain::ids::mask_subject_id(id),
        serde_json::json!({
            "what": what,
            "reason": reason,
            "pseudonym": s.pipeline.pseudonyms.subject(id),
        }),
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/subjects/{id}",
    operation_id = "subjects_get",
    tag = "subjects",
    summary = "One subject with its tags (masked for roles without personal-data access)",
    params(("id" = String, Path, description = "The id"), ReadQuery),
    responses(
        (status = 200, description = "The subject with `tags` (and `masked`)", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let (subject, tags) = s
        .store
        .get_subject(&id.trim().to_ascii_uppercase())
        .await?
        .ok_or_else(|| ApiError::not_found("subject"))?;
    if op.may(Action::ReadPersonal) {
        audit_personal_read(&s, &op, "record", subject.id.as_str(), q.reason.as_deref()).await?;
    }
    Ok(Json(subject_json(&subject, &tags, &op)))
}

/// `GET /subjects/{id}/eligible-policies`: every published policy in force today that
/// the subject qualifies for, with the reasons in plain words and the estimated benefit
/// (`pipeline::eligibility`: one compiled rule set of the policies in force, kept while
/// policies, parameters, attributes and tags are unchanged).
#[utoipa::path(
    get,
    path = "/api/v1/subjects/{id}/eligible-policies",
    operation_id = "subjects_eligible_policies",
    tag = "subjects",
    summary = "The published, in-force policies one subject qualifies for today",
    params(("id" = String, Path, description = "The id")),
    responses(
        (status = 200, description = "`{items: [{policy_id, title, explanation, benefit}]}`", body = serde_json::Value),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
pub async fn eligible_policies(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    let cached = s.policy_set.lock().expect("policy set lock").clone();
    let (items, set) = pipeline::eligibility::of_subject(
        s.store.as_ref(),
        s.pipeline.today(),
        &id.trim().to_ascii_uppercase(),
        cached,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("subject"))?;
    *s.policy_set.lock().expect("policy set lock") = Some(set);
    Ok(Json(serde_json::json!({ "items": items })))
}
