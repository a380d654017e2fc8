//! What every Alibaba Cloud RPC simulator does before its action: read the parameters (GET
//! query and/or POST form), check the common parameters and the V2 signature (HMAC-SHA1,
//! implemented here independently of the connectors), refuse replayed nonces, and answer
//! errors in Alibaba's shape `{RequestId, HostId, Code, Message}`.

use crate::ids::request_id;
use crate::state::SimulatorState;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::time::Instant;

/// The request's parameters, in arrival order.
pub(crate) struct RpcParams(Vec<(String, String)>);

impl RpcParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter, or Alibaba's `Missing{Name}` error.
    pub fn require(&self, key: &str, host: &'static str) -> Result<&str, Refusal> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(error(
                host,
                StatusCode::BAD_REQUEST,
                &format!("Missing{key}"),
                &format!("{key} is mandatory for this action."),
            )),
        }
    }
}

/// Query parameters plus, for a POST, the form body.
pub(crate) fn parse(query: Option<&str>, body: &[u8]) -> Result<RpcParams, String> {
    let mut params: Vec<(String, String)> = match query {
        Some(q) if !q.is_empty() => serde_urlencoded::from_str(q).map_err(|e| e.to_string())?,
        _ => Vec::new(),
    };
    if !body.is_empty() {
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())?;
        params.extend(form);
    }
    Ok(RpcParams(params))
}

/// A refused request, rendered in Alibaba's error shape `{RequestId, HostId?, Code, Message}`.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    host: Option<&'static str>,
    code: String,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "RequestId": request_id(),
            "Code": self.code,
            "Message": self.message,
        });
        if let Some(h) = self.host {
            body["HostId"] = serde_json::Value::from(h);
        }
        (self.status, Json(body)).into_response()
    }
}

/// A gateway-level error (signature, access key, action…) with its HTTP status.
pub(crate) fn error(host: &'static str, status: StatusCode, code: &str, message: &str) -> Refusal {
    Refusal {
        status,
        host: Some(host),
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// A business error (HTTP 200, `Code` other than `OK`), as SMS and voice actions answer.
pub(crate) fn biz_error(code: &str, message: &str) -> Refusal {
    Refusal {
        status: StatusCode::OK,
        host: None,
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// `{"RequestId", "Code":"OK", "Message":"OK", ...extra}`.
pub(crate) fn ok(extra: serde_json::Value) -> Response {
    let mut body = serde_json::json!({
        "RequestId": request_id(),
        "Code": "OK",
        "Message": "OK",
    });
    if let (Some(b), serde_json::Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    Json(body).into_response()
}

/// The provider's answer to an injected system error.
pub(crate) fn system_error(host: &'static str) -> Refusal {
    error(
        host,
        StatusCode::INTERNAL_SERVER_ERROR,
        "isp.SYSTEM_ERROR",
        "System error.",
    )
}

fn pe(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// The signature Alibaba computes for these parameters.
pub(crate) fn expected_signature(
    secret: &str,
    method: &str,
    params: &[(String, String)],
) -> String {
    let mut pairs: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| format!("{}={}", pe(k), pe(v)))
        .collect();
    pairs.sort();
    let to_sign = format!("{method}&%2F&{}", pe(&pairs.join("&")));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("any key");
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks the common parameters, access key, timestamp, signature and nonce.
pub(crate) fn authenticate(
    st: &SimulatorState,
    host: &'static str,
    method: &Method,
    params: &RpcParams,
    version: &str,
) -> Result<(), Refusal> {
    let bad = |code: &str, msg: &str| error(host, StatusCode::BAD_REQUEST, code, msg);
    for key in [
        "AccessKeyId",
        "Signature",
        "SignatureNonce",
        "Timestamp",
        "SignatureMethod",
        "SignatureVersion",
        "Action",
        "Version",
    ] {
        params.require(key, host)?;
    }
    let cfg = &st.config;
    if params.get("AccessKeyId") != Some(cfg.aliyun_access_key_id.as_str()) {
        return Err(error(
            host,
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    if params.get("SignatureMethod") != Some("HMAC-SHA1") {
        return Err(bad(
            "InvalidSignatureMethod",
            "Specified signature method is not supported.",
        ));
    }
    if params.get("SignatureVersion") != Some("1.0") {
        return Err(bad(
            "InvalidSignatureVersion",
            "Specified signature version is not supported.",
        ));
    }
    let ts = params.get("Timestamp").unwrap_or("");
    let Ok(when) = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%SZ") else {
        return Err(bad(
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    let skew = (chrono::Utc::now().naive_utc() - when).num_seconds().abs();
    if skew > 15 * 60 {
        return Err(bad(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let expected = expected_signature(&cfg.aliyun_access_key_secret, method.as_str(), &params.0);
    if params.get("Signature") != Some(expected.as_str()) {
        return Err(bad(
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    let nonce = params.get("SignatureNonce").unwrap_or("");
    if !st
        .nonces
        .lock()
        .expect("nonce lock")
        .first_use(nonce, Instant::now())
    {
        return Err(bad(
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    if params.get("Version") != Some(version) {
        return Err(bad(
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    Ok(())
}

/// `${name}` placeholders of `text` replaced from `params` (a JSON object of strings).
/// `Err(name)` names a placeholder with no value.
pub(crate) fn substitute(
    text: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match params.get(name).and_then(|v| v.as_str()) {
            Some(v) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A `TemplateParam`-style JSON object whose values are all strings.
pub(crate) fn string_object(
    raw: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, ()> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(serde_json::Map::new());
    };
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(m)) if m.values().all(|v| v.is_string()) => Ok(m),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// channels.md §2.1 known-answer vector.
    #[test]
    fn v2_known_answer_vector() {
        let params: Vec<(String, String)> = [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            expected_signature("testSecret", "GET", &params),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn placeholders() {
        let m = string_object(Some(r#"{"content":"你好 ${x}","a":"1"}"#)).unwrap();
        assert_eq!(substitute("${content}", &m).unwrap(), "你好 ${x}");
        assert_eq!(substitute("A${a}B${content}", &m).unwrap(), "A1B你好 ${x}");
        assert_eq!(substitute("${missing}", &m).unwrap_err(), "missing");
        assert!(string_object(Some(r#"{"a":1}"#)).is_err());
        assert!(string_object(Some("not json")).is_err());
        assert!(string_object(None).unwrap().is_empty());
    }
}
