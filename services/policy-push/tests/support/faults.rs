//! The fault harness: backends a test owns outright, so it can take them away in the
//! middle of a campaign without disturbing any other test.
//!
//! - [`PrivatePostgres`]: a PostgreSQL cluster of its own (`initdb` into a temp dir with
//!   the server binaries in `/usr/lib/postgresql/<version>/bin`, its own port), stopped,
//!   killed, restarted, or paused with SIGSTOP (the postmaster and every backend).
//! - [`PrivateRedis`]: a `redis-server` of its own (no persistence), stopped, restarted
//!   (empty, as a restart without persistence is), flushed, or paused.
//! - [`KafkaFaults`]: the mock cluster's broker-down / broker-up and leader-change
//!   injection for the topics of one test.
//! - [`pause_process`] / [`resume_process`]: SIGSTOP / SIGCONT of any process (a role).
//!
//! A missing fault tool fails the test loudly (CI must not skip a fault silently).
//! CI runs as root and `initdb` refuses root: there the cluster's directory is given to
//! the `postgres` user and the server commands run through `runuser -u postgres`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("fault harness: cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "fault harness: {what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`, ...) to the given processes.
fn signal(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let mut cmd = Command::new("kill");
    cmd.arg(format!("-{signal}"));
    for p in pids {
        cmd.arg(p.to_string());
    }
    run(&mut cmd, &format!("kill -{signal}"));
}

/// SIGSTOP: the process is frozen (its sockets stay open, its timers do not run).
pub fn pause_process(pid: u32) {
    signal(&[pid], "STOP");
}

/// SIGCONT after [`pause_process`].
pub fn resume_process(pid: u32) {
    signal(&[pid], "CONT");
}

/// The direct children of `pid` (from `/proc`).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Waits until something accepts TCP connections on `port`, or panics.
fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("fault harness: {what} did not listen on port {port}");
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`, or a loud panic.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "fault harness: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin \
             (install the postgresql package); the outage tests need them"
        )
    })
}

/// A PostgreSQL cluster owned by one test: its own data dir, port and socket dir.
pub struct PrivatePostgres {
    /// Holds the data dir (removed on drop, after the server stopped).
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    /// Root cannot run the server: commands go through `runuser -u postgres`.
    as_postgres: bool,
}

impl PrivatePostgres {
    /// `initdb` (trust authentication, user `postgres`), then starts the server.
    pub fn start() -> Self {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir for PostgreSQL");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(dir.path()),
                "chown the PostgreSQL dir to postgres",
            );
        }
        let pg = Self {
            dir,
            port: free_port(),
            bin,
            as_postgres,
        };
        let data = pg.data_dir();
        run(
            pg.command("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        pg.start_again();
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The URL of the `postgres` database as the superuser (to create test databases).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server on its port and waits until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off \
             -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"]),
            "pg_ctl start",
        );
        wait_for_port(self.port, "PostgreSQL");
    }

    /// A clean stop (`-m fast`: sessions are ended, then the server exits).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// A crash (`-m immediate`: no shutdown checkpoint; recovery at the next start).
    pub fn kill(&self) {
        self.pg_ctl_stop("immediate");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-m", mode, "stop"]),
            "pg_ctl stop",
        );
    }

    /// The postmaster and its children (every backend, the checkpointer, ...); `None`
    /// when the server is not running.
    fn processes(&self) -> Option<Vec<u32>> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        let mut all = vec![pid];
        all.extend(children_of(pid));
        Some(all)
    }

    /// SIGSTOP of the whole server: connections stay open and hang (a stalled host).
    pub fn pause(&self) -> Vec<u32> {
        let pids = self
            .processes()
            .expect("fault harness: PostgreSQL is not running");
        signal(&pids, "STOP");
        pids
    }

    /// SIGCONT of what [`Self::pause`] stopped.
    pub fn resume(&self, pids: &[u32]) {
        signal(pids, "CONT");
    }

    /// The server's log (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(pids) = self.processes() {
            // A paused server cannot stop: wake it first.
            let _ = Command::new("kill")
                .arg("-CONT")
                .args(pids.iter().map(u32::to_string))
                .output();
        }
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A `redis-server` owned by one test, without persistence: a restart comes back empty.
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let r = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir for Redis"),
            child: Mutex::new(None),
        };
        r.start_again();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the (stopped) server on its port, empty.
    pub fn start_again(&self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("fault harness: cannot start redis-server (is it installed?): {e}")
            });
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.command("PING").as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "fault harness: Redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL: no persistence, nothing to save).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop, then start empty on the same port: a restart without persistence.
    pub fn restart_empty(&self) {
        self.stop();
        self.start_again();
    }

    /// `FLUSHALL`: every key gone, the server up.
    pub fn flush(&self) {
        assert_eq!(self.command("FLUSHALL").as_deref(), Some("+OK"));
    }

    /// How many keys the server holds (`DBSIZE`).
    pub fn keys(&self) -> u64 {
        self.command("DBSIZE")
            .and_then(|r| r.strip_prefix(':').and_then(|n| n.parse().ok()))
            .expect("DBSIZE")
    }

    fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap()
            .as_ref()
            .expect("Redis running")
            .id()
    }

    /// SIGSTOP: connections hang.
    pub fn pause(&self) {
        pause_process(self.pid());
    }

    pub fn resume(&self) {
        resume_process(self.pid());
    }

    /// One inline command; the first line of the answer (`None`: not reachable).
    fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        text.lines().next().map(str::to_string)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .output();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Fault injection on the mock Kafka cluster, for the topics under one prefix.
pub struct KafkaFaults<'a> {
    pub cluster:
        &'a rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub topic_prefix: &'a str,
    pub partitions: i32,
}

impl KafkaFaults<'_> {
    /// The broker stops answering (its connections are closed; requests fail).
    pub fn broker_down(&self, broker: i32) {
        self.cluster.broker_down(broker).expect("broker down");
    }

    pub fn broker_up(&self, broker: i32) {
        self.cluster.broker_up(broker).expect("broker up");
    }

    /// Every partition of every topic gets `broker` as its leader (a leader change for
    /// the clients, which must find the new leader and carry on).
    pub fn move_leaders(&self, broker: i32) {
        for t in bus::topics::all() {
            let topic = format!("{}{t}", self.topic_prefix);
            for p in 0..self.partitions {
                self.cluster
                    .partition_leader(&topic, p, Some(broker))
                    .expect("set the partition leader");
            }
        }
    }
}
