//! Console sessions, kept on the server: signing in with an operator's bearer token
//! records a session (`console_sessions`: the SHA-256 of a random id, the operator, the
//! expiry) and sets the cookie `pp_console=<id>.<HMAC-SHA256 of id>`; the token itself
//! is never stored in the browser. Sign-out revokes the session, disabling the operator
//! revokes all of theirs, so a stolen cookie stops working then. The HMAC lets a forged
//! cookie be refused without a database read. Forms carry a CSRF token derived from the
//! cookie. The cookie is `Secure` when the configured public URL is `https://`.
//!
//! The signing key is `POLICY_PUSH_CONSOLE_SECRET` when set (set the same value on every
//! API replica behind one address); otherwise a random key per process, so sessions end
//! when the process restarts.

use crate::auth::{token_hash, Operator};
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

static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Fixes the key: `secret`, else `POLICY_PUSH_CONSOLE_SECRET`, else 32 random bytes. The
/// first call of a process wins.
pub fn init_key(secret: Option<&str>) {
    KEY.get_or_init(|| {
        let configured = secret
            .map(str::to_string)
            .or_else(|| std::env::var("POLICY_PUSH_CONSOLE_SECRET").ok())
            .filter(|s| !s.is_empty());
        match configured {
            Some(s) => s.into_bytes(),
            None => {
                let mut k = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut k);
                k
            }
        }
    });
}

fn key() -> &'static [u8] {
    init_key(None);
    KEY.get().expect("initialised above")
}

fn mac() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key()).expect("HMAC takes any key length")
}

fn sign(msg: &str) -> String {
    let mut m = mac();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A new session: the cookie value and the session id it carries.
pub fn issue() -> (String, String) {
    let mut id = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id);
    let id = hex::encode(id);
    (format!("{id}.{}", sign(&id)), id)
}

/// The session id of a cookie value whose signature holds.
pub fn verify(value: &str) -> Option<&str> {
    let (id, sig) = value.rsplit_once('.')?;
    let sig = hex::decode(sig).ok()?;
    let mut m = mac();
    m.update(id.as_bytes());
    m.verify_slice(&sig).ok()?;
    (!id.is_empty()).then_some(id)
}

/// The CSRF token of forms shown to the holder of cookie `value`.
pub fn csrf(value: &str) -> String {
    sign(&format!("csrf:{value}"))[..32].to_string()
}

/// `; Secure` when the product is served at an `https://` public URL (the cookie then
/// never travels over plain HTTP); nothing on the embedded default's `http://127.0.0.1`.
fn secure_attr(public_url: &str) -> &'static str {
    if public_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        "; Secure"
    } else {
        ""
    }
}

fn secure(s: &AppState) -> &'static str {
    secure_attr(&s.pipeline.config.public_url)
}

pub fn set_cookie(s: &AppState, value: &str) -> String {
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={TTL_SECS}{}",
        secure(s)
    )
}

pub fn clear_cookie(s: &AppState) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(s)
    )
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

/// Records a new session of `operator_id`; the cookie value to set.
pub async fn sign_in(s: &AppState, operator_id: &str) -> store::Result<String> {
    let (value, id) = issue();
    let now = chrono::Utc::now();
    s.store
        .insert_session(
            &token_hash(&id),
            operator_id,
            now,
            now + chrono::Duration::seconds(TTL_SECS),
        )
        .await?;
    Ok(value)
}

/// Revokes the session of the request's cookie, if any.
pub async fn sign_out(s: &AppState, headers: &HeaderMap) {
    let Some(id) = cookie_value(headers).and_then(verify) else {
        return;
    };
    if let Err(e) = s
        .store
        .revoke_session(&token_hash(id), chrono::Utc::now())
        .await
    {
        tracing::error!(error = %e, "console sign-out could not revoke the session");
    }
}

/// A signed-in console operator.
#[derive(Clone)]
pub struct Session {
    pub op: Operator,
    pub csrf: String,
}

/// The session of a request, if its cookie names a live session of an enabled operator.
pub async fn session(s: &AppState, headers: &HeaderMap) -> Option<Session> {
    let value = cookie_value(headers)?;
    let id = verify(value)?;
    match s
        .store
        .session_operator(&token_hash(id), chrono::Utc::now())
        .await
    {
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
    fn cookies_carry_a_signed_random_id() {
        let (v, id) = issue();
        assert_eq!(verify(&v), Some(id.as_str()));
        let (other, other_id) = issue();
        assert_ne!(id, other_id, "random");
        let (_, sig) = v.rsplit_once('.').unwrap();
        assert_eq!(verify(&format!("{other_id}.{sig}")), None, "another id");
        assert_eq!(verify("garbage"), None);
        assert_eq!(verify(&format!(".{sig}")), None);
        assert_ne!(csrf(&v), csrf(&other));
    }

    #[test]
    fn the_cookie_is_secure_behind_https() {
        assert_eq!(secure_attr("https://push.example.gov.cn"), "; Secure");
        assert_eq!(secure_attr("HTTPS://push.example.gov.cn"), "; Secure");
        assert_eq!(secure_attr("http://127.0.0.1:8080"), "");
        assert_eq!(secure_attr(""), "");
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
