//! `loadgen`: the load generator of policy-push. Starts the production deployment in
//! miniature from the release binary (every role its own OS process; PostgreSQL, Kafka as
//! librdkafka's mock cluster hosted in this process, Redis), drives it over HTTP on
//! 127.0.0.1 only, and reports B3 and B5 of `docs/performance.md`:
//!
//! - **B3** pushes/s of one campaign to N recipients, launch until every push is sent, and
//!   beside it the raw bus ceiling: N PushTask-sized messages produced and consumed
//!   through `bus::kafka::KafkaBus` on the same mock cluster in the same run.
//! - **B5** upsert-to-provider latency (p50/p99/max) of subjects becoming eligible for a
//!   running continuous campaign under a steady upsert stream.
//!
//! Prints a table and writes a JSON result. Every process started is killed on exit and the
//! database dropped; loops are bounded in count and time. See `load-tests/README.md`.

mod b3;
mod b5;
mod client;
mod machine;
mod stack;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    /// The campaign of N recipients.
    B3,
    /// The raw produce + consume of N messages through the bus.
    Ceiling,
    /// The upsert stream against a continuous campaign.
    B5,
}

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "loadgen",
    about = "Load test of policy-push on PostgreSQL + Kafka (mock cluster) + Redis: B3 and B5"
)]
struct Args {
    /// The policy-push binary (build with `cargo build --release -p policy-push`).
    #[arg(long, default_value = "target/release/policy-push")]
    binary: PathBuf,
    /// Recipients of the B3 campaign (and messages of the bus ceiling).
    #[arg(long, default_value_t = 100_000)]
    recipients: u64,
    /// Subjects per NDJSON import request.
    #[arg(long, default_value_t = 50_000)]
    import_chunk: usize,
    /// Which phases to run, in this order.
    #[arg(long, value_delimiter = ',', default_value = "b3,ceiling,b5")]
    phases: Vec<Phase>,
    /// Give up on the B3 campaign after this many seconds.
    #[arg(long, default_value_t = 1200)]
    b3_timeout_secs: u64,
    /// How often B3 reads the campaign counts (`GET /api/v1/campaigns/{id}` computes
    /// report cells over every push: polling it often loads PostgreSQL).
    #[arg(long, default_value_t = 5.0)]
    counts_poll_secs: f64,
    /// Give up when the B3 campaign makes no progress for this many seconds.
    #[arg(long, default_value_t = 60)]
    b3_stall_secs: u64,
    /// Exactly once through a crash: when this fraction of the B3 pushes is at the
    /// provider, `kill -9` every role process (planner, relay, connectors) and start them
    /// again (e.g. 0.4). The CPU accounting then misses the killed processes' share.
    #[arg(long)]
    b3_kill_at: Option<f64>,
    /// Messages per `publish` call of the bus ceiling.
    #[arg(long, default_value_t = 10_000)]
    ceiling_publish_batch: usize,
    /// Messages per `next_batch` of the bus ceiling's consumer.
    #[arg(long, default_value_t = 1_000)]
    ceiling_consume_batch: usize,
    /// B5 upserts per second.
    #[arg(long, default_value_t = 20.0)]
    upsert_rate: f64,
    /// B5 stream length in seconds.
    #[arg(long, default_value_t = 60)]
    upsert_secs: u64,
    /// After the last upsert, how long to wait for the last messages.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Partitions of every topic on the mock cluster.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Simulator: milliseconds from acceptance to the delivery receipt.
    #[arg(long, default_value_t = 50)]
    receipt_delay_ms: u64,
    /// Connector send rate per channel (POLICY_PUSH_RATE_PER_SECOND; 0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    rate_per_second: f64,
    /// PostgreSQL URL used to create (and drop) the run's database.
    #[arg(
        long,
        env = testkit::urls::DATABASE_URL_VAR,
        default_value = testkit::urls::DEFAULT_DATABASE_URL
    )]
    database_url: String,
    #[arg(
        long,
        env = testkit::urls::REDIS_URL_VAR,
        default_value = testkit::urls::DEFAULT_REDIS_URL
    )]
    redis_url: String,
    /// Where the JSON result goes.
    #[arg(long, default_value = "target/loadgen/result.json")]
    out: PathBuf,
    /// Keep the processes' data dirs and logs (printed at the end) instead of deleting them.
    #[arg(long)]
    keep_work_dir: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    started_at: String,
    finished_at: String,
    command: String,
    settings: Args,
    machine: machine::MachineInfo,
    processes: Vec<String>,
    import: Option<b3::ImportResult>,
    b3: Option<b3::B3Result>,
    ceiling: Option<b3::CeilingResult>,
    /// B3 pushes/s over the ceiling's messages/s.
    b3_to_ceiling_ratio: Option<f64>,
    b5: Option<b5::B5Result>,
    error: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    for url in [&args.database_url, &args.redis_url] {
        if !(url.contains("@127.0.0.1") || url.contains("//127.0.0.1") || url.contains("localhost"))
        {
            bail!("{url}: the load generator only talks to services on 127.0.0.1");
        }
    }
    if args.upsert_rate <= 0.0 || args.upsert_rate > 5000.0 {
        bail!("--upsert-rate must be in (0, 5000]");
    }
    if args.recipients == 0 || args.recipients > 5_000_000 {
        bail!("--recipients must be in [1, 5000000]");
    }
    let binary = std::fs::canonicalize(&args.binary).with_context(|| {
        format!(
            "{} not found: cargo build --release -p policy-push",
            args.binary.display()
        )
    })?;
    let machine = machine::info();
    eprintln!(
        "machine: {} cores ({}), {} GiB, load average {:?}",
        machine.nproc, machine.cpu_model, machine.memory_gib, machine.load_average_at_start
    );
    let work = tempfile::Builder::new().prefix("loadgen-").tempdir()?;
    let started_at = chrono::Utc::now();
    eprintln!("starting the stack in {} ...", work.path().display());
    let mut stack = stack::Stack::start(&stack::StackSettings {
        binary: &binary,
        work: work.path(),
        admin_url: &args.database_url,
        redis_url: &args.redis_url,
        partitions: args.partitions,
        receipt_delay_ms: args.receipt_delay_ms,
        rate_per_second: args.rate_per_second,
    })?;
    let processes = stack
        .pids()
        .iter()
        .map(|(n, p)| format!("{n} (pid {p})"))
        .collect();
    let mut report = Report {
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        settings: args.clone(),
        machine,
        processes,
        import: None,
        b3: None,
        ceiling: None,
        b3_to_ceiling_ratio: None,
        b5: None,
        error: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let run = run(&args, &mut stack, &mut report);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    });
    if let Err(e) = &outcome {
        report.error = Some(format!("{e:#}"));
    }
    report.finished_at = chrono::Utc::now().to_rfc3339();
    if let (Some(b3), Some(c)) = (&report.b3, &report.ceiling) {
        report.b3_to_ceiling_ratio =
            Some((b3.pushes_per_second / c.messages_per_second * 1000.0).round() / 1000.0);
    }
    print_table(&report);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("result: {}", args.out.display());
    // Stop the processes, then drop the database (field order of `Stack`).
    drop(stack);
    drop(rt);
    if args.keep_work_dir || outcome.is_err() {
        let kept = work.keep();
        eprintln!("logs and data kept in {}", kept.display());
    }
    outcome
}

async fn run(args: &Args, stack: &mut stack::Stack, report: &mut Report) -> Result<()> {
    let api = client::Api::new(&stack.api.base, stack::ADMIN_TOKEN)?;
    let sim = client::Simulator::new(&stack.sim.base)?;
    let b5_subjects = if args.phases.contains(&Phase::B5) {
        (args.upsert_rate * args.upsert_secs as f64).round() as u64
    } else {
        0
    };
    let recipients = if args.phases.contains(&Phase::B3) {
        args.recipients
    } else {
        0
    };
    let mut sim_after = 0i64;
    if recipients + b5_subjects > 0 {
        report.import =
            Some(b3::import(stack, &api, recipients, b5_subjects, args.import_chunk).await?);
    }
    for phase in &args.phases {
        match phase {
            Phase::B3 => {
                let (r, after) = b3::campaign(
                    stack,
                    &api,
                    &sim,
                    &b3::B3Settings {
                        recipients: args.recipients,
                        timeout: Duration::from_secs(args.b3_timeout_secs),
                        stall: Duration::from_secs(args.b3_stall_secs),
                        counts_poll: Duration::from_secs_f64(args.counts_poll_secs.max(0.5)),
                        kill_at: args.b3_kill_at,
                    },
                )
                .await?;
                report.b3 = Some(r);
                sim_after = after;
            }
            Phase::Ceiling => {
                report.ceiling = Some(
                    b3::ceiling(
                        stack,
                        args.recipients,
                        args.ceiling_publish_batch,
                        args.ceiling_consume_batch,
                    )
                    .await?,
                );
            }
            Phase::B5 => {
                report.b5 = Some(
                    b5::run(
                        stack,
                        &api,
                        &sim,
                        recipients,
                        args.upsert_rate,
                        args.upsert_secs,
                        Duration::from_secs(args.drain_secs),
                        sim_after,
                    )
                    .await?,
                );
            }
        }
    }
    stack.check_alive()
}

fn print_table(r: &Report) {
    let m = &r.machine;
    println!();
    println!(
        "machine: {} cores ({}), {} GiB RAM, kernel {}; load average at start {:.2} {:.2} {:.2}",
        m.nproc,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.load_average_at_start[0],
        m.load_average_at_start[1],
        m.load_average_at_start[2]
    );
    println!(
        "stack: 1 process per role (api, planner, relay, 3 connectors) + simulator; PostgreSQL, \
         Kafka mock cluster ({} partitions/topic, in loadgen), Redis",
        r.settings.partitions
    );
    println!();
    println!("| figure | value | target | machine CPU busy (cores) / ours / PostgreSQL / others |");
    println!("|---|---|---|---|");
    let cpu = |c: &machine::CpuUse| {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} (load {:.1})",
            c.machine_cores_busy,
            c.ours_cores,
            c.postgres_cores,
            c.others_cores,
            c.load_average_at_end[0]
        )
    };
    if let Some(i) = &r.import {
        println!(
            "| import (NDJSON, {} per request) | {} subjects in {:.1} s = {:.0}/s | — | {} |",
            i.chunk,
            i.subjects,
            i.seconds,
            i.per_second,
            cpu(&i.cpu)
        );
    }
    if let Some(b) = &r.b3 {
        println!(
            "| B3 pushes/s ({} recipients, launch → all at the provider) | {:.0}/s ({:.1} s) | ≥ 20,000/s | {} |",
            b.recipients,
            b.pushes_per_second,
            b.launch_to_all_at_provider_s,
            cpu(&b.cpu)
        );
        if let Some(p) = b.pushes_per_second_10_to_90 {
            println!("| B3 steady rate (10% → 90% at the provider) | {p:.0}/s | — | |");
        }
        let secs = |x: Option<f64>| x.map_or("not reached".to_string(), |v| format!("{v:.1} s"));
        println!(
            "| B3 launch → campaign counts all settled (polled every {} s) | {} | — | |",
            b.counts_poll_s,
            secs(b.launch_to_counts_settled_s)
        );
        println!(
            "| B3 launch → all pushes planned (polled every {} s) | {} | — | |",
            b.counts_poll_s,
            secs(b.launch_to_planned_s)
        );
        println!(
            "| B3 launch → all receipts recorded | {} | — | |",
            secs(b.launch_to_all_delivered_s)
        );
        println!(
            "| B3 at the provider | {:?}, {} duplicates, {} never arrived | exactly once | |",
            b.provider_messages, b.provider_duplicates, b.missing_at_provider
        );
        if let Some(k) = &b.kill {
            println!(
                "| B3 kill -9 of every role | at {:.1} s ({} at the provider), restarted in {:.1} s | nothing lost, nothing twice | |",
                k.at_s, k.at_provider, k.restart_s
            );
        }
        let pct = |p: &Option<b5::Percentiles>| {
            p.as_ref().map_or("—".to_string(), |p| {
                format!(
                    "p50 {} ms, p99 {} ms, max {} ms (n = {})",
                    p.p50_ms, p.p99_ms, p.max_ms, p.count
                )
            })
        };
        println!(
            "| API during B3: `GET /api/v1/campaigns/{{id}}` | {} | p99 ≤ 300 ms | |",
            pct(&b.api_get_campaign)
        );
        println!(
            "| API during B3: `PUT /api/v1/subjects/{{id}}` | {}; {} probe errors | p99 ≤ 300 ms | |",
            pct(&b.api_put_subject),
            b.api_errors
        );
        if let Some(why) = &b.incomplete {
            println!("| B3 INCOMPLETE | {why} | | |");
        }
    }
    if let Some(c) = &r.ceiling {
        println!(
            "| bus ceiling (KafkaBus produce + consume, {} msgs of {}+{} B) | {:.0} msg/s ({:.1} s; produce alone {:.1} s) | — | {} |",
            c.messages,
            c.key_bytes,
            c.payload_bytes,
            c.messages_per_second,
            c.seconds,
            c.produce_seconds,
            cpu(&c.cpu)
        );
    }
    if let Some(x) = r.b3_to_ceiling_ratio {
        println!("| B3 / ceiling | {x:.3} | — | |");
    }
    if let Some(b) = &r.b5 {
        match &b.latency {
            Some(l) => println!(
                "| B5 upsert → provider ({} upserts at {}/s for {} s; achieved {}/s) | p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms (n = {}) | p99 ≤ 1,000 ms | {} |",
                b.upserts, b.rate_per_second, b.seconds, b.achieved_rate, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count, cpu(&b.cpu)
            ),
            None => println!("| B5 upsert → provider | no message arrived | p99 ≤ 1,000 ms | {} |", cpu(&b.cpu)),
        }
        if let Some(p) = &b.put_latency {
            println!(
                "| B5 PUT request alone | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms | — | |",
                p.p50_ms, p.p99_ms, p.max_ms
            );
        }
        println!(
            "| B5 misses | {} not at the provider {} s after the last upsert; {} upserts refused or not planned | 0 | |",
            b.missing, b.drain_s, b.upsert_errors
        );
    }
    if let Some(e) = &r.error {
        println!();
        println!("ERROR: {e}");
    }
    println!();
    for (name, c) in [
        ("import", r.import.as_ref().map(|x| &x.cpu)),
        ("B3", r.b3.as_ref().map(|x| &x.cpu)),
        ("ceiling", r.ceiling.as_ref().map(|x| &x.cpu)),
        ("B5", r.b5.as_ref().map(|x| &x.cpu)),
    ] {
        if let Some(c) = c {
            let per: Vec<String> = c
                .by_process
                .iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect();
            println!(
                "CPU cores during {name} ({:.0} s): {}; PostgreSQL {:.2}, Redis {:.2}, others {:.2}",
                c.seconds,
                per.join(", "),
                c.postgres_cores,
                c.redis_cores,
                c.others_cores
            );
        }
    }
}
