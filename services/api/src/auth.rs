//! Bearer-token authentication of operators and role checks.

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
        let hash = token_hash(token);
        if let Some(op) = state.operators.lock().expect("cache lock").get(&hash) {
            return Ok(Operator(op.clone()));
        }
        let op = state
            .store
            .operator_by_token_hash(&hash)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        state
            .operators
            .lock()
            .expect("cache lock")
            .insert(hash, op.clone());
        Ok(Operator(op))
    }
}
