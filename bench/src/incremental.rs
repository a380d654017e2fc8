//! B2: one subject changed: recompute its tags and find every matching active policy,
//! against 100 and 1,000 active policies. Ours is a [`RuleSet`]: the rules compiled to
//! predicates over pre-resolved attribute slots, filed by a necessary condition so a
//! subject evaluates only the policies it can match. Two references on the same
//! subjects: our own tree-walking interpreter ([`Rule::matches_interpreted`], which
//! must find the same policies) and the `cel` crate's generic interpreter.

use super::data::{tag_rules, tags_of, today};
use super::rules::RULES;
use domain::rule::compiled::RuleSet;
use domain::{AttrValue, Facts, Rule, Subject, SubjectId};
use population::{Generator, PopulationConfig};
use std::sync::Arc;
use std::time::Instant;

/// `n` active policies: the B1 rules with varied age thresholds.
pub fn policies(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            format!(
                "{} && age >= {}",
                RULES[k % RULES.len()].cel,
                16 + (k / 10) % 30
            )
        })
        .collect()
}

/// p50 and p99 in µs.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
    }
}

pub struct B2 {
    pub policies: usize,
    pub ours: Percentiles,
    /// Our interpreter (the path before compilation), same rules and subjects.
    pub interpreted: Percentiles,
    /// Subjects for which the compiled set and our interpreter differ (must be 0).
    pub compiled_mismatches: usize,
    /// Policies evaluated per subject after the pre-filter (mean).
    pub candidates_per_subject: f64,
    pub reference: Percentiles,
    /// Subjects for which the two engines found different policies (expected where
    /// CEL's semantics differ from ours, e.g. missing attributes are errors there).
    pub disagreements: usize,
    pub matches_per_subject: f64,
}

/// Runs B2 on `samples` residents with `n` active policies.
pub fn run(n: usize, samples: u64, seed: u64) -> anyhow::Result<B2> {
    let gen = Generator::new(PopulationConfig {
        residents: samples,
        enterprises: 0,
        seed,
        today: today(),
    });
    let tags = tag_rules();
    let texts = policies(n);
    let ours: Vec<Rule> = texts
        .iter()
        .map(|t| Rule::parse(t))
        .collect::<Result<_, _>>()?;
    let cel_tags: Vec<(String, cel::Program)> = tags
        .iter()
        .map(|(name, r)| Ok((name.clone(), cel::Program::compile(r.source())?)))
        .collect::<Result<_, cel::ParseErrors>>()
        .map_err(|e| anyhow::anyhow!("cel: {e:?}"))?;
    let cel_policies: Vec<cel::Program> = texts
        .iter()
        .map(|t| cel::Program::compile(t))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("cel: {e:?}"))?;
    let tag_set = RuleSet::new(tags.iter().map(|(_, r)| r));
    let policy_set = RuleSet::new(&ours);
    let (mut t_ours, mut t_interp, mut t_ref) = (Vec::new(), Vec::new(), Vec::new());
    let (mut disagreements, mut matched, mut mismatches, mut candidates) = (0, 0usize, 0, 0);
    let (mut tag_hits, mut hits) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let s = gen.resident(i * 7919 % 1_000_000);
        let t = Instant::now();
        tag_set.matching_into(&Facts::new(&s, &[], today()), &mut tag_hits);
        let subject_tags: Vec<String> = tag_hits.iter().map(|k| tags[*k].0.clone()).collect();
        let f = Facts::new(&s, &subject_tags, today());
        policy_set.matching_into(&f, &mut hits);
        t_ours.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(&hits);
        candidates += policy_set.candidates(&f);

        let t = Instant::now();
        let interp_tags = tags_of(&tags, &s);
        let fi = Facts::new(&s, &interp_tags, today());
        let interp: Vec<usize> = (0..ours.len())
            .filter(|k| ours[*k].matches_interpreted(&fi))
            .collect();
        t_interp.push(t.elapsed().as_secs_f64() * 1e6);
        mismatches += usize::from(interp != hits || interp_tags != subject_tags);

        let t = Instant::now();
        let mut ctx = context(&s);
        let ref_tags: Vec<cel::Value> = cel_tags
            .iter()
            .filter(|(_, p)| matches!(p.execute(&ctx), Ok(cel::Value::Bool(true))))
            .map(|(n, _)| cel::Value::String(Arc::new(n.clone())))
            .collect();
        ctx.add_variable_from_value("tags", cel::Value::List(Arc::new(ref_tags)));
        let ref_hits: Vec<usize> = (0..cel_policies.len())
            .filter(|k| matches!(cel_policies[*k].execute(&ctx), Ok(cel::Value::Bool(true))))
            .collect();
        t_ref.push(t.elapsed().as_secs_f64() * 1e6);
        matched += hits.len();
        disagreements += usize::from(hits != ref_hits);
    }
    Ok(B2 {
        policies: n,
        ours: percentiles(t_ours),
        interpreted: percentiles(t_interp),
        compiled_mismatches: mismatches,
        candidates_per_subject: candidates as f64 / samples as f64,
        reference: percentiles(t_ref),
        disagreements,
        matches_per_subject: matched as f64 / samples as f64,
    })
}

/// The subject as CEL variables: kind, age, sex and every attribute.
fn context(s: &Subject) -> cel::Context<'static, 'static> {
    let mut ctx = cel::Context::default();
    let str_ = |v: &str| cel::Value::String(Arc::new(v.to_string()));
    ctx.add_variable_from_value("kind", str_(s.kind().as_str()));
    if let SubjectId::Person(r) = &s.id {
        ctx.add_variable_from_value("age", cel::Value::Int(r.age_on(today())));
        ctx.add_variable_from_value("sex", str_(r.sex().as_str()));
    }
    for (k, v) in &s.attributes {
        let v = match v {
            AttrValue::Bool(b) => cel::Value::Bool(*b),
            AttrValue::Int(i) => cel::Value::Int(*i),
            AttrValue::Float(x) => cel::Value::Float(*x),
            AttrValue::Str(x) => str_(x),
            AttrValue::List(l) => cel::Value::List(Arc::new(l.iter().map(|x| str_(x)).collect())),
        };
        ctx.add_variable_from_value(k.as_str(), v);
    }
    ctx
}
