//! The generator: determinism, validity, uniqueness, shares and internal consistency.

use chrono::{Datelike, NaiveDate};
use domain::ids::ResidentId;
use domain::subject::FactValue;
use domain::{AttrValue, Facts, Subject, SubjectId};
use population::{sme_size_class, Generator, Industry, PopulationConfig, SizeClass};
use std::collections::{BTreeMap, HashSet};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn cfg(residents: u64, enterprises: u64) -> PopulationConfig {
    PopulationConfig {
        residents,
        enterprises,
        ..PopulationConfig::new(today())
    }
}

fn int(s: &Subject, k: &str) -> i64 {
    match s.attributes.get(k) {
        Some(AttrValue::Int(i)) => *i,
        other => panic!("{k} of {} is {other:?}", s.id),
    }
}

fn float(s: &Subject, k: &str) -> f64 {
    match s.attributes.get(k) {
        Some(AttrValue::Float(f)) => *f,
        other => panic!("{k} of {} is {other:?}", s.id),
    }
}

fn text<'a>(s: &'a Subject, k: &str) -> &'a str {
    match s.attributes.get(k) {
        Some(AttrValue::Str(v)) => v,
        other => panic!("{k} of {} is {other:?}", s.id),
    }
}

fn flag(s: &Subject, k: &str) -> bool {
    match s.attributes.get(k) {
        Some(AttrValue::Bool(b)) => *b,
        other => panic!("{k} of {} is {other:?}", s.id),
    }
}

fn age(s: &Subject, today: NaiveDate) -> i64 {
    match Facts::new(s, &[], today).get("age") {
        Some(FactValue::Int(a)) => a,
        other => panic!("age {other:?}"),
    }
}

#[test]
fn same_config_same_subjects_in_any_order_and_prefixes_agree() {
    let c = cfg(3_000, 600);
    let a: Vec<Subject> = population::subjects(&c).collect();
    let b: Vec<Subject> = population::subjects(&c).collect();
    assert_eq!(a, b);
    // random access, backwards, with a fresh generator
    let g = Generator::new(c);
    for i in (0..3_000).rev().step_by(7) {
        assert_eq!(g.resident(i), a[i as usize]);
    }
    for i in (0..600).rev().step_by(5) {
        assert_eq!(population::enterprise(&c, i), a[3_000 + i as usize]);
    }
    // a smaller population is a prefix of a larger one
    let small: Vec<Subject> = population::residents(&cfg(100, 0)).collect();
    assert_eq!(small[..], a[..100]);
    // another seed gives other people
    let other = Generator::new(PopulationConfig { seed: 1, ..c });
    assert_ne!(other.resident(0).id, a[0].id);
}

#[test]
fn every_subject_round_trips_through_the_import_shape() {
    let c = cfg(40_000, 10_000);
    for s in population::subjects(&c) {
        let doc = s.to_doc();
        let json = serde_json::to_string(&doc).unwrap();
        let back = Subject::from_doc(serde_json::from_str(&json).unwrap())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, s, "{json}");
    }
}

#[test]
fn identifiers_are_unique_and_contact_shares_are_on_target() {
    let c = cfg(200_000, 50_000);
    let mut ids = HashSet::new();
    let mut mobiles = HashSet::new();
    let mut openids = HashSet::new();
    let mut counts = BTreeMap::<(&str, &str), u64>::new();
    for s in population::subjects(&c) {
        let kind = s.kind().as_str();
        assert!(
            ids.insert(s.id.as_str().to_string()),
            "duplicate id {}",
            s.id
        );
        if let Some(m) = &s.mobile {
            assert!(mobiles.insert(m.as_str().to_string()), "duplicate mobile");
            *counts.entry((kind, "mobile")).or_default() += 1;
        }
        if let Some(o) = &s.wechat_openid {
            assert!(openids.insert(o.as_str().to_string()), "duplicate openid");
            *counts.entry((kind, "openid")).or_default() += 1;
        }
    }
    let share = |kind, what, n: u64| counts[&(kind, what)] as f64 / n as f64;
    let r_mobile = share("person", "mobile", c.residents);
    let r_openid = share("person", "openid", c.residents);
    let e_mobile = share("enterprise", "mobile", c.enterprises);
    let e_openid = share("enterprise", "openid", c.enterprises);
    println!(
        "residents: mobile {r_mobile:.3}, openid {r_openid:.3}; enterprises: mobile {e_mobile:.3}, openid {e_openid:.3}"
    );
    assert!((r_mobile - 0.85).abs() <= 0.02, "{r_mobile}");
    assert!((r_openid - 0.60).abs() <= 0.02, "{r_openid}");
    assert!((e_mobile - 0.90).abs() <= 0.02, "{e_mobile}");
    assert!((e_openid - 0.50).abs() <= 0.02, "{e_openid}");
}

#[test]
fn residents_are_consistent() {
    let c = cfg(30_000, 0);
    let today = c.today;
    let mut status = BTreeMap::<String, u64>::new();
    let mut education = BTreeMap::<String, u64>::new();
    let mut districts = BTreeMap::<String, u64>::new();
    let mut local = 0;
    for s in population::residents(&c) {
        let SubjectId::Person(id) = &s.id else {
            panic!("not a person")
        };
        let a = age(&s, today);
        assert!((16..=80).contains(&a), "{a}");
        assert!(id.as_str().starts_with("3101"));
        let d = population::districts::district(text(&s, "district")).unwrap();
        assert!(id.as_str().starts_with(d.code), "{} in {}", id, d.name);
        let name_len = s.name.chars().count();
        assert!((2..=4).contains(&name_len), "{}", s.name);

        let st = text(&s, "employment_status");
        let edu = text(&s, "education");
        let gy = int(&s, "graduation_year");
        let born = id.birth_date().year() as i64;
        // graduation at 14 to 32, students graduate later than now, others did already
        assert!(
            (born + 14..=born + 32).contains(&gy),
            "{edu} {gy} born {born}"
        );
        if st == "student" {
            assert!(gy >= today.year() as i64, "student graduating {gy}");
            assert!(a <= 35, "student aged {a}");
        } else {
            assert!(gy <= today.year() as i64, "{st} graduating {gy}");
        }
        if st == "retired" {
            assert!(a >= 50, "retired at {a}");
        }
        let months = int(&s, "insured_months");
        assert!(
            months >= 0 && months <= (a - 14) * 12,
            "{months} months at {a}"
        );
        if matches!(
            st,
            "student" | "retired" | "unemployed" | "registered_unemployed"
        ) {
            assert_eq!(months, 0, "{st}");
        }
        assert_eq!(flag(&s, "flexible_employment"), st == "flexible");
        flag(&s, "poverty_household");
        flag(&s, "disability");
        if flag(&s, "student_loan") {
            assert!(["associate", "bachelor", "master", "doctor"].contains(&edu));
        }
        match s.attributes.get("registered_unemployed_since") {
            Some(AttrValue::Str(since)) => {
                assert_eq!(st, "registered_unemployed");
                let since = NaiveDate::parse_from_str(since, "%Y-%m-%d").unwrap();
                assert!(since <= today && since > today - chrono::Days::new(1100));
            }
            None => assert_ne!(st, "registered_unemployed"),
            other => panic!("{other:?}"),
        }
        if let Some(v) = s.attributes.get("skills_certificates") {
            let AttrValue::List(l) = v else {
                panic!("{v:?}")
            };
            assert!(!l.is_empty() && l.len() <= 2);
        }
        *status.entry(st.to_string()).or_default() += 1;
        *education.entry(edu.to_string()).or_default() += 1;
        *districts
            .entry(text(&s, "district").to_string())
            .or_default() += 1;
        local += u64::from(text(&s, "hukou") == "local");
    }
    let n = c.residents as f64;
    let pct = |m: &BTreeMap<String, u64>| -> Vec<String> {
        m.iter()
            .map(|(k, v)| format!("{k} {:.1}%", 100.0 * *v as f64 / n))
            .collect()
    };
    println!("employment_status: {}", pct(&status).join(", "));
    println!("education: {}", pct(&education).join(", "));
    println!("district: {}", pct(&districts).join(", "));
    println!("hukou local: {:.1}%", 100.0 * local as f64 / n);
    let share = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0) as f64 / n;
    assert!((0.50..0.75).contains(&share(&status, "employed")));
    assert!((0.01..0.08).contains(&share(&status, "registered_unemployed")));
    assert!((0.04..0.15).contains(&share(&status, "flexible")));
    assert!((0.15..0.35).contains(&share(&status, "retired")));
    assert!((0.02..0.10).contains(&share(&status, "student")));
    assert!((0.20..0.28).contains(&share(&districts, "浦东新区")));
    assert!((0.45..0.70).contains(&(local as f64 / n)));
}

#[test]
fn ages_are_exact_on_awkward_days() {
    for (y, m, d) in [
        (2028, 2, 29),
        (2028, 3, 1),
        (2027, 2, 28),
        (2026, 12, 31),
        (2027, 1, 1),
    ] {
        let today = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let c = PopulationConfig {
            residents: 20_000,
            ..PopulationConfig::new(today)
        };
        let mut seen_ages = HashSet::new();
        let mut ids = HashSet::new();
        for s in population::residents(&c) {
            let SubjectId::Person(id) = &s.id else {
                panic!()
            };
            let a = id.age_on(today);
            assert!((16..=80).contains(&a), "{id} is {a} on {today}");
            seen_ages.insert(a);
            assert!(ids.insert(id.clone()));
            ResidentId::parse(id.as_str()).unwrap();
        }
        assert_eq!(seen_ages.len(), 65, "on {today}");
    }
}

#[test]
fn enterprises_are_consistent() {
    let c = cfg(0, 20_000);
    let mut classes = BTreeMap::<&str, u64>::new();
    let mut employees = Vec::new();
    let mut insured_firms = 0;
    for s in population::enterprises(&c) {
        assert!(s.id.as_str().starts_with("91310"), "{}", s.id);
        let d = population::districts::district(text(&s, "district")).unwrap();
        assert_eq!(&s.id.as_str()[2..8], d.code);
        assert!(s.name.starts_with("上海") && s.name.ends_with("有限公司"));
        let ind = Industry::parse(text(&s, "industry")).unwrap();
        let emp = int(&s, "employees");
        let rev = float(&s, "revenue_wan");
        let assets = float(&s, "total_assets_wan");
        assert!(emp >= 1 && rev > 0.0 && assets > 0.0);
        let class = sme_size_class(ind, emp as u64, rev, assets);
        assert_eq!(text(&s, "size_class"), class.as_str(), "{}", s.id);
        let insured = int(&s, "insured_employees");
        assert!((0..=emp).contains(&insured));
        let layoffs = int(&s, "layoffs_last_year");
        let rate = float(&s, "layoff_rate");
        assert!(layoffs >= 0 && (layoffs == 0) == (rate == 0.0) && rate < 100.0);
        let paid = int(&s, "unemployment_insurance_paid_last_year");
        let months = int(&s, "insured_months");
        if insured == 0 {
            assert_eq!((paid, months), (0, 0));
            assert!(!flag(&s, "insurance_arrears"));
            assert_eq!(int(&s, "new_hires_graduates_this_year"), 0);
        } else {
            insured_firms += 1;
            assert!(months >= 1);
            // at most 1% of the top base for everyone insured last year, all year
            assert!(paid as f64 <= (insured as f64 * 1.15 + 1.0) * 37302.0 * 12.0 * 0.01);
        }
        let est = NaiveDate::parse_from_str(text(&s, "established"), "%Y-%m-%d").unwrap();
        assert!(est < c.today && est.year() >= 1985);
        // the organisation code is new-style (MA…) exactly for firms since Oct 2015
        let new_style = &s.id.as_str()[8..10] == "MA";
        assert_eq!(
            new_style,
            est >= NaiveDate::from_ymd_opt(2015, 10, 1).unwrap()
        );
        *classes.entry(class.as_str()).or_default() += 1;
        employees.push(emp);
    }
    employees.sort_unstable();
    let n = employees.len();
    println!(
        "size classes: {classes:?}; employees median {}, p90 {}, p99 {}, max {}; insured firms {:.1}%",
        employees[n / 2],
        employees[n * 9 / 10],
        employees[n * 99 / 100],
        employees[n - 1],
        100.0 * insured_firms as f64 / n as f64
    );
    assert!(employees[n / 2] < 50, "most firms are small");
    assert!(employees[n - 1] >= 1000, "a long tail");
    assert!(classes[SizeClass::Micro.as_str()] > classes[SizeClass::Small.as_str()]);
    assert!(classes.get("large").copied().unwrap_or(0) > 0);
    assert!(classes.get("medium").copied().unwrap_or(0) > 0);
}
