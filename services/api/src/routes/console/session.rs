//! Console sessions: signing in with an operator's bearer token sets a signed cookie
//! `pp_console=<operator id>.<expiry>.<HMAC-SHA256>`; the token itself is never stored in
//! the browser. Forms carry a CSRF token derived from the cookie.
//!
//! The signing key is `POLICY_PUSH_CONSOLE_SECRET` when set (set the same value on every
//! API replica behind one address); otherwise a random key per process, so sessions end
//! when the process restarts.

use crate::auth::Operator;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::OnceLock;

pub const COOKIE: &str = "pp_console";
/// How long a console session lasts.
pub const TTL_SECS: i64 = 12 * 3600;

fn key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| match std::env::var("POLICY_PUSH_CONSOLE_SECRET") {
        Ok(s) if !s.is_empty() => s.into_bytes(),
        _ => {
            let mut k = vec![0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            k
        }
    })
}

fn mac() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key()).expect("HMAC takes any key length")
}

fn sign(msg: &str) -> String {
    let mut m = mac();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A cookie value for `operator_id`, valid until `now + TTL_SECS`.
pub fn issue(operator_id: &str, now: i64) -> String {
    let body = format!("{operator_id}.{}", now + TTL_SECS);
    let sig = sign(&body);
    format!("{body}.{sig}")
}

/// The operator id of a cookie value whose signature holds and which has not expired.
pub fn verify(value: &str, now: i64) -> Option<&str> {
    let (body, sig) = value.rsplit_once('.')?;
    let sig = hex::decode(sig).ok()?;
    let mut m = mac();
    m.update(body.as_bytes());
    m.verify_slice(&sig).ok()?;
    let (id, exp) = body.rsplit_once('.')?;
    (exp.parse::<i64>().ok()? > now && !id.is_empty()).then_some(id)
}

/// The CSRF token of forms shown to the holder of cookie `value`.
pub fn csrf(value: &str) -> String {
    sign(&format!("csrf:{value}"))[..32].to_string()
}

pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={TTL_SECS}")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// A signed-in console operator.
#[derive(Clone)]
pub struct Session {
    pub op: Operator,
    pub csrf: String,
}

/// The session of a request, if it carries a valid cookie of an existing operator.
pub async fn session(s: &AppState, headers: &HeaderMap) -> Option<Session> {
    let value = cookie_value(headers)?;
    let id = verify(value, chrono::Utc::now().timestamp())?;
    match s.store.get_operator(id).await {
        Ok(Some(op)) => Some(Session {
            op: Operator(op),
            csrf: csrf(value),
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "console session lookup failed");
            None
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        session(s, &parts.headers)
            .await
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_cookies_verify_until_they_expire() {
        let v = issue("op_abc", 1_000);
        assert_eq!(verify(&v, 1_000), Some("op_abc"));
        assert_eq!(verify(&v, 1_000 + TTL_SECS), None, "expired");
        let (body, sig) = v.rsplit_once('.').unwrap();
        let forged = format!("{}.{sig}", body.replace("op_abc", "op_xyz"));
        assert_eq!(verify(&forged, 1_000), None, "another operator's id");
        let longer = format!("{}.{sig}", body.replace(".", ".9"));
        assert_eq!(verify(&longer, 1_000), None, "a later expiry");
        assert_eq!(verify("garbage", 1_000), None);
        assert_ne!(csrf(&v), csrf(&issue("op_xyz", 1_000)));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; pp_console=op_1.2.ab; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), Some("op_1.2.ab"));
    }
}
