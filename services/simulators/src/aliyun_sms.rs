//! `/aliyun/sms/`: Alibaba Cloud SMS (dysmsapi 2017-05-25, RPC): `SendSms`, `SendBatchSms`,
//! `QuerySendDetails`, GET query or POST form, V2 signature verified.
//!
//! Checks, in order: common parameters and signature ([`crate::aliyun_rpc`]), injected
//! faults, numbers (`isv.MOBILE_COUNT_OVER_LIMIT` over 1000 / 100 for a batch,
//! `isv.MOBILE_NUMBER_ILLEGAL`), sign name (`isv.SMS_SIGNATURE_ILLEGAL`), template
//! (`isv.SMS_TEMPLATE_ILLEGAL`), `TemplateParam` (`isv.INVALID_JSON_PARAM` unless a JSON
//! object of strings, `isv.TEMPLATE_MISSING_PARAMETERS`), length over 500 characters or a
//! variable over its registered `max_chars` (`isv.PARAM_LENGTH_LIMIT`), blacklist (`isv.BLACK_KEY_CONTROL_LIMIT`), the per-number
//! limit per sign + template in a rolling 24 h (`isv.BUSINESS_LIMIT_CONTROL`,
//! `触发天级流控Permits:N`), `OutId` of 256 characters or more (`isv.INVALID_PARAMETERS`).
//! A request fails whole. Accepted messages are recorded (`【sign】` + template text), one
//! `BizId` for the whole request, and reported by `SmsReport` (one report per number, with
//! `biz_id`, `phone_number` and the request's `OutId` as `out_id`).
//!
//! `SendBatchSms` has one `OutId` for the request. When it lists one entry per number,
//! comma-separated and in `PhoneNumberJson` order (what the `connectors` crate sends), the
//! sandbox attributes each number to its own entry (`push_ref`); the wire (`SmsReport`,
//! `QuerySendDetails`) echoes the request's `OutId` unchanged, as Alibaba does.
//!
//! Simplification: a blacklisted number refuses the request with
//! `isv.BLACK_KEY_CONTROL_LIMIT` (the product's opt-out signal). Alibaba itself uses that
//! code for blacklisted *keywords* in template variables and reports numbers on a carrier
//! or complaint blacklist in the delivery report (e.g. `W-BLACK`), not at submit.
//!
//! Replies are always JSON (`Format=XML` is not simulated).

use crate::aliyun_rpc::{
    authenticate, biz_error, error, ok, parse, string_object, substitute, system_error, Refusal,
    RpcParams,
};
use crate::limits::Limit;
use crate::sandbox::{cn_day, NewMessage, SandboxMessage};
use crate::state::SimulatorState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ids::MobileNumber;
use domain::provider_template::Provider;
use std::time::{Duration, Instant};

const HOST: &str = "dysmsapi.aliyuncs.com";
const VERSION: &str = "2017-05-25";
/// Alibaba's longest SMS (signature included).
const MAX_CHARS: usize = 500;

pub(crate) async fn handle(
    State(st): State<SimulatorState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match parse(query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => {
            return error(HOST, StatusCode::BAD_REQUEST, "InvalidParameter", &e).into_response()
        }
    };
    if let Err(r) = authenticate(&st, HOST, &method, &params, VERSION) {
        return r.into_response();
    }
    let result = match params.get("Action") {
        Some("SendSms") => send_sms(&st, &params).await,
        Some("SendBatchSms") => send_batch(&st, &params).await,
        Some("QuerySendDetails") => query_details(&st, &params).await,
        _ => Err(error(
            HOST,
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// One number's message, checked.
struct Sms {
    to: String,
    sign: String,
    template: String,
    content: String,
    /// Our push id of this number (the sandbox's attribution): the request's `OutId`, or
    /// its entry for this number when a `SendBatchSms` `OutId` lists one per number.
    push_ref: String,
}

/// Alibaba: `OutId` is "a string shorter than 256 characters".
const MAX_OUT_ID: usize = 255;

fn out_id(p: &RpcParams) -> Result<&str, Refusal> {
    let out_id = p.get("OutId").unwrap_or("");
    if out_id.chars().count() > MAX_OUT_ID {
        return Err(biz_error("isv.INVALID_PARAMETERS", "OutId 长度超过限制"));
    }
    Ok(out_id)
}

fn mobile(raw: &str) -> Result<String, Refusal> {
    MobileNumber::parse(raw.trim())
        .map(|m| m.as_str().to_string())
        .map_err(|_| biz_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"))
}

fn render(
    st: &SimulatorState,
    sign: &str,
    code: &str,
    param: Option<&str>,
) -> Result<String, Refusal> {
    if !st.config.sign_allowed(sign) || sign.is_empty() {
        return Err(biz_error(
            "isv.SMS_SIGNATURE_ILLEGAL",
            "该账号下找不到对应签名",
        ));
    }
    let Some(text) = st.config.sms_template(code) else {
        return Err(biz_error(
            "isv.SMS_TEMPLATE_ILLEGAL",
            "该账号下找不到对应模板",
        ));
    };
    let params = string_object(param)
        .map_err(|_| biz_error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"))?;
    let body = substitute(&text, &params).map_err(|name| {
        biz_error(
            "isv.TEMPLATE_MISSING_PARAMETERS",
            &format!("模板缺少变量: {name}"),
        )
    })?;
    // A registered variable longer than its registration allows.
    if let Some(t) = st.config.template(Provider::AliyunSms, code) {
        let too_long = t.variables.iter().any(|v| {
            v.max_chars.is_some_and(|max| {
                params
                    .get(&v.name)
                    .and_then(|p| p.as_str())
                    .is_some_and(|p| p.chars().count() > max)
            })
        });
        if too_long {
            return Err(biz_error("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"));
        }
    }
    let content = format!("【{sign}】{body}");
    if content.chars().count() > MAX_CHARS {
        return Err(biz_error("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"));
    }
    Ok(content)
}

async fn send_sms(st: &SimulatorState, p: &RpcParams) -> Result<Response, Refusal> {
    fault(st).await?;
    let numbers: Vec<&str> = p
        .require("PhoneNumbers", HOST)?
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .collect();
    if numbers.len() > 1000 {
        return Err(biz_error(
            "isv.MOBILE_COUNT_OVER_LIMIT",
            "手机号码数量超过限制",
        ));
    }
    let sign = p.require("SignName", HOST)?;
    let code = p.require("TemplateCode", HOST)?;
    let content = render(st, sign, code, p.get("TemplateParam"))?;
    let out_id = out_id(p)?;
    let mut items = Vec::with_capacity(numbers.len());
    for n in numbers {
        items.push(Sms {
            to: mobile(n)?,
            sign: sign.to_string(),
            template: code.to_string(),
            content: content.clone(),
            push_ref: out_id.to_string(),
        });
    }
    accept(st, items, out_id).await
}

fn json_list(raw: Option<&str>) -> Result<Vec<serde_json::Value>, Refusal> {
    match raw.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(serde_json::Value::Array(a))) => Ok(a),
        None => Ok(Vec::new()),
        _ => Err(biz_error("isv.INVALID_JSON_PARAM", "JSON参数不合法")),
    }
}

async fn send_batch(st: &SimulatorState, p: &RpcParams) -> Result<Response, Refusal> {
    fault(st).await?;
    let numbers = json_list(Some(p.require("PhoneNumberJson", HOST)?))?;
    let signs = json_list(Some(p.require("SignNameJson", HOST)?))?;
    let code = p.require("TemplateCode", HOST)?;
    let params = json_list(p.get("TemplateParamJson"))?;
    if numbers.len() > 100 {
        return Err(biz_error(
            "isv.MOBILE_COUNT_OVER_LIMIT",
            "手机号码数量超过限制",
        ));
    }
    if numbers.is_empty()
        || signs.len() != numbers.len()
        || !(params.is_empty() || params.len() == numbers.len())
    {
        return Err(biz_error(
            "isv.INVALID_JSON_PARAM",
            "JSON参数不合法，数组长度不一致",
        ));
    }
    let out_id = out_id(p)?;
    let refs: Vec<&str> = out_id.split(',').collect();
    let per_number = refs.len() == numbers.len() && numbers.len() > 1;
    let mut items = Vec::with_capacity(numbers.len());
    for (i, n) in numbers.iter().enumerate() {
        let sign = signs[i].as_str().unwrap_or("");
        let param = params.get(i).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let content = render(st, sign, code, param.as_deref())?;
        items.push(Sms {
            to: mobile(n.as_str().unwrap_or(""))?,
            sign: sign.to_string(),
            template: code.to_string(),
            content,
            push_ref: if per_number { refs[i] } else { out_id }.to_string(),
        });
    }
    accept(st, items, out_id).await
}

async fn fault(st: &SimulatorState) -> Result<(), Refusal> {
    match st.faults.before_send().await {
        None => Ok(()),
        Some(_) => Err(system_error(HOST)),
    }
}

async fn accept(st: &SimulatorState, items: Vec<Sms>, out_id: &str) -> Result<Response, Refusal> {
    if items.iter().any(|s| st.config.blacklisted(&s.to)) {
        return Err(biz_error("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单管控"));
    }
    if st.config.enforce_limits {
        let limit = Limit {
            window: Duration::from_secs(24 * 3600),
            max: st.config.sms_daily_limit_per_number,
            message: "触发天级流控",
        };
        let keys: Vec<String> = items
            .iter()
            .map(|s| format!("{}|{}|{}", s.to, s.sign, s.template))
            .collect();
        if let Err(l) =
            st.sms_limits
                .lock()
                .expect("limits lock")
                .try_add(&keys, &[limit], Instant::now())
        {
            return Err(biz_error(
                "isv.BUSINESS_LIMIT_CONTROL",
                &format!("{}Permits:{}", l.message, l.max),
            ));
        }
    }
    let biz_id = st.ids.biz_id();
    let rows = items
        .into_iter()
        .map(|s| NewMessage {
            channel: "sms",
            to: s.to,
            content: s.content,
            provider_id: biz_id.clone(),
            out_id: if s.push_ref == out_id {
                String::new()
            } else {
                out_id.to_string()
            },
            push_ref: s.push_ref,
            template: s.template,
        })
        .collect();
    let recorded = st.record(rows).await.map_err(|e| {
        tracing::error!(error = %e, "sandbox record failed");
        system_error(HOST)
    })?;
    if st.receipts.wants_aliyun_sms() {
        for m in &recorded {
            st.receipts.aliyun_sms(report(st, m));
        }
    }
    Ok(ok(serde_json::json!({ "BizId": biz_id })))
}

/// `yyyy-MM-dd HH:mm:ss` in China Standard Time.
pub(crate) fn cst(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Parts a carrier bills: ≤ 70 characters is one, longer is parts of 67.
fn sms_size(content: &str) -> usize {
    let n = content.chars().count();
    if n <= 70 {
        1
    } else {
        n.div_ceil(67)
    }
}

const FAILED_CODE: &str = "MK:0001";
const FAILED_MSG: &str = "用户接收失败";

fn report(st: &SimulatorState, m: &SandboxMessage) -> serde_json::Value {
    let delivered = !st.config.fails(&m.to);
    let done =
        m.received_at + chrono::Duration::from_std(st.config.receipt_delay).unwrap_or_default();
    serde_json::json!({
        "phone_number": m.to,
        "send_time": cst(m.received_at),
        "report_time": cst(done),
        "success": delivered,
        "err_code": if delivered { "DELIVERED" } else { FAILED_CODE },
        "err_msg": if delivered { "用户接收成功" } else { FAILED_MSG },
        "sms_size": sms_size(&m.content).to_string(),
        "biz_id": m.provider_id,
        "out_id": m.wire_ref(),
    })
}

async fn query_details(st: &SimulatorState, p: &RpcParams) -> Result<Response, Refusal> {
    st.faults.latency().await;
    let to = mobile(p.require("PhoneNumber", HOST)?)?;
    let date = p.require("SendDate", HOST)?;
    if chrono::NaiveDate::parse_from_str(date, "%Y%m%d").is_err() {
        return Err(biz_error(
            "isv.INVALID_PARAMETERS",
            "SendDate 格式错误 (yyyyMMdd)",
        ));
    }
    let page_size: i64 = p.require("PageSize", HOST)?.parse().unwrap_or(0);
    let page: i64 = p.require("CurrentPage", HOST)?.parse().unwrap_or(0);
    if !(1..=50).contains(&page_size) || page < 1 {
        return Err(biz_error(
            "isv.INVALID_PARAMETERS",
            "PageSize 1-50, CurrentPage ≥ 1",
        ));
    }
    let (total, rows) = st
        .sandbox
        .sms_on_day(&to, date, p.get("BizId"), (page - 1) * page_size, page_size)
        .await
        .map_err(|_| system_error(HOST))?;
    let now = Utc::now();
    let delay = chrono::Duration::from_std(st.config.receipt_delay).unwrap_or_default();
    let dtos: Vec<serde_json::Value> = rows
        .iter()
        .map(|m| {
            let reported = m.received_at + delay <= now;
            let delivered = !st.config.fails(&m.to);
            let (status, err) = match (reported, delivered) {
                (false, _) => (1, ""),
                (true, true) => (3, "DELIVERED"),
                (true, false) => (2, FAILED_CODE),
            };
            serde_json::json!({
                "PhoneNum": m.to,
                "SendStatus": status,
                "ErrCode": err,
                "TemplateCode": m.template,
                "Content": m.content,
                "SendDate": cst(m.received_at),
                "ReceiveDate": if reported { cst(m.received_at + delay) } else { String::new() },
                "OutId": m.wire_ref(),
            })
        })
        .collect();
    debug_assert!(rows.iter().all(|m| cn_day(m.received_at) == date));
    Ok(ok(serde_json::json!({
        "TotalCount": total,
        "SmsSendDetailDTOs": { "SmsSendDetailDTO": dtos },
    })))
}
