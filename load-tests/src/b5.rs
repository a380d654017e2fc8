//! B5 latency: a steady stream of subject upserts, each making a subject newly eligible
//! for a running continuous campaign, timed from just before the `PUT` until the provider
//! simulator's `received_at` for the message.

use crate::b3::bar;
use crate::client::{self, Api, Simulator};
use crate::machine::{CpuMeter, CpuUse};
use crate::stack::Stack;
use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of `v` (sorted here).
pub fn percentiles(v: &mut [f64]) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        (v[rank - 1] * 10.0).round() / 10.0
    };
    Some(Percentiles {
        count: v.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct B5Result {
    pub rate_per_second: f64,
    pub seconds: u64,
    pub upserts: u64,
    /// Upserts the API answered 200 with the campaign among `new_pushes`.
    pub upserts_planned: u64,
    pub upsert_errors: u64,
    /// Upsert to provider `received_at`.
    pub latency: Option<Percentiles>,
    /// Of the PUT request alone (client side).
    pub put_latency: Option<Percentiles>,
    /// Planned upserts whose message had not reached the provider `drain_s` after the
    /// last upsert.
    pub missing: u64,
    pub drain_s: u64,
    /// The upsert rate actually achieved.
    pub achieved_rate: f64,
    pub first_errors: Vec<String>,
    pub cpu: CpuUse,
}

struct Sent {
    at: chrono::DateTime<chrono::Utc>,
    put_ms: f64,
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    stack: &mut Stack,
    api: &Api,
    sim: &Simulator,
    recipients: u64,
    rate: f64,
    seconds: u64,
    drain: Duration,
    sim_after: i64,
) -> Result<B5Result> {
    let count = ((rate * seconds as f64).round() as u64).min(1_000_000);
    let pid = api
        .published_policy(
            "失业登记补贴 (load test, continuous)",
            "employment_status == 'unemployed'",
        )
        .await?;
    let cid = api
        .campaign(
            &pid,
            json!({"name": "loadgen B5", "mode": "continuous", "channels": ["sms"],
                   "templates": {"sms": "{{ policy.title }} {{ link }}"}}),
        )
        .await?;
    api.launch(&cid).await?;
    // Arrivals at the provider, read while the stream runs.
    let arrivals: Arc<Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (sim, arrivals, stop) = (sim.clone(), arrivals.clone(), stop.clone());
        tokio::spawn(async move {
            let mut after = sim_after;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match sim.page(after, 5000).await {
                    Ok((items, more)) => {
                        {
                            let mut a = arrivals.lock().expect("arrivals");
                            for m in &items {
                                after = after.max(m.seq);
                                if m.to.starts_with("137") {
                                    a.entry(m.to.clone()).or_insert(m.received_at);
                                }
                            }
                        }
                        if more {
                            continue;
                        }
                    }
                    Err(e) => eprintln!("loadgen: reading the simulator record: {e:#}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let sent: Arc<Mutex<HashMap<String, Sent>>> = Arc::new(Mutex::new(HashMap::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let pb = bar(count, "B5 upserts");
    let meter = CpuMeter::start(&stack.pids());
    let started = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::with_capacity(count as usize);
    for j in 0..count {
        tokio::time::sleep_until(started + period.mul_f64(j as f64)).await;
        let (api, sent, errors, cid) = (api.clone(), sent.clone(), errors.clone(), cid.clone());
        tasks.push(tokio::spawn(async move {
            let body = client::b5_subject(recipients, j, "unemployed");
            let id = body["id"].as_str().unwrap_or_default().to_string();
            let at = chrono::Utc::now();
            let t = Instant::now();
            let r = api.put(&format!("/api/v1/subjects/{id}"), &body).await;
            let put_ms = t.elapsed().as_secs_f64() * 1000.0;
            let planned = matches!(&r, Ok((200, v)) if v["new_pushes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c == cid.as_str())));
            if planned {
                sent.lock()
                    .expect("sent")
                    .insert(client::b5_mobile(j), Sent { at, put_ms });
            } else {
                let mut e = errors.lock().expect("errors");
                if e.len() < 1000 {
                    e.push(match r {
                        Ok((st, v)) => format!("PUT answered {st}: {v}"),
                        Err(err) => format!("PUT failed: {err:#}"),
                    });
                }
            }
        }));
        pb.inc(1);
        if j % 100 == 99 {
            stack.check_alive()?;
        }
    }
    let stream_seconds = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    pb.finish();
    // Wait for the last messages (bounded).
    let planned = sent.lock().expect("sent").len() as u64;
    let drain_until = Instant::now() + drain;
    loop {
        let arrived = {
            let a = arrivals.lock().expect("arrivals");
            let s = sent.lock().expect("sent");
            s.keys().filter(|k| a.contains_key(*k)).count() as u64
        };
        if arrived >= planned || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu = meter.stop();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.await?;
    let a = arrivals.lock().expect("arrivals");
    let s = sent.lock().expect("sent");
    let mut lat = Vec::with_capacity(s.len());
    let mut put = Vec::with_capacity(s.len());
    let mut missing = 0;
    for (mobile, x) in s.iter() {
        put.push(x.put_ms);
        match a.get(mobile) {
            Some(r) => lat.push((*r - x.at).num_microseconds().unwrap_or(0) as f64 / 1000.0),
            None => missing += 1,
        }
    }
    let errors = errors.lock().expect("errors");
    if planned == 0 {
        bail!(
            "no upsert made a push; first errors: {:?}",
            &errors[..errors.len().min(3)]
        );
    }
    Ok(B5Result {
        rate_per_second: rate,
        seconds,
        upserts: count,
        upserts_planned: planned,
        upsert_errors: errors.len() as u64,
        latency: percentiles(&mut lat),
        put_latency: percentiles(&mut put),
        missing,
        drain_s: drain.as_secs(),
        achieved_rate: ((count as f64 / stream_seconds.max(1e-3)) * 10.0).round() / 10.0,
        first_errors: errors.iter().take(5).cloned().collect(),
        cpu,
    })
}
