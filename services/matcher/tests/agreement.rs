//! The bulk plan and the per-subject interpreter agree: random rules over random
//! subjects (every attribute may be missing or of any type), before and after upserts.

use chrono::{Datelike, NaiveDate};
use domain::ids::{credit_code_check_char, resident_id_check_char};
use domain::{AttrValue, Facts, ParamValues, Rule, Subject, SubjectId};
use matcher::{Plan, PopulationIndex};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
}

const STRS: [&str; 8] = [
    "浦东新区",
    "黄浦区",
    "2024-01-01",
    "2024-07-01",
    "python",
    "rust",
    "",
    "x",
];

fn lit_str() -> impl Strategy<Value = String> {
    prop::sample::select(STRS.to_vec()).prop_map(|s| format!("'{s}'"))
}

fn attr_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "employees",
        "score",
        "big",
        "district",
        "founded",
        "flag",
        "skills",
    ])
}

fn num_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        (-5i64..50).prop_map(|n| n.to_string()),
        prop::sample::select(vec!["2.5", "0.5", "1e300", "-7", "3.0", "9007199254740993"])
            .prop_map(String::from),
    ]
}

/// Number-valued terms.
fn num() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => attr_name().prop_map(String::from),
        3 => num_lit(),
        2 => Just("age".to_string()),
        1 => attr_name().prop_map(|a| format!("size({a})")),
        1 => Just("size(tags)".to_string()),
        2 => prop::sample::select(vec!["params.limit", "params.rate", "params.unset"])
            .prop_map(String::from),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), prop::sample::select(vec!["/", "%"]), 1i64..7)
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (
                inner.clone(),
                prop::sample::select(vec!["/", "%"]),
                attr_name()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (attr_name(), inner.clone(), inner).prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

fn cmp_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="])
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (num(), cmp_op(), num()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        3 => (attr_name(), cmp_op(), lit_str()).prop_map(|(a, op, l)| format!("{a} {op} {l}")),
        1 => (lit_str(), cmp_op(), attr_name()).prop_map(|(l, op, a)| format!("{l} {op} {a}")),
        1 => (attr_name(), cmp_op(), attr_name()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        1 => prop::sample::select(vec!["kind == 'person'", "kind != 'enterprise'", "sex == 'male'",
            "sex != 'female'", "kind in ['enterprise']", "sex in ['female', 'male']"])
            .prop_map(String::from),
        2 => (attr_name(), prop::collection::vec(prop::sample::select(STRS.to_vec()), 0..3))
            .prop_map(|(a, l)| {
                let items: Vec<String> = l.iter().map(|s| format!("'{s}'")).collect();
                format!("{a} in [{}]", items.join(", "))
            }),
        2 => (num(), prop::collection::vec(-3i64..12, 0..3), any::<bool>()).prop_map(|(a, l, f)| {
                let mut items: Vec<String> = l.iter().map(|n| n.to_string()).collect();
                if f { items.push("2.5".into()); }
                format!("{a} in [{}]", items.join(", "))
            }),
        2 => (lit_str(), attr_name()).prop_map(|(l, a)| format!("{l} in {a}")),
        2 => prop::sample::select(vec!["t1", "t2", "t3"]).prop_map(|t| format!("'{t}' in tags")),
        1 => prop::sample::select(vec!["t1", "t2"]).prop_map(|t| format!("tags.contains('{t}')")),
        3 => (attr_name(), prop::sample::select(vec!["startsWith", "endsWith", "contains"]), lit_str())
            .prop_map(|(a, m, l)| format!("{a}.{m}({l})")),
        1 => (attr_name(), attr_name()).prop_map(|(a, b)| format!("{a}.contains({b})")),
        1 => (attr_name(), num_lit()).prop_map(|(a, n)| format!("{a}.contains({n})")),
        1 => prop::sample::select(vec!["kind.startsWith('p')", "sex.endsWith('male')"])
            .prop_map(String::from),
        3 => attr_name().prop_map(|a| a.to_string()),
        1 => (attr_name(), any::<bool>()).prop_map(|(a, b)| format!("{a} == {b}")),
        1 => (attr_name(), any::<bool>()).prop_map(|(a, b)| format!("{a} != {b}")),
        2 => attr_name().prop_map(|a| format!("has(attrs.{a})")),
        1 => (num(), attr_name()).prop_map(|(a, f)| format!("({a} > 3) == {f}")),
        1 => (attr_name(), lit_str(), lit_str()).prop_map(|(c, a, b)| format!("({c} ? {a} : {b}) == {a}")),
        1 => prop::sample::select(vec!["true", "false"]).prop_map(String::from),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

/// Any value of any type; only `big` may hold integers beyond 2^53 (which send the
/// comparisons that read it to per-subject evaluation).
fn value(huge: bool) -> impl Strategy<Value = Option<AttrValue>> {
    let huge_ints = if huge {
        vec![1i64 << 60, i64::MAX, i64::MIN, 9_007_199_254_740_993]
    } else {
        vec![7, -7]
    };
    prop_oneof![
        3 => Just(None),
        4 => (-5i64..50).prop_map(|i| Some(AttrValue::Int(i))),
        1 => prop::sample::select(vec![0.5, 2.5, -1.5, 1e300, f64::NAN, 3.0])
            .prop_map(|x| Some(AttrValue::Float(x))),
        1 => prop::sample::select(huge_ints).prop_map(|i| Some(AttrValue::Int(i))),
        3 => prop::sample::select(STRS.to_vec()).prop_map(|s| Some(AttrValue::Str(s.into()))),
        2 => any::<bool>().prop_map(|b| Some(AttrValue::Bool(b))),
        2 => prop::collection::vec(prop::sample::select(STRS.to_vec()), 0..3)
            .prop_map(|l| Some(AttrValue::List(l.into_iter().map(String::from).collect()))),
    ]
}

/// A subject's data besides its key: kind, birth (year, month, day), sex, attributes, tags.
#[derive(Debug, Clone)]
struct Data {
    person: bool,
    birth: (i32, u32, u32),
    male: bool,
    attrs: [Option<AttrValue>; 7],
    tags: Vec<String>,
}

fn data() -> impl Strategy<Value = Data> {
    (
        any::<bool>(),
        prop_oneof![
            (1940i32..2012, 1u32..13, 1u32..29),
            Just((2004, 2, 29)),
            Just((2008, 3, 7)),
            Just((2010, 3, 8)),
        ],
        any::<bool>(),
        NAMES.map(|n| value(n == "big")),
        prop::collection::vec(prop::sample::select(vec!["t1", "t2", "t3"]), 0..3),
    )
        .prop_map(|(person, birth, male, attrs, tags)| {
            let mut tags: Vec<String> = tags.into_iter().map(String::from).collect();
            tags.sort();
            tags.dedup();
            Data {
                person,
                birth,
                male,
                attrs,
                tags,
            }
        })
}

const NAMES: [&str; 7] = [
    "employees",
    "score",
    "big",
    "district",
    "founded",
    "flag",
    "skills",
];

/// The `i`-th subject of a case (unique key per `i`), with `d`'s data.
fn subject(i: usize, d: &Data) -> Subject {
    let id = if d.person {
        let (y, m, dd) = d.birth;
        let first17 = format!(
            "310101{y:04}{m:02}{dd:02}{:02}{}",
            i % 100,
            if d.male { 1 } else { 2 }
        );
        SubjectId::parse(
            domain::SubjectKind::Person,
            &format!("{first17}{}", resident_id_check_char(&first17).unwrap()),
        )
        .unwrap()
    } else {
        let first17 = format!("914403007{:08}", i);
        SubjectId::parse(
            domain::SubjectKind::Enterprise,
            &format!("{first17}{}", credit_code_check_char(&first17).unwrap()),
        )
        .unwrap()
    };
    let attributes: BTreeMap<String, AttrValue> = NAMES
        .iter()
        .zip(&d.attrs)
        .filter_map(|(n, v)| Some((n.to_string(), v.clone()?)))
        .collect();
    Subject {
        id,
        name: String::new(),
        mobile: None,
        wechat_openid: None,
        attributes,
    }
}

/// Parameter values on the evaluation date: `limit` and `rate` may have one or not
/// (no value in force), `unset` never has one.
fn param_values() -> impl Strategy<Value = ParamValues> {
    (
        prop::option::of(-5i64..50),
        prop::option::of(prop::sample::select(vec![0.5, 2.5, -1.5, 1e300, 3.0])),
    )
        .prop_map(|(limit, rate)| {
            let mut p = ParamValues::empty();
            if let Some(l) = limit {
                p = p.with("limit", l as f64);
            }
            if let Some(r) = rate {
                p = p.with("rate", r);
            }
            p
        })
}

fn check(rules: &[Rule], subjects: &[(Subject, Vec<String>)]) -> Result<(), TestCaseError> {
    let ix = PopulationIndex::build(subjects.iter().map(|(s, t)| (s, t.as_slice())));
    for r in rules {
        let plan = Plan::compile(r);
        let got = plan.run(&ix, today());
        for (s, tags) in subjects {
            let id = ix.id_of(s.id.as_str()).unwrap();
            let f = Facts::new(s, tags, today());
            let want = r.matches_interpreted(&f);
            prop_assert_eq!(
                r.matches(&f),
                want,
                "compiled: rule {} subject {:?} tags {:?}",
                r.source(),
                s.attributes,
                tags
            );
            prop_assert_eq!(
                got.contains(id),
                want,
                "rule {} plan {} subject {:?} tags {:?}",
                r.source(),
                plan.description(),
                s.attributes,
                tags
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn bulk_plan_agrees_with_the_interpreter(
        src in rule(),
        people in prop::collection::vec(data(), 1..24),
        changes in prop::collection::vec((0usize..24, data()), 0..6),
        params in param_values(),
    ) {
        let Ok(r) = Rule::parse(&src) else { return Err(TestCaseError::reject("refused")) };
        // Both back ends read the parameter values bound for the date.
        let r = r.bind(&params);
        let mut subjects: Vec<(Subject, Vec<String>)> = people
            .iter()
            .enumerate()
            .map(|(i, d)| (subject(i, d), d.tags.clone()))
            .collect();
        check(std::slice::from_ref(&r), &subjects)?;
        // Upserts: the same keys with new data, applied to a built index.
        let mut ix = PopulationIndex::build(subjects.iter().map(|(s, t)| (s, t.as_slice())));
        for (i, d) in changes {
            let i = i % subjects.len();
            subjects[i] = (subject(i, &d), d.tags.clone());
            ix.upsert(&subjects[i].0, &subjects[i].1);
        }
        let got = Plan::compile(&r).run(&ix, today());
        for (s, tags) in &subjects {
            let id = ix.id_of(s.id.as_str()).unwrap();
            prop_assert_eq!(got.contains(id), r.matches(&Facts::new(s, tags, today())), "after upserts: {}", src);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Many rules at once, as continuous matching uses them: the rule set (compiled
    /// predicates behind a pre-filter) finds exactly the rules the interpreter matches.
    #[test]
    fn rule_set_agrees_with_the_interpreter(
        srcs in prop::collection::vec(rule(), 1..24),
        people in prop::collection::vec(data(), 1..12),
        params in param_values(),
    ) {
        let rules: Vec<Rule> = srcs
            .iter()
            .filter_map(|s| Rule::parse(s).ok())
            .map(|r| r.bind(&params))
            .collect();
        let set = domain::rule::compiled::RuleSet::new(&rules);
        for (i, d) in people.iter().enumerate() {
            let s = subject(i, d);
            let f = Facts::new(&s, &d.tags, today());
            let want: Vec<usize> = (0..rules.len())
                .filter(|k| rules[*k].matches_interpreted(&f))
                .collect();
            prop_assert_eq!(set.matching(&f), want, "rules {:?} subject {:?} tags {:?}", srcs, s.attributes, d.tags);
        }
    }
}

#[test]
fn generated_rules_mostly_parse() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut ok = 0;
    for _ in 0..500 {
        let src = rule().new_tree(&mut runner).unwrap().current();
        ok += usize::from(Rule::parse(&src).is_ok());
    }
    assert!(ok > 300, "only {ok} of 500 generated rules parse");
}

/// The bulk paths that only dense populations take (bit-sliced ranges, merged bounds,
/// comparisons rewritten onto one column, block passes) and those of sparse scopes
/// (ids evaluated one by one), checked id by id against the interpreter over three
/// chunks of subjects. A wrong bound or a wrong rewrite fails here.
#[test]
fn dense_ranges_and_fused_arithmetic_agree_with_the_interpreter() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let n = 3 * 65_536 + 1_000;
    let subjects: Vec<(Subject, Vec<String>)> = (0..n)
        .map(|i| {
            // keys differ by birth date where `i % 100` repeats: a permutation of days
            let born = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
                + chrono::Days::new((i as u64 / 100) * 7_919 % 26_000);
            let d = Data {
                person: next(10) != 0,
                birth: (born.year(), born.month(), born.day()),
                male: next(2) == 0,
                attrs: [
                    // employees: integers, some missing, a few beyond the slices
                    match next(20) {
                        0 => None,
                        1 => Some(AttrValue::Int(-(next(50) as i64))),
                        2 => Some(AttrValue::Int(1 << 30)),
                        _ => Some(AttrValue::Int(next(300) as i64)),
                    },
                    // score: integers with some decimals (no bit-sliced ranges)
                    match next(10) {
                        0 => Some(AttrValue::Float(next(100) as f64 + 0.5)),
                        1 => Some(AttrValue::Str("x".into())),
                        _ => Some(AttrValue::Int(next(100) as i64)),
                    },
                    None,
                    None,
                    None,
                    match next(3) {
                        0 => None,
                        1 => Some(AttrValue::Bool(true)),
                        _ => Some(AttrValue::Bool(false)),
                    },
                    None,
                ],
                tags: match next(100) {
                    0 => vec!["t1".to_string()],
                    1..=60 => vec!["t2".to_string()],
                    _ => vec![],
                },
            };
            (subject(i, &d), d.tags.clone())
        })
        .collect();
    let rules = [
        "age >= 18 && age <= 59",
        "age > 30 && employees >= 10 && employees < 40 && age < 65.5",
        "employees > 250 && employees <= 20",
        "score >= 10 && score < 60",
        "employees / 12 >= 5",
        "employees / 12 == 5",
        "employees * 3 < 100",
        "7 * employees >= 100 && employees * 3 != 99",
        "employees + 7 == 20 || employees - 3 > 280",
        "age - 3 >= 40 && 20 <= age / 2",
        "age * 4 <= 200",
        "score / 12 >= 2",
        "employees * 100 / (age * 12) >= 20",
        "'t1' in tags && employees * 2 + score > 50",
        "'t2' in tags && employees * 2 + score > 50",
        "'t1' in tags && (flag ? employees : score) * 2 >= 60",
        "'t2' in tags && (flag ? employees : score) * 2 >= 60",
        "'t1' in tags && employees % 7 in [1, 3]",
        "flag == true && employees < 100",
        "flag != true",
        "false == flag || employees > 290",
    ];
    let rules: Vec<Rule> = rules.iter().map(|r| Rule::parse(r).unwrap()).collect();
    check(&rules, &subjects).unwrap();
}
