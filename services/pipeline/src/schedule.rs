//! The scheduler (runs with the planner role): starts campaigns whose scheduled time has
//! come (`schedule.at`), starts a new run of recurring campaigns at every occurrence of
//! their cron expression, and completes campaigns at their end date (`schedule.until`).
//! All times are Asia/Shanghai wall-clock times for the operator; stored in UTC.
//!
//! A run moves the campaign `scheduled`/`running` → `running` and asks the planner to
//! write its plan again: the then-eligible subjects get a push, **still at most once per
//! subject per campaign** (and per policy across campaigns): a recurring campaign reaches
//! those who became eligible since the last run, it does not repeat itself. Between runs
//! a recurring campaign stays `running` (it is not completed while a next run is
//! scheduled); a continuous campaign also keeps pushing to subjects who become eligible,
//! until its end date.
//!
//! Several schedulers may run (one per planner process): a run starts only if the stored
//! next-run time is still the one read (compare and set), so it starts once.

use crate::Pipeline;
use chrono::{DateTime, Utc};
use domain::campaign::{CampaignStatus, Schedule};
use store::{AuditEntry, CampaignOps};
use tokio_util::sync::CancellationToken;

/// How often the scheduler looks for due campaigns, at least.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// What launching a campaign with `schedule` at `now` does.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    /// `Scheduled` (starts later) or `Running` (starts now).
    pub status: CampaignStatus,
    /// The operations row to store, when there is anything to schedule or end.
    pub ops: Option<CampaignOps>,
}

/// Decides a launch: a future `at` or a cron expression schedules the campaign; otherwise
/// it runs now. `until` is kept as the end date either way.
pub fn launch_plan(
    campaign_id: &str,
    schedule: &Schedule,
    existing: Option<CampaignOps>,
    now: DateTime<Utc>,
) -> LaunchPlan {
    let next = match (&schedule.cron, schedule.at) {
        (Some(_), _) => schedule.next_after(now),
        (None, Some(at)) if at > now => Some(at),
        _ => None,
    };
    let status = if next.is_some() {
        CampaignStatus::Scheduled
    } else {
        CampaignStatus::Running
    };
    let mut ops = existing.unwrap_or_else(|| CampaignOps {
        campaign_id: campaign_id.to_string(),
        approvals_needed: 1,
        ..Default::default()
    });
    ops.next_run_at = next;
    ops.ends_at = schedule.until;
    let keep = next.is_some() || schedule.until.is_some() || ops.approvals_needed > 1;
    LaunchPlan {
        status,
        ops: keep.then_some(ops),
    }
}

/// One pass: completes ended campaigns and starts due runs. Returns the runs started.
pub async fn step(p: &Pipeline) -> anyhow::Result<usize> {
    let now = p.now();
    for id in p.store.complete_ended_campaigns(now).await? {
        tracing::info!(campaign = %id, "campaign reached its end date");
        audit(
            p,
            "campaign.complete",
            &id,
            serde_json::json!({"after": "completed", "reason": "end date"}),
        )
        .await;
    }
    let mut started = 0;
    for c in p.store.due_campaigns(now).await? {
        let Some(ops) = p.store.get_campaign_ops(&c.id).await? else {
            continue;
        };
        let Some(due) = ops.next_run_at else {
            continue;
        };
        let schedule = c.draft.schedule.clone().unwrap_or_default();
        let next = if schedule.cron.is_some() {
            schedule.next_after(now.max(due))
        } else {
            None
        };
        if p.store.start_run(&c.id, due, next, now).await? {
            started += 1;
            tracing::info!(campaign = %c.id, run = ops.runs + 1, "scheduled run started");
            audit(
                p,
                "campaign.run",
                &c.id,
                serde_json::json!({
                    "before": c.status.as_str(), "after": "running", "run": ops.runs + 1,
                    "due": due, "next_run_at": next,
                }),
            )
            .await;
        }
    }
    if started > 0 {
        p.wake.notify_waiters();
    }
    Ok(started)
}

async fn audit(p: &Pipeline, action: &str, target: &str, detail: serde_json::Value) {
    let entry = AuditEntry {
        operator_id: "system".into(),
        action: action.into(),
        target: target.into(),
        detail,
        at: p.now(),
    };
    if let Err(e) = p.store.audit(&entry).await {
        tracing::error!(error = %e, "cannot record a scheduler transition");
    }
}

/// The scheduler loop.
pub async fn run(p: Pipeline, shutdown: CancellationToken) {
    loop {
        if let Err(e) = step(&p).await {
            tracing::error!(error = %format!("{e:#}"), "scheduler step failed; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(p.config.poll_interval.max(TICK)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn launch_now_later_or_recurring() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap();
        let none = launch_plan("c", &Schedule::default(), None, now);
        assert_eq!(none.status, CampaignStatus::Running);
        assert!(none.ops.is_none());
        let past = Schedule {
            at: Some(now - chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert_eq!(
            launch_plan("c", &past, None, now).status,
            CampaignStatus::Running
        );
        let later = Schedule {
            at: Some(now + chrono::Duration::hours(1)),
            ..Default::default()
        };
        let l = launch_plan("c", &later, None, now);
        assert_eq!(l.status, CampaignStatus::Scheduled);
        assert_eq!(l.ops.unwrap().next_run_at, later.at);
        let cron = Schedule {
            cron: Some("0 9 * * *".into()),
            ..Default::default()
        };
        let c = launch_plan("c", &cron, None, now);
        assert_eq!(c.status, CampaignStatus::Scheduled);
        // 09:00 Shanghai = 01:00 UTC, the next day (it is 10:00 Shanghai now).
        assert_eq!(
            c.ops.unwrap().next_run_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap())
        );
    }
}
