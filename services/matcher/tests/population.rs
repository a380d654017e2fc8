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
        // ranges on bit-sliced columns (dense scopes) and id by id (sparse ones)
        "age == 40 || age != 41 && insured_months == 24",
        "age > 29.5 && age <= 30.5 || graduation_year > 2010.5 && graduation_year < 2013",
        "insured_months >= 0 && insured_months < 1 || 17 >= age",
        "'recent_graduate' in tags && age >= 22 && insured_months > 3",
        "employees >= 10 && employees < 300",
        // the B1 rules of `size()` and arithmetic
        "size(skills_certificates) > 0 \
         && ('焊工（四级）' in skills_certificates || '电工（四级）' in skills_certificates) \
         && employment_status in ['unemployed', 'registered_unemployed'] && age < 50",
        "size(skills_certificates) == 2 || 1 >= size(district)",
        "kind == 'person' && employment_status == 'employed' && insured_months / 12 >= 5 \
         && age - (2026 - graduation_year) >= 20 && hukou != 'local' \
         && insured_months * 100 / (age * 12) >= 20",
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
