//! Bearer-token authentication of operators and role checks. A source address whose
//! bearer tokens failed too often (`RateLimits::failed_bearer`) is answered 429 before
//! any token it sends is looked at, so it cannot keep guessing.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::operator::{Action, Role};
use sha2::{Digest, Sha256};
use store::OperatorRecord;

/// Tokens are stored as SHA-256 hex digests; the token itself is never kept.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in operator of a request.
#[derive(Debug, Clone)]
pub struct Operator(pub OperatorRecord);

impl Operator {
    pub fn require(&self, action: Action) -> ApiResult<()> {
        if self.0.role.may(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not do this ({action:?})",
                self.0.role.as_str()
            )))
        }
    }
    pub fn may(&self, action: Action) -> bool {
        self.0.role.may(action)
    }
    pub fn id(&self) -> &str {
        &self.0.id
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
}

/// How long an operator read by its token is trusted without reading it again.
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The operator holding `token`, through the cache of `state`.
async fn by_token(state: &AppState, token: &str) -> Result<Option<OperatorRecord>, ApiError> {
    let hash = token_hash(token);
    let now = std::time::Instant::now();
    if let Some((op, at)) = state.operators.lock().expect("cache lock").get(&hash) {
        if now.duration_since(*at) < CACHE_TTL {
            return Ok(Some(op.clone()));
        }
    }
    let found = state.store.operator_by_token_hash(&hash).await?;
    let mut cache = state.operators.lock().expect("cache lock");
    match &found {
        Some(op) => {
            cache.insert(hash, (op.clone(), now));
        }
        None => {
            cache.remove(&hash);
        }
    }
    Ok(found)
}

/// Forgets every cached operator (after a token rotation or a disabling).
pub fn forget_cached(state: &AppState) {
    state.operators.lock().expect("cache lock").clear();
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthenticated)?;
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if !state.guard.failed_bearer.has_token(peer) {
            return Err(ApiError::rate_limited());
        }
        match by_token(state, token).await? {
            Some(op) => Ok(Operator(op)),
            None => {
                state.guard.failed_bearer.check(peer);
                tracing::warn!("refused an unknown or disabled bearer token");
                Err(ApiError::unauthenticated())
            }
        }
    }
}
