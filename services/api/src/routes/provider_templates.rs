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

#[utoipa::path(
    get,
    path = "/api/v1/provider-templates",
    operation_id = "provider_templates_list",
    tag = "provider-templates",
    summary = "Templates registered with the providers",
    responses(
        (status = 200, description = "`{items: [template]}`", body = serde_json::Value),
    )
)]
pub async fn list(State(s): State<AppState>, op: Operator) -> ApiResult<Json<serde_json::Value>> {
    op.require(Action::Read)?;
    Ok(Json(
        serde_json::json!({"items": s.store.list_provider_templates().await?}),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/provider-templates/{provider}/{code}",
    operation_id = "provider_templates_get",
    tag = "provider-templates",
    summary = "One registered template",
    params(("provider" = String, Path, description = "The provider (`aliyun_sms`, `tencent_sms`, `wechat`, `aliyun_voice`)"), ("code" = String, Path, description = "The template code")),
    responses(
        (status = 200, description = "The template", body = domain::provider_template::ProviderTemplate),
        (status = 400, description = "`invalid_provider`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
    )
)]
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
#[utoipa::path(
    put,
    path = "/api/v1/provider-templates/{provider}/{code}",
    operation_id = "provider_templates_put",
    tag = "provider-templates",
    summary = "Register or replace a provider template (the path gives provider and code)",
    params(("provider" = String, Path, description = "The provider (`aliyun_sms`, `tencent_sms`, `wechat`, `aliyun_voice`)"), ("code" = String, Path, description = "The template code")),
    request_body = domain::provider_template::ProviderTemplate,
    responses(
        (status = 200, description = "The template as stored", body = domain::provider_template::ProviderTemplate),
        (status = 400, description = "`invalid_json`, `invalid_provider` or `invalid_template`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/provider-templates/{provider}/{code}",
    operation_id = "provider_templates_delete",
    tag = "provider-templates",
    summary = "Remove a template no campaign still to send binds",
    params(("provider" = String, Path, description = "The provider (`aliyun_sms`, `tencent_sms`, `wechat`, `aliyun_voice`)"), ("code" = String, Path, description = "The template code")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`invalid_provider`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`template_in_use`", body = crate::error::ErrorBody),
    )
)]
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
