//! The production store: PostgreSQL through sqlx, with a connection pool shared by the
//! roles of a process.
//!
//! # Layout
//! - [`operators`], [`subjects`], [`catalogue`], [`pushes`], [`audit`]: one trait each,
//!   with the same meaning as the SQLite store (the conformance suite in
//!   `services/store/tests/` runs the same cases on both).
//! - [`admin`]: creating and dropping databases (tests, `policy-push migrate`).
//!
//! Differences from SQLite that matter: several processes share the database, so the
//! relay takes outbox rows with `FOR UPDATE SKIP LOCKED` and connectors claim them in id
//! order with `FOR UPDATE` (two relays or two claimers never take the same push), a campaign's plan batches lock the campaign row so `seq` stays unique,
//! and bulk paths (subject upserts, plan batches) are one multi-row `UNNEST` insert.
//! Timestamps are `TIMESTAMPTZ`, documents `JSONB`; migrations live in
//! `migrations/postgres/`.

pub mod admin;
mod audit;
mod catalogue;
mod operations;
mod operators;
mod optouts;
mod params;
mod pushes;
mod reports;
mod subjects;

use crate::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Connections per process unless the URL says otherwise (`?pool_max=N`, removed from the
/// URL before connecting).
const DEFAULT_POOL_MAX: u32 = 10;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` and applies pending migrations (sqlx takes an
    /// advisory lock, so processes starting together migrate once).
    pub async fn open(url: &str) -> Result<Self> {
        let (url, pool_max) = split_pool_max(url)?;
        let opts = PgConnectOptions::from_str(&url)?.application_name("policy-push");
        let pool = PgPoolOptions::new()
            // Bounded so that many role processes stay under the server's max_connections.
            .max_connections(pool_max)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Takes `pool_max=N` out of the URL's query string.
fn split_pool_max(url: &str) -> Result<(String, u32)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_POOL_MAX));
    };
    let mut max = DEFAULT_POOL_MAX;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("pool_max=") {
            Some(n) => {
                max = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| StoreError::UnsupportedUrl(format!("pool_max={n}")))?;
            }
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, max))
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::split_pool_max;

    #[test]
    fn pool_max_is_taken_out_of_the_url() {
        assert_eq!(
            split_pool_max("postgres://h/db").unwrap(),
            ("postgres://h/db".into(), 10)
        );
        assert_eq!(
            split_pool_max("postgres://h/db?sslmode=disable&pool_max=40").unwrap(),
            ("postgres://h/db?sslmode=disable".into(), 40)
        );
        assert_eq!(
            split_pool_max("postgres://h/db?pool_max=3").unwrap(),
            ("postgres://h/db".into(), 3)
        );
        assert!(split_pool_max("postgres://h/db?pool_max=0").is_err());
    }
}
