//! One signed Alibaba Cloud RPC call (POST, form-encoded, `Format=JSON`), shared by the SMS
//! and voice connectors. A reply whose `Code` is not `OK` is classified by
//! [`crate::classify::aliyun`].

use crate::aliyun_sign::{form_body, signed_params, Common};
use crate::config::{with_slash, Secret};
use crate::{classify, http, SendOutcome};

pub(crate) struct AliyunRpc {
    pub client: reqwest::Client,
    pub base_url: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub region_id: String,
    pub version: &'static str,
}

impl AliyunRpc {
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        access_key_id: &str,
        access_key_secret: &Secret,
        region_id: &str,
        version: &'static str,
    ) -> Self {
        Self {
            client,
            base_url: with_slash(base_url),
            access_key_id: access_key_id.to_string(),
            access_key_secret: access_key_secret.clone(),
            region_id: region_id.to_string(),
            version,
        }
    }

    /// Calls `action` with `business` parameters. `Ok` carries the JSON reply of a call
    /// whose `Code` is `OK`; anything else is already classified.
    pub async fn call(
        &self,
        action: &str,
        business: Vec<(String, String)>,
    ) -> Result<serde_json::Value, SendOutcome> {
        let common = Common::now(&self.access_key_id, action, self.version, &self.region_id);
        let params = signed_params("POST", &common, self.access_key_secret.expose(), business);
        let resp = self
            .client
            .post(&self.base_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form_body(&params))
            .send()
            .await
            .map_err(|e| http::transport_outcome(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| http::transport_outcome(&e))?;
        let body: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => return Err(classify::http_status(status)),
        };
        let code = body.get("Code").and_then(|c| c.as_str()).unwrap_or("");
        if code == "OK" && status < 300 {
            return Ok(body);
        }
        let message = body.get("Message").and_then(|m| m.as_str()).unwrap_or("");
        if code.is_empty() {
            return Err(classify::http_status(status));
        }
        Err(classify::aliyun(code, message, status))
    }
}

/// A JSON field as a string whether the provider sent a string or a number.
pub(crate) fn str_field(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
