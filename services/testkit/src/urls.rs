//! Where the tests' PostgreSQL and Redis are: `POLICY_PUSH_TEST_DATABASE_URL` (a database
//! of an account that may create databases) and `POLICY_PUSH_TEST_REDIS_URL`, else the
//! local defaults `.ci/run` starts.

pub const DATABASE_URL_VAR: &str = "POLICY_PUSH_TEST_DATABASE_URL";
pub const REDIS_URL_VAR: &str = "POLICY_PUSH_TEST_REDIS_URL";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The administrative PostgreSQL URL tests create their databases through.
pub fn database_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_DATABASE_URL.into())
}

/// The Redis tests use (each under its own key prefix).
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| DEFAULT_REDIS_URL.into())
}
