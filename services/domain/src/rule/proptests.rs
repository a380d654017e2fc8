//! Property tests of the rule language: the parser never panics, negation and
//! explanations agree with matching, and canonical text means the same rule.

use super::tests::{enterprise, person, today};
use super::*;
use crate::subject::Subject;
use proptest::prelude::*;

/// Atomic conditions over a small vocabulary, including attributes subjects may lack.
fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..40).prop_map(|n| format!("employees < {n}")),
        (0i64..40).prop_map(|n| format!("employees * 1.5 >= {n}")),
        (0i64..40).prop_map(|n| format!("employees % 7 == {n} % 7")),
        (16i64..70).prop_map(|n| format!("age > {n}")),
        Just("employees < params.limit".to_string()),
        (0i64..20).prop_map(|n| format!("age >= params.min_age + {n}")),
        Just("kind == 'person'".to_string()),
        Just("kind == 'enterprise'".to_string()),
        Just("sex == 'male'".to_string()),
        Just("has(attrs.employees)".to_string()),
        Just("has(attrs.district)".to_string()),
        Just("district == '浦东新区'".to_string()),
        Just("district in ['黄浦区', '浦东新区']".to_string()),
        Just("district.startsWith('浦')".to_string()),
        Just("district.endsWith('区')".to_string()),
        Just("'t1' in tags".to_string()),
        Just("'黄浦区' == district".to_string()),
        Just("sex in ['female']".to_string()),
        Just("district in []".to_string()),
        Just("kind in ['enterprise', 'person']".to_string()),
        Just("tags.contains('t2')".to_string()),
        (0i64..3).prop_map(|n| format!("size(tags) > {n}")),
        Just("'python' in skills".to_string()),
        Just("is_veteran".to_string()),
        Just("graduation_date >= '2024-07-01'".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
    ]
}

/// The parameter values every generated rule is bound to.
fn bound(src: &str) -> Rule {
    let values = crate::param::ParamValues::empty()
        .with("limit", 20.0)
        .with("min_age", 30.0);
    Rule::parse(src).unwrap().bind(&values)
}

/// Rules built from atoms with `&&`, `||`, `!`, `?:` and parentheses.
fn rule() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

/// Subjects with each attribute present or not.
fn subject() -> impl Strategy<Value = Subject> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0i64..40),
        prop::option::of(prop::sample::select(vec!["浦东新区", "黄浦区", "静安区"])),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec![
            "2023-06-30",
            "2024-07-01",
            "2025-01-15",
        ])),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["python", "rust", "welding"]),
            0..3,
        )),
        1950u32..2008,
    )
        .prop_map(
            |(is_person, male, employees, district, veteran, grad, skills, year)| {
                let mut attrs = serde_json::Map::new();
                if let Some(n) = employees {
                    attrs.insert("employees".into(), n.into());
                }
                if let Some(d) = district {
                    attrs.insert("district".into(), d.into());
                }
                if let Some(v) = veteran {
                    attrs.insert("is_veteran".into(), v.into());
                }
                if let Some(g) = grad {
                    attrs.insert("graduation_date".into(), g.into());
                }
                if let Some(s) = skills {
                    attrs.insert("skills".into(), s.into());
                }
                let attrs = serde_json::Value::Object(attrs);
                if is_person {
                    person(&format!("{year}0612"), male, attrs)
                } else {
                    enterprise(attrs)
                }
            },
        )
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec!["t1".to_string(), "t2".to_string(), "t3".to_string()]),
        0..3,
    )
}

/// Whether the rule reads a value the subject lacks.
fn reads_missing(rule: &Rule, facts: &Facts<'_>) -> bool {
    rule.explain(facts)
        .clauses
        .iter()
        .any(|c| c.values.values().any(|v| v == explain::ABSENT))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(src in "\\PC{0,60}") {
        let _ = Rule::parse(&src);
        let _ = Rule::parse_number(&src);
    }

    #[test]
    fn parse_never_panics_on_rule_like_text(
        src in "[a-z_ .()\\[\\]'\"!&|<>=+*/%?:0-9,-]{0,60}"
    ) {
        let _ = Rule::parse(&src);
        let _ = Rule::parse_number(&src);
    }

    /// Whatever text parses also compiles and evaluates without panicking; whatever is
    /// refused says where and why.
    #[test]
    fn rule_like_text_compiles_and_evaluates_or_is_refused_clearly(
        src in "[a-z_ .()\\[\\]'!&|<>=+*/%0-9,-]{0,40}|\\PC{0,20}",
        s in subject(),
        tags in tags(),
    ) {
        let facts = Facts::new(&s, &tags, today());
        for parsed in [Rule::parse(&src), Rule::parse_number(&src)] {
            match parsed {
                Ok(rule) => {
                    let matched = rule.matches(&facts);
                    let _ = rule.explain(&facts);
                    let _ = rule.eval_number(&facts);
                    prop_assert_eq!(matched, rule.matches_interpreted(&facts));
                }
                Err(e) => {
                    prop_assert!(!e.message.trim().is_empty(), "empty message for {:?}", src);
                    prop_assert!(e.line >= 1 && e.column >= 1, "{:?}: {}", src, e);
                }
            }
        }
    }

    #[test]
    fn generated_rules_parse(src in rule()) {
        prop_assert!(Rule::parse(&src).is_ok(), "{}", src);
    }

    #[test]
    fn negation_flips_when_nothing_is_missing(src in rule(), s in subject(), tags in tags()) {
        let r = bound(&src);
        let not = bound(&format!("!({src})"));
        let f = Facts::new(&s, &tags, today());
        if !reads_missing(&r, &f) {
            prop_assert_eq!(r.matches(&f), !not.matches(&f), "{}", src);
        } else {
            // Missing values never make both a rule and its negation hold.
            prop_assert!(!(r.matches(&f) && not.matches(&f)), "{}", src);
        }
    }

    #[test]
    fn explanation_agrees_with_matching(src in rule(), s in subject(), tags in tags()) {
        let r = bound(&src);
        let f = Facts::new(&s, &tags, today());
        let e = r.explain(&f);
        prop_assert!(!e.clauses.is_empty());
        prop_assert_eq!(r.matches(&f), e.held(), "{}", src);
    }

    #[test]
    fn compiled_predicate_agrees_with_the_interpreter(
        src in rule(), s in subject(), tags in tags()
    ) {
        let r = bound(&src);
        let f = Facts::new(&s, &tags, today());
        prop_assert_eq!(r.matches(&f), r.matches_interpreted(&f), "{}", src);
        let compiled = compiled::Compiled::new(r.expr(), false);
        prop_assert_eq!(compiled.matches(&f), r.matches_interpreted(&f), "{}", src);
        // Unbound parameters are unknown on both paths.
        let unbound = Rule::parse(&src).unwrap();
        prop_assert_eq!(unbound.matches(&f), unbound.matches_interpreted(&f), "{}", src);
    }

    #[test]
    fn rule_set_finds_what_the_interpreter_finds(
        srcs in prop::collection::vec(rule(), 1..16),
        subjects in prop::collection::vec((subject(), tags()), 1..8),
    ) {
        let mut rules: Vec<Rule> = srcs.iter().map(|s| bound(s)).collect();
        rules.push(Rule::parse_number("employees * 2").unwrap());
        let set = compiled::RuleSet::new(&rules);
        prop_assert_eq!(set.len(), rules.len());
        for (s, tags) in &subjects {
            let f = Facts::new(s, tags, today());
            let want: Vec<usize> = (0..rules.len())
                .filter(|i| rules[*i].matches_interpreted(&f))
                .collect();
            prop_assert_eq!(&set.matching(&f), &want, "{:?}", srcs);
            prop_assert_eq!(&set.matching_unfiltered(&f), &want, "{:?}", srcs);
            prop_assert!(set.candidates(&f) >= want.len());
        }
    }

    #[test]
    fn canonical_text_is_the_same_rule(src in rule(), s in subject(), tags in tags()) {
        let r = bound(&src);
        let again = bound(&r.canonical());
        prop_assert_eq!(again.canonical(), r.canonical());
        let f = Facts::new(&s, &tags, today());
        prop_assert_eq!(r.matches(&f), again.matches(&f), "{} vs {}", src, r.canonical());
        for clause in r.explain(&f).clauses {
            let c = bound(&clause.clause);
            prop_assert_eq!(c.matches(&f), clause.held, "{}", clause.clause);
        }
    }
}
