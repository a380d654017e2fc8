//! Provider templates: the registry of templates as the providers registered them
//! (`domain::provider_template`), which campaigns bind. Read by any operator; written by
//! those who write the catalogue.

use crate::auth::Operator;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use domain::campaign::CampaignStatus;
use domain::operator::Action;
use domain::provider_template::{Provider, ProviderTemplate};

fn provider(raw: &str) -> ApiResult<Provider> {
    Provider::parse(raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_provider",
            format!("unknown provider {raw:?} (aliyun_sms, tencent_sms, wechat, aliyun_voice)"),
        )
    })
}

pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(
        serde_json::json!({"items": s.store.list_provider_templates().await?}),
    ))
}

pub async fn get(
    State(s): State<AppState>,
    op: Operator,
    Path((p, code)): Path<(String, String)>,
) -> ApiResult<Json<ProviderTemplate>> {
    op.require(Action::Read)?;
    let p = provider(&p)?;
    Ok(Json(
        s.store
            .get_provider_template(p, &code)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("provider template {p}/{code}")))?,
    ))
}

/// Registers (or replaces) a template; the body is the registration without `provider`
/// and `code`, which the path gives (a body that repeats them must agree).
pub async fn put(
    State(s): State<AppState>,
    op: Operator,
    Path((p, code)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<ProviderTemplate>> {
    op.require(Action::WriteCatalogue)?;
    let p = provider(&p)?;
    let mut doc: serde_json::Value = parse_json(&body)?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(ApiError::bad_request(
            "invalid_template",
            "the body is a JSON object",
        ));
    };
    for (key, value) in [("provider", p.as_str()), ("code", code.as_str())] {
        match obj.get(key).and_then(|v| v.as_str()) {
            Some(given) if given != value => {
                return Err(ApiError::bad_request(
                    "invalid_template",
                    format!("{key} {given:?} differs from the path's {value:?}"),
                ))
            }
            _ => {
                obj.insert(key.into(), value.into());
            }
        }
    }
    let t: ProviderTemplate = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request("invalid_template", e.to_string()))?;
    t.check()
        .map_err(|e| ApiError::bad_request("invalid_template", e.to_string()))?;
    let before = s.store.get_provider_template(p, &code).await?;
    s.store.put_provider_template(&t, s.pipeline.now()).await?;
    s.audit(
        &op,
        "provider_template.put",
        &format!("{p}/{code}"),
        serde_json::json!({"before": before.map(|b| b.text), "after": t.text}),
    )
    .await?;
    Ok(Json(t))
}

/// Removes a template no campaign still to send binds.
pub async fn delete(
    State(s): State<AppState>,
    op: Operator,
    Path((p, code)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    op.require(Action::WriteCatalogue)?;
    let p = provider(&p)?;
    let live = s.store.list_campaigns().await?.into_iter().find(|c| {
        !matches!(
            c.status,
            CampaignStatus::Completed | CampaignStatus::Cancelled
        ) && c.draft.bindings.iter().any(|(ch, b)| {
            b.template == code
                && b.provider.is_none_or(|bp| bp == p)
                && ch.as_str() == p.channel().as_str()
        })
    });
    if let Some(c) = live {
        return Err(ApiError::conflict(
            "template_in_use",
            format!(
                "campaign {} ({}) binds {p}/{code}; complete or cancel it first",
                c.id,
                c.status.as_str()
            ),
        ));
    }
    if !s.store.delete_provider_template(p, &code).await? {
        return Err(ApiError::not_found(format!("provider template {p}/{code}")));
    }
    s.audit(
        &op,
        "provider_template.delete",
        &format!("{p}/{code}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
