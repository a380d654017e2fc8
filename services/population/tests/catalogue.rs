//! The demo catalogue: its rules and drafts pass the domain's checks, its templates keep
//! the channel rules, and its policies reach a plausible share of the population.

use chrono::NaiveDate;
use domain::channel::Channel;
use domain::subject::check_attribute_name;
use domain::template::{RenderContext, Template};
use domain::{Facts, Rule, Subject};
use population::catalogue::{self, CampaignSpec, HOTLINE_CLOSING, SMS_CLOSING};
use population::PopulationConfig;
use std::collections::{BTreeMap, HashSet};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

#[test]
fn tag_names_and_descriptions() {
    let tags = catalogue::tags(today());
    let mut names = HashSet::new();
    for t in &tags {
        // tag names follow the attribute-name grammar
        check_attribute_name(t.name).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert!(names.insert(t.name), "{} twice", t.name);
        assert!(!t.description.is_empty() && !t.rule.is_empty());
    }
    for wanted in [
        "small_micro_enterprise",
        "recent_graduate",
        "graduating_student",
        "registered_unemployed",
        "flexible_worker",
        "youth",
        "key_group",
    ] {
        assert!(names.contains(wanted), "{wanted}");
    }
    // time-driven rules carry concrete cohorts for the date
    let recent = tags.iter().find(|t| t.name == "recent_graduate").unwrap();
    assert!(
        recent.rule.contains("graduation_year >= 2025"),
        "{}",
        recent.rule
    );
    let grad = tags
        .iter()
        .find(|t| t.name == "graduating_student")
        .unwrap();
    assert!(
        grad.rule.contains("graduation_year == 2027"),
        "{}",
        grad.rule
    );
    let spring = catalogue::tags(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    let grad = spring
        .iter()
        .find(|t| t.name == "graduating_student")
        .unwrap();
    assert!(
        grad.rule.contains("graduation_year == 2026"),
        "{}",
        grad.rule
    );
}

#[test]
fn policy_texts_are_complete() {
    let today = today();
    let policies = catalogue::policies(today);
    assert!(policies.len() >= 5);
    for p in &policies {
        assert!(p.title.chars().count() <= 20, "{}", p.title);
        assert!(p.doc_number.contains('〔') && p.doc_number.ends_with('号'));
        assert!(p.issuer.starts_with("上海市"));
        assert!(!p.category.is_empty() && p.summary.chars().count() >= 40);
        assert!(p.interpretation.matches("问：").count() >= 3, "{}", p.title);
        assert_eq!(
            p.interpretation.matches("问：").count(),
            p.interpretation.matches("答：").count()
        );
        assert!(p.apply_url.starts_with("https://zwdt.sh.gov.cn/"));
        let (from, to) = (p.effective_from.unwrap(), p.effective_to.unwrap());
        assert!(from <= today && today <= to, "{} {from}..{to}", p.title);
    }
}

#[test]
fn every_rule_parses() {
    let today = today();
    for t in catalogue::tags(today) {
        Rule::parse(&t.rule).unwrap_or_else(|e| panic!("tag {}: {e}\n{}", t.name, t.rule));
    }
    let params = catalogue::params();
    let defined = |n: &str| params.iter().any(|p| p.name == n);
    for p in &params {
        let checked = p
            .clone()
            .check()
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(
            checked.value_on(today).is_some(),
            "{} has a value today",
            p.name
        );
    }
    let mut read = 0;
    for p in catalogue::policies(today) {
        let r = Rule::parse(&p.eligibility).unwrap_or_else(|e| panic!("{}: {e}", p.title));
        r.check_params(&defined)
            .unwrap_or_else(|e| panic!("{}: {e}", p.title));
        read += r.params().len();
        if let Some(b) = &p.benefit {
            let r = Rule::parse_number(b).unwrap_or_else(|e| panic!("{} benefit: {e}", p.title));
            r.check_params(&defined)
                .unwrap_or_else(|e| panic!("{} benefit: {e}", p.title));
            read += r.params().len();
        }
    }
    assert!(read >= 3, "the demo policies read parameters");
    for c in catalogue::campaigns() {
        if let Some(f) = &c.audience_filter {
            Rule::parse(f).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
    }
}

#[test]
fn every_policy_and_campaign_draft_checks() {
    let policies = catalogue::policies(today());
    for p in &policies {
        p.clone()
            .check()
            .unwrap_or_else(|e| panic!("{}: {e}", p.title));
    }
    let campaigns = catalogue::campaigns();
    assert_eq!(campaigns.len(), policies.len());
    for (i, c) in campaigns.iter().enumerate() {
        assert_eq!(c.policy_index, i);
        c.to_draft(&format!("pol_{i}"))
            .check()
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

/// Renders a template with the product's own renderer.
fn render(
    channel: Channel,
    src: &str,
    subject: &Subject,
    policy: &domain::policy::PolicyDraft,
    benefit: Option<f64>,
) -> String {
    let t = Template::compile(channel, src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let ctx = RenderContext {
        why: String::new(),
        subject: RenderContext::subject_values(subject),
        policy: RenderContext::policy_values(policy),
        benefit,
        // as long as a real recipient link
        link: "https://policy.rsj.sh.gov.cn/l/Ab3dE9fG2h".into(),
    };
    t.render(&ctx).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn templates_keep_the_channel_rules() {
    let today = today();
    let policies = catalogue::policies(today);
    // the longest names of a real population, and a large benefit
    let cfg = PopulationConfig {
        residents: 5_000,
        enterprises: 5_000,
        ..PopulationConfig::new(today)
    };
    let longest =
        |it: &mut dyn Iterator<Item = Subject>| it.max_by_key(|s| s.name.chars().count()).unwrap();
    let person = longest(&mut population::residents(&cfg));
    let firm = longest(&mut population::enterprises(&cfg));
    for c in catalogue::campaigns() {
        let CampaignSpec {
            templates,
            channels,
            policy_index,
            ..
        } = &c;
        let policy = &policies[*policy_index];
        let subject = if policy.eligibility.contains("'enterprise'") {
            &firm
        } else {
            &person
        };
        // a worst case for length: 9 digits and cents
        let benefit = policy.benefit.as_ref().map(|_| 9_876_543.21);
        let keys: HashSet<&str> = templates.keys().map(String::as_str).collect();
        assert_eq!(keys, channels.iter().copied().collect(), "{}", c.name);
        for (channel, src) in templates {
            if src.contains("benefit") {
                assert!(
                    policy.benefit.is_some(),
                    "{}: benefit without a formula",
                    c.name
                );
            }
            let channel = Channel::parse(channel).unwrap();
            let out = render(channel, src, subject, policy, benefit);
            let chars = out.chars().count();
            match channel {
                Channel::Sms => {
                    assert!(!src.contains('【') && !src.contains('】'), "{src}");
                    assert!(src.contains("{{ link }}"), "{src}");
                    assert!(out.ends_with(SMS_CLOSING), "{out}");
                    // with the bureau's signature, at most two billed parts
                    let parts = domain::sms::segments("上海人社", &out);
                    assert!(
                        parts <= 2,
                        "{} SMS is {chars} chars, {parts} parts: {out}",
                        c.name
                    );
                }
                Channel::Hotline => {
                    assert!(!src.contains("link") && !out.contains("http"), "{src}");
                    assert!(out.ends_with(HOTLINE_CLOSING), "{out}");
                    assert!(chars <= 200, "{} hotline is {chars} chars: {out}", c.name);
                }
                Channel::Wechat => {
                    for line in out.lines() {
                        let (key, value) =
                            line.split_once(": ").unwrap_or_else(|| panic!("{line}"));
                        let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
                        assert!(kind.len() < key.len(), "{key} has no number");
                        let n = value.chars().count();
                        assert!((1..=20).contains(&n), "{key} = {value} ({n} chars)");
                        match kind {
                            "thing" => {}
                            "amount" => {
                                let digits = value.chars().filter(char::is_ascii_digit).count();
                                assert!(value.starts_with('¥') && digits <= 10, "{value}");
                            }
                            "date" => {
                                NaiveDate::parse_from_str(value, "%Y-%m-%d").unwrap();
                            }
                            "phrase" => assert!(n <= 5, "{value}"),
                            other => panic!("keyword type {other}"),
                        }
                    }
                }
            }
            println!("[{}] {channel}: {out}", c.name);
        }
    }
}

/// The demo's tag rules, by name.
fn tag_rules(today: NaiveDate) -> Vec<(String, Rule)> {
    catalogue::tags(today)
        .into_iter()
        .map(|t| (t.name.to_string(), Rule::parse(&t.rule).unwrap()))
        .collect()
}

/// The tags `s` carries (demo tag rules read no other tag).
fn tags_of(rules: &[(String, Rule)], s: &Subject, today: NaiveDate) -> Vec<String> {
    let none: [String; 0] = [];
    rules
        .iter()
        .filter(|(_, r)| r.matches(&Facts::new(s, &none, today)))
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn audience_shares_are_plausible() {
    let today = today();
    let cfg = PopulationConfig {
        residents: 50_000,
        enterprises: 5_000,
        ..PopulationConfig::new(today)
    };
    let tag_rules = tag_rules(today);
    let params = catalogue::param_values(today);
    let policies: Vec<(String, Rule, Option<Rule>)> = catalogue::policies(today)
        .into_iter()
        .map(|p| {
            let benefit = p
                .benefit
                .as_deref()
                .map(|b| Rule::parse_number(b).unwrap().bind(&params));
            (
                p.title.clone(),
                Rule::parse(&p.eligibility).unwrap().bind(&params),
                benefit,
            )
        })
        .collect();
    let mut tag_counts = BTreeMap::<String, (u64, u64)>::new();
    let mut matched = vec![(0u64, 0u64, 0.0f64); policies.len()];
    for s in population::subjects(&cfg) {
        let person = s.kind() == domain::SubjectKind::Person;
        let tags = tags_of(&tag_rules, &s, today);
        for t in &tags {
            let e = tag_counts.entry(t.clone()).or_default();
            if person {
                e.0 += 1
            } else {
                e.1 += 1
            }
        }
        let facts = Facts::new(&s, &tags, today);
        for (i, (_, rule, benefit)) in policies.iter().enumerate() {
            if rule.matches(&facts) {
                if person {
                    matched[i].0 += 1;
                } else {
                    matched[i].1 += 1;
                }
                if let Some(b) = benefit {
                    matched[i].2 += b
                        .eval_number(&facts)
                        .expect("benefit of an eligible subject");
                }
            }
        }
    }
    for (tag, (p, e)) in &tag_counts {
        println!(
            "tag {tag:<24} persons {:>5.2}%  enterprises {:>5.2}%",
            100.0 * *p as f64 / cfg.residents as f64,
            100.0 * *e as f64 / cfg.enterprises as f64
        );
    }
    for (i, (title, _, _)) in policies.iter().enumerate() {
        let (p, e, total) = matched[i];
        assert!(p == 0 || e == 0, "{title} matches both kinds");
        let (n, base) = if p > 0 {
            (p, cfg.residents)
        } else {
            (e, cfg.enterprises)
        };
        let share = n as f64 / base as f64;
        println!(
            "policy {i} {title}: {n} eligible = {:.2}% of {}; mean benefit {:.0}",
            100.0 * share,
            if p > 0 { "residents" } else { "enterprises" },
            if n > 0 { total / n as f64 } else { 0.0 }
        );
        assert!((0.001..=0.40).contains(&share), "{title}: {share}");
    }
}

#[test]
fn demo_provider_templates_register_and_bindings_pass_the_provider_rules() {
    let templates = catalogue::provider_templates("https://policy.rsj.sh.gov.cn");
    for t in &templates {
        t.check().unwrap_or_else(|e| panic!("{e}"));
    }
    let policies = catalogue::policies(today());
    let campaigns = catalogue::campaigns();
    for (i, channel, binding) in catalogue::template_bindings() {
        let mut draft = campaigns[i].to_draft(&format!("pol_{i}"));
        draft.templates.remove(channel);
        draft.bindings.insert(channel.to_string(), binding);
        let mut checked = draft.check().unwrap_or_else(|e| panic!("{e}"));
        checked.attach(&templates).unwrap_or_else(|e| panic!("{e}"));
        checked
            .check_samples(
                &RenderContext::policy_values(&policies[i]),
                policies[i].benefit.as_ref().map(|_| 12_345.0),
                "https://policy.rsj.sh.gov.cn/l/Ab3dE9fG2hAb3dE9fG2h12",
                "Ab3dE9fG2hAb3dE9fG2h12",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // A large benefit still fits the amount keyword / variable.
        let ctx = RenderContext {
            why: String::new(),
            subject: [(
                "name".to_string(),
                serde_json::Value::from("上海浦江精密机械制造有限公司"),
            )]
            .into_iter()
            .collect(),
            policy: RenderContext::policy_values(&policies[i]),
            benefit: Some(9_876_543.21),
            link: String::new(),
        };
        let ch = Channel::parse(channel).unwrap();
        let bound = checked.bindings[&ch]
            .render(&ctx, "Ab3dE9fG2hAb3dE9fG2h12")
            .unwrap_or_else(|e| panic!("{channel}: {e}"));
        assert!(bound.text.contains("9,876,543.21"), "{}", bound.text);
    }
}

/// What a resident must never read: rule syntax, attribute names, English codes.
fn rule_syntax(sentence: &str) -> Option<&'static str> {
    const FORBIDDEN: [&str; 14] = [
        ">=", "<=", "==", "!=", "&&", "||", "params.", "in tags", "has(", "attrs.", "'", "<", ">",
        "_",
    ];
    if let Some(f) = FORBIDDEN.iter().find(|f| sentence.contains(**f)) {
        return Some(f);
    }
    sentence
        .chars()
        .any(|c| c.is_ascii_alphabetic())
        .then_some("latin letters")
}

#[test]
fn demo_attributes_declare_every_generated_attribute() {
    let catalogue = domain::attribute::Catalogue::new(
        catalogue::attributes()
            .into_iter()
            .map(|d| d.check().unwrap_or_else(|e| panic!("{e}"))),
    );
    let cfg = PopulationConfig {
        residents: 3_000,
        enterprises: 1_000,
        ..PopulationConfig::new(today())
    };
    for s in population::subjects(&cfg) {
        for name in s.attributes.keys() {
            assert!(catalogue.get(name).is_some(), "{name} is not declared");
        }
        let before = s.attributes.clone();
        let conformed = catalogue
            .conform(s, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            conformed.attributes, before,
            "values already have their types"
        );
    }
}

/// What the demo's explanations are worded with: its attributes, tags and parameters.
fn demo_glossary(today: NaiveDate) -> domain::rule::Glossary {
    domain::rule::Glossary::new(
        domain::attribute::Catalogue::new(catalogue::attributes()),
        catalogue::tags(today)
            .into_iter()
            .map(|t| (t.name.to_string(), t.description)),
        catalogue::params(),
    )
}

/// Every eligible subject of every demo policy reads why in sentences: the recipient
/// page and `{{ why }}` show nothing of the rule's syntax.
#[test]
fn demo_explanations_are_sentences_without_rule_syntax() {
    let today = today();
    let glossary = demo_glossary(today);
    let cfg = PopulationConfig {
        residents: 20_000,
        enterprises: 3_000,
        ..PopulationConfig::new(today)
    };
    let tag_rules = tag_rules(today);
    let params = catalogue::param_values(today);
    let policies: Vec<(String, Rule)> = catalogue::policies(today)
        .into_iter()
        .map(|p| (p.title, Rule::parse(&p.eligibility).unwrap().bind(&params)))
        .collect();
    let mut explained = vec![0u32; policies.len()];
    for s in population::subjects(&cfg) {
        let tags = tags_of(&tag_rules, &s, today);
        let facts = Facts::new(&s, &tags, today);
        for (i, (title, rule)) in policies.iter().enumerate() {
            if !rule.matches(&facts) {
                continue;
            }
            let e = rule.explain_in_words(&facts, &glossary);
            assert_eq!(e.sentences().len(), e.clauses.len(), "{title}");
            for sentence in e.sentences() {
                assert!(!sentence.is_empty(), "{title}");
                if let Some(bad) = rule_syntax(sentence) {
                    panic!("{title}: {bad:?} in {sentence:?} ({e})");
                }
            }
            if explained[i] == 0 {
                println!("{title}: {}", e.why());
            }
            explained[i] += 1;
        }
    }
    for (i, (title, _)) in policies.iter().enumerate() {
        assert!(
            explained[i] > 0,
            "{title}: nobody eligible, nothing checked"
        );
    }
}

#[test]
fn the_issue_example_reads_as_written() {
    let today = today();
    let glossary = demo_glossary(today);
    let firm = population::enterprises(&PopulationConfig {
        residents: 0,
        enterprises: 1,
        ..PopulationConfig::new(today)
    })
    .next()
    .unwrap();
    let mut firm = firm;
    firm.attributes
        .insert("insured_months".into(), domain::AttrValue::Int(181));
    let rule =
        Rule::parse("insured_months >= params.min_insured_months && 'sme_enterprise' in tags")
            .unwrap()
            .bind(&catalogue::param_values(today));
    let tags = vec!["sme_enterprise".to_string()];
    let e = rule.explain_in_words(&Facts::new(&firm, &tags, today), &glossary);
    assert_eq!(
        e.why(),
        "参保月数 181 个月，不少于 12 个月（沪人社规〔2023〕12号）；属于“中小微企业”"
    );
}
