//! The machine and its load: cores, memory, load average, and per phase how much CPU the
//! whole machine used against how much of it was this load test's processes (the rest is
//! other users of the shared machine, plus PostgreSQL and Redis, reported apart).

use serde::Serialize;
use std::time::Instant;

/// Linux `USER_HZ` (clock ticks in `/proc/*/stat`): 100 on every mainstream build.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    pub nproc: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
    pub load_average_at_start: [f64; 3],
}

pub fn info() -> MachineInfo {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    MachineInfo {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu_model,
        kernel,
        load_average_at_start: load_average(),
    }
}

pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// (busy, total) jiffies of all CPUs from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime of a process, in ticks.
fn process_ticks(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command may contain spaces: fields start after the last ')'.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Pids whose `comm` starts with `name` (PostgreSQL backends, redis-server).
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().starts_with(name))
                .unwrap_or(false)
        })
        .collect()
}

/// CPU use over one phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    /// Cores busy on average, whole machine (of `nproc`).
    pub machine_cores_busy: f64,
    /// Cores used by the load generator (mock Kafka cluster, clients) and the stack's
    /// processes.
    pub ours_cores: f64,
    /// Of which, per process name.
    pub by_process: Vec<(String, f64)>,
    /// Cores used by every PostgreSQL and Redis server process (all databases: other
    /// users' tests included).
    pub postgres_cores: f64,
    pub redis_cores: f64,
    /// What is left: other users of the machine.
    pub others_cores: f64,
    pub load_average_at_end: [f64; 3],
}

/// A CPU meter started at the beginning of a phase.
pub struct CpuMeter {
    at: Instant,
    machine: (u64, u64),
    ours: Vec<(String, u32, u64)>,
    postgres: Vec<(u32, u64)>,
    redis: Vec<(u32, u64)>,
}

impl CpuMeter {
    pub fn start(pids: &[(String, u32)]) -> Self {
        let mut ours = vec![(
            "loadgen (mock Kafka, clients)".to_string(),
            std::process::id(),
            0,
        )];
        ours.extend(pids.iter().map(|(n, p)| (n.clone(), *p, 0)));
        for o in &mut ours {
            o.2 = process_ticks(o.1);
        }
        let snap = |name| {
            pids_named(name)
                .into_iter()
                .map(|p| (p, process_ticks(p)))
                .collect()
        };
        CpuMeter {
            at: Instant::now(),
            machine: machine_ticks(),
            ours,
            postgres: snap("postgres"),
            redis: snap("redis-server"),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let seconds = self.at.elapsed().as_secs_f64().max(1e-3);
        let (busy, total) = machine_ticks();
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let d_total = total.saturating_sub(self.machine.1).max(1) as f64;
        let d_busy = busy.saturating_sub(self.machine.0) as f64;
        let machine_cores_busy = d_busy / d_total * nproc;
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds;
        let by_process: Vec<(String, f64)> = self
            .ours
            .iter()
            .map(|(n, p, t0)| (n.clone(), cores(process_ticks(*p).saturating_sub(*t0))))
            .collect();
        let ours_cores: f64 = by_process.iter().map(|(_, c)| c).sum();
        // Server processes that started during the phase count from zero.
        let delta = |before: &[(u32, u64)], name| -> f64 {
            pids_named(name)
                .into_iter()
                .map(|p| {
                    let t0 = before
                        .iter()
                        .find(|(q, _)| *q == p)
                        .map(|(_, t)| *t)
                        .unwrap_or(0);
                    cores(process_ticks(p).saturating_sub(t0))
                })
                .sum()
        };
        let postgres_cores = delta(&self.postgres, "postgres");
        let redis_cores = delta(&self.redis, "redis-server");
        let round = |x: f64| (x * 100.0).round() / 100.0;
        CpuUse {
            seconds: round(seconds),
            machine_cores_busy: round(machine_cores_busy),
            ours_cores: round(ours_cores),
            by_process: by_process.into_iter().map(|(n, c)| (n, round(c))).collect(),
            postgres_cores: round(postgres_cores),
            redis_cores: round(redis_cores),
            others_cores: round(
                (machine_cores_busy - ours_cores - postgres_cores - redis_cores).max(0.0),
            ),
            load_average_at_end: load_average(),
        }
    }
}
