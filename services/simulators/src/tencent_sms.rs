//! `/tencent/sms/`: Tencent Cloud SMS API 3.0 `SendSms` (2021-01-11), TC3-HMAC-SHA256
//! verified (implemented here independently of the connectors).
//!
//! Request errors come back as HTTP 200 `{"Response":{"Error":{Code,Message},RequestId}}`:
//! `AuthFailure.SecretIdNotFound`, `AuthFailure.SignatureFailure`,
//! `AuthFailure.SignatureExpire` (clock skew over 5 min), `InvalidAction`,
//! `LimitExceeded.PhoneNumberCountLimit` (over 200 numbers),
//! `FailedOperation.SignatureIncorrectOrUnapproved`,
//! `FailedOperation.TemplateIncorrectOrUnapproved`,
//! `FailedOperation.TemplateParamSetNotMatchApprovedTemplate`,
//! `InvalidParameterValue.ProhibitedUseUrlInTemplateParameter` (a link in a parameter; not
//! checked for the catch-all `{1}`), `InvalidParameterValue.TemplateParameterLengthLimit`
//! (over 12 characters, for a registered template of an account that is not
//! enterprise-verified), `InvalidParameterValue.TemplateParameterFormatError` (a registered
//! `number` variable given other characters), `InternalError` (fault).
//! Per number, in `SendStatusSet`: `Ok`, `InvalidParameterValue.IncorrectPhoneNumber`,
//! `FailedOperation.PhoneNumberInBlacklist`, `LimitExceeded.PhoneNumberDailyLimit`.
//! `SessionContext` of 512 bytes or more: `InvalidParameterValue` (the whole request).
//!
//! `PullSmsSendStatus` (`Limit` 1–100, `SmsSdkAppId`): the delivery statuses not pulled
//! yet whose receipt time has come, oldest first, each handed out once
//! (`PullSmsSendStatusSet[]`: `UserReceiveTime`, `CountryCode`, `SubscriberNumber`,
//! `PhoneNumber`, `SerialNo`, `ReportStatus` `SUCCESS`/`FAIL`, `Description`,
//! `SessionContext`). At most [`PULL_BACKLOG`] are kept; older ones are dropped.
//!
//! When `SessionContext` lists one entry per number (`p1,p2,…`, the `connectors` crate's
//! form for a request of several pushes), the sandbox attributes each number to its entry.

use crate::aliyun_sms::cst;
use crate::ids::request_id;
use crate::limits::Limit;
use crate::sandbox::NewMessage;
use crate::state::SimulatorState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use domain::ids::MobileNumber;
use domain::provider_template::{Provider, VarKind};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

type Reply = Json<Value>;

/// Statuses kept for `PullSmsSendStatus`.
pub const PULL_BACKLOG: usize = 100_000;

fn error(code: &str, message: &str) -> Reply {
    Json(
        json!({ "Response": { "Error": { "Code": code, "Message": message }, "RequestId": request_id() } }),
    )
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Verifies `Authorization` for this request; `Err` is the Tencent error to answer.
fn verify(st: &SimulatorState, headers: &HeaderMap, body: &[u8]) -> Result<(), Reply> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let auth = h("authorization");
    let rest = auth
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| error("AuthFailure.InvalidAuthorization", "Authorization 格式错误"))?;
    let mut credential = "";
    let mut signed_headers = "";
    let mut signature = "";
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let cred: Vec<&str> = credential.split('/').collect();
    if cred.len() != 4 || signed_headers.is_empty() || signature.is_empty() {
        return Err(error(
            "AuthFailure.InvalidAuthorization",
            "Authorization 格式错误",
        ));
    }
    let (secret_id, date, service) = (cred[0], cred[1], cred[2]);
    if secret_id != st.config.tencent_secret_id {
        return Err(error(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found",
        ));
    }
    let ts: i64 = h("x-tc-timestamp").parse().unwrap_or(0);
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return Err(error("AuthFailure.SignatureExpire", "Signature expired"));
    }
    let ts_date = chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    if ts_date != date || cred[3] != "tc3_request" {
        return Err(error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated",
        ));
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", h(name).trim().to_ascii_lowercase()));
    }
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let scope = format!("{date}/{service}/tc3_request");
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        format!("TC3{}", st.config.tencent_secret_key).as_bytes(),
        date,
    );
    let k = hmac(&k, service);
    let k = hmac(&k, "tc3_request");
    if hex::encode(hmac(&k, &to_sign)) != signature {
        return Err(error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct SendSms {
    #[serde(default)]
    PhoneNumberSet: Vec<String>,
    #[serde(default)]
    SmsSdkAppId: String,
    #[serde(default)]
    SignName: String,
    #[serde(default)]
    TemplateId: String,
    #[serde(default)]
    TemplateParamSet: Vec<String>,
    #[serde(default)]
    SessionContext: String,
}

/// `{1}`, `{2}`… of `text` from `params`; `None` when the counts do not match.
fn fill(text: &str, params: &[String]) -> Option<String> {
    let mut out = text.to_string();
    let mut used = 0;
    for (i, p) in params.iter().enumerate() {
        let ph = format!("{{{}}}", i + 1);
        if out.contains(&ph) {
            out = out.replace(&ph, p);
            used += 1;
        }
    }
    (used == params.len() && !out.contains(&format!("{{{}}}", params.len() + 1))).then_some(out)
}

/// Tencent's checks of the parameters themselves: no link in any (except the simulators'
/// catch-all `{1}`, which carries whole messages), and for a registered template of an
/// account that is not enterprise-verified at most 12 characters each; a registered
/// `number` variable takes digits only.
fn check_params(st: &SimulatorState, id: &str, text: &str, params: &[String]) -> Option<Reply> {
    let catch_all = text == "{1}";
    if !catch_all
        && params.iter().any(|p| {
            let p = p.to_ascii_lowercase();
            p.contains("http://") || p.contains("https://") || p.contains("www.")
        })
    {
        return Some(error(
            "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
            "模板变量中不允许包含URL",
        ));
    }
    let registered = st.config.template(Provider::TencentSms, id)?;
    if !registered.enterprise
        && !registered.catch_all
        && params.iter().any(|p| p.chars().count() > 12)
    {
        return Some(error(
            "InvalidParameterValue.TemplateParameterLengthLimit",
            "单个变量值最多支持12个字符",
        ));
    }
    let numbers_ok = registered.variables.iter().zip(params).all(|(v, p)| {
        v.kind != VarKind::Number || p.chars().all(|c| c.is_ascii_digit() || c == '.')
    });
    if !numbers_ok {
        return Some(error(
            "InvalidParameterValue.TemplateParameterFormatError",
            "模板参数格式错误",
        ));
    }
    None
}

pub(crate) async fn handle(
    State(st): State<SimulatorState>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    if let Err(r) = verify(&st, &headers, &body) {
        return r;
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if h("x-tc-version") != "2021-01-11" {
        return error("NoSuchVersion", "The version is not supported");
    }
    if h("x-tc-region").is_empty() {
        return error("MissingParameter", "X-TC-Region is required");
    }
    match h("x-tc-action") {
        "SendSms" => send_sms(&st, &body).await,
        "PullSmsSendStatus" => pull_status(&st, &body),
        _ => error("InvalidAction", "The action is not found"),
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct PullRequest {
    #[serde(default)]
    Limit: i64,
    #[serde(default)]
    SmsSdkAppId: String,
}

fn pull_status(st: &SimulatorState, body: &[u8]) -> Reply {
    let Ok(req) = serde_json::from_slice::<PullRequest>(body) else {
        return error("InvalidParameter", "JSON body is invalid");
    };
    if req.SmsSdkAppId.is_empty() {
        return error("MissingParameter", "SmsSdkAppId is required");
    }
    if !(1..=100).contains(&req.Limit) {
        return error("InvalidParameterValue", "Limit 取值范围 1-100");
    }
    let now = chrono::Utc::now();
    let mut queue = st.tencent_pull.lock().expect("pull lock");
    let mut set = Vec::new();
    while set.len() < req.Limit as usize && queue.front().is_some_and(|(at, _)| *at <= now) {
        if let Some((_, item)) = queue.pop_front() {
            set.push(item);
        }
    }
    Json(json!({ "Response": { "PullSmsSendStatusSet": set, "RequestId": request_id() } }))
}

async fn send_sms(st: &SimulatorState, body: &[u8]) -> Reply {
    let Ok(req) = serde_json::from_slice::<SendSms>(body) else {
        return error("InvalidParameter", "JSON body is invalid");
    };
    if req.PhoneNumberSet.is_empty() || req.SmsSdkAppId.is_empty() || req.TemplateId.is_empty() {
        return error(
            "MissingParameter",
            "PhoneNumberSet, SmsSdkAppId and TemplateId are required",
        );
    }
    if req.PhoneNumberSet.len() > 200 {
        return error(
            "LimitExceeded.PhoneNumberCountLimit",
            "单次提交号码数量超过200",
        );
    }
    if req.SessionContext.len() >= 512 {
        return error("InvalidParameterValue", "SessionContext 长度需小于512字节");
    }
    if st.faults.before_send().await.is_some() {
        return error("InternalError", "内部错误");
    }
    if req.SignName.is_empty() || !st.config.sign_allowed(&req.SignName) {
        return error(
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "签名未审批或格式错误",
        );
    }
    let Some(text) = st.config.tencent_template(&req.TemplateId) else {
        return error(
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "模板未审批或内容不匹配",
        );
    };
    if let Some(refusal) = check_params(st, &req.TemplateId, &text, &req.TemplateParamSet) {
        return refusal;
    }
    let Some(body_text) = fill(&text, &req.TemplateParamSet) else {
        return error(
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            "请求内容与审核通过的模板内容不匹配",
        );
    };
    let content = format!("【{}】{}", req.SignName, body_text);
    let limit = Limit {
        window: Duration::from_secs(24 * 3600),
        max: st.config.sms_daily_limit_per_number,
        message: "单个手机号日下发短信条数超过设定的上限",
    };
    let refs: Vec<&str> = req.SessionContext.split(',').collect();
    let per_number = refs.len() == req.PhoneNumberSet.len() && refs.len() > 1;
    let mut statuses = Vec::with_capacity(req.PhoneNumberSet.len());
    let mut rows = Vec::new();
    for (n, raw) in req.PhoneNumberSet.iter().enumerate() {
        let status = |code: &str, msg: &str, serial: &str| {
            json!({ "SerialNo": serial, "PhoneNumber": raw, "Fee": if code == "Ok" { 1 } else { 0 },
                    "SessionContext": req.SessionContext, "Code": code, "Message": msg, "IsoCode": "CN" })
        };
        let Ok(m) = MobileNumber::parse(raw) else {
            statuses.push(status(
                "InvalidParameterValue.IncorrectPhoneNumber",
                "手机号格式错误",
                "",
            ));
            continue;
        };
        let to = m.as_str().to_string();
        if st.config.blacklisted(&to) {
            statuses.push(status(
                "FailedOperation.PhoneNumberInBlacklist",
                "手机号在免打扰名单库中",
                "",
            ));
            continue;
        }
        if st.config.enforce_limits {
            let key = format!("{to}|{}|{}", req.SignName, req.TemplateId);
            let added = st.sms_limits.lock().expect("limits lock").try_add(
                &[key],
                &[limit],
                Instant::now(),
            );
            if let Err(l) = added {
                statuses.push(status("LimitExceeded.PhoneNumberDailyLimit", l.message, ""));
                continue;
            }
        }
        let serial = st.ids.serial_no();
        statuses.push(status("Ok", "send success", &serial));
        rows.push(NewMessage {
            channel: "sms",
            to,
            content: content.clone(),
            provider_id: serial,
            push_ref: if per_number {
                refs[n].to_string()
            } else {
                req.SessionContext.clone()
            },
            out_id: if per_number {
                req.SessionContext.clone()
            } else {
                String::new()
            },
            template: req.TemplateId.clone(),
        });
    }
    if !rows.is_empty() {
        match st.record(rows).await {
            Ok(recorded) => {
                let delay = chrono::Duration::from_std(st.config.receipt_delay).unwrap_or_default();
                {
                    let mut queue = st.tencent_pull.lock().expect("pull lock");
                    for m in &recorded {
                        let ok = !st.config.fails(&m.to);
                        let at = m.received_at + delay;
                        queue.push_back((at, json!({
                            "UserReceiveTime": cst(at),
                            "CountryCode": "86",
                            "SubscriberNumber": m.to,
                            "PhoneNumber": format!("+86{}", m.to),
                            "SerialNo": m.provider_id,
                            "ReportStatus": if ok { "SUCCESS" } else { "FAIL" },
                            "Description": if ok { "用户短信送达成功" } else { "用户短信未送达" },
                            "SessionContext": req.SessionContext,
                        })));
                    }
                    while queue.len() > PULL_BACKLOG {
                        queue.pop_front();
                    }
                }
                if !st.receipts.wants_tencent_sms() {
                    return Json(
                        json!({ "Response": { "SendStatusSet": statuses, "RequestId": request_id() } }),
                    );
                }
                for m in recorded {
                    let ok = !st.config.fails(&m.to);
                    let at = m.received_at + delay;
                    st.receipts.tencent_sms(json!({
                        "user_receive_time": cst(at),
                        "nationcode": "86",
                        "mobile": m.to,
                        "report_status": if ok { "SUCCESS" } else { "FAIL" },
                        "errmsg": if ok { "DELIVRD" } else { "UNDELIV" },
                        "description": if ok { "用户短信送达成功" } else { "用户短信未送达" },
                        "sid": m.provider_id,
                    }));
                }
            }
            Err(_) => return error("InternalError", "内部错误"),
        }
    }
    Json(json!({ "Response": { "SendStatusSet": statuses, "RequestId": request_id() } }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_placeholders() {
        assert_eq!(super::fill("{1}", &["a".into()]).as_deref(), Some("a"));
        assert_eq!(
            super::fill("x{1}y{2}", &["a".into(), "b".into()]).as_deref(),
            Some("xayb")
        );
        assert_eq!(super::fill("{1}{2}", &["a".into()]), None);
        assert_eq!(super::fill("{1}", &["a".into(), "b".into()]), None);
    }
}
