//! Running a plan: leaves resolved to bitmaps once, then the tree evaluated on every
//! shard of 262,144 ids in parallel, each node only within the ids where its answer
//! still matters (the right side of `&&` where the left is not false, and so on).

use super::node::BoolNode;
use super::numeric::{self, NumTest};
use super::strings::{self, LeafSets};
use crate::index::{date_key, PopulationIndex};
use crate::tri::Tri;
use chrono::NaiveDate;
use domain::rule::ast::Expr;
use domain::Facts;
use rayon::prelude::*;
use roaring::{MultiOps, RoaringBitmap};
use std::borrow::Cow;

/// log2 of the ids in a shard (the unit of parallel work: four chunks).
const SHARD_BITS: u32 = 18;

/// What every node reads while it runs.
pub(super) struct Ctx<'a> {
    pub ix: &'a PopulationIndex,
    pub today: NaiveDate,
    /// `today` as `yyyymmdd`.
    pub today_key: i32,
}

/// A plan node with its leaves resolved against one index.
pub(super) enum P<'a> {
    Const(Option<bool>),
    Leaf {
        t: Cow<'a, RoaringBitmap>,
        known: Option<Cow<'a, RoaringBitmap>>,
    },
    Not(Box<P<'a>>),
    And(Box<P<'a>>, Box<P<'a>>),
    Or(Box<P<'a>>, Box<P<'a>>),
    Cond(Box<P<'a>>, Box<P<'a>>, Box<P<'a>>),
    BoolEq {
        eq: bool,
        a: Box<P<'a>>,
        b: Box<P<'a>>,
    },
    Num(NumTest<'a>),
    Fallback(&'a Expr),
}

fn owned(l: LeafSets<'_>) -> P<'_> {
    P::Leaf {
        t: l.t,
        known: l.known,
    }
}

pub(super) fn prepare<'a>(n: &'a BoolNode, ctx: &Ctx<'a>) -> P<'a> {
    let ix = ctx.ix;
    let b = |x: &'a BoolNode| Box::new(prepare(x, ctx));
    match n {
        BoolNode::Const(v) => P::Const(*v),
        BoolNode::Has(name) => P::Leaf {
            t: Cow::Borrowed(&ix.attr(name).present),
            known: None,
        },
        BoolNode::Flag(name) => {
            let f = &ix.attr(name).flag;
            P::Leaf {
                t: Cow::Borrowed(&f.t),
                known: Some(Cow::Owned(&f.t | &f.f)),
            }
        }
        BoolNode::Tag(t) => P::Leaf {
            t: Cow::Borrowed(ix.tag(t)),
            known: None,
        },
        BoolNode::Str(src, pred) => owned(strings::string_leaf(ix, src, pred)),
        BoolNode::ListHas(name, e) => owned(strings::list_has(ix, name, e)),
        BoolNode::AttrContains(name, e) => owned(strings::attr_contains(ix, name, e)),
        BoolNode::EmptyIn(name) => owned(strings::empty_in(ix, name)),
        BoolNode::Not(x) => P::Not(b(x)),
        BoolNode::And(x, y) => P::And(b(x), b(y)),
        BoolNode::Or(x, y) => P::Or(b(x), b(y)),
        BoolNode::Cond(c, x, y) => P::Cond(b(c), b(x), b(y)),
        BoolNode::BoolEq { eq, a, b: y } => P::BoolEq {
            eq: *eq,
            a: b(a),
            b: b(y),
        },
        BoolNode::NumCmp { op, a, b: y, expr } => {
            if let Some(leaf) = numeric::size_leaf(*op, a, y, ix) {
                return owned(leaf);
            }
            match numeric::prepare_cmp(*op, a, y, ctx) {
                Some(t) => P::Num(t),
                None => P::Fallback(expr),
            }
        }
        BoolNode::NumRange { a, bounds, parts } => match numeric::prepare_range(a, bounds, ctx) {
            Some(t) => P::Num(t),
            None => parts
                .iter()
                .map(|p| prepare(p, ctx))
                .reduce(|x, y| P::And(Box::new(x), Box::new(y)))
                .expect("a range has parts"),
        },
        BoolNode::NumIn { a, items, expr } => match numeric::prepare_in(a, items, ctx) {
            Some(t) => P::Num(t),
            None => P::Fallback(expr),
        },
        BoolNode::Fallback(e) => P::Fallback(e),
    }
}

/// The three-valued answer of `p` within `scope`.
pub(super) fn eval(p: &P<'_>, ctx: &Ctx<'_>, scope: &RoaringBitmap) -> Tri {
    if scope.is_empty() {
        return Tri::default();
    }
    match p {
        P::Const(v) => Tri::constant(*v, scope),
        P::Leaf { t, known } => Tri::leaf(t, known.as_deref(), scope),
        P::Not(x) => eval(x, ctx, scope).not(scope),
        P::And(a, b) => {
            let ta = eval(a, ctx, scope);
            let open = ta.open();
            if open.is_empty() {
                return ta;
            }
            let tb = eval(b, ctx, &open);
            Tri::and_within(ta, tb)
        }
        P::Or(a, b) => {
            let ta = eval(a, ctx, scope);
            let rest = scope - &ta.t;
            if rest.is_empty() {
                return ta;
            }
            let tb = eval(b, ctx, &rest);
            Tri::or_within(ta, tb)
        }
        P::Cond(c, a, b) => {
            let tc = eval(c, ctx, scope);
            let fc = tc.falses(scope);
            let ta = eval(a, ctx, &tc.t);
            let tb = eval(b, ctx, &fc);
            let mut u = tc.u;
            u |= ta.u;
            u |= tb.u;
            Tri::new(ta.t | tb.t, u)
        }
        P::BoolEq { eq, a, b } => {
            let ta = eval(a, ctx, scope);
            let tb = eval(b, ctx, scope);
            let same = (&ta.t & &tb.t) | (ta.falses(scope) & tb.falses(scope));
            let u = ta.u | tb.u;
            if *eq {
                Tri::new(same, u)
            } else {
                let mut differ = scope - &same;
                differ -= &u;
                Tri::new(differ, u)
            }
        }
        P::Num(test) => numeric::eval(test, ctx, scope),
        P::Fallback(e) => fallback(e, ctx, scope),
    }
}

/// The domain interpreter, subject by subject, over rows read back from the index.
fn fallback(e: &Expr, ctx: &Ctx<'_>, scope: &RoaringBitmap) -> Tri {
    let mut t = Vec::new();
    let mut u = Vec::new();
    for id in scope {
        let (s, tags) = ctx.ix.row(id);
        match domain::rule::truth(e, &Facts::new(&s, &tags, ctx.today)) {
            Some(true) => t.push(id),
            Some(false) => {}
            None => u.push(id),
        }
    }
    let bm = |v: Vec<u32>| RoaringBitmap::from_sorted_iter(v).expect("scope is sorted");
    Tri::new(bm(t), bm(u))
}

/// The ids within `within` (or all) for which `root` is true on `today`.
pub(super) fn run(
    root: &BoolNode,
    ix: &PopulationIndex,
    today: NaiveDate,
    within: Option<&RoaringBitmap>,
) -> RoaringBitmap {
    let ctx = Ctx {
        ix,
        today,
        today_key: date_key(today),
    };
    let scope = match within {
        Some(w) => w & &ix.all,
        None => ix.all.clone(),
    };
    let Some(max) = scope.max() else {
        return RoaringBitmap::new();
    };
    let prepared = prepare(root, &ctx);
    let shards = (max >> SHARD_BITS) + 1;
    let parts: Vec<RoaringBitmap> = (0..shards)
        .into_par_iter()
        .map(|k| {
            let lo = u64::from(k) << SHARD_BITS;
            let mut range = RoaringBitmap::new();
            range.insert_range(
                lo as u32..=((lo + (1 << SHARD_BITS) - 1).min(u64::from(u32::MAX))) as u32,
            );
            let shard = &scope & &range;
            eval(&prepared, &ctx, &shard).t
        })
        .collect();
    parts.into_iter().union()
}
