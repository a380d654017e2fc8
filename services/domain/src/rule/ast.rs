//! Our own expression tree for the rule language, produced by [`super::lower`] from the CEL
//! parser's tree. Identifiers are resolved here once (kind, age, sex, tags or an
//! attribute), and list literals are kept ready for membership tests, so that evaluation
//! does no name matching and no allocation.

/// A checked expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Num(Num),
    Str(Box<str>),
    List(ListLit),
    Var(Var),
    /// `has(attrs.<name>)`.
    Has(Box<str>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `element in collection`.
    In(Box<Expr>, Box<Expr>),
    /// `receiver.method(argument)`.
    Method(Method, Box<Expr>, Box<Expr>),
    /// `size(x)` or `x.size()`.
    Size(Box<Expr>),
    /// `condition ? then : otherwise`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `params.<name>`: a policy parameter, a number. Its value is filled in by
    /// [`super::Rule::bind`] for one evaluation date; unbound (or with no value in force
    /// on that date) it is unknown.
    Param(Param),
}

/// A policy parameter read by a rule, with its value on the date the rule was bound for.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Box<str>,
    pub value: Option<Num>,
}

/// The expression in canonical spelling (as [`super::Rule::canonical`] prints rules).
pub fn canonical_text(e: &Expr) -> String {
    super::print::to_source(e)
}

/// A number literal or value: integers stay exact, decimals are `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// What an identifier reads, resolved when the rule is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    Kind,
    Age,
    Sex,
    Tags,
    /// An attribute; `via_attrs` records whether it was written `attrs.<name>` (only
    /// for printing: both spellings read the same attribute).
    Attr {
        name: Box<str>,
        via_attrs: bool,
    },
}

impl Var {
    /// The name shown in explanations.
    pub fn name(&self) -> &str {
        match self {
            Var::Kind => "kind",
            Var::Age => "age",
            Var::Sex => "sex",
            Var::Tags => "tags",
            Var::Attr { name, .. } => name,
        }
    }
}

/// A list literal: all strings or all numbers (checked), with a sorted copy of the
/// strings for membership tests on long lists.
#[derive(Debug, Clone, PartialEq)]
pub enum ListLit {
    Strs {
        /// As written, for printing.
        items: Vec<Box<str>>,
        /// Sorted and deduplicated, for binary search.
        sorted: Vec<Box<str>>,
    },
    Nums(Vec<Num>),
}

impl ListLit {
    pub fn strs(items: Vec<Box<str>>) -> Self {
        let mut sorted = items.clone();
        sorted.sort();
        sorted.dedup();
        ListLit::Strs { items, sorted }
    }

    pub fn len(&self) -> usize {
        match self {
            ListLit::Strs { items, .. } => items.len(),
            ListLit::Nums(n) => n.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains_str(&self, s: &str) -> bool {
        match self {
            ListLit::Strs { sorted, .. } => sorted.binary_search_by(|x| (**x).cmp(s)).is_ok(),
            ListLit::Nums(_) => false,
        }
    }

    pub fn contains_num(&self, n: Num) -> bool {
        match self {
            ListLit::Strs { .. } => false,
            ListLit::Nums(items) => items.iter().any(|x| num_eq(*x, n)),
        }
    }
}

/// Numeric equality across integers and decimals.
pub fn num_eq(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its sides swapped: `k < x` is `x > k`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            eq => eq,
        }
    }

    /// The operator that holds exactly when this one is false (on known values).
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    pub fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// Whether an ordering satisfies the operator.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    StartsWith,
    EndsWith,
    /// Substring on a string, membership on a list.
    Contains,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::StartsWith => "startsWith",
            Method::EndsWith => "endsWith",
            Method::Contains => "contains",
        }
    }
}

impl Expr {
    /// Calls `f` for every identifier the expression reads, in reading order
    /// (`has(attrs.x)` reads `x`).
    pub fn visit_vars<'e>(&'e self, f: &mut dyn FnMut(VarRef<'e>)) {
        match self {
            Expr::Bool(_) | Expr::Num(_) | Expr::Str(_) | Expr::List(_) | Expr::Param(_) => {}
            Expr::Var(v) => f(VarRef::Var(v)),
            Expr::Has(name) => f(VarRef::Has(name)),
            Expr::Not(e) | Expr::Neg(e) | Expr::Size(e) => e.visit_vars(f),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Arith(_, a, b)
            | Expr::In(a, b)
            | Expr::Method(_, a, b) => {
                a.visit_vars(f);
                b.visit_vars(f);
            }
            Expr::Cond(c, a, b) => {
                c.visit_vars(f);
                a.visit_vars(f);
                b.visit_vars(f);
            }
        }
    }

    /// Whether the expression may read tag `name`: it tests `name`'s membership of
    /// `tags` (`'x' in tags`, `tags.contains('x')`), or reads `tags` any other way (then
    /// every tag may matter).
    pub fn may_read_tag(&self, name: &str) -> bool {
        let tags = |e: &Expr| matches!(e, Expr::Var(Var::Tags));
        match self {
            Expr::In(x, list) if tags(list) => match &**x {
                Expr::Str(s) => &**s == name,
                _ => true,
            },
            Expr::Method(Method::Contains, list, x) if tags(list) => match &**x {
                Expr::Str(s) => &**s == name,
                _ => true,
            },
            Expr::Var(v) => *v == Var::Tags,
            Expr::Bool(_)
            | Expr::Num(_)
            | Expr::Str(_)
            | Expr::List(_)
            | Expr::Has(_)
            | Expr::Param(_) => false,
            Expr::Not(e) | Expr::Neg(e) | Expr::Size(e) => e.may_read_tag(name),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Arith(_, a, b)
            | Expr::In(a, b)
            | Expr::Method(_, a, b) => a.may_read_tag(name) || b.may_read_tag(name),
            Expr::Cond(c, a, b) => {
                c.may_read_tag(name) || a.may_read_tag(name) || b.may_read_tag(name)
            }
        }
    }

    /// Calls `f` for every parameter the expression reads, in reading order.
    pub fn visit_params<'e>(&'e self, f: &mut dyn FnMut(&'e Param)) {
        match self {
            Expr::Param(p) => f(p),
            Expr::Bool(_)
            | Expr::Num(_)
            | Expr::Str(_)
            | Expr::List(_)
            | Expr::Var(_)
            | Expr::Has(_) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::Size(e) => e.visit_params(f),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Arith(_, a, b)
            | Expr::In(a, b)
            | Expr::Method(_, a, b) => {
                a.visit_params(f);
                b.visit_params(f);
            }
            Expr::Cond(c, a, b) => {
                c.visit_params(f);
                a.visit_params(f);
                b.visit_params(f);
            }
        }
    }

    /// A copy with every parameter's value taken from `value` (`None`: unknown).
    pub fn with_params(&self, value: &dyn Fn(&str) -> Option<Num>) -> Expr {
        let b = |e: &Expr| Box::new(e.with_params(value));
        match self {
            Expr::Param(p) => Expr::Param(Param {
                name: p.name.clone(),
                value: value(&p.name),
            }),
            Expr::Bool(_)
            | Expr::Num(_)
            | Expr::Str(_)
            | Expr::List(_)
            | Expr::Var(_)
            | Expr::Has(_) => self.clone(),
            Expr::Not(e) => Expr::Not(b(e)),
            Expr::Neg(e) => Expr::Neg(b(e)),
            Expr::Size(e) => Expr::Size(b(e)),
            Expr::And(x, y) => Expr::And(b(x), b(y)),
            Expr::Or(x, y) => Expr::Or(b(x), b(y)),
            Expr::Cmp(op, x, y) => Expr::Cmp(*op, b(x), b(y)),
            Expr::Arith(op, x, y) => Expr::Arith(*op, b(x), b(y)),
            Expr::In(x, y) => Expr::In(b(x), b(y)),
            Expr::Method(m, x, y) => Expr::Method(*m, b(x), b(y)),
            Expr::Cond(c, x, y) => Expr::Cond(b(c), b(x), b(y)),
        }
    }

    /// The conjuncts of the outermost `&&` chain, left to right (the expression itself
    /// when it is not an `&&`).
    pub fn conjuncts(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.push_conjuncts(&mut out);
        out
    }

    fn push_conjuncts<'e>(&'e self, out: &mut Vec<&'e Expr>) {
        match self {
            Expr::And(a, b) => {
                a.push_conjuncts(out);
                b.push_conjuncts(out);
            }
            other => out.push(other),
        }
    }
}

/// An identifier read by an expression: a value, or the presence test of an attribute.
#[derive(Debug, Clone, Copy)]
pub enum VarRef<'e> {
    Var(&'e Var),
    Has(&'e str),
}

impl VarRef<'_> {
    pub fn name(&self) -> &str {
        match self {
            VarRef::Var(v) => v.name(),
            VarRef::Has(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_lists_search_sorted_copy() {
        let l = ListLit::strs(vec!["b".into(), "a".into(), "b".into()]);
        assert!(l.contains_str("a"));
        assert!(l.contains_str("b"));
        assert!(!l.contains_str("c"));
        assert!(!l.contains_num(Num::Int(1)));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn number_lists_compare_numerically() {
        let l = ListLit::Nums(vec![Num::Int(1), Num::Float(2.5)]);
        assert!(l.contains_num(Num::Float(1.0)));
        assert!(l.contains_num(Num::Float(2.5)));
        assert!(!l.contains_num(Num::Int(2)));
        assert!(!l.contains_str("1"));
    }

    #[test]
    fn comparison_operators_hold_on_orderings() {
        use std::cmp::Ordering::*;
        assert!(CmpOp::Le.holds(Equal) && CmpOp::Le.holds(Less) && !CmpOp::Le.holds(Greater));
        assert!(CmpOp::Ne.holds(Less) && !CmpOp::Ne.holds(Equal));
        assert!(CmpOp::Ge.holds(Greater) && !CmpOp::Gt.holds(Equal));
    }

    #[test]
    fn conjuncts_flatten_nested_ands() {
        let v = |n: &str| {
            Box::new(Expr::Var(Var::Attr {
                name: n.into(),
                via_attrs: false,
            }))
        };
        let e = Expr::And(
            Box::new(Expr::And(v("a"), v("b"))),
            Box::new(Expr::Or(v("c"), v("d"))),
        );
        assert_eq!(e.conjuncts().len(), 3);
        let mut names = Vec::new();
        e.visit_vars(&mut |r| names.push(r.name().to_string()));
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
