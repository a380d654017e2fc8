//! The tamper-evident record from outside the database: `policy-push audit verify`
//! (checks every chain, exit non-zero naming the first broken entry) and the daily
//! publication of the chain heads (a log line and a file `chain-heads-YYYY-MM-DD.json`
//! in the heads directory), which `verify` reads back, so a chain rewritten as a whole
//! is caught too. The chains themselves: `store::trail`, `docs/security.md`.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{ChainHeads, ChainReport};
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Check the audit log's and the push events' hash chains and the published heads;
    /// exit 1 naming the first broken entry.
    Verify(ChainArgs),
    /// Publish the chain heads now (a log line and a file), as `serve` does daily.
    Publish(ChainArgs),
}

/// The same database settings as `serve`.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    #[arg(long, env = "POLICY_PUSH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "POLICY_PUSH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the daily chain heads are written (default: `chain-heads` in the data dir).
    #[arg(long, env = "POLICY_PUSH_CHAIN_HEADS_DIR")]
    pub chain_heads_dir: Option<PathBuf>,
}

impl ChainArgs {
    fn heads_dir(&self) -> PathBuf {
        heads_dir(self.chain_heads_dir.clone(), &self.data_dir)
    }
}

/// The heads directory: configured, or `chain-heads` in the data dir.
pub fn heads_dir(configured: Option<PathBuf>, data_dir: &Path) -> PathBuf {
    configured.unwrap_or_else(|| data_dir.join("chain-heads"))
}

/// Runs `audit verify` / `audit publish`; the process's exit code.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    let (args, verify) = match cmd {
        AuditCommand::Verify(a) => (a, true),
        AuditCommand::Publish(a) => (a, false),
    };
    let url = crate::config::database_url(args.database_url.clone(), &args.data_dir)?;
    let store = store::open(&url).await?;
    let dir = args.heads_dir();
    if !verify {
        let path = publish(store.as_ref(), &dir, Utc::now()).await?;
        println!("chain heads published to {}", path.display());
        return Ok(0);
    }
    let report = verify_with_published(store.as_ref(), &dir).await?;
    println!("{}", summary(&report));
    match report.broken.first() {
        None => Ok(0),
        Some(first) => {
            eprintln!("BROKEN: {first}");
            for more in report.broken.iter().skip(1).take(20) {
                eprintln!("  also: {more}");
            }
            Ok(1)
        }
    }
}

/// One line of what was checked.
pub fn summary(r: &ChainReport) -> String {
    format!(
        "audit log: {} entries chained ({} from before the chain); push events: {} events in {} segments of {} streams; {} published heads checked; {}",
        r.audit_entries,
        r.audit_unchained,
        r.events,
        r.segments,
        r.streams,
        r.published_checked,
        if r.intact() { "intact" } else { "BROKEN" }
    )
}

/// Checks every chain and every head published in `dir`.
pub async fn verify_with_published(
    store: &dyn store::Store,
    dir: &Path,
) -> anyhow::Result<ChainReport> {
    let published = read_published(dir)?;
    Ok(store.verify_chains(&published).await?)
}

/// The file of the heads published on `at`'s (UTC) day.
fn day_file(dir: &Path, at: DateTime<Utc>) -> PathBuf {
    dir.join(format!("chain-heads-{}.json", at.format("%Y-%m-%d")))
}

/// Publishes every chain's head at `at`: a log line, and the day's file (kept if the
/// day's heads were published already: the first publication of a day stands).
pub async fn publish(
    store: &dyn store::Store,
    dir: &Path,
    at: DateTime<Utc>,
) -> anyhow::Result<PathBuf> {
    let heads = store.chain_heads(at).await?;
    let text = serde_json::to_string(&heads)?;
    tracing::info!(target: "chain_heads", heads = %text, "chain heads published");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the chain heads dir {}", dir.display()))?;
    let path = day_file(dir, at);
    if !path.exists() {
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

/// Every heads file in `dir` (none when the directory does not exist).
pub fn read_published(dir: &Path) -> anyhow::Result<Vec<ChainHeads>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("chain-heads-") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        out.push(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a chain heads file", p.display()))?,
        );
    }
    Ok(out)
}

/// Publishes the heads at start and then once a day (just after midnight UTC, by
/// `clock`), until `shutdown`.
pub async fn publish_daily(
    store: Arc<dyn store::Store>,
    dir: PathBuf,
    clock: pipeline::Clock,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock();
        if let Err(e) = publish(store.as_ref(), &dir, now).await {
            tracing::error!(error = %format!("{e:#}"), "cannot publish the chain heads");
        }
        let next = (now.date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 5, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now + chrono::Duration::days(1));
        let wait = (next - now)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn heads_are_published_once_a_day_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = store::open(&url).await.unwrap();
        let heads = dir.path().join("heads");
        let day = Utc.with_ymd_and_hms(2026, 12, 3, 0, 5, 0).unwrap();
        let path = publish(store.as_ref(), &heads, day).await.unwrap();
        assert!(path.ends_with("chain-heads-2026-12-03.json"));
        let first = std::fs::read_to_string(&path).unwrap();
        store
            .audit(&store::AuditEntry {
                operator_id: "op".into(),
                action: "policy.publish".into(),
                target: "p1".into(),
                detail: serde_json::json!({}),
                at: day,
            })
            .await
            .unwrap();
        publish(store.as_ref(), &heads, day + chrono::Duration::hours(3))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            first,
            "first of the day stands"
        );
        publish(store.as_ref(), &heads, day + chrono::Duration::days(1))
            .await
            .unwrap();
        let read = read_published(&heads).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            read[1].heads[0].seq, 1,
            "the next day's audit head: one entry"
        );
        let report = verify_with_published(store.as_ref(), &heads).await.unwrap();
        assert!(report.intact(), "{:?}", report.broken);
        assert_eq!(report.published_checked, 2);
    }
}
