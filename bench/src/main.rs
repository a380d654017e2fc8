//! `policy-push-bench`: the matching benchmarks of `docs/performance.md` on the shared
//! synthetic population, each figure beside its reference from the same run. A binary
//! of its own, so the product's binary carries neither the references' clients
//! (PostgreSQL, the `cel` crate) nor the benchmark code.
//!
//! - B1 audience: ten rules ([`rules`]) over N residents, our bulk plans against
//!   PostgreSQL (same rows by `COPY`, indexed, warm) and OpenFisca (numpy formulas);
//!   the three engines' counts are compared, not only their times.
//! - B2 incremental: one subject re-tagged and matched against 100 and 1,000 policies
//!   (compiled rule sets with a pre-filter), against our interpreter and the `cel`
//!   crate's generic interpreter.
//! - B4 memory: bytes per resident of the index.
//!
//! # Layout
//! - `main`: the command line (`policy-push-bench match …`) and the report.
//! - `rules`: the B1 rules in CEL and SQL; `data`: the population, fed to every engine;
//!   `reference`: PostgreSQL and OpenFisca runners; `incremental`: B2.
//! - `../openfisca_match.py`: the OpenFisca side, written to a temp dir and run.

mod data;
mod incremental;
mod reference;
mod rules;

use clap::{Args, Parser, Subcommand};
use domain::Rule;
use matcher::Plan;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "policy-push-bench",
    version,
    about = "Matching benchmarks of docs/performance.md (B1, B2, B4)."
)]
struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// B1 (audience vs PostgreSQL and OpenFisca), B2 (incremental) and B4 (memory).
    Match(MatchArgs),
}

#[derive(Args, Clone)]
struct MatchArgs {
    /// Residents in the population.
    #[arg(long, default_value_t = 1_000_000)]
    residents: u64,
    #[arg(long, default_value_t = population::DEFAULT_SEED)]
    seed: u64,
    /// Timed runs per rule (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// libpq-style connection string of the reference PostgreSQL.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    postgres: String,
    #[arg(long)]
    no_postgres: bool,
    #[arg(long)]
    no_openfisca: bool,
    /// Subjects sampled for B2.
    #[arg(long, default_value_t = 2_000)]
    b2_samples: u64,
    /// B1 only for the rules whose id starts with one of these (e.g. `--only r10`;
    /// repeatable); every rule when absent. For profiling one rule.
    #[arg(long)]
    only: Vec<String>,
    /// A rule (CEL) timed with our engine alone after B1, with its plan (repeatable;
    /// for finding what a clause costs).
    #[arg(long)]
    probe: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let BenchWhat::Match(m) = BenchArgs::parse().what;
    run_match(m)
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn run_match(a: MatchArgs) -> anyhow::Result<()> {
    let n = a.residents;
    eprintln!(
        "bench match: {n} residents, seed {}, {} runs per rule",
        a.seed, a.runs
    );
    let mut pg = if a.no_postgres {
        Err("skipped (--no-postgres)".to_string())
    } else {
        reference::Pg::connect(&a.postgres).map_err(|e| format!("not reachable: {e:?}"))
    };
    let rss_before = rss_bytes();
    let t = Instant::now();
    let made = {
        let progress = |done: u64| eprint!("\r  generated and indexed {done}/{n}");
        match pg.as_mut() {
            Ok(pg) => {
                let mut writer = pg.copy_in()?;
                let mut sink = |b: &[u8]| -> anyhow::Result<()> {
                    std::io::Write::write_all(&mut writer, b)?;
                    Ok(())
                };
                let made = data::make(n, a.seed, Some(&mut sink), !a.no_openfisca, &progress)?;
                writer.finish()?;
                made
            }
            Err(_) => data::make(n, a.seed, None, !a.no_openfisca, &progress)?,
        }
    };
    eprintln!(
        "\n  generate {:.1}s (parallel), index {:.1}s, total {:.1}s",
        made.generate_secs,
        made.index_secs,
        t.elapsed().as_secs_f64()
    );
    let index = made.index;
    let mem = index.heap_bytes();
    let rss_after = rss_bytes();

    // Tags: the bulk engine must find the members the per-subject rules gave.
    let today = data::today();
    let mut tag_mismatch = 0;
    for (name, rule) in data::tag_rules() {
        if Plan::compile(&rule).run(&index, today) != *index.tag(&name) {
            tag_mismatch += 1;
        }
    }

    if let Ok(p) = pg.as_mut() {
        eprintln!("  PostgreSQL: indexing and analysing {}", p.schema);
        if let Err(e) = p.prepare() {
            pg = Err(format!("prepare failed: {e:?}"));
        }
    }
    let openfisca = match (&made.columns, a.no_openfisca) {
        (_, true) => Err("skipped (--no-openfisca)".to_string()),
        (Some(cols), false) => {
            eprintln!("  OpenFisca: running the numpy formulas");
            reference::openfisca(cols, n, a.runs).map_err(|e| e.to_string())
        }
        (None, false) => Err("no columns".to_string()),
    };

    println!(
        "## B1 audience: {n} residents (seed {}), median of {} runs\n",
        a.seed, a.runs
    );
    println!("| rule | clauses | audience | ours ms | PostgreSQL ms | PG / ours | OpenFisca ms | OpenFisca / ours |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    let chosen = |id: &str| a.only.is_empty() || a.only.iter().any(|p| id.starts_with(p.as_str()));
    for r in rules::RULES.iter().filter(|r| chosen(r.id)) {
        let rule = Rule::parse(r.cel)?;
        let plan = Plan::compile(&rule);
        if plan.fallbacks() > 0 {
            notes.push(format!(
                "{}: {} part(s) per subject: {}",
                r.id,
                plan.fallbacks(),
                plan.description()
            ));
        }
        let mut count = 0;
        let mut times = Vec::new();
        for i in 0..=a.runs {
            let t = Instant::now();
            let members = plan.run(&index, today);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            count = members.len();
            if i > 0 {
                times.push(ms);
            }
        }
        let ours = median(&mut times);
        let pg_cell = match pg.as_mut() {
            Ok(p) => match p.run(&r.sql(), a.runs) {
                Ok(x) => {
                    if x.count != count {
                        notes.push(format!(
                            "{}: PostgreSQL counted {} (ours {count})",
                            r.id, x.count
                        ));
                    }
                    format!("{:.1} | {:.0}×", x.median_ms, x.median_ms / ours)
                }
                Err(e) => format!("error: {e} | –"),
            },
            Err(_) => "– | –".to_string(),
        };
        let of_cell = match &openfisca {
            Ok(m) => {
                let x = m[r.id];
                if x.count != count {
                    notes.push(format!(
                        "{}: OpenFisca counted {} (ours {count})",
                        r.id, x.count
                    ));
                }
                format!("{:.1} | {:.1}×", x.median_ms, x.median_ms / ours)
            }
            Err(_) => "– | –".to_string(),
        };
        println!(
            "| {} | {} | {count} | {ours:.2} | {pg_cell} | {of_cell} |",
            r.id, r.clauses
        );
    }
    for src in &a.probe {
        let plan = Plan::compile(&Rule::parse(src)?);
        let mut times = Vec::new();
        let mut count = 0;
        for i in 0..=a.runs {
            let t = Instant::now();
            count = plan.run(&index, today).len();
            if i > 0 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        println!(
            "| probe `{src}` | | {count} | {:.2} | | | | |\n\nplan: {}\n",
            median(&mut times),
            plan.description()
        );
    }
    println!();
    if let Err(e) = &pg {
        println!("- PostgreSQL: {e}");
    }
    if let Err(e) = &openfisca {
        println!("- OpenFisca: {e}");
    }
    for note in &notes {
        println!("- {note}");
    }
    if notes.is_empty() && pg.is_ok() && openfisca.is_ok() {
        println!("- every rule: the same audience count from all three engines");
    }
    println!(
        "- catalogue tags recomputed in bulk: {} of {} differ from the per-subject tags",
        tag_mismatch,
        data::tag_rules().len()
    );

    println!("\n## B2 incremental: re-tag one resident and match every active policy\n");
    println!("| active policies | compiled p50 µs | compiled p99 µs | interpreter p50 µs | interpreter p99 µs | generic CEL p50 µs | generic CEL p99 µs | evaluated/subject | matches/subject |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for policies in [100, 1000] {
        let b = incremental::run(policies, a.b2_samples, a.seed)?;
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} |",
            b.policies,
            b.ours.p50,
            b.ours.p99,
            b.interpreted.p50,
            b.interpreted.p99,
            b.reference.p50,
            b.reference.p99,
            b.candidates_per_subject,
            b.matches_per_subject
        );
        if b.compiled_mismatches > 0 {
            println!(
                "\n**{} of {} subjects: the compiled set and the interpreter differ**\n",
                b.compiled_mismatches, a.b2_samples
            );
        }
        if b.disagreements > 0 {
            println!(
                "\n({} of {} subjects matched a different set under the cel crate's semantics)\n",
                b.disagreements, a.b2_samples
            );
        }
    }
    let mut upserts = Vec::new();
    let mut index = index;
    let gen = population::Generator::new(population::PopulationConfig {
        residents: n,
        enterprises: 0,
        seed: a.seed + 1,
        today,
    });
    let tags = data::tag_rules();
    for i in 0..a.b2_samples.min(n) {
        let s = gen.resident(i * 104_729 % n);
        let subject_tags = data::tags_of(&tags, &s);
        let t = Instant::now();
        index.upsert(&s, &subject_tags);
        upserts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "\nindex upsert of one changed subject: p50 {:.1} µs (median of {})",
        median(&mut upserts),
        upserts.len()
    );

    println!("\n## B4 memory of the index at {n} residents\n");
    let per = |b: usize| b as f64 / n as f64;
    println!("| part | bytes | bytes / resident |");
    println!("|---|---:|---:|");
    println!(
        "| matching (bitmaps, columns) | {} | {:.1} |",
        mem.matching,
        per(mem.matching)
    );
    println!(
        "| keys (id → resident ID) | {} | {:.1} |",
        mem.keys,
        per(mem.keys)
    );
    println!(
        "| key map (resident ID → id) | {} | {:.1} |",
        mem.key_map,
        per(mem.key_map)
    );
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        println!(
            "\nprocess RSS grew by {:.1} bytes/resident while generating and indexing (includes allocator slack and the OpenFisca columns)",
            a.saturating_sub(b) as f64 / n as f64
        );
    }
    if let Ok(p) = pg {
        p.drop_schema()?;
    }
    Ok(())
}
