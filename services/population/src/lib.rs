//! Synthetic population of policy-push: a deterministic, seeded generator of Shanghai
//! residents and enterprises with realistic shapes, and the demo catalogue (tags,
//! policies, campaigns) that runs over it. The same generator feeds the demo, the
//! benchmarks and the load tests, at any size from a thousand to 25 million.
//!
//! Every subject is a pure function of `(seed, today, kind, index)`: generating a range
//! of indices needs nothing from the others, so ranges can be made in parallel and the
//! first N subjects of a larger population are the same as a population of N.
//! Identifiers (resident ID, credit code, mobile, openid) come from keyed bijections of
//! the index, so they are unique by construction, not by luck. (Skewed figures use the
//! system `ln`/`exp`/`cos`; another platform's libm could in rare cases round one
//! differently.)
//!
//! Speed: about 2 µs of one core per subject, most of it the allocations of the
//! [`Subject`] itself (String keys, BTreeMap) and the domain's identifier parsing; run
//! `cargo run --release -p population --example generate -- --speed` to measure.
//!
//! ```
//! use population::{Generator, PopulationConfig};
//! let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
//! let cfg = PopulationConfig { residents: 1_000, enterprises: 100, ..PopulationConfig::new(today) };
//! let gen = Generator::new(cfg);
//! let first = gen.resident(0);
//! assert_eq!(population::residents(&cfg).next().unwrap(), first);
//! assert_eq!(population::enterprises(&cfg).count(), 100);
//! ```
//!
//! # Layout
//! - this file: [`PopulationConfig`], [`Generator`] (random access by index, ranges) and
//!   the iterator functions [`residents`], [`enterprises`], [`resident`], [`enterprise`].
//! - `resident.rs`: a resident's ID number, name, education path, employment, insurance
//!   and hardship flags; `enterprise.rs`: credit code, industry, headcount, revenue,
//!   insurance contributions, layoffs, hires and size class.
//! - [`sme`]: the national SME size classification (工信部联企业〔2011〕300号).
//! - [`districts`]: the 16 districts, codes and weights.
//! - [`codes`]: GB 11714 organisation-code check, unique credit codes, mobiles, openids.
//! - [`catalogue`]: the demo tags, policies and campaigns, and their attribute vocabulary.
//! - `names.rs`: people's and enterprises' names; `rng.rs`: per-index ChaCha8 streams and
//!   keyed bijections.
//! - `examples/generate.rs`: writes a population as NDJSON for import, or measures speed.
//!
//! # Attributes
//! Residents (`kind == 'person'`; `age` and `sex` come from the ID number):
//! `district` (str, e.g. `浦东新区`), `hukou` (`local`/`non_local`), `education`
//! (`junior_high`, `high_school`, `vocational`, `associate`, `bachelor`, `master`,
//! `doctor`; for students the programme they are in), `graduation_year` (int; expected
//! year for students), `employment_status` (`employed`, `unemployed`,
//! `registered_unemployed`, `flexible`, `retired`, `student`), `insured_months` (int,
//! current run of consecutive months of social insurance), `flexible_employment`,
//! `poverty_household`, `disability`, `student_loan` (bools, always present),
//! `registered_unemployed_since` (`YYYY-MM-DD`, registered unemployed only),
//! `skills_certificates` (list of str, only when there is one).
//!
//! Enterprises (`kind == 'enterprise'`): `district`, `industry` (codes of [`Industry`]),
//! `employees`, `insured_employees`, `layoffs_last_year`, `new_hires_graduates_this_year`,
//! `new_hires_unemployed_youth_this_year`, `insured_months` (ints), `revenue_wan`,
//! `total_assets_wan` (10k CNY), `layoff_rate` (percent) (floats),
//! `unemployment_insurance_paid_last_year` (int CNY, employer and employee shares),
//! `established` (`YYYY-MM-DD`), `size_class` (`large`/`medium`/`small`/`micro`, by
//! [`sme_size_class`]), `insurance_arrears` (bool).

use chrono::{Datelike, NaiveDate};
use domain::Subject;
use std::ops::Range;
use std::sync::OnceLock;

pub mod catalogue;
pub mod codes;
pub mod districts;
mod enterprise;
mod names;
mod resident;
mod rng;
pub mod sme;

pub use codes::MAX_ENTERPRISES;
pub use districts::{District, DISTRICTS};
pub use sme::{sme_size_class, Industry, SizeClass};

/// The largest number of residents: the size of the keyed permutation of ID slots
/// (2^25 ≈ 33.5 million, more than Shanghai's 25 million residents).
pub const MAX_RESIDENTS: u64 = 1 << rng::SlotPermutation::BITS;

/// The youngest and oldest resident.
pub const MIN_AGE: u32 = 16;
pub const MAX_AGE: u32 = 80;
const AGES: usize = (MAX_AGE - MIN_AGE + 1) as usize;

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 20_230_512;

/// What to generate. `today` is the evaluation date (ages, graduation years, dates are
/// relative to it); the generator never reads the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopulationConfig {
    pub residents: u64,
    pub enterprises: u64,
    pub seed: u64,
    pub today: NaiveDate,
}

impl PopulationConfig {
    /// 100,000 residents, 10,000 enterprises, [`DEFAULT_SEED`], on `today`.
    pub fn new(today: NaiveDate) -> Self {
        Self {
            residents: 100_000,
            enterprises: 10_000,
            seed: DEFAULT_SEED,
            today,
        }
    }
}

/// The defaults of [`PopulationConfig::new`] on a fixed date (2026-01-01), so that a
/// default population is the same whenever it is made. Callers that care about the date
/// use [`PopulationConfig::new`].
impl Default for PopulationConfig {
    fn default() -> Self {
        Self::new(NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date"))
    }
}

/// Generates subjects by index. Cheap to create; `Sync`, so threads can share one.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: PopulationConfig,
    resident_key: [u8; 32],
    enterprise_key: [u8; 32],
    slots: rng::SlotPermutation,
    /// `age_ends[a - MIN_AGE]`: the latest birth date of someone aged `a` today; index
    /// `AGES` is for `MAX_AGE + 1`.
    age_ends: [NaiveDate; AGES + 1],
}

impl Generator {
    pub fn new(cfg: PopulationConfig) -> Self {
        let mut age_ends = [cfg.today; AGES + 1];
        for (i, end) in age_ends.iter_mut().enumerate() {
            *end = years_before(cfg.today, MIN_AGE + i as u32);
        }
        Self {
            cfg,
            resident_key: rng::derive_key(cfg.seed, 1),
            enterprise_key: rng::derive_key(cfg.seed, 2),
            slots: rng::SlotPermutation::new(cfg.seed),
            age_ends,
        }
    }

    pub fn config(&self) -> &PopulationConfig {
        &self.cfg
    }

    /// Resident number `index` (any index below [`MAX_RESIDENTS`], whatever
    /// `cfg.residents` is).
    pub fn resident(&self, index: u64) -> Subject {
        assert!(
            index < MAX_RESIDENTS,
            "resident index {index} is not below {MAX_RESIDENTS}"
        );
        resident::generate(self, index)
    }

    /// Enterprise number `index` (any index below [`MAX_ENTERPRISES`]).
    pub fn enterprise(&self, index: u64) -> Subject {
        assert!(
            index < MAX_ENTERPRISES,
            "enterprise index {index} is not below {MAX_ENTERPRISES}"
        );
        enterprise::generate(self, index)
    }

    /// Residents with indices in `range`.
    pub fn residents(&self, range: Range<u64>) -> impl Iterator<Item = Subject> + '_ {
        range.map(move |i| self.resident(i))
    }

    /// Enterprises with indices in `range`.
    pub fn enterprises(&self, range: Range<u64>) -> impl Iterator<Item = Subject> + '_ {
        range.map(move |i| self.enterprise(i))
    }

    /// Where resident `index` lives and when it was born: its slot in the ID space.
    fn resident_place(&self, index: u64) -> Place {
        let slot = self.slots.permute(index as u32);
        let table = slot_table();
        let seg = table.partition_point(|&s| s <= slot) - 1;
        let (district, age_off) = (seg / AGES, seg % AGES);
        let k = slot - table[seg];
        let end = self.age_ends[age_off];
        let span = (end - self.age_ends[age_off + 1]).num_days() as u32;
        let day = k % span;
        let q = k / span;
        debug_assert!(q < 997, "segment too large");
        Place {
            district,
            age: MIN_AGE + age_off as u32,
            birth: end - chrono::Days::new(u64::from(day)),
            sequence: 1 + (q * 373) % 997,
        }
    }
}

/// A resident's position in the ID space: district, age, birth date and the 3-digit
/// sequence number (odd: male).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub district: usize,
    pub age: u32,
    pub birth: NaiveDate,
    pub sequence: u32,
}

/// `today` minus `years` years (29 February becomes 28 February in other years).
fn years_before(today: NaiveDate, years: u32) -> NaiveDate {
    let y = today.year() - years as i32;
    today
        .with_year(y)
        .or_else(|| NaiveDate::from_ymd_opt(y, 2, 28))
        .expect("valid date")
}

/// Residents per single year of age, 16–80 (relative): Shanghai's 2020 census age
/// pyramid by five-year band, with more 18–24 year-olds for the city's students.
const AGE_WEIGHTS: [u32; AGES] = [
    6, 6, 9, 9, // 16-19
    11, 11, 11, 11, 11, // 20-24
    17, 17, 17, 17, 17, // 25-29
    21, 21, 21, 21, 21, // 30-34
    18, 18, 18, 18, 18, // 35-39
    15, 15, 15, 15, 15, // 40-44
    15, 15, 15, 15, 15, // 45-49
    15, 15, 15, 15, 15, // 50-54
    15, 15, 15, 15, 15, // 55-59
    15, 15, 15, 15, 15, // 60-64
    14, 14, 14, 14, 14, // 65-69
    9, 9, 9, 9, 9, // 70-74
    5, 5, 5, 5, 5, // 75-79
    4, // 80
];

/// The ID slot space `[0, 2^25)` cut into one segment per (district, age), sized by
/// district weight × age weight (largest remainder, so the sizes add up exactly).
/// `table[s]` is the first slot of segment `s`; the last entry is `2^25`.
fn slot_table() -> &'static [u32] {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let total = 1u64 << rng::SlotPermutation::BITS;
        let weights: Vec<u64> = DISTRICTS
            .iter()
            .flat_map(|d| {
                AGE_WEIGHTS
                    .iter()
                    .map(move |&a| u64::from(d.resident_weight) * u64::from(a))
            })
            .collect();
        let sum: u64 = weights.iter().sum();
        let mut sizes: Vec<u64> = weights.iter().map(|w| w * total / sum).collect();
        let mut remainders: Vec<(u64, usize)> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| (w * total % sum, i))
            .collect();
        remainders.sort_by(|a, b| b.cmp(a));
        let missing = total - sizes.iter().sum::<u64>();
        for &(_, i) in remainders.iter().take(missing as usize) {
            sizes[i] += 1;
        }
        let mut table = Vec::with_capacity(sizes.len() + 1);
        let mut start = 0u64;
        for s in sizes {
            table.push(start as u32);
            start += s;
        }
        table.push(start as u32);
        table
    })
}

/// The first `cfg.residents` residents.
pub fn residents(cfg: &PopulationConfig) -> impl Iterator<Item = Subject> {
    let gen = Generator::new(*cfg);
    (0..cfg.residents).map(move |i| gen.resident(i))
}

/// The first `cfg.enterprises` enterprises.
pub fn enterprises(cfg: &PopulationConfig) -> impl Iterator<Item = Subject> {
    let gen = Generator::new(*cfg);
    (0..cfg.enterprises).map(move |i| gen.enterprise(i))
}

/// Residents, then enterprises.
pub fn subjects(cfg: &PopulationConfig) -> impl Iterator<Item = Subject> {
    residents(cfg).chain(enterprises(cfg))
}

/// Resident number `index` alone (builds a [`Generator`]; keep one to make many).
pub fn resident(cfg: &PopulationConfig, index: u64) -> Subject {
    Generator::new(*cfg).resident(index)
}

/// Enterprise number `index` alone.
pub fn enterprise(cfg: &PopulationConfig, index: u64) -> Subject {
    Generator::new(*cfg).enterprise(index)
}

/// `YYYY-MM-DD`.
pub(crate) fn date_string(d: NaiveDate) -> String {
    let mut s = codes::Ascii::<10>::new();
    s.push_digits(d.year() as u64, 4);
    s.push_char('-');
    s.push_digits(u64::from(d.month()), 2);
    s.push_char('-');
    s.push_digits(u64::from(d.day()), 2);
    s.as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_segments_fit_the_sequence_space() {
        let t = slot_table();
        assert_eq!(t.len(), DISTRICTS.len() * AGES + 1);
        assert_eq!(*t.last().unwrap() as u64, MAX_RESIDENTS);
        // each (district, age) segment must fit 365 days × 997 sequence numbers
        let largest = t.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(largest < 365 * 997, "{largest}");
        assert!(t.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn years_before_handles_leap_days() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(years_before(d(2028, 2, 29), 1), d(2027, 2, 28));
        assert_eq!(years_before(d(2028, 2, 29), 4), d(2024, 2, 29));
        assert_eq!(years_before(d(2026, 11, 29), 16), d(2010, 11, 29));
        assert_eq!(date_string(d(2026, 3, 7)), "2026-03-07");
    }
}
