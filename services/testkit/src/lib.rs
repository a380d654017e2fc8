//! Test support written once, for the integration tests of the API and of the binary and
//! for the load generator: starting the real `policy-push` binary on port 0 and waiting
//! until it is healthy, a fresh set of production backends per test (PostgreSQL database,
//! Kafka topics on librdkafka's mock cluster, Redis key prefix), the API router in process
//! on a SQLite store, HTTP clients for the API, waiting for a campaign's states, and
//! generators of valid identifiers.
//!
//! A dev-dependency only (and the load generator's dependency): nothing here is in the
//! product's binary.
//!
//! # Layout
//! - [`urls`]: the PostgreSQL and Redis the tests use (`POLICY_PUSH_TEST_*_URL`).
//! - [`backends`]: [`Backends`], a fresh database, topic prefix and Redis prefix, removed
//!   on drop; the variables that point the binary at them.
//! - [`process`]: [`Proc`], one process of the binary on `127.0.0.1:0`, ready when
//!   `/healthz` (and `/readyz`) answer; killed on drop.
//! - [`server`]: [`Server`], the binary as the tests start it (embedded default, or
//!   production backends when `POLICY_PUSH_TEST_BACKENDS=production`).
//! - [`client`]: [`Api`], a blocking API client with cursors followed and campaign states
//!   waited for.
//! - [`in_process`]: [`InProcess`], the API router (and optionally the simulators and
//!   pipeline roles) served in the test's own runtime on a SQLite store with operators.
//! - [`ids`]: valid resident ID numbers, credit codes, mobiles, openids, subjects.

pub mod backends;
pub mod client;
pub mod ids;
pub mod in_process;
pub mod process;
pub mod server;
pub mod urls;

pub use backends::{BackendSettings, Backends};
pub use client::Api;
pub use ids::{credit_code, mobile, openid, person, resident_id};
pub use in_process::{InProcess, Setup};
pub use process::{Launch, Proc};
pub use server::{production_backends, Server, ADMIN_TOKEN};
