//! The nodes of a plan and how each describes itself.

use domain::rule::ast::{ArithOp, CmpOp, Expr, Num};

/// Where a string comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum StrSrc {
    Kind,
    Sex,
    Attr(Box<str>),
}

/// A test of one string against literals of the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum StrPred {
    /// `value op lit`, or `lit op value` when `lit_left`.
    Cmp {
        op: CmpOp,
        lit: Box<str>,
        lit_left: bool,
    },
    /// `value in [..]` (sorted; may be empty).
    In(Vec<Box<str>>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
}

impl StrPred {
    pub fn test(&self, v: &str) -> bool {
        match self {
            StrPred::Cmp { op, lit, lit_left } => {
                let ord = if *lit_left {
                    (**lit).cmp(v)
                } else {
                    v.cmp(lit)
                };
                op.holds(ord)
            }
            StrPred::In(items) => items.binary_search_by(|x| (**x).cmp(v)).is_ok(),
            StrPred::StartsWith(p) => v.starts_with(&**p),
            StrPred::EndsWith(p) => v.ends_with(&**p),
            StrPred::Contains(p) => v.contains(&**p),
        }
    }

    fn describe(&self, src: &str) -> String {
        match self {
            StrPred::Cmp {
                op,
                lit,
                lit_left: false,
            } => format!("{src} {} '{lit}'", op.symbol()),
            StrPred::Cmp { op, lit, .. } => format!("'{lit}' {} {src}", op.symbol()),
            StrPred::In(items) => format!("{src} in [{} values]", items.len()),
            StrPred::StartsWith(p) => format!("{src}.startsWith('{p}')"),
            StrPred::EndsWith(p) => format!("{src}.endsWith('{p}')"),
            StrPred::Contains(p) => format!("{src}.contains('{p}')"),
        }
    }
}

/// A condition node.
#[derive(Debug, Clone, PartialEq)]
pub enum BoolNode {
    /// The same answer for everyone (`None`: unknown).
    Const(Option<bool>),
    /// `has(attrs.x)`.
    Has(Box<str>),
    /// An attribute read as a condition: true/false where it is a boolean.
    Flag(Box<str>),
    /// `'t' in tags`.
    Tag(Box<str>),
    /// A string predicate, tested once per distinct value.
    Str(StrSrc, StrPred),
    /// `'e' in attr` over a list attribute.
    ListHas(Box<str>, Box<str>),
    /// `attr.contains('x')`: substring of a string value, element of a list value.
    AttrContains(Box<str>, Box<str>),
    /// `attr in []`: false where the attribute is a string or a number.
    EmptyIn(Box<str>),
    Not(Box<BoolNode>),
    And(Box<BoolNode>, Box<BoolNode>),
    Or(Box<BoolNode>, Box<BoolNode>),
    Cond(Box<BoolNode>, Box<BoolNode>, Box<BoolNode>),
    /// `a == b` (or `!=` when `eq` is false) of two conditions.
    BoolEq {
        eq: bool,
        a: Box<BoolNode>,
        b: Box<BoolNode>,
    },
    /// A numeric comparison, scanned chunk by chunk; `expr` is the comparison itself,
    /// evaluated per subject instead when integers could exceed 2^53.
    NumCmp {
        op: CmpOp,
        a: NumNode,
        b: NumNode,
        expr: Expr,
    },
    /// Orderings of one column or `age` against literals, from one `&&` chain
    /// (`age >= 18 && age <= 59`), tested in one pass; `parts` are the comparisons
    /// themselves, run one by one where the merged test does not apply.
    NumRange {
        a: NumNode,
        bounds: Vec<(CmpOp, Num)>,
        parts: Vec<BoolNode>,
    },
    /// `number in [..]`.
    NumIn {
        a: NumNode,
        items: Vec<Num>,
        expr: Expr,
    },
    /// Evaluated per subject by the domain interpreter.
    Fallback(Expr),
}

/// A number node, evaluated a chunk of ids at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum NumNode {
    Lit(Num),
    /// A numeric attribute.
    Col(Box<str>),
    /// A person's age on the evaluation date.
    Age,
    /// `size(attr)`: characters of a string, items of a list.
    SizeAttr(Box<str>),
    /// `size(tags)`.
    SizeTags,
    Neg(Box<NumNode>),
    Arith(ArithOp, Box<NumNode>, Box<NumNode>),
    Cond(Box<BoolNode>, Box<NumNode>, Box<NumNode>),
    /// Never a number (so unknown wherever a number is needed).
    Never,
}

impl BoolNode {
    pub fn describe(&self) -> String {
        match self {
            BoolNode::Const(Some(b)) => b.to_string(),
            BoolNode::Const(None) => "unknown".into(),
            BoolNode::Has(n) => format!("bitmap has({n})"),
            BoolNode::Flag(n) => format!("bitmap {n}"),
            BoolNode::Tag(t) => format!("bitmap '{t}' in tags"),
            BoolNode::Str(src, pred) => {
                let s = match src {
                    StrSrc::Kind => "kind".to_string(),
                    StrSrc::Sex => "sex".to_string(),
                    StrSrc::Attr(n) => n.to_string(),
                };
                format!("bitmaps {}", pred.describe(&s))
            }
            BoolNode::ListHas(n, e) => format!("bitmap '{e}' in {n}"),
            BoolNode::AttrContains(n, e) => format!("bitmaps {n}.contains('{e}')"),
            BoolNode::EmptyIn(n) => format!("bitmaps {n} in []"),
            BoolNode::Not(x) => format!("not({})", x.describe()),
            BoolNode::And(a, b) => format!("and({}, {})", a.describe(), b.describe()),
            BoolNode::Or(a, b) => format!("or({}, {})", a.describe(), b.describe()),
            BoolNode::Cond(c, a, b) => {
                format!("cond({}, {}, {})", c.describe(), a.describe(), b.describe())
            }
            BoolNode::BoolEq { eq, a, b } => format!(
                "{}({}, {})",
                if *eq { "eq" } else { "ne" },
                a.describe(),
                b.describe()
            ),
            BoolNode::NumCmp { op, a, b, .. } if self.is_size_leaf() => {
                format!("bitmaps {} {} {}", a.describe(), op.symbol(), b.describe())
            }
            BoolNode::NumCmp { op, a, b, .. } => {
                format!("scan({} {} {})", a.describe(), op.symbol(), b.describe())
            }
            BoolNode::NumIn { a, items, .. } => {
                format!("scan({} in [{} numbers])", a.describe(), items.len())
            }
            BoolNode::NumRange { a, bounds, .. } => {
                let b: Vec<String> = bounds
                    .iter()
                    .map(|(op, k)| format!("{} {}", op.symbol(), NumNode::Lit(*k).describe()))
                    .collect();
                format!("range({} {})", a.describe(), b.join(", "))
            }
            BoolNode::Fallback(e) => {
                format!("per-subject({})", domain::rule::ast::canonical_text(e))
            }
        }
    }

    /// A rough cost of evaluating the node over a dense scope, for ordering the
    /// operands of `&&`/`||`: bitmap leaves, then column scans (arithmetic and sizes
    /// dearer), then per-subject evaluation.
    pub fn cost(&self) -> u32 {
        match self {
            BoolNode::Const(_) => 0,
            BoolNode::Has(_)
            | BoolNode::Flag(_)
            | BoolNode::Tag(_)
            | BoolNode::Str(..)
            | BoolNode::ListHas(..)
            | BoolNode::AttrContains(..)
            | BoolNode::EmptyIn(_) => 1,
            BoolNode::Not(x) => x.cost(),
            BoolNode::And(a, b) | BoolNode::Or(a, b) => a.cost().saturating_add(b.cost()),
            BoolNode::BoolEq { a, b, .. } => a.cost().saturating_add(b.cost()),
            BoolNode::Cond(c, a, b) => c.cost().saturating_add(a.cost()).saturating_add(b.cost()),
            BoolNode::NumCmp { .. } if self.is_size_leaf() => 2,
            BoolNode::NumCmp { a, b, .. } => 8u32.saturating_add(a.cost()).saturating_add(b.cost()),
            BoolNode::NumIn { a, .. } | BoolNode::NumRange { a, .. } => {
                8u32.saturating_add(a.cost())
            }
            BoolNode::Fallback(_) => 1000,
        }
    }

    /// `size(attr) op k` (either way round): a union of bitmaps of list lengths and
    /// strings, not a scan.
    pub fn is_size_leaf(&self) -> bool {
        matches!(
            self,
            BoolNode::NumCmp {
                a: NumNode::SizeAttr(_),
                b: NumNode::Lit(_),
                ..
            } | BoolNode::NumCmp {
                a: NumNode::Lit(_),
                b: NumNode::SizeAttr(_),
                ..
            }
        )
    }

    /// Parts evaluated per subject.
    pub fn fallbacks(&self) -> usize {
        match self {
            BoolNode::Fallback(_) => 1,
            BoolNode::Not(x) => x.fallbacks(),
            BoolNode::And(a, b) | BoolNode::Or(a, b) => a.fallbacks() + b.fallbacks(),
            BoolNode::BoolEq { a, b, .. } => a.fallbacks() + b.fallbacks(),
            BoolNode::Cond(c, a, b) => c.fallbacks() + a.fallbacks() + b.fallbacks(),
            BoolNode::NumCmp { a, b, .. } => a.fallbacks() + b.fallbacks(),
            BoolNode::NumIn { a, .. } => a.fallbacks(),
            BoolNode::NumRange { parts, .. } => parts.iter().map(BoolNode::fallbacks).sum(),
            _ => 0,
        }
    }
}

impl NumNode {
    pub fn describe(&self) -> String {
        match self {
            NumNode::Lit(Num::Int(i)) => i.to_string(),
            NumNode::Lit(Num::Float(x)) => format!("{x:?}"),
            NumNode::Col(n) => n.to_string(),
            NumNode::Age => "age".into(),
            NumNode::SizeAttr(n) => format!("size({n})"),
            NumNode::SizeTags => "size(tags)".into(),
            NumNode::Neg(x) => format!("-{}", x.describe()),
            NumNode::Arith(op, a, b) => {
                format!("({} {} {})", a.describe(), op.symbol(), b.describe())
            }
            NumNode::Cond(c, a, b) => {
                format!("({} ? {} : {})", c.describe(), a.describe(), b.describe())
            }
            NumNode::Never => "never-a-number".into(),
        }
    }

    /// See [`BoolNode::cost`].
    pub fn cost(&self) -> u32 {
        match self {
            NumNode::Lit(_) | NumNode::Never => 0,
            NumNode::Col(_) | NumNode::Age => 1,
            NumNode::SizeAttr(_) | NumNode::SizeTags => 20,
            NumNode::Neg(x) => 2u32.saturating_add(x.cost()),
            NumNode::Arith(_, a, b) => 6u32.saturating_add(a.cost()).saturating_add(b.cost()),
            NumNode::Cond(c, a, b) => 4u32
                .saturating_add(c.cost())
                .saturating_add(a.cost())
                .saturating_add(b.cost()),
        }
    }

    fn fallbacks(&self) -> usize {
        match self {
            NumNode::Neg(x) => x.fallbacks(),
            NumNode::Arith(_, a, b) => a.fallbacks() + b.fallbacks(),
            NumNode::Cond(c, a, b) => c.fallbacks() + a.fallbacks() + b.fallbacks(),
            _ => 0,
        }
    }
}
