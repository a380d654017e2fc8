//! Eligibility of one subject: every published policy in force today that the subject
//! qualifies for, with the reasons in plain words and the estimated benefit (for
//! 一网通办's "my policies" page and 12333 agents).
//!
//! The eligibility rules of the policies in force are bound to today's parameter values
//! and compiled together into one [`RuleSet`] (a pre-filter on what each rule needs,
//! then the compiled predicates), so one subject is matched against every policy in
//! microseconds; only the policies it matches are explained. A [`PolicySet`] is built
//! from the store and kept while its inputs (policies, parameters, attribute
//! catalogue, tags, the date) are unchanged ([`PolicySet::fingerprint`]).

use chrono::NaiveDate;
use domain::attribute::Catalogue;
use domain::policy::PolicyStatus;
use domain::rule::compiled::RuleSet;
use domain::rule::{Glossary, Rule};
use domain::{Facts, Subject};
use serde::Serialize;
use sha2::{Digest, Sha256};
use store::{PolicyRecord, Store, StoreError};

/// One policy a subject qualifies for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EligiblePolicy {
    pub policy_id: String,
    pub title: String,
    pub doc_number: String,
    pub apply_url: String,
    pub effective_to: Option<NaiveDate>,
    /// The reasons in plain words, joined by `；`.
    pub explanation: String,
    /// The same reasons, one sentence a clause.
    pub reasons: Vec<String>,
    /// The policy's benefit formula for the subject, if it has one and a value.
    pub benefit: Option<f64>,
}

/// A policy in force, with its rules bound to the date's parameter values.
struct InForce {
    record: PolicyRecord,
    eligibility: Rule,
    benefit: Option<Rule>,
}

/// The policies in force on one date, compiled together.
pub struct PolicySet {
    today: NaiveDate,
    fingerprint: String,
    policies: Vec<InForce>,
    set: RuleSet,
    glossary: Glossary,
}

/// Whether a policy is published and in force on `today` (its dates include it).
pub fn in_force(p: &PolicyRecord, today: NaiveDate) -> bool {
    p.status == PolicyStatus::Published
        && p.draft.effective_from.is_none_or(|from| from <= today)
        && p.draft.effective_to.is_none_or(|to| today <= to)
}

/// What the set is built from, as read from the store.
struct Inputs {
    policies: Vec<PolicyRecord>,
    params: Vec<domain::PolicyParam>,
    attributes: Vec<domain::attribute::AttributeDef>,
    tags: Vec<(String, String)>,
}

impl Inputs {
    async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            policies: store.list_policies().await?,
            params: store
                .list_params()
                .await?
                .into_iter()
                .map(|r| r.param)
                .collect(),
            attributes: store.list_attributes().await?,
            tags: store
                .list_tags()
                .await?
                .into_iter()
                .map(|t| (t.name, t.description))
                .collect(),
        })
    }

    /// A digest of everything the set depends on.
    fn fingerprint(&self, today: NaiveDate) -> String {
        let policies: Vec<_> = self
            .policies
            .iter()
            .map(|p| (&p.id, p.status.as_str(), &p.draft))
            .collect();
        let doc = serde_json::json!([today, policies, self.params, self.attributes, self.tags]);
        hex::encode(Sha256::digest(doc.to_string().as_bytes()))
    }
}

impl PolicySet {
    /// The set for `today`, reusing `current` when nothing it depends on changed.
    pub async fn current(
        store: &dyn Store,
        today: NaiveDate,
        current: Option<std::sync::Arc<PolicySet>>,
    ) -> Result<std::sync::Arc<PolicySet>, StoreError> {
        let inputs = Inputs::load(store).await?;
        let fingerprint = inputs.fingerprint(today);
        if let Some(c) = current.filter(|c| c.fingerprint == fingerprint) {
            return Ok(c);
        }
        let params = domain::ParamValues::on(&inputs.params, today);
        let policies: Vec<InForce> = inputs
            .policies
            .into_iter()
            .filter(|p| in_force(p, today))
            .filter_map(|record| match record.draft.clone().check() {
                Ok(c) => Some(InForce {
                    eligibility: c.eligibility.bind(&params),
                    benefit: c.benefit.map(|b| b.bind(&params)),
                    record,
                }),
                Err(e) => {
                    tracing::warn!(policy = %record.id, error = %e, "stored policy no longer checks");
                    None
                }
            })
            .collect();
        let glossary = Glossary::new(
            Catalogue::new(inputs.attributes),
            inputs.tags,
            inputs.params,
        );
        Ok(std::sync::Arc::new(PolicySet {
            today,
            fingerprint,
            set: RuleSet::new(policies.iter().map(|p| &p.eligibility)),
            policies,
            glossary,
        }))
    }

    /// A digest of what the set was built from.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// How many policies are in force.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policies `subject` (with its tags) qualifies for, in the order they were
    /// created.
    pub fn eligible(&self, subject: &Subject, tags: &[String]) -> Vec<EligiblePolicy> {
        let facts = Facts::new(subject, tags, self.today);
        self.set
            .matching(&facts)
            .into_iter()
            .map(|i| {
                let p = &self.policies[i];
                let e = p.eligibility.explain_in_words(&facts, &self.glossary);
                let d = &p.record.draft;
                EligiblePolicy {
                    policy_id: p.record.id.clone(),
                    title: d.title.clone(),
                    doc_number: d.doc_number.clone(),
                    apply_url: d.apply_url.clone(),
                    effective_to: d.effective_to,
                    explanation: e.why(),
                    reasons: e.sentences().into_iter().map(str::to_string).collect(),
                    benefit: p.benefit.as_ref().and_then(|b| b.eval_number(&facts)),
                }
            })
            .collect()
    }
}

/// The policies the stored subject `id` qualifies for today; `None` when the store does
/// not know the subject.
pub async fn of_subject(
    store: &dyn Store,
    today: NaiveDate,
    id: &str,
    cached: Option<std::sync::Arc<PolicySet>>,
) -> Result<Option<(Vec<EligiblePolicy>, std::sync::Arc<PolicySet>)>, StoreError> {
    let Some((subject, tags)) = store.get_subject(id).await? else {
        return Ok(None);
    };
    let set = PolicySet::current(store, today, cached).await?;
    Ok(Some((set.eligible(&subject, &tags), set)))
}
