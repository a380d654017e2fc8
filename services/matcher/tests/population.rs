//! Bulk plans and the interpreter agree on a realistic population large enough to
//! span chunks and take the dense scan paths: the demo catalogue's tags and policies,
//! plus rules with dates, lists and arithmetic.

use domain::{Facts, Rule, Subject};
use matcher::{Plan, PopulationIndex};
use population::{Generator, PopulationConfig};

#[test]
fn catalogue_rules_agree_over_seventy_thousand_subjects() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let gen = Generator::new(PopulationConfig::new(today));
    let tag_rules: Vec<(String, Rule)> = population::catalogue::tags(today)
        .into_iter()
        .map(|t| (t.name.to_string(), Rule::parse(&t.rule).unwrap()))
        .collect();
    let subjects: Vec<(Subject, Vec<String>)> = gen
        .residents(0..70_000)
        .chain(gen.enterprises(0..3_000))
        .map(|s| {
            let f = Facts::new(&s, &[], today);
            let tags = tag_rules
                .iter()
                .filter(|(_, r)| r.matches(&f))
                .map(|(n, _)| n.clone())
                .collect();
            (s, tags)
        })
        .collect();
    let ix = PopulationIndex::build(subjects.iter().map(|(s, t)| (s, t.as_slice())));
    let mut rules: Vec<Rule> = tag_rules.into_iter().map(|(_, r)| r).collect();
    let params = population::catalogue::param_values(today);
    for p in population::catalogue::policies(today) {
        rules.push(Rule::parse(&p.eligibility).unwrap().bind(&params));
    }
    for src in [
        "age >= 30 && age < 45 && insured_months > 24",
        "insured_months / 12 >= 5 && age - (2026 - graduation_year) >= 20",
        "registered_unemployed_since <= '2025-07-01' || size(skills_certificates) > 1",
        "employees * 2 > insured_employees + 3 || revenue_wan > 100.5",
        "!(district in ['浦东新区', '闵行区']) && education != 'bachelor'",
        "(kind == 'person' ? age : employees) > 40",
    ] {
        rules.push(Rule::parse(src).unwrap());
    }
    for r in &rules {
        let plan = Plan::compile(r);
        assert_eq!(
            plan.fallbacks(),
            0,
            "{}: {}",
            r.source(),
            plan.description()
        );
        let got = plan.run(&ix, today);
        let want: Vec<u32> = subjects
            .iter()
            .enumerate()
            .filter(|(_, (s, t))| r.matches(&Facts::new(s, t, today)))
            .map(|(i, _)| i as u32)
            .collect();
        assert_eq!(got.len(), want.len() as u64, "{}", r.source());
        assert!(want.iter().all(|i| got.contains(*i)), "{}", r.source());
    }
}
