//! Writes a synthetic population as NDJSON (the import shape of `POST
//! /api/v1/subjects/import`), or with `--speed` only measures how fast it is made.
//!
//! ```text
//! cargo run --release -p population --example generate -- \
//!     [--residents N] [--enterprises N] [--seed S] [--today YYYY-MM-DD] [--out FILE] [--speed]
//! ```

use population::{Generator, PopulationConfig};
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = PopulationConfig::new(chrono::Utc::now().date_naive());
    let mut out: Option<String> = None;
    let mut speed = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--residents" => cfg.residents = value()?.parse()?,
            "--enterprises" => cfg.enterprises = value()?.parse()?,
            "--seed" => cfg.seed = value()?.parse()?,
            "--today" => cfg.today = value()?.parse()?,
            "--out" => out = Some(value()?),
            "--speed" => speed = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let gen = Generator::new(cfg);
    if speed {
        let t = Instant::now();
        let n: usize = gen
            .residents(0..cfg.residents)
            .map(|s| s.attributes.len())
            .sum();
        let r = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let m: usize = gen
            .enterprises(0..cfg.enterprises)
            .map(|s| s.attributes.len())
            .sum();
        let e = t.elapsed().as_secs_f64();
        eprintln!(
            "one thread: {:.0} residents/s, {:.0} enterprises/s ({} attributes)",
            cfg.residents as f64 / r,
            cfg.enterprises as f64 / e,
            n + m
        );
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let t = Instant::now();
        std::thread::scope(|s| {
            for k in 0..threads {
                let range = cfg.residents * k / threads..cfg.residents * (k + 1) / threads;
                let gen = &gen;
                s.spawn(move || {
                    gen.residents(range)
                        .map(|s| s.attributes.len())
                        .sum::<usize>()
                });
            }
        });
        eprintln!(
            "{threads} threads: {:.0} residents/s",
            cfg.residents as f64 / t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let sink: Box<dyn Write> = match out.as_deref() {
        None | Some("-") => Box::new(std::io::stdout().lock()),
        Some(path) => Box::new(std::fs::File::create(path)?),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, sink);
    let t = Instant::now();
    for s in gen
        .residents(0..cfg.residents)
        .chain(gen.enterprises(0..cfg.enterprises))
    {
        serde_json::to_writer(&mut w, &s.to_doc())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!(
        "{} subjects in {:.2} s",
        cfg.residents + cfg.enterprises,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
