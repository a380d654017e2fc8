//! Evaluation of a checked rule over one subject's facts.
//!
//! Values borrow from the subject and the rule: nothing is cloned or formatted, nothing
//! is allocated. A missing attribute, a value of the wrong type, a division by zero or
//! an overflow yields *unknown* (`None`), which spreads like SQL's NULL:
//!
//! - comparisons, arithmetic, `in`, methods and `!` of an unknown are unknown;
//! - `false && unknown` is false, `true || unknown` is true, otherwise `&&`/`||` with an
//!   unknown side are unknown;
//! - `c ? a : b` with an unknown `c` is unknown;
//! - a rule holds only when it evaluates to `true`: unknown at the top is "no".

use super::ast::{num_eq, ArithOp, CmpOp, Expr, ListLit, Method, Num, Var};
use crate::subject::{AttrValue, Facts, SubjectId};

/// A value during evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Bool(bool),
    Num(Num),
    Str(&'a str),
    /// A list of the subject: `tags` or a list attribute.
    Strs(&'a [String]),
    /// A list literal of the rule.
    Lit(&'a ListLit),
}

/// The value of `e` for the subject; `None` is unknown.
pub(crate) fn eval<'a>(e: &'a Expr, f: &Facts<'a>) -> Option<Val<'a>> {
    match e {
        Expr::Bool(b) => Some(Val::Bool(*b)),
        Expr::Num(n) => Some(Val::Num(*n)),
        Expr::Str(s) => Some(Val::Str(s)),
        Expr::List(l) => Some(Val::Lit(l)),
        Expr::Var(v) => read(v, f),
        Expr::Has(name) => Some(Val::Bool(f.subject.attributes.contains_key(&**name))),
        Expr::Not(x) => truth(x, f).map(|b| Val::Bool(!b)),
        Expr::Neg(x) => negate(eval(x, f)?).map(Val::Num),
        Expr::And(a, b) => and(a, b, f).map(Val::Bool),
        Expr::Or(a, b) => or(a, b, f).map(Val::Bool),
        Expr::Cmp(op, a, b) => compare(*op, eval(a, f)?, eval(b, f)?).map(Val::Bool),
        Expr::Arith(op, a, b) => arith(*op, eval(a, f)?, eval(b, f)?).map(Val::Num),
        Expr::In(a, b) => member(eval(a, f)?, eval(b, f)?).map(Val::Bool),
        Expr::Method(m, r, a) => method(*m, eval(r, f)?, eval(a, f)?).map(Val::Bool),
        Expr::Size(x) => size(eval(x, f)?).map(Val::Num),
        Expr::Param(p) => p.value.map(Val::Num),
        Expr::Cond(c, a, b) => {
            if truth(c, f)? {
                eval(a, f)
            } else {
                eval(b, f)
            }
        }
    }
}

/// `Some(b)` when `e` evaluates to a boolean; unknown otherwise.
pub(crate) fn truth<'a>(e: &'a Expr, f: &Facts<'a>) -> Option<bool> {
    match eval(e, f)? {
        Val::Bool(b) => Some(b),
        _ => None,
    }
}

/// The subject's value of an identifier; `None` when it has none.
pub(crate) fn read<'a>(v: &'a Var, f: &Facts<'a>) -> Option<Val<'a>> {
    match v {
        Var::Kind => Some(Val::Str(f.subject.kind().as_str())),
        Var::Age => match &f.subject.id {
            SubjectId::Person(r) => Some(Val::Num(Num::Int(r.age_on(f.today)))),
            SubjectId::Enterprise(_) => None,
        },
        Var::Sex => match &f.subject.id {
            SubjectId::Person(r) => Some(Val::Str(r.sex().as_str())),
            SubjectId::Enterprise(_) => None,
        },
        Var::Tags => Some(Val::Strs(f.tags)),
        Var::Attr { name, .. } => f.subject.attributes.get(&**name).map(attr_val),
    }
}

pub(crate) fn attr_val(v: &AttrValue) -> Val<'_> {
    match v {
        AttrValue::Bool(b) => Val::Bool(*b),
        AttrValue::Int(i) => Val::Num(Num::Int(*i)),
        AttrValue::Float(x) => Val::Num(Num::Float(*x)),
        AttrValue::Str(s) => Val::Str(s),
        AttrValue::List(l) => Val::Strs(l),
    }
}

fn and<'a>(a: &'a Expr, b: &'a Expr, f: &Facts<'a>) -> Option<bool> {
    let l = truth(a, f);
    if l == Some(false) {
        return Some(false);
    }
    match (l, truth(b, f)) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or<'a>(a: &'a Expr, b: &'a Expr, f: &Facts<'a>) -> Option<bool> {
    let l = truth(a, f);
    if l == Some(true) {
        return Some(true);
    }
    match (l, truth(b, f)) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

pub(crate) fn compare(op: CmpOp, a: Val<'_>, b: Val<'_>) -> Option<bool> {
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) if op.is_equality() => {
            return Some(num_eq(x, y) == (op == CmpOp::Eq))
        }
        (Val::Num(Num::Int(x)), Val::Num(Num::Int(y))) => x.cmp(&y),
        (Val::Num(x), Val::Num(y)) => x.as_f64().partial_cmp(&y.as_f64())?,
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) if op.is_equality() => x.cmp(&y),
        _ => return None,
    };
    Some(op.holds(ord))
}

pub(crate) fn negate(v: Val<'_>) -> Option<Num> {
    match v {
        Val::Num(Num::Int(i)) => Some(match i.checked_neg() {
            Some(n) => Num::Int(n),
            None => Num::Float(-(i as f64)),
        }),
        Val::Num(Num::Float(x)) => Some(Num::Float(-x)),
        _ => None,
    }
}

pub(crate) fn arith(op: ArithOp, a: Val<'_>, b: Val<'_>) -> Option<Num> {
    let (Val::Num(a), Val::Num(b)) = (a, b) else {
        return None;
    };
    let n = match (a, b) {
        (Num::Int(x), Num::Int(y)) => int_arith(op, x, y)?,
        _ => Num::Float(float_arith(op, a.as_f64(), b.as_f64())),
    };
    match n {
        Num::Float(x) if !x.is_finite() => None,
        n => Some(n),
    }
}

/// Integer arithmetic stays exact; a division that does not come out whole, or an
/// overflow, continues in decimals (7 / 2 = 3.5).
fn int_arith(op: ArithOp, x: i64, y: i64) -> Option<Num> {
    let exact = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div if y == 0 => return None,
        ArithOp::Div => x
            .checked_rem(y)
            .filter(|r| *r == 0)
            .and_then(|_| x.checked_div(y)),
        ArithOp::Rem if y == 0 => return None,
        ArithOp::Rem => x.checked_rem(y),
    };
    Some(match exact {
        Some(i) => Num::Int(i),
        None => Num::Float(float_arith(op, x as f64, y as f64)),
    })
}

fn float_arith(op: ArithOp, x: f64, y: f64) -> f64 {
    match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::Rem => x % y,
    }
}

/// `element in list`. An element of the wrong type for the list is unknown.
pub(crate) fn member(element: Val<'_>, list: Val<'_>) -> Option<bool> {
    match (element, list) {
        (Val::Str(s), Val::Strs(items)) => Some(items.iter().any(|x| x == s)),
        (Val::Str(s), Val::Lit(l @ ListLit::Strs { .. })) => Some(l.contains_str(s)),
        (Val::Num(n), Val::Lit(l @ ListLit::Nums(_))) => Some(l.contains_num(n)),
        (Val::Str(_) | Val::Num(_), Val::Lit(l)) if l.is_empty() => Some(false),
        _ => None,
    }
}

pub(crate) fn method(m: Method, recv: Val<'_>, arg: Val<'_>) -> Option<bool> {
    match (m, recv, arg) {
        (Method::StartsWith, Val::Str(s), Val::Str(p)) => Some(s.starts_with(p)),
        (Method::EndsWith, Val::Str(s), Val::Str(p)) => Some(s.ends_with(p)),
        (Method::Contains, Val::Str(s), Val::Str(p)) => Some(s.contains(p)),
        (Method::Contains, Val::Strs(_) | Val::Lit(_), x) => member(x, recv),
        _ => None,
    }
}

pub(crate) fn size(v: Val<'_>) -> Option<Num> {
    let n = match v {
        Val::Str(s) => s.chars().count(),
        Val::Strs(l) => l.len(),
        Val::Lit(l) => l.len(),
        _ => return None,
    };
    i64::try_from(n).ok().map(Num::Int)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> Val<'static> {
        Val::Num(Num::Int(i))
    }
    fn float(x: f64) -> Val<'static> {
        Val::Num(Num::Float(x))
    }

    #[test]
    fn integer_division_is_exact_or_decimal() {
        assert_eq!(arith(ArithOp::Div, int(8), int(2)), Some(Num::Int(4)));
        assert_eq!(arith(ArithOp::Div, int(7), int(2)), Some(Num::Float(3.5)));
        assert_eq!(arith(ArithOp::Div, int(7), int(0)), None);
        assert_eq!(arith(ArithOp::Rem, int(7), int(0)), None);
        assert_eq!(arith(ArithOp::Rem, int(7), int(2)), Some(Num::Int(1)));
        assert_eq!(arith(ArithOp::Rem, int(-7), int(2)), Some(Num::Int(-1)));
    }

    #[test]
    fn overflow_continues_in_decimals() {
        assert_eq!(
            arith(ArithOp::Mul, int(i64::MAX), int(2)),
            Some(Num::Float(i64::MAX as f64 * 2.0))
        );
        assert_eq!(
            arith(ArithOp::Div, int(i64::MIN), int(-1)),
            Some(Num::Float(-(i64::MIN as f64)))
        );
        assert_eq!(negate(int(i64::MIN)), Some(Num::Float(-(i64::MIN as f64))));
        assert_eq!(arith(ArithOp::Div, float(1.0), float(0.0)), None);
        assert_eq!(arith(ArithOp::Mul, float(f64::MAX), float(2.0)), None);
    }

    #[test]
    fn mixed_numbers_compare_numerically() {
        assert_eq!(compare(CmpOp::Eq, int(2), float(2.0)), Some(true));
        assert_eq!(compare(CmpOp::Lt, int(2), float(2.5)), Some(true));
        assert_eq!(compare(CmpOp::Ge, float(2.5), int(3)), Some(false));
        assert_eq!(compare(CmpOp::Lt, float(f64::NAN), int(3)), None);
    }

    #[test]
    fn mismatched_types_are_unknown() {
        assert_eq!(compare(CmpOp::Eq, Val::Str("1"), int(1)), None);
        assert_eq!(compare(CmpOp::Lt, Val::Bool(true), Val::Bool(false)), None);
        assert_eq!(
            compare(CmpOp::Ne, Val::Bool(true), Val::Bool(false)),
            Some(true)
        );
        assert_eq!(arith(ArithOp::Add, Val::Str("a"), int(1)), None);
        assert_eq!(member(int(1), Val::Strs(&[])), None);
        assert_eq!(method(Method::StartsWith, int(1), Val::Str("1")), None);
        assert_eq!(size(int(1)), None);
    }

    #[test]
    fn membership_and_size() {
        let items = vec!["a".to_string(), "b".to_string()];
        assert_eq!(member(Val::Str("b"), Val::Strs(&items)), Some(true));
        assert_eq!(member(Val::Str("c"), Val::Strs(&items)), Some(false));
        let empty = ListLit::strs(vec![]);
        assert_eq!(member(int(1), Val::Lit(&empty)), Some(false));
        assert_eq!(
            method(Method::Contains, Val::Strs(&items), Val::Str("a")),
            Some(true)
        );
        assert_eq!(size(Val::Str("浦东新区")), Some(Num::Int(4)));
        assert_eq!(size(Val::Strs(&items)), Some(Num::Int(2)));
    }
}
