//! Policy parameters: thresholds and amounts that rules read by name
//! (`params.min_insured_months`), each with values by effective date and the legal
//! reference (document number) that set them. A policy's rule does not change when its
//! threshold does: a new value with a later `effective_from` takes over on that date.
//!
//! Rules are bound to the values in force on one date ([`ParamValues::on`], then
//! [`crate::Rule::bind`]) before anything evaluates them, so the bulk plan and the
//! per-subject predicate read the same numbers. A parameter with no value in force on the
//! date (all its values start later) is *unknown* there: a comparison with it is unknown,
//! so the clause does not hold (see `docs/rules.md`).

use crate::rule::ast::Num;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest description, unit or legal reference accepted, in characters.
const MAX_TEXT: usize = 500;
/// The most values one parameter may have.
const MAX_VALUES: usize = 200;

/// One value of a parameter, in force from `effective_from` until the next value starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParamValue {
    pub effective_from: NaiveDate,
    pub value: f64,
    /// The document that set it, e.g. `沪人社规〔2023〕12号`.
    #[serde(default)]
    pub legal_ref: String,
}

/// A named parameter with its dated values (sorted by `effective_from`, each date once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyParam {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What the number counts: `月`, `元`, `人`, `%`.
    #[serde(default)]
    pub unit: String,
    pub values: Vec<ParamValue>,
}

/// Why a parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

impl PolicyParam {
    /// Checks the name, texts and values, and sorts the values by date.
    pub fn check(mut self) -> Result<PolicyParam, ParamError> {
        if !crate::subject::is_identifier(&self.name) {
            return Err(ParamError(format!(
                "parameter name {:?} must match [a-z_][a-z0-9_]* (at most 64 characters)",
                self.name
            )));
        }
        for (what, text) in [("description", &self.description), ("unit", &self.unit)] {
            if text.chars().count() > MAX_TEXT {
                return Err(ParamError(format!(
                    "{what} is longer than {MAX_TEXT} characters"
                )));
            }
        }
        if self.values.is_empty() {
            return Err(ParamError(
                "a parameter needs at least one value (effective_from, value, legal_ref)".into(),
            ));
        }
        if self.values.len() > MAX_VALUES {
            return Err(ParamError(format!(
                "a parameter has at most {MAX_VALUES} values"
            )));
        }
        for v in &self.values {
            if !v.value.is_finite() {
                return Err(ParamError(format!(
                    "the value from {} is not a finite number",
                    v.effective_from
                )));
            }
            if v.legal_ref.chars().count() > MAX_TEXT {
                return Err(ParamError(format!(
                    "legal_ref of the value from {} is longer than {MAX_TEXT} characters",
                    v.effective_from
                )));
            }
        }
        self.values.sort_by_key(|v| v.effective_from);
        if let Some(w) = self
            .values
            .windows(2)
            .find(|w| w[0].effective_from == w[1].effective_from)
        {
            return Err(ParamError(format!(
                "two values take effect on {}; give each date one value",
                w[0].effective_from
            )));
        }
        Ok(self)
    }

    /// The value in force on `date`: the one with the latest `effective_from` on or
    /// before it; `None` before the first value.
    pub fn value_on(&self, date: NaiveDate) -> Option<&ParamValue> {
        self.values
            .iter()
            .filter(|v| v.effective_from <= date)
            .max_by_key(|v| v.effective_from)
    }
}

/// The parameter values in force on one date, as rules read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamValues {
    values: BTreeMap<String, Num>,
}

impl ParamValues {
    /// No parameters: every `params.<name>` is unknown.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The values of `params` in force on `date`.
    pub fn on(params: &[PolicyParam], date: NaiveDate) -> Self {
        let values = params
            .iter()
            .filter_map(|p| Some((p.name.clone(), as_num(p.value_on(date)?.value))))
            .collect();
        Self { values }
    }

    /// Sets one value (tests and tools).
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.values.insert(name.to_string(), as_num(value));
        self
    }

    /// The value of `name`; `None` when it has none on the date.
    pub fn get(&self, name: &str) -> Option<Num> {
        self.values.get(name).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Whole numbers read as integers (so `params.x * 2` stays exact, as a literal would).
fn as_num(x: f64) -> Num {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Num::Int(x as i64)
    } else {
        Num::Float(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn months() -> PolicyParam {
        PolicyParam {
            name: "min_insured_months".into(),
            description: "连续参保月数下限".into(),
            unit: "月".into(),
            values: vec![
                ParamValue {
                    effective_from: d("2025-01-01"),
                    value: 12.0,
                    legal_ref: "沪人社规〔2024〕30号".into(),
                },
                ParamValue {
                    effective_from: d("2023-01-01"),
                    value: 6.0,
                    legal_ref: "沪人社规〔2023〕12号".into(),
                },
            ],
        }
        .check()
        .unwrap()
    }

    #[test]
    fn the_value_in_force_is_the_latest_started() {
        let p = months();
        assert_eq!(p.values[0].effective_from, d("2023-01-01"), "sorted");
        assert_eq!(p.value_on(d("2022-12-31")), None);
        assert_eq!(p.value_on(d("2023-01-01")).unwrap().value, 6.0);
        assert_eq!(p.value_on(d("2024-12-31")).unwrap().value, 6.0);
        let now = p.value_on(d("2025-01-01")).unwrap();
        assert_eq!(now.value, 12.0);
        assert_eq!(now.legal_ref, "沪人社规〔2024〕30号");
        assert_eq!(p.value_on(d("2030-06-01")).unwrap().value, 12.0);
    }

    #[test]
    fn values_on_a_date() {
        let rate = PolicyParam {
            name: "return_rate".into(),
            description: String::new(),
            unit: "%".into(),
            values: vec![ParamValue {
                effective_from: d("2024-07-01"),
                value: 0.6,
                legal_ref: String::new(),
            }],
        };
        let params = [months(), rate];
        let early = ParamValues::on(&params, d("2024-01-01"));
        assert_eq!(early.get("min_insured_months"), Some(Num::Int(6)));
        assert_eq!(early.get("return_rate"), None);
        let later = ParamValues::on(&params, d("2025-03-01"));
        assert_eq!(later.get("min_insured_months"), Some(Num::Int(12)));
        assert_eq!(later.get("return_rate"), Some(Num::Float(0.6)));
        assert_eq!(later.get("nothing"), None);
        assert!(ParamValues::on(&params, d("2000-01-01")).is_empty());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut p = months();
        p.name = "Min".into();
        assert!(p.check().unwrap_err().0.contains("must match"));
        let mut p = months();
        p.values.clear();
        assert!(p.check().unwrap_err().0.contains("at least one value"));
        let mut p = months();
        p.values[1].effective_from = p.values[0].effective_from;
        assert!(p.check().unwrap_err().0.contains("two values take effect"));
        let mut p = months();
        p.values[0].value = f64::NAN;
        assert!(p.check().unwrap_err().0.contains("finite"));
    }
}
