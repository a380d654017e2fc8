//! The benchmark population: residents from the shared generator, made in parallel,
//! tagged by the demo catalogue's tag rules, and fed at once to our index, to a CSV
//! stream for PostgreSQL's `COPY`, and to plain columns for the numpy/OpenFisca run.

use super::rules::TODAY;
use domain::{AttrValue, Facts, Rule, Subject, SubjectId};
use matcher::PopulationIndex;
use population::{Generator, PopulationConfig};
use rayon::prelude::*;
use std::fmt::Write as _;

pub const HUKOU: [&str; 2] = ["local", "non_local"];
pub const EDUCATION: [&str; 7] = [
    "junior_high",
    "high_school",
    "vocational",
    "associate",
    "bachelor",
    "master",
    "doctor",
];
pub const STATUS: [&str; 6] = [
    "employed",
    "unemployed",
    "registered_unemployed",
    "flexible",
    "retired",
    "student",
];
pub const WELDER: &str = "焊工（四级）";
pub const ELECTRICIAN: &str = "电工（四级）";

/// The evaluation date of the benchmark.
pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(
        TODAY / 10_000,
        (TODAY / 100 % 100) as u32,
        (TODAY % 100) as u32,
    )
    .expect("valid date")
}

/// The catalogue's tag rules that apply to persons.
pub fn tag_rules() -> Vec<(String, Rule)> {
    population::catalogue::tags(today())
        .into_iter()
        .filter(|t| !t.rule.contains("'enterprise'"))
        .map(|t| {
            (
                t.name.to_string(),
                Rule::parse(&t.rule).expect("catalogue tag rule"),
            )
        })
        .collect()
}

pub fn tags_of(rules: &[(String, Rule)], s: &Subject) -> Vec<String> {
    let f = Facts::new(s, &[], today());
    rules
        .iter()
        .filter(|(_, r)| r.matches_interpreted(&f))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Plain columns of the residents, one value per resident (codes for strings).
#[derive(Default)]
pub struct Columns {
    pub u8s: Vec<(&'static str, Vec<u8>)>,
    pub i32s: Vec<(&'static str, Vec<i32>)>,
    pub tags: Vec<(String, Vec<u8>)>,
}

const U8_COLS: [&str; 13] = [
    "male",
    "district",
    "hukou",
    "education",
    "employment_status",
    "flexible_employment",
    "poverty_household",
    "disability",
    "student_loan",
    "since_present",
    "cert_count",
    "cert_welder",
    "cert_electrician",
];
const I32_COLS: [&str; 4] = ["birth", "graduation_year", "insured_months", "since"];

impl Columns {
    fn new(tags: &[(String, Rule)]) -> Self {
        Self {
            u8s: U8_COLS.iter().map(|n| (*n, Vec::new())).collect(),
            i32s: I32_COLS.iter().map(|n| (*n, Vec::new())).collect(),
            tags: tags.iter().map(|(n, _)| (n.clone(), Vec::new())).collect(),
        }
    }

    fn append(&mut self, other: Columns) {
        for ((_, a), (_, b)) in self.u8s.iter_mut().zip(other.u8s) {
            a.extend(b);
        }
        for ((_, a), (_, b)) in self.i32s.iter_mut().zip(other.i32s) {
            a.extend(b);
        }
        for ((_, a), (_, b)) in self.tags.iter_mut().zip(other.tags) {
            a.extend(b);
        }
    }

    fn push(&mut self, s: &Subject, tags: &[String]) {
        let a = &s.attributes;
        let text = |k: &str| match a.get(k) {
            Some(AttrValue::Str(v)) => v.as_str(),
            _ => "",
        };
        let int = |k: &str| match a.get(k) {
            Some(AttrValue::Int(i)) => *i as i32,
            _ => 0,
        };
        let flag = |k: &str| u8::from(matches!(a.get(k), Some(AttrValue::Bool(true))));
        let code = |list: &[&str], v: &str| list.iter().position(|x| *x == v).unwrap_or(255) as u8;
        let certs: &[String] = match a.get("skills_certificates") {
            Some(AttrValue::List(l)) => l,
            _ => &[],
        };
        let since = text("registered_unemployed_since").replace('-', "");
        let SubjectId::Person(r) = &s.id else {
            unreachable!("residents only")
        };
        let u8s = [
            u8::from(r.sex() == domain::ids::Sex::Male),
            code(&population::DISTRICTS.map(|d| d.name), text("district")),
            code(&HUKOU, text("hukou")),
            code(&EDUCATION, text("education")),
            code(&STATUS, text("employment_status")),
            flag("flexible_employment"),
            flag("poverty_household"),
            flag("disability"),
            flag("student_loan"),
            u8::from(!since.is_empty()),
            certs.len() as u8,
            u8::from(certs.iter().any(|c| c == WELDER)),
            u8::from(certs.iter().any(|c| c == ELECTRICIAN)),
        ];
        for ((_, col), v) in self.u8s.iter_mut().zip(u8s) {
            col.push(v);
        }
        let i32s = [
            matcher::index::date_key(r.birth_date()),
            int("graduation_year"),
            int("insured_months"),
            since.parse().unwrap_or(0),
        ];
        for ((_, col), v) in self.i32s.iter_mut().zip(i32s) {
            col.push(v);
        }
        for (name, col) in &mut self.tags {
            col.push(u8::from(tags.contains(name)));
        }
    }
}

/// One CSV row for `COPY … (FORMAT csv)`.
fn csv_row(out: &mut String, id: u64, s: &Subject, tags: &[String]) {
    let a = &s.attributes;
    let get = |k: &str| -> String {
        match a.get(k) {
            Some(AttrValue::Str(v)) => v.clone(),
            Some(AttrValue::Int(i)) => i.to_string(),
            Some(AttrValue::Bool(b)) => b.to_string(),
            Some(AttrValue::Float(x)) => x.to_string(),
            Some(AttrValue::List(l)) => format!("\"{{{}}}\"", l.join(",")),
            None => String::new(),
        }
    };
    let SubjectId::Person(r) = &s.id else {
        unreachable!("residents only")
    };
    let _ = writeln!(
        out,
        "{id},person,{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{{{}}}\"",
        r.sex().as_str(),
        matcher::index::date_key(r.birth_date()),
        get("district"),
        get("hukou"),
        get("education"),
        get("graduation_year"),
        get("employment_status"),
        get("insured_months"),
        get("flexible_employment"),
        get("poverty_household"),
        get("disability"),
        get("student_loan"),
        get("registered_unemployed_since"),
        get("skills_certificates"),
        tags.join(","),
    );
}

/// The columns of the PostgreSQL table, in CSV order.
pub const PG_TABLE: &str = "id int PRIMARY KEY, kind text, sex text, birth int, district text, \
    hukou text, education text, graduation_year int, employment_status text, insured_months int, \
    flexible_employment bool, poverty_household bool, disability bool, student_loan bool, \
    registered_unemployed_since text, skills_certificates text[], tags text[]";

/// Where the CSV rows go (PostgreSQL's `COPY`).
pub type CsvSink<'a> = &'a mut dyn FnMut(&[u8]) -> anyhow::Result<()>;

/// What generating the population produced.
pub struct Made {
    pub index: PopulationIndex,
    pub columns: Option<Columns>,
    pub generate_secs: f64,
    pub index_secs: f64,
}

/// Makes `n` residents in parallel; every batch goes to the index, to `csv_sink` (if
/// any) and to the columns (if `columns`).
pub fn make(
    n: u64,
    seed: u64,
    mut csv_sink: Option<CsvSink<'_>>,
    columns: bool,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Made> {
    let gen = Generator::new(PopulationConfig {
        residents: n,
        enterprises: 0,
        seed,
        today: today(),
    });
    let rules = tag_rules();
    let mut index = PopulationIndex::new();
    let mut cols = columns.then(|| Columns::new(&rules));
    const BATCH: u64 = 32_768;
    let round = BATCH * 2 * rayon::current_num_threads() as u64 * 4;
    let (mut generate_secs, mut index_secs) = (0.0, 0.0);
    let want_csv = csv_sink.is_some();
    let mut start = 0;
    while start < n {
        let end = (start + round).min(n);
        let t = std::time::Instant::now();
        let batches: Vec<_> = (start..end)
            .step_by(BATCH as usize)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|lo| {
                let hi = (lo + BATCH).min(end);
                let mut csv = String::new();
                let mut c = columns.then(|| Columns::new(&rules));
                let subjects: Vec<(Subject, Vec<String>)> = (lo..hi)
                    .map(|i| {
                        let s = gen.resident(i);
                        let tags = tags_of(&rules, &s);
                        if want_csv {
                            csv_row(&mut csv, i, &s, &tags);
                        }
                        if let Some(c) = &mut c {
                            c.push(&s, &tags);
                        }
                        (s, tags)
                    })
                    .collect();
                (subjects, csv, c)
            })
            .collect();
        generate_secs += t.elapsed().as_secs_f64();
        for (subjects, csv, c) in batches {
            let t = std::time::Instant::now();
            for (s, tags) in &subjects {
                index.upsert(s, tags);
            }
            index_secs += t.elapsed().as_secs_f64();
            if let Some(sink) = csv_sink.as_mut() {
                sink(csv.as_bytes())?;
            }
            if let (Some(all), Some(c)) = (cols.as_mut(), c) {
                all.append(c);
            }
        }
        progress(end);
        start = end;
    }
    Ok(Made {
        index,
        columns: cols,
        generate_secs,
        index_secs,
    })
}
