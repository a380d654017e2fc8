//! A checked rule's tree to plan nodes. Each case follows the per-subject semantics of
//! `domain::rule` (`eval.rs`) exactly; where a static type makes an operation unknown
//! for every subject (a number compared with a string, say), the node is a constant.

use super::node::{BoolNode, NumNode, StrPred, StrSrc};
use domain::rule::ast::{CmpOp, Expr, ListLit, Method, Num, Var};

/// What an expression yields whatever the subject (`Dyn`: depends on the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Bool,
    Num,
    Str,
    List,
    Dyn,
}

fn st(e: &Expr) -> St {
    match e {
        Expr::Bool(_)
        | Expr::Has(_)
        | Expr::Not(_)
        | Expr::And(..)
        | Expr::Or(..)
        | Expr::Cmp(..)
        | Expr::In(..)
        | Expr::Method(..) => St::Bool,
        Expr::Num(_)
        | Expr::Neg(_)
        | Expr::Arith(..)
        | Expr::Size(_)
        | Expr::Var(Var::Age)
        | Expr::Param(_) => St::Num,
        Expr::Str(_) | Expr::Var(Var::Kind) | Expr::Var(Var::Sex) => St::Str,
        Expr::List(_) | Expr::Var(Var::Tags) => St::List,
        Expr::Var(Var::Attr { .. }) => St::Dyn,
        Expr::Cond(_, a, b) => match (st(a), st(b)) {
            (x, y) if x == y => x,
            _ => St::Dyn,
        },
    }
}

fn unknown() -> BoolNode {
    BoolNode::Const(None)
}

fn str_src(e: &Expr) -> Option<StrSrc> {
    match e {
        Expr::Var(Var::Kind) => Some(StrSrc::Kind),
        Expr::Var(Var::Sex) => Some(StrSrc::Sex),
        Expr::Var(Var::Attr { name, .. }) => Some(StrSrc::Attr(name.clone())),
        _ => None,
    }
}

/// Compiles an expression used as a condition.
pub(super) fn bool_node(e: &Expr) -> BoolNode {
    match e {
        Expr::Bool(b) => BoolNode::Const(Some(*b)),
        Expr::Var(Var::Attr { name, .. }) => BoolNode::Flag(name.clone()),
        Expr::Has(n) => BoolNode::Has(n.clone()),
        Expr::Not(x) => BoolNode::Not(Box::new(bool_node(x))),
        Expr::And(..) => chain(e, true),
        Expr::Or(..) => chain(e, false),
        Expr::Cond(c, a, b) => BoolNode::Cond(
            Box::new(bool_node(c)),
            Box::new(bool_node(a)),
            Box::new(bool_node(b)),
        ),
        Expr::Cmp(op, a, b) => compare(*op, a, b, e),
        Expr::In(a, b) => member(a, b, e),
        Expr::Method(m, r, a) => method(*m, r, a, e),
        Expr::Num(_)
        | Expr::Str(_)
        | Expr::List(_)
        | Expr::Var(_)
        | Expr::Neg(_)
        | Expr::Arith(..)
        | Expr::Size(_)
        | Expr::Param(_) => unknown(),
    }
}

/// A chain of `&&` (`and`) or `||`, its operands ordered cheapest first (stable), so
/// that bitmap leaves narrow the scope before any column is scanned. Kleene `&&` and
/// `||` are commutative and associative and evaluation has no side effects, so the
/// order changes the work, never the answer.
fn chain(e: &Expr, and: bool) -> BoolNode {
    fn flatten<'e>(e: &'e Expr, and: bool, out: &mut Vec<&'e Expr>) {
        match (e, and) {
            (Expr::And(a, b), true) | (Expr::Or(a, b), false) => {
                flatten(a, and, out);
                flatten(b, and, out);
            }
            _ => out.push(e),
        }
    }
    let mut parts = Vec::new();
    flatten(e, and, &mut parts);
    let mut nodes: Vec<BoolNode> = parts.into_iter().map(bool_node).collect();
    if and {
        nodes = merge_ranges(nodes);
    }
    nodes.sort_by_key(BoolNode::cost);
    let mut it = nodes.into_iter();
    let first = it.next().expect("a chain has operands");
    it.fold(first, |acc, n| {
        if and {
            BoolNode::And(Box::new(acc), Box::new(n))
        } else {
            BoolNode::Or(Box::new(acc), Box::new(n))
        }
    })
}

/// `x op k` (either way round, `op` an ordering) of a column or `age` and a literal, as
/// `(x, op, k)` with `x` on the left.
fn range_bound(n: &BoolNode) -> Option<(&NumNode, CmpOp, Num)> {
    let BoolNode::NumCmp { op, a, b, .. } = n else {
        return None;
    };
    let (x, op, k) = match (a, b) {
        (NumNode::Col(_) | NumNode::Age, NumNode::Lit(k)) => (a, *op, *k),
        (NumNode::Lit(k), NumNode::Col(_) | NumNode::Age) => (b, op.flipped(), *k),
        _ => return None,
    };
    (!op.is_equality() && !k.as_f64().is_nan()).then_some((x, op, k))
}

/// The operands of one `&&` chain with the orderings of the same column (or `age`)
/// against literals merged into one [`BoolNode::NumRange`] (`age >= 18 && age <= 59`:
/// one pass over the column or its bit slices instead of two). Exact: each bound is
/// unknown exactly where the value is missing or not a number, so their conjunction is
/// true on the intersection of their intervals and unknown where the value is.
fn merge_ranges(nodes: Vec<BoolNode>) -> Vec<BoolNode> {
    /// A column's bounds and the comparisons they came from.
    type Group = (NumNode, Vec<(CmpOp, Num)>, Vec<BoolNode>);
    let mut groups: Vec<Group> = Vec::new();
    let mut out: Vec<Result<BoolNode, usize>> = Vec::new();
    for n in nodes {
        let Some((x, op, k)) = range_bound(&n) else {
            out.push(Ok(n));
            continue;
        };
        match groups.iter().position(|(y, ..)| y == x) {
            Some(g) => {
                groups[g].1.push((op, k));
                groups[g].2.push(n);
            }
            None => {
                groups.push((x.clone(), vec![(op, k)], Vec::new()));
                groups.last_mut().expect("pushed").2.push(n);
                out.push(Err(groups.len() - 1));
            }
        }
    }
    let mut groups: Vec<Option<_>> = groups.into_iter().map(Some).collect();
    out.into_iter()
        .map(|slot| match slot {
            Ok(n) => n,
            Err(g) => {
                let (a, bounds, mut parts) = groups[g].take().expect("each group once");
                if parts.len() == 1 {
                    parts.pop().expect("one part")
                } else {
                    BoolNode::NumRange { a, bounds, parts }
                }
            }
        })
        .collect()
}

fn compare(op: CmpOp, a: &Expr, b: &Expr, e: &Expr) -> BoolNode {
    let (ta, tb) = (st(a), st(b));
    let has = |t: St| ta == t || tb == t;
    if has(St::List) {
        return unknown();
    }
    if has(St::Num) {
        if has(St::Str) || has(St::Bool) {
            return unknown();
        }
        return match (num_node(a), num_node(b)) {
            (Some(x), Some(y)) => BoolNode::NumCmp {
                op,
                a: x,
                b: y,
                expr: e.clone(),
            },
            _ => BoolNode::Fallback(e.clone()),
        };
    }
    if has(St::Str) {
        if has(St::Bool) {
            return unknown();
        }
        return match (a, b) {
            (Expr::Str(x), Expr::Str(y)) => BoolNode::Const(Some(op.holds((**x).cmp(&**y)))),
            (Expr::Str(lit), other) | (other, Expr::Str(lit)) => match str_src(other) {
                Some(src) => BoolNode::Str(
                    src,
                    StrPred::Cmp {
                        op,
                        lit: lit.clone(),
                        lit_left: matches!(a, Expr::Str(_)),
                    },
                ),
                None => BoolNode::Fallback(e.clone()),
            },
            _ => BoolNode::Fallback(e.clone()),
        };
    }
    if has(St::Bool) {
        if !op.is_equality() {
            return unknown();
        }
        // `x == true` is `x`, `x == false` is `!x` (and `!=` the other way round),
        // unknowns included: no second operand to evaluate.
        match (a, b) {
            (Expr::Bool(v), x) | (x, Expr::Bool(v)) if !matches!(x, Expr::Bool(_)) => {
                let x = bool_node(x);
                return if *v == (op == CmpOp::Eq) {
                    x
                } else {
                    BoolNode::Not(Box::new(x))
                };
            }
            _ => {}
        }
        return BoolNode::BoolEq {
            eq: op == CmpOp::Eq,
            a: Box::new(bool_node(a)),
            b: Box::new(bool_node(b)),
        };
    }
    BoolNode::Fallback(e.clone())
}

/// `a in b`.
fn member(a: &Expr, b: &Expr, e: &Expr) -> BoolNode {
    match b {
        Expr::List(ListLit::Strs { sorted, .. }) if sorted.is_empty() => empty_in(a, e),
        Expr::List(ListLit::Nums(items)) if items.is_empty() => empty_in(a, e),
        Expr::List(ListLit::Strs { sorted, .. }) => match a {
            Expr::Str(s) => BoolNode::Const(Some(sorted.binary_search(s).is_ok())),
            _ => match (str_src(a), st(a)) {
                (Some(src), _) => BoolNode::Str(src, StrPred::In(sorted.clone())),
                (None, St::Dyn | St::Str) => BoolNode::Fallback(e.clone()),
                _ => unknown(),
            },
        },
        Expr::List(ListLit::Nums(items)) => match st(a) {
            St::Str | St::Bool | St::List => unknown(),
            _ => match num_node(a) {
                Some(x) => BoolNode::NumIn {
                    a: x,
                    items: items.clone(),
                    expr: e.clone(),
                },
                None => BoolNode::Fallback(e.clone()),
            },
        },
        Expr::Var(Var::Tags) => match a {
            Expr::Str(s) => BoolNode::Tag(s.clone()),
            _ => match st(a) {
                St::Num | St::Bool | St::List => unknown(),
                _ => BoolNode::Fallback(e.clone()),
            },
        },
        Expr::Var(Var::Attr { name, .. }) => match a {
            Expr::Str(s) => BoolNode::ListHas(name.clone(), s.clone()),
            _ => match st(a) {
                St::Num | St::Bool | St::List => unknown(),
                _ => BoolNode::Fallback(e.clone()),
            },
        },
        Expr::Cond(..) => BoolNode::Fallback(e.clone()),
        _ => unknown(),
    }
}

/// `a in []`: false where `a` is a string or a number, unknown elsewhere.
fn empty_in(a: &Expr, e: &Expr) -> BoolNode {
    if let Expr::Var(Var::Attr { name, .. }) = a {
        return BoolNode::EmptyIn(name.clone());
    }
    if let Some(src) = str_src(a) {
        return BoolNode::Str(src, StrPred::In(Vec::new()));
    }
    match (a, st(a)) {
        (Expr::Str(_) | Expr::Num(_), _) => BoolNode::Const(Some(false)),
        (_, St::Num) => match num_node(a) {
            Some(x) => BoolNode::NumIn {
                a: x,
                items: Vec::new(),
                expr: e.clone(),
            },
            None => BoolNode::Fallback(e.clone()),
        },
        (_, St::Bool | St::List) => unknown(),
        (_, St::Str | St::Dyn) => BoolNode::Fallback(e.clone()),
    }
}

fn method(m: Method, recv: &Expr, arg: &Expr, e: &Expr) -> BoolNode {
    if m == Method::Contains && matches!(st(recv), St::List) {
        return member(arg, recv, e);
    }
    let Expr::Str(lit) = arg else {
        // a number, boolean or list argument is unknown for strings and lists alike
        return match st(arg) {
            St::Dyn | St::Str => BoolNode::Fallback(e.clone()),
            _ => unknown(),
        };
    };
    let pred = match m {
        Method::StartsWith => StrPred::StartsWith(lit.clone()),
        Method::EndsWith => StrPred::EndsWith(lit.clone()),
        Method::Contains => StrPred::Contains(lit.clone()),
    };
    match recv {
        Expr::Str(s) => BoolNode::Const(Some(pred.test(s))),
        Expr::Var(Var::Attr { name, .. }) if m == Method::Contains => {
            BoolNode::AttrContains(name.clone(), lit.clone())
        }
        _ => match (str_src(recv), st(recv)) {
            (Some(src), _) => BoolNode::Str(src, pred),
            (None, St::Dyn | St::Str) => BoolNode::Fallback(e.clone()),
            _ => unknown(),
        },
    }
}

/// Compiles an expression used as a number; `None` when it has no vectorised form.
pub(super) fn num_node(e: &Expr) -> Option<NumNode> {
    Some(match e {
        Expr::Num(n) => NumNode::Lit(*n),
        // bound for the evaluation date: a constant, or unknown for everyone
        Expr::Param(p) => p.value.map_or(NumNode::Never, NumNode::Lit),
        Expr::Var(Var::Age) => NumNode::Age,
        Expr::Var(Var::Attr { name, .. }) => NumNode::Col(name.clone()),
        Expr::Var(_) | Expr::Str(_) | Expr::Bool(_) | Expr::List(_) => NumNode::Never,
        Expr::Neg(x) => NumNode::Neg(Box::new(num_node(x)?)),
        Expr::Arith(op, a, b) => {
            NumNode::Arith(*op, Box::new(num_node(a)?), Box::new(num_node(b)?))
        }
        Expr::Size(x) => match &**x {
            Expr::Var(Var::Attr { name, .. }) => NumNode::SizeAttr(name.clone()),
            Expr::Var(Var::Tags) => NumNode::SizeTags,
            Expr::Str(s) => NumNode::Lit(Num::Int(s.chars().count() as i64)),
            Expr::List(l) => NumNode::Lit(Num::Int(l.len() as i64)),
            other => match st(other) {
                St::Num | St::Bool => NumNode::Never,
                _ => return None,
            },
        },
        Expr::Cond(c, a, b) => NumNode::Cond(
            Box::new(bool_node(c)),
            Box::new(num_node(a)?),
            Box::new(num_node(b)?),
        ),
        Expr::Has(_)
        | Expr::Not(_)
        | Expr::And(..)
        | Expr::Or(..)
        | Expr::Cmp(..)
        | Expr::In(..)
        | Expr::Method(..) => NumNode::Never,
    })
}
