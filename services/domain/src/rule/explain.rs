//! Explanations: the rule's outermost `&&` chain split into clauses, each with whether it
//! held for the subject and the subject's values of what the clause reads. Slow path
//! (formats and allocates): used for one subject at a time, never for audiences.

use super::ast::{Expr, VarRef};
use super::eval::{self, Val};
use super::print::to_source;
use super::{ClauseOutcome, Explanation};
use crate::subject::Facts;
use std::collections::BTreeMap;

/// How an absent value is shown.
pub(crate) const ABSENT: &str = "(none)";

/// Explains `expr` for the subject. `number` rules have one clause, which "holds" when
/// the formula has a value.
pub(crate) fn explain(expr: &Expr, number: bool, facts: &Facts<'_>) -> Explanation {
    let clauses = if number {
        vec![outcome(expr, number_holds(expr, facts), facts)]
    } else {
        expr.conjuncts()
            .into_iter()
            .map(|c| outcome(c, eval::truth(c, facts) == Some(true), facts))
            .collect()
    };
    Explanation { clauses }
}

fn number_holds(expr: &Expr, facts: &Facts<'_>) -> bool {
    matches!(eval::eval(expr, facts), Some(Val::Num(n)) if n.as_f64().is_finite())
}

fn outcome(clause: &Expr, held: bool, facts: &Facts<'_>) -> ClauseOutcome {
    let mut values = BTreeMap::new();
    clause.visit_vars(&mut |r| {
        if !values.contains_key(r.name()) {
            values.insert(r.name().to_string(), shown_value(r, facts));
        }
    });
    clause.visit_params(&mut |p| {
        let shown = p
            .value
            .map_or_else(|| ABSENT.to_string(), |n| format_val(Val::Num(n)));
        values.insert(format!("params.{}", p.name), shown);
    });
    ClauseOutcome {
        clause: to_source(clause),
        held,
        values,
        sentence: None,
    }
}

/// The subject's value of what `r` reads, plainly; personal names masked.
fn shown_value(r: VarRef<'_>, facts: &Facts<'_>) -> String {
    let value = match r {
        VarRef::Var(v) => eval::read(v, facts),
        VarRef::Has(name) => facts.subject.attributes.get(name).map(eval::attr_val),
    };
    match value {
        None => ABSENT.to_string(),
        Some(v) if Facts::is_personal(r.name()) => crate::ids::mask_any(&format_val(v)),
        Some(v) => format_val(v),
    }
}

/// A value as an operator reads it: `12`, `2.5`, `浦东新区`, `true`, `[a, b]`.
pub(crate) fn format_val(v: Val<'_>) -> String {
    use super::ast::{ListLit, Num};
    match v {
        Val::Bool(b) => b.to_string(),
        Val::Num(Num::Int(i)) => i.to_string(),
        Val::Num(Num::Float(x)) => x.to_string(),
        Val::Str(s) => s.to_string(),
        Val::Strs(items) => format!("[{}]", items.join(", ")),
        Val::Lit(ListLit::Strs { items, .. }) => format!("[{}]", items.join(", ")),
        Val::Lit(ListLit::Nums(items)) => {
            let shown: Vec<String> = items.iter().map(|n| format_val(Val::Num(*n))).collect();
            format!("[{}]", shown.join(", "))
        }
    }
}
