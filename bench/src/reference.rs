//! The references of B1, on the same rows: PostgreSQL (the equivalent SQL, indexed,
//! warm cache) and OpenFisca (the same rules as vectorised numpy formulas, run by
//! `bench/openfisca_match.py`).

use super::data::{Columns, EDUCATION, HUKOU, PG_TABLE, STATUS};
use super::rules::{RULES, TODAY};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

/// A reference engine's answer for one rule.
#[derive(Debug, Clone, Copy)]
pub struct RefResult {
    pub median_ms: f64,
    pub count: u64,
}

/// A PostgreSQL connection with the benchmark's own schema (dropped on [`Pg::drop_schema`]).
pub struct Pg {
    client: postgres::Client,
    pub schema: String,
}

impl Pg {
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let schema = format!("bench_{}", std::process::id());
        client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE UNLOGGED TABLE {schema}.residents ({PG_TABLE});"
        ))?;
        Ok(Self { client, schema })
    }

    /// A `COPY … FROM STDIN` writer for the CSV rows.
    pub fn copy_in(&mut self) -> anyhow::Result<postgres::CopyInWriter<'_>> {
        Ok(self.client.copy_in(&format!(
            "COPY {}.residents FROM STDIN (FORMAT csv)",
            self.schema
        ))?)
    }

    /// Indexes the columns rules filter on, gathers statistics and warms the cache.
    pub fn prepare(&mut self) -> anyhow::Result<()> {
        let s = &self.schema;
        self.client.batch_execute(&format!(
            "CREATE INDEX ON {s}.residents (employment_status); \
             CREATE INDEX ON {s}.residents (district); \
             CREATE INDEX ON {s}.residents (birth); \
             CREATE INDEX ON {s}.residents (hukou, employment_status); \
             CREATE INDEX ON {s}.residents USING gin (tags); \
             CREATE INDEX ON {s}.residents USING gin (skills_certificates);"
        ))?;
        self.client
            .batch_execute(&format!("VACUUM ANALYZE {s}.residents"))?;
        self.client
            .query_one(&format!("SELECT count(*) FROM {s}.residents"), &[])?;
        Ok(())
    }

    /// Median milliseconds of `SELECT count(*) … WHERE <rule>` after one warm-up run.
    pub fn run(&mut self, sql_where: &str, runs: usize) -> anyhow::Result<RefResult> {
        let q = format!(
            "SELECT count(*) FROM {}.residents WHERE {sql_where}",
            self.schema
        );
        let mut count = 0;
        let mut times = Vec::new();
        for i in 0..=runs {
            let t = Instant::now();
            let row = self.client.query_one(&q, &[])?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            count = row.get::<_, i64>(0) as u64;
            if i > 0 {
                times.push(ms);
            }
        }
        Ok(RefResult {
            median_ms: super::median(&mut times),
            count,
        })
    }

    pub fn drop_schema(mut self) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))?;
        Ok(())
    }
}

const SCRIPT: &str = include_str!("../openfisca_match.py");

/// Writes the columns and the script to a temporary directory and runs OpenFisca on
/// them; `Err` says why it could not run (e.g. `openfisca-core` not installed).
pub fn openfisca(
    cols: &Columns,
    n: u64,
    runs: usize,
) -> anyhow::Result<BTreeMap<String, RefResult>> {
    let dir = std::env::temp_dir().join(format!("policy-push-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_openfisca(&dir, cols, n, runs);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_openfisca(
    dir: &std::path::Path,
    cols: &Columns,
    n: u64,
    runs: usize,
) -> anyhow::Result<BTreeMap<String, RefResult>> {
    let mut manifest = serde_json::json!({
        "n": n, "today": TODAY, "runs": runs,
        "codes": {
            "district": population::DISTRICTS.map(|d| d.name),
            "hukou": HUKOU, "education": EDUCATION, "employment_status": STATUS,
        },
        "u8": [], "i32": [], "tags": [],
        "rules": RULES.iter().map(|r| r.id).collect::<Vec<_>>(),
    });
    for (name, col) in &cols.u8s {
        std::fs::write(dir.join(format!("{name}.u8")), col)?;
        manifest["u8"]
            .as_array_mut()
            .expect("array")
            .push((*name).into());
    }
    for (name, col) in &cols.i32s {
        let bytes: Vec<u8> = col.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{name}.i32")), bytes)?;
        manifest["i32"]
            .as_array_mut()
            .expect("array")
            .push((*name).into());
    }
    for (name, col) in &cols.tags {
        std::fs::write(dir.join(format!("tag_{name}.u8")), col)?;
        manifest["tags"]
            .as_array_mut()
            .expect("array")
            .push(name.clone().into());
    }
    std::fs::write(dir.join("manifest.json"), manifest.to_string())?;
    let script = dir.join("openfisca_match.py");
    std::fs::File::create(&script)?.write_all(SCRIPT.as_bytes())?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(dir)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        anyhow::bail!("{python} openfisca_match.py failed: {last}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut results = BTreeMap::new();
    for r in RULES {
        let x = &v["rules"][r.id];
        results.insert(
            r.id.to_string(),
            RefResult {
                median_ms: x["median_ms"].as_f64().unwrap_or(f64::NAN),
                count: x["count"].as_u64().unwrap_or(0),
            },
        );
    }
    Ok(results)
}
