//! B3 fan-out: one campaign of N recipients end to end, and the raw bus ceiling beside it.

use crate::b5::{percentiles, Percentiles};
use crate::client::{self, Api, Simulator};
use crate::machine::{CpuMeter, CpuUse};
use crate::stack::Stack;
use anyhow::{bail, Context, Result};
use bus::Bus;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("template"),
    );
    b.set_message(what.to_string());
    b
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    pub subjects: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub chunk: usize,
    pub cpu: CpuUse,
}

/// Imports the B3 recipients and the B5 subjects (not yet eligible) through the API.
pub async fn import(
    stack: &Stack,
    api: &Api,
    recipients: u64,
    b5_subjects: u64,
    chunk: usize,
) -> Result<ImportResult> {
    let total = recipients + b5_subjects;
    let pb = bar(total, "import");
    let meter = CpuMeter::start(&stack.pids());
    let started = Instant::now();
    let mut i = 0u64;
    while i < total {
        let end = (i + chunk as u64).min(total);
        let mut body = String::with_capacity(chunk * 260);
        for k in i..end {
            let v = if k < recipients {
                client::b3_subject(k)
            } else {
                client::b5_subject(recipients, k - recipients, "employed")
            };
            body.push_str(&v.to_string());
            body.push('\n');
        }
        let accepted = api.import(body).await?;
        if accepted != end - i {
            bail!("import accepted {accepted} of {} subjects", end - i);
        }
        pb.inc(end - i);
        i = end;
    }
    pb.finish();
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImportResult {
        subjects: total,
        seconds: round3(seconds),
        per_second: (total as f64 / seconds).round(),
        chunk,
        cpu: meter.stop(),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct B3Result {
    pub recipients: u64,
    /// Pushes that never reached the provider (the run gave up on them: `incomplete`).
    pub missing_at_provider: u64,
    /// Why the campaign did not complete, when it did not (the figures then cover the
    /// pushes that arrived).
    pub incomplete: Option<String>,
    /// Launch request until every one of the N pushes is in the provider simulator's record
    /// (read incrementally every 250 ms; the time is the last message's `received_at`;
    /// when `incomplete`, the last that arrived).
    pub launch_to_all_at_provider_s: f64,
    /// Pushes at the provider / `launch_to_all_at_provider_s`: the B3 figure.
    pub pushes_per_second: f64,
    /// Sending rate between 10% and 90% of the pushes at the provider (the steady state,
    /// without the planning at the start and the tail).
    pub pushes_per_second_10_to_90: Option<f64>,
    /// (seconds since launch, messages at the provider), sampled.
    pub progress: Vec<(f64, u64)>,
    /// Launch until the campaign counts (`GET /api/v1/campaigns/{id}`, polled every
    /// `counts_poll_s`) show no push queued or sending and sent + delivered + failed = N.
    pub launch_to_counts_settled_s: Option<f64>,
    /// Launch until the campaign counts every push created (`eligible` = N), to within
    /// `counts_poll_s`.
    pub launch_to_planned_s: Option<f64>,
    /// Launch until every delivery receipt was recorded (`delivered` = N), if within the wait.
    pub launch_to_all_delivered_s: Option<f64>,
    pub final_counts: Value,
    /// Messages in the simulator record of this campaign, by channel.
    pub provider_messages: HashMap<String, u64>,
    /// Push refs received more than once by the simulator.
    pub provider_duplicates: u64,
    /// With `--b3-kill-at`: when every role process (planner, relay, connectors) was
    /// killed with `kill -9` and started again, and how long the restart took.
    pub kill: Option<KillReport>,
    pub counts_poll_s: f64,
    /// `GET /api/v1/campaigns/{id}` of this campaign, timed every 200 ms while it ran.
    pub api_get_campaign: Option<Percentiles>,
    /// `PUT /api/v1/subjects/{id}` of probe subjects no campaign matches, timed every
    /// 200 ms while the campaign ran.
    pub api_put_subject: Option<Percentiles>,
    /// Probe requests that failed or did not answer 200.
    pub api_errors: u64,
    pub cpu: CpuUse,
}

/// How B3 runs.
#[derive(Debug, Clone, Copy)]
pub struct B3Settings {
    pub recipients: u64,
    /// Give up after this long.
    pub timeout: Duration,
    /// Give up when no push arrives at the provider for this long.
    pub stall: Duration,
    /// How often the campaign counts are read.
    pub counts_poll: Duration,
    /// `kill -9` every role when this fraction of the pushes is at the provider.
    pub kill_at: Option<f64>,
}

/// One `kill -9` of every role process during B3.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    /// Seconds after the launch.
    pub at_s: f64,
    /// Pushes at the provider when the roles were killed.
    pub at_provider: u64,
    pub pids_killed: Vec<u32>,
    /// Until every role answered `/readyz` again.
    pub restart_s: f64,
}

/// Latencies of the API probe (ms), and its failures.
#[derive(Default)]
struct Probe {
    get_campaign: Vec<f64>,
    put_subject: Vec<f64>,
    errors: u64,
}

/// Times the two calls an operator and an upstream system make while a campaign runs:
/// the campaign's status, and a subject upsert (probe subjects numbered after every other
/// subject of the run, in a status no campaign of the run matches), one of each every
/// 200 ms until `stop`.
fn probe_api(
    api: &Api,
    cid: &str,
    recipients: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Probe> {
    let (api, cid) = (api.clone(), cid.to_string());
    tokio::spawn(async move {
        let mut probe = Probe::default();
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let tick = Instant::now();
            let t = Instant::now();
            match api.get(&format!("/api/v1/campaigns/{cid}")).await {
                Ok((200, _)) => probe.get_campaign.push(t.elapsed().as_secs_f64() * 1000.0),
                _ => probe.errors += 1,
            }
            let body = json!({
                "id": client::resident_id(recipients + 10_000_000 + k % 1000),
                "kind": "person", "name": "探针",
                "mobile": format!("136{:08}", k % 1000),
                "attributes": {"employment_status": "employed", "probe": k},
            });
            let id = body["id"].as_str().unwrap_or_default().to_string();
            let t = Instant::now();
            match api.put(&format!("/api/v1/subjects/{id}"), &body).await {
                Ok((200, _)) => probe.put_subject.push(t.elapsed().as_secs_f64() * 1000.0),
                _ => probe.errors += 1,
            }
            k += 1;
            tokio::time::sleep(Duration::from_millis(200).saturating_sub(tick.elapsed())).await;
        }
        probe
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Publishes a policy for the imported recipients, launches a one-shot campaign on WeChat
/// then SMS and waits until every push is at the provider and the campaign counts agree.
/// Progress is read from the simulator's record: the campaign status endpoint computes
/// per-district report cells over every push, too heavy to poll often.
pub async fn campaign(
    stack: &mut Stack,
    api: &Api,
    sim: &Simulator,
    settings: &B3Settings,
) -> Result<(B3Result, i64)> {
    let B3Settings {
        recipients,
        timeout,
        stall,
        counts_poll,
        kill_at,
    } = *settings;
    let pid = api
        .published_policy(
            "失业补助 (load test)",
            "employment_status == 'registered_unemployed'",
        )
        .await?;
    let cid = api
        .campaign(
            &pid,
            json!({"name": "loadgen B3", "channels": ["wechat", "sms"],
                   "templates": {"wechat": "thing1: {{ policy.title }}",
                                 "sms": "{{ policy.title }} {{ link }}"}}),
        )
        .await?;
    let pb = bar(recipients, "B3 at provider");
    let meter = CpuMeter::start(&stack.pids());
    let launched_wall = chrono::Utc::now();
    let launched = Instant::now();
    api.launch(&cid).await?;
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe = probe_api(api, &cid, recipients, stop_probe.clone());
    let mut planned = None;
    let mut settled_at = None;
    let mut counts = Value::Null;
    let mut last_counts_poll: Option<Instant> = None;
    let mut progress: Vec<(f64, u64)> = Vec::new();
    let mut after = 0i64;
    let mut by_channel: HashMap<String, u64> = HashMap::new();
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(recipients as usize);
    let mut duplicates = 0u64;
    let mut last_arrival: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut last_progress = (0u64, Instant::now());
    let mut incomplete = None;
    let mut kill: Option<KillReport> = None;
    loop {
        // New messages at the provider.
        loop {
            let (items, more) = sim.page(after, 5000).await?;
            for m in &items {
                after = after.max(m.seq);
                *by_channel.entry(m.channel.clone()).or_default() += 1;
                if !seen.insert(m.push_ref.clone()) {
                    duplicates += 1;
                }
                last_arrival = Some(last_arrival.map_or(m.received_at, |l| l.max(m.received_at)));
            }
            if !more || items.is_empty() {
                break;
            }
        }
        let at_provider = seen.len() as u64;
        pb.set_position(at_provider);
        if let Some(fraction) = kill_at.filter(|_| kill.is_none()) {
            if at_provider as f64 >= fraction * recipients as f64 {
                let at_s = launched.elapsed().as_secs_f64();
                let t = Instant::now();
                let pids_killed = tokio::task::block_in_place(|| stack.kill_and_restart_roles())?;
                pb.println(format!(
                    "kill -9 of every role at {at_provider} pushes at the provider; restarted in {:.1} s",
                    t.elapsed().as_secs_f64()
                ));
                kill = Some(KillReport {
                    at_s: round3(at_s),
                    at_provider,
                    pids_killed,
                    restart_s: round3(t.elapsed().as_secs_f64()),
                });
            }
        }
        let t = launched.elapsed().as_secs_f64();
        if progress.last().is_none_or(|(_, n)| *n != at_provider) {
            progress.push((round3(t), at_provider));
        }
        let all_there = at_provider >= recipients;
        if last_counts_poll.is_none_or(|p| p.elapsed() >= counts_poll) || all_there {
            last_counts_poll = Some(Instant::now());
            let c = api.campaign_state(&cid).await?;
            let n = |k: &str| c["counts"][k].as_u64().unwrap_or(0);
            let t = launched.elapsed().as_secs_f64();
            if planned.is_none() && n("eligible") >= recipients {
                planned = Some(t);
            }
            if n("queued") == 0 && n("sent") + n("delivered") + n("failed") >= recipients {
                settled_at = Some(t);
            }
            if c["status"] == "completed" && n("queued") == 0 && n("eligible") < recipients {
                bail!("campaign completed with fewer pushes than recipients: {c}");
            }
            pb.set_message(format!(
                "B3 {} q{}",
                c["status"].as_str().unwrap_or("?"),
                n("queued")
            ));
            counts = c;
        }
        if all_there && settled_at.is_some() {
            break;
        }
        if at_provider > last_progress.0 {
            last_progress = (at_provider, Instant::now());
        }
        if last_progress.1.elapsed() > stall {
            stack.check_alive()?;
            incomplete = Some(format!(
                "no new message at the provider for {stall:?}: {at_provider} of {recipients} arrived; campaign counts {}",
                counts["counts"]
            ));
            break;
        }
        if launched.elapsed() > timeout {
            incomplete = Some(format!(
                "not sent within {timeout:?}: {at_provider} of {recipients} arrived; campaign counts {}",
                counts["counts"]
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pb.finish();
    let cpu = meter.stop();
    stop_probe.store(true, Ordering::Relaxed);
    let mut probe = probe.await?;
    let all_at_provider = last_arrival
        .map(|l| (l - launched_wall).num_microseconds().unwrap_or(0) as f64 / 1e6)
        .unwrap_or_else(|| launched.elapsed().as_secs_f64())
        .max(1e-3);
    let crossing = |q: f64| {
        progress
            .iter()
            .find(|(_, n)| *n as f64 >= q * recipients as f64)
            .copied()
    };
    let steady = match (crossing(0.1), crossing(0.9)) {
        (Some((t1, n1)), Some((t2, n2))) if t2 > t1 => Some(((n2 - n1) as f64 / (t2 - t1)).round()),
        _ => None,
    };
    // Receipts: wait a little for the API to record every delivery.
    let mut delivered = None;
    let wait_until =
        Instant::now() + Duration::from_secs(if incomplete.is_some() { 0 } else { 60 });
    while Instant::now() < wait_until {
        tokio::time::sleep(counts_poll).await;
        let c = api.campaign_state(&cid).await?;
        let done = c["counts"]["delivered"].as_u64().unwrap_or(0) >= recipients;
        counts = c;
        if done {
            delivered = Some(launched.elapsed().as_secs_f64());
            break;
        }
    }
    // Downsample the progress for the result file.
    let step = (progress.len() / 200).max(1);
    let progress: Vec<(f64, u64)> = progress.into_iter().step_by(step).collect();
    Ok((
        B3Result {
            recipients,
            launch_to_all_at_provider_s: round3(all_at_provider),
            pushes_per_second: (seen.len() as f64 / all_at_provider).round(),
            missing_at_provider: recipients.saturating_sub(seen.len() as u64),
            incomplete,
            pushes_per_second_10_to_90: steady,
            progress,
            launch_to_counts_settled_s: settled_at.map(round3),
            launch_to_planned_s: planned.map(round3),
            launch_to_all_delivered_s: delivered.map(round3),
            final_counts: counts["counts"].clone(),
            provider_messages: by_channel,
            provider_duplicates: duplicates,
            kill,
            counts_poll_s: counts_poll.as_secs_f64(),
            api_get_campaign: percentiles(&mut probe.get_campaign),
            api_put_subject: percentiles(&mut probe.put_subject),
            api_errors: probe.errors,
            cpu,
        },
        after,
    ))
}

#[derive(Debug, Clone, Serialize)]
pub struct CeilingResult {
    pub messages: u64,
    pub payload_bytes: usize,
    pub key_bytes: usize,
    pub partitions: i32,
    pub publish_batch: usize,
    pub consume_batch: usize,
    /// First publish until the consumer group has read (and committed) all N.
    pub seconds: f64,
    pub messages_per_second: f64,
    /// First publish until the last publish was acknowledged.
    pub produce_seconds: f64,
    pub cpu: CpuUse,
}

/// Produces N PushTask-sized messages through `bus::kafka::KafkaBus` on the stack's mock
/// cluster (one topic with the same partitions as the product's) while one consumer group
/// reads and acknowledges them all.
pub async fn ceiling(
    stack: &Stack,
    n: u64,
    publish_batch: usize,
    consume_batch: usize,
) -> Result<CeilingResult> {
    const TOPIC: &str = "loadgen.ceiling";
    stack.backends.create_topic(TOPIC)?;
    let bus = bus::kafka::KafkaBus::new(stack.backends.kafka_config())?;
    // The messages of a campaign: a PushTask keyed by the subject id.
    let campaign_id = "c_loadgen0ceil".to_string();
    let messages: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let task = bus::topics::PushTask {
                push_id: format!("p{i:014}"),
                campaign_id: campaign_id.clone(),
            };
            (client::resident_id(i), task.encode())
        })
        .collect();
    let payload_bytes = messages.first().map_or(0, |m| m.1.len());
    let key_bytes = messages.first().map_or(0, |m| m.0.len());
    let mut sub = bus.subscribe(TOPIC, "loadgen-ceiling").await?;
    // Warm up: the group has joined and is assigned once a first message comes through.
    bus.publish(TOPIC, vec![("warmup".into(), b"warmup".to_vec())])
        .await?;
    let warm = tokio::time::timeout(Duration::from_secs(60), sub.next_batch(1))
        .await
        .context("the ceiling consumer got nothing within 60 s")?
        .context("bus closed")?;
    sub.ack(&warm).await?;
    let pb = bar(n, "ceiling");
    let meter = CpuMeter::start(&stack.pids());
    let started = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut got = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1200);
        while got < n {
            let batch = tokio::time::timeout_at(deadline, sub.next_batch(consume_batch))
                .await
                .context("ceiling consumer timed out")?
                .context("bus closed")?;
            got += batch.len() as u64;
            sub.ack(&batch).await?;
        }
        anyhow::Ok(Instant::now())
    });
    let mut it = messages.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<_> = it.by_ref().take(publish_batch).collect();
        let len = chunk.len() as u64;
        bus.publish(TOPIC, chunk).await?;
        pb.inc(len);
    }
    let produce_seconds = started.elapsed().as_secs_f64();
    let done = consumer.await??;
    pb.finish();
    let seconds = (done - started).as_secs_f64();
    Ok(CeilingResult {
        messages: n,
        payload_bytes,
        key_bytes,
        partitions: stack.backends.partitions,
        publish_batch,
        consume_batch,
        seconds: round3(seconds),
        messages_per_second: (n as f64 / seconds).round(),
        produce_seconds: round3(produce_seconds),
        cpu: meter.stop(),
    })
}
