//! Our tree back to rule text, in a canonical spelling with only the parentheses that
//! are needed: used for the clauses of explanations. Printing then parsing again gives
//! a rule that evaluates the same.

use super::ast::{Expr, ListLit, Num, Var};
use std::fmt::Write;

/// Binding strength, loosest first, as in CEL's grammar.
const COND: u8 = 1;
const OR: u8 = 2;
const AND: u8 = 3;
const RELATION: u8 = 4;
const SUM: u8 = 5;
const PRODUCT: u8 = 6;
const UNARY: u8 = 7;
const MEMBER: u8 = 8;

/// The rule text of an expression.
pub(crate) fn to_source(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, COND);
    out
}

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Cond(..) => COND,
        Expr::Or(..) => OR,
        Expr::And(..) => AND,
        Expr::Cmp(..) | Expr::In(..) => RELATION,
        Expr::Arith(op, ..) => match op {
            super::ast::ArithOp::Add | super::ast::ArithOp::Sub => SUM,
            _ => PRODUCT,
        },
        Expr::Not(_) | Expr::Neg(_) => UNARY,
        Expr::Num(n) if n.as_f64().is_sign_negative() => UNARY,
        _ => MEMBER,
    }
}

/// Writes `e`, in parentheses when it binds looser than `min`.
fn write_expr(out: &mut String, e: &Expr, min: u8) {
    let prec = precedence(e);
    if prec < min {
        out.push('(');
        write_bare(out, e);
        out.push(')');
    } else {
        write_bare(out, e);
    }
}

fn write_bare(out: &mut String, e: &Expr) {
    match e {
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Num(n) => write_num(out, *n),
        Expr::Str(s) => write_str(out, s),
        Expr::List(l) => write_list(out, l),
        Expr::Var(v) => write_var(out, v),
        Expr::Param(p) => {
            let _ = write!(out, "params.{}", p.name);
        }
        Expr::Has(name) => {
            let _ = write!(out, "has(attrs.{name})");
        }
        Expr::Not(x) => {
            out.push('!');
            write_expr(out, x, MEMBER);
        }
        Expr::Neg(x) => {
            out.push('-');
            write_expr(out, x, MEMBER);
        }
        Expr::And(a, b) => write_binary(out, a, "&&", b, AND, AND),
        Expr::Or(a, b) => write_binary(out, a, "||", b, OR, OR),
        Expr::Cmp(op, a, b) => write_binary(out, a, op.symbol(), b, RELATION, RELATION + 1),
        Expr::In(a, b) => write_binary(out, a, "in", b, RELATION, RELATION + 1),
        Expr::Arith(op, a, b) => {
            let prec = precedence(e);
            write_binary(out, a, op.symbol(), b, prec, prec + 1);
        }
        Expr::Method(m, recv, arg) => {
            write_expr(out, recv, MEMBER);
            let _ = write!(out, ".{}(", m.name());
            write_expr(out, arg, COND);
            out.push(')');
        }
        Expr::Size(x) => {
            out.push_str("size(");
            write_expr(out, x, COND);
            out.push(')');
        }
        Expr::Cond(c, a, b) => {
            write_expr(out, c, OR);
            out.push_str(" ? ");
            write_expr(out, a, OR);
            out.push_str(" : ");
            write_expr(out, b, COND);
        }
    }
}

fn write_binary(out: &mut String, a: &Expr, symbol: &str, b: &Expr, left: u8, right: u8) {
    write_expr(out, a, left);
    let _ = write!(out, " {symbol} ");
    write_expr(out, b, right);
}

fn write_var(out: &mut String, v: &Var) {
    match v {
        Var::Attr {
            name,
            via_attrs: true,
        } => {
            let _ = write!(out, "attrs.{name}");
        }
        other => out.push_str(other.name()),
    }
}

fn write_num(out: &mut String, n: Num) {
    let _ = match n {
        Num::Int(i) => write!(out, "{i}"),
        // `{:?}` keeps a decimal point (1500.0), so the literal stays a decimal.
        Num::Float(x) => write!(out, "{x:?}"),
    };
}

fn write_str(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn write_list(out: &mut String, l: &ListLit) {
    out.push('[');
    match l {
        ListLit::Strs { items, .. } => {
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, s);
            }
        }
        ListLit::Nums(items) => {
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_num(out, *n);
            }
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::super::Rule;

    fn canonical(src: &str) -> String {
        Rule::parse(src)
            .or_else(|_| Rule::parse_number(src))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .canonical()
    }

    #[test]
    fn prints_canonical_text() {
        assert_eq!(
            canonical("employees<20&&kind=='enterprise'"),
            "employees < 20 && kind == 'enterprise'"
        );
        assert_eq!(canonical("(a || b) && !(c)"), "(a || b) && !c");
        assert_eq!(
            canonical("a - (b - c) > (a - b) - c"),
            "a - (b - c) > a - b - c"
        );
        assert_eq!(
            canonical("(a + b) * 2 == a + b * 2"),
            "(a + b) * 2 == a + b * 2"
        );
        assert_eq!(canonical("x * 1500.0 * 0.6"), "x * 1500.0 * 0.6");
        assert_eq!(canonical("-(x) < -5"), "-x < -5");
        assert_eq!(
            canonical("'it\\'s' in ['a', \"b\"]"),
            "'it\\'s' in ['a', 'b']"
        );
        assert_eq!(
            canonical("has(attrs.x) && attrs.y.startsWith('浦')"),
            "has(attrs.x) && attrs.y.startsWith('浦')"
        );
        assert_eq!(
            canonical("size(tags) > 0 ? true : x"),
            "size(tags) > 0 ? true : x"
        );
        assert_eq!(canonical("(a ? b : c) ? d : e"), "(a ? b : c) ? d : e");
        assert_eq!(
            canonical("tags.size() >= [1, 2].size()"),
            "size(tags) >= size([1, 2])"
        );
        assert_eq!(canonical("a || b || c || d"), "a || b || c || d");
    }
}
