//! The rule language: a CEL subset (see `docs/rules.md`) used for tag rules, eligibility,
//! audience filters and benefit formulas. Parsed with the `cel` crate, checked and lowered
//! into our own tree, then evaluated per subject with "missing attribute ⇒ false".

use crate::subject::Facts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where and why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleError {
    /// 1-based line and column of the offending part.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for RuleError {}

/// One top-level clause of a rule (a conjunct of the outermost `&&` chain) and whether it
/// held for a subject, with the subject's values of the identifiers it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseOutcome {
    pub clause: String,
    pub held: bool,
    pub values: BTreeMap<String, String>,
}

/// Why a rule held (or did not) for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Explanation {
    pub clauses: Vec<ClauseOutcome>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", if c.held { "✓" } else { "✗" }, c.clause)?;
            if !c.values.is_empty() {
                let vals: Vec<String> =
                    c.values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                write!(f, " ({})", vals.join(", "))?;
            }
        }
        Ok(())
    }
}

/// A checked rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
}

impl Rule {
    /// Parses and checks a boolean rule.
    pub fn parse(source: &str) -> Result<Rule, RuleError> {
        let _ = source;
        todo!("rule language")
    }

    /// Parses and checks a number expression (a benefit formula).
    pub fn parse_number(source: &str) -> Result<Rule, RuleError> {
        let _ = source;
        todo!("rule language")
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the rule holds for the subject. Missing attributes make their comparison
    /// false (outside `has()`).
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let _ = facts;
        todo!("rule language")
    }

    /// The clause-by-clause account of [`Rule::matches`], with personal values masked.
    pub fn explain(&self, facts: &Facts<'_>) -> Explanation {
        let _ = facts;
        todo!("rule language")
    }

    /// The value of a number expression for the subject; `None` when it reads a missing
    /// attribute or is not finite.
    pub fn eval_number(&self, facts: &Facts<'_>) -> Option<f64> {
        let _ = facts;
        todo!("rule language")
    }
}
