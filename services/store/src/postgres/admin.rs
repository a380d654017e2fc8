//! Creating and dropping whole databases: per-test databases in the test suites and
//! `policy-push migrate --create-database`.

use crate::Result;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

/// A database name that is safe to splice into DDL (letters, digits, `_`).
fn checked(name: &str) -> Result<&str> {
    if !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(name)
    } else {
        Err(crate::StoreError::UnsupportedUrl(format!(
            "database name {name:?}: use lowercase letters, digits and _"
        )))
    }
}

/// The URL of database `name` on the server of `url` (same user, host and options).
pub fn url_for_database(url: &str, name: &str) -> Result<String> {
    let name = checked(name)?;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    Ok(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}

/// Creates database `name` on the server `url` points at (connecting to `url`'s own
/// database to do so); nothing when it exists.
pub async fn create_database(url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Drops database `name` on the server `url` points at, ending its sessions.
pub async fn drop_database(url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_database_keeps_server_and_options() {
        assert_eq!(
            url_for_database("postgres://postgres@127.0.0.1:5432/test", "pp_x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/pp_x"
        );
        assert_eq!(
            url_for_database("postgres://u:p@h/test?sslmode=disable", "a1").unwrap(),
            "postgres://u:p@h/a1?sslmode=disable"
        );
        assert_eq!(
            url_for_database("postgres://h", "a").unwrap(),
            "postgres://h/a"
        );
        assert!(url_for_database("postgres://h/x", "bad; DROP").is_err());
    }
}
