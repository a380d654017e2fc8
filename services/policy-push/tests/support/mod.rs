//! Test support: the shared kit (`services/testkit`): the real `policy-push` binary started
//! on port 0 with a temporary data dir ([`Server`], on production backends when
//! `POLICY_PUSH_TEST_BACKENDS=production`), an HTTP client for its API ([`Api`]), and
//! generators of valid identifiers; and [`faults`], this crate's fault harness (a private
//! PostgreSQL and Redis a test may stop, pause or flush; the mock cluster's broker faults).

#![allow(unused_imports, dead_code)]

pub mod faults;

pub use testkit::*;
