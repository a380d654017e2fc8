//! Test support: the shared kit (`services/testkit`): the real `policy-push` binary started
//! on port 0 with a temporary data dir ([`Server`], on production backends when
//! `POLICY_PUSH_TEST_BACKENDS=production`), an HTTP client for its API ([`Api`]), and
//! generators of valid identifiers.

#![allow(unused_imports)]

pub use testkit::*;
