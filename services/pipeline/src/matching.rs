//! Matching: who a rule selects, which tags a subject carries, why a subject matched.
//!
//! Bulk questions (who is in an audience) are answered by the `matcher` crate's
//! population index, held by the [`crate::Pipeline`] and kept current by the upsert
//! paths ([`index_subjects`]); [`audience`] over the store remains as the reference
//! path (and for callers without an index). Per-subject questions (tags, explanations,
//! benefits) use the compiled rule directly.

use chrono::NaiveDate;
use domain::rule::compiled::RuleSet;
use domain::rule::{Explanation, Glossary, Rule};
use domain::{Facts, ParamValues, Subject};
use matcher::{Plan, PopulationIndex, RoaringBitmap};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use store::{Store, StoreError, TagRecord};

/// The population index shared by the roles and the API.
pub type SharedIndex = Arc<RwLock<PopulationIndex>>;

const PAGE: u32 = 5_000;

/// A policy's eligibility, optionally narrowed by a campaign's audience filter.
#[derive(Debug, Clone)]
pub struct Criteria {
    pub eligibility: Rule,
    pub filter: Option<Rule>,
}

impl Criteria {
    /// The criteria with the parameter values of one date (see `domain::param`).
    pub fn bind(&self, params: &ParamValues) -> Criteria {
        Criteria {
            eligibility: self.eligibility.bind(params),
            filter: self.filter.as_ref().map(|f| f.bind(params)),
        }
    }

    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.eligibility.matches(facts) && self.filter.as_ref().is_none_or(|f| f.matches(facts))
    }

    /// The bulk plan of eligibility ∧ filter.
    pub fn plan(&self) -> Plan {
        Plan::all_of(std::iter::once(&self.eligibility).chain(self.filter.as_ref()))
    }

    /// The eligibility clauses, then the filter's.
    pub fn explain(&self, facts: &Facts<'_>) -> Explanation {
        let mut e = self.eligibility.explain(facts);
        if let Some(f) = &self.filter {
            e.clauses.extend(f.explain(facts).clauses);
        }
        e
    }

    /// [`Criteria::explain`] with each clause also as a Chinese sentence.
    pub fn explain_in_words(&self, facts: &Facts<'_>, glossary: &Glossary) -> Explanation {
        let mut e = self.eligibility.explain_in_words(facts, glossary);
        if let Some(f) = &self.filter {
            e.clauses
                .extend(f.explain_in_words(facts, glossary).clauses);
        }
        e
    }
}

/// An audience: how many, who (a sample), and breakdowns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audience {
    pub count: u64,
    pub sample: Vec<String>,
    pub by_kind: BTreeMap<String, u64>,
    pub by_district: BTreeMap<String, u64>,
    /// Of the audience, how many each channel can reach.
    pub reachable: BTreeMap<String, u64>,
    pub evaluated: u64,
}

/// The policy parameters' values in force on `date`: every rule is bound to them before
/// it is evaluated, by the bulk plan and per subject alike.
pub async fn params_on(store: &dyn Store, date: NaiveDate) -> Result<ParamValues, StoreError> {
    let params: Vec<domain::PolicyParam> = store
        .list_params()
        .await?
        .into_iter()
        .map(|r| r.param)
        .collect();
    Ok(ParamValues::on(&params, date))
}

/// What plain explanations are worded with: the stored attribute catalogue, the tags'
/// Chinese names (from their descriptions) and the parameters.
pub async fn glossary(store: &dyn Store) -> Result<Glossary, StoreError> {
    let attributes = domain::attribute::Catalogue::new(store.list_attributes().await?);
    let tags = store
        .list_tags()
        .await?
        .into_iter()
        .map(|t| (t.name, t.description));
    let params = store.list_params().await?.into_iter().map(|r| r.param);
    Ok(Glossary::new(attributes, tags, params.collect()))
}

/// Calls `each` for every subject in the store, page by page.
pub async fn for_each_subject<F>(store: &dyn Store, mut each: F) -> Result<u64, StoreError>
where
    F: FnMut(&Subject, &[String]),
{
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let page = store.subjects_page(after.as_deref(), PAGE).await?;
        let Some((last, _)) = page.last() else {
            return Ok(n);
        };
        after = Some(last.id.as_str().to_string());
        for (s, tags) in &page {
            each(s, tags);
            n += 1;
        }
    }
}

/// The audience of `criteria` over every subject, with a sample of up to `sample` ids.
pub async fn audience(
    store: &dyn Store,
    criteria: &Criteria,
    today: NaiveDate,
    sample: usize,
) -> Result<Audience, StoreError> {
    let mut a = Audience::default();
    a.evaluated = for_each_subject(store, |s, tags| {
        if !criteria.matches(&Facts::new(s, tags, today)) {
            return;
        }
        a.count += 1;
        if a.sample.len() < sample {
            a.sample.push(s.id.as_str().to_string());
        }
        *a.by_kind.entry(s.kind().as_str().to_string()).or_default() += 1;
        if let Some(domain::AttrValue::Str(d)) = s.attributes.get("district") {
            *a.by_district.entry(d.clone()).or_default() += 1;
        }
        for c in domain::Channel::ALL {
            if c.reaches(s) {
                *a.reachable.entry(c.as_str().to_string()).or_default() += 1;
            }
        }
    })
    .await?;
    Ok(a)
}

/// The audience of `criteria` from the population index: a bitmap plan, then counts
/// and breakdowns by bitmap intersections. Milliseconds where [`audience`] takes
/// seconds.
pub fn audience_from_index(
    index: &PopulationIndex,
    criteria: &Criteria,
    today: NaiveDate,
    sample: usize,
) -> Audience {
    let _timer = telemetry::metrics().audience_seconds.start_timer();
    let members = criteria.plan().run(index, today);
    let a = matcher::Audience::of(index, members, sample);
    Audience {
        count: a.count,
        sample: a.sample,
        by_kind: a.by_kind,
        by_district: a.by_district,
        reachable: a.reachable,
        evaluated: u64::from(index.len()),
    }
}

/// Builds the population index from every subject in the store.
pub async fn load_index(store: &dyn Store) -> Result<PopulationIndex, StoreError> {
    let mut index = PopulationIndex::new();
    for_each_subject(store, |s, tags| {
        index.upsert(s, tags);
    })
    .await?;
    Ok(index)
}

/// Records upserted subjects (with their new tags) in the index.
pub fn index_subjects(index: &SharedIndex, subjects: &[(Subject, Vec<String>)]) {
    let mut ix = index.write().expect("population index lock");
    for (s, tags) in subjects {
        ix.upsert(s, tags);
    }
}

/// Tag rules, compiled. A tag rule sees the tags of the previous pass, so a tag may be
/// defined over other tags one level deep.
#[derive(Debug, Clone, Default)]
pub struct TagRules {
    rules: Vec<(String, Rule)>,
    /// The same rules compiled together with a pre-filter, for one subject at a time.
    set: RuleSet,
    /// The date whose parameter values the rules are bound to.
    bound_on: Option<NaiveDate>,
}

impl TagRules {
    /// Compiles stored tag rules bound to the parameter values of `date` (`params`, from
    /// [`params_on`]); a rule that no longer compiles is skipped with a warning (rules are
    /// checked when saved, so this only happens across incompatible upgrades).
    pub fn compile(tags: &[TagRecord], params: &ParamValues, date: NaiveDate) -> Self {
        let rules: Vec<(String, Rule)> = tags
            .iter()
            .filter_map(|t| match Rule::parse(&t.rule) {
                Ok(r) => Some((t.name.clone(), r.bind(params))),
                Err(e) => {
                    tracing::warn!(tag = %t.name, error = %e, "stored tag rule does not compile");
                    None
                }
            })
            .collect();
        Self {
            set: RuleSet::new(rules.iter().map(|(_, r)| r)),
            rules,
            bound_on: Some(date),
        }
    }

    /// Loads the tag rules and today's parameter values from the store.
    pub async fn load(store: &dyn Store, today: NaiveDate) -> Result<Self, StoreError> {
        let params = params_on(store, today).await?;
        Ok(Self::compile(&store.list_tags().await?, &params, today))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The date the rules' parameters were bound for (`None`: never compiled).
    pub fn bound_on(&self) -> Option<NaiveDate> {
        self.bound_on
    }

    /// Whether any tag can change by the calendar alone (a rule reads `age` or a
    /// parameter); a rule reading `tags` follows the tags it reads.
    pub fn depend_on_date(&self) -> bool {
        self.rules.iter().any(|(_, r)| r.depends_on_date())
    }

    /// Every rule tag's members over the index, on `today`, with the same two passes as
    /// [`TagRules::tags_for`]: first every rule with no tags, then the rules that read
    /// `tags` again over the first pass's tags. Bitmap plans only; the index's own tags
    /// are left as they were.
    pub fn members(
        &self,
        ix: &mut PopulationIndex,
        today: NaiveDate,
    ) -> Vec<(String, RoaringBitmap)> {
        let saved = std::mem::take(&mut ix.tags);
        let first: Vec<(String, RoaringBitmap)> = self
            .rules
            .iter()
            .map(|(n, r)| (n.clone(), Plan::compile(r).run(ix, today)))
            .collect();
        let out = if self.rules.iter().any(|(_, r)| r.reads_tags()) {
            for (n, b) in &first {
                ix.set_tag_members(n, b.clone());
            }
            let second = self
                .rules
                .iter()
                .zip(&first)
                .map(|((n, r), (_, b))| {
                    let members = if r.reads_tags() {
                        Plan::compile(r).run(ix, today)
                    } else {
                        b.clone()
                    };
                    (n.clone(), members)
                })
                .collect();
            ix.tags = Default::default();
            second
        } else {
            first
        };
        ix.tags = saved;
        out
    }

    /// The tags `subject` carries.
    pub fn tags_for(&self, subject: &Subject, today: NaiveDate) -> Vec<String> {
        let first: Vec<String> = self.pass(subject, &[], today);
        if first.is_empty() {
            return first;
        }
        self.pass(subject, &first, today)
    }

    fn pass(&self, subject: &Subject, seen: &[String], today: NaiveDate) -> Vec<String> {
        let facts = Facts::new(subject, seen, today);
        self.set
            .matching(&facts)
            .into_iter()
            .map(|k| self.rules[k].0.clone())
            .collect()
    }
}

/// Recomputes every rule tag's members from the population index (bitmap plans, no
/// subject read), updates the index's tag bitmaps in place and writes the tags of the
/// subjects whose tags changed to the store in one pass. Returns how many subjects
/// changed.
pub async fn retag_from_index(
    store: &dyn Store,
    index: &SharedIndex,
    rules: &TagRules,
    today: NaiveDate,
) -> Result<u64, StoreError> {
    let changed: Vec<(String, Vec<String>)> = {
        let mut ix = index.write().expect("population index lock");
        let members = rules.members(&mut ix, today);
        let mut moved = RoaringBitmap::new();
        for (name, old) in &ix.tags {
            match members.iter().find(|(n, _)| **n == **name) {
                Some((_, new)) => moved |= old ^ new,
                None => moved |= old,
            }
        }
        for (name, new) in &members {
            if !ix.tags.contains_key(name.as_str()) {
                moved |= new;
            }
        }
        ix.tags = members
            .iter()
            .map(|(n, b)| (n.as_str().into(), b.clone()))
            .collect();
        moved
            .iter()
            .map(|id| {
                let tags = members
                    .iter()
                    .filter(|(_, b)| b.contains(id))
                    .map(|(n, _)| n.clone())
                    .collect();
                (ix.key(id).to_string(), tags)
            })
            .collect()
    };
    for chunk in changed.chunks(PAGE as usize) {
        store.set_tags(chunk).await?;
    }
    Ok(changed.len() as u64)
}

/// Recomputes every subject's tags from the store (the reference path of
/// [`retag_from_index`]); returns how many subjects changed.
pub async fn recompute_all_tags(store: &dyn Store, today: NaiveDate) -> Result<u64, StoreError> {
    let rules = TagRules::load(store, today).await?;
    let mut changed: Vec<(String, Vec<String>)> = Vec::new();
    let mut total = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.subjects_page(after.as_deref(), PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.id.as_str().to_string());
        for (s, old) in &page {
            let new = rules.tags_for(s, today);
            if &new != old {
                changed.push((s.id.as_str().to_string(), new));
            }
        }
        if changed.len() >= PAGE as usize {
            total += changed.len() as u64;
            store.set_tags(&changed).await?;
            changed.clear();
        }
    }
    total += changed.len() as u64;
    store.set_tags(&changed).await?;
    Ok(total)
}
