//! Numeric expressions, evaluated 65,536 ids at a time into an `f64` buffer and a
//! "known" bitset, then compared into bitsets with branch-free loops.
//!
//! The per-subject interpreter keeps integers exact and continues in decimals only on
//! division without remainder or overflow. In `f64` the two agree whenever every integer
//! along the way stays within 2^53; [`prepare_cmp`] checks that bound against the
//! columns' largest values and declines (so the comparison runs per subject) otherwise.
//! Unknowns follow the interpreter: a missing or non-numeric operand, a non-finite
//! arithmetic result, and NaN in an ordering are unknown.

use super::node::NumNode;
use super::run::{eval as eval_bool, prepare, Ctx, P};
use crate::attr::{AttrIndex, NumFacet, EXACT_INT};
use crate::chunk::{chunk_range, fill_words, words_to_bitmap, Chunked, Words, CHUNK, WORDS};
use crate::index::PopulationIndex;
use crate::tri::Tri;
use domain::rule::ast::{ArithOp, CmpOp, Num};
use roaring::RoaringBitmap;

/// A prepared number node.
pub(super) enum PN<'a> {
    Lit(f64),
    Col(&'a NumFacet),
    Age {
        birth: Option<&'a Chunked<i32>>,
        persons: &'a RoaringBitmap,
        today: i32,
    },
    SizeAttr {
        attr: &'a AttrIndex,
        chars: Vec<f64>,
    },
    SizeTags(&'a PopulationIndex),
    Neg(Box<PN<'a>>),
    Arith(ArithOp, Box<PN<'a>>, Box<PN<'a>>),
    Cond(Box<P<'a>>, Box<PN<'a>>, Box<PN<'a>>),
    Never,
}

/// A prepared numeric test.
pub(super) enum NumTest<'a> {
    Cmp(CmpOp, PN<'a>, PN<'a>),
    In(PN<'a>, Vec<f64>),
}

fn int_mag(n: Num) -> f64 {
    match n {
        Num::Int(i) => (i as f64).abs(),
        Num::Float(_) => 0.0,
    }
}

/// The node and the largest integer magnitude it can carry; `None` past 2^53.
fn prepare_num<'a>(n: &'a NumNode, ctx: &Ctx<'a>) -> Option<(PN<'a>, f64)> {
    let ix = ctx.ix;
    let (pn, bound) = match n {
        NumNode::Lit(v) => (PN::Lit(v.as_f64()), int_mag(*v)),
        NumNode::Col(name) => {
            let f = &ix.attr(name).num;
            (PN::Col(f), f.max_abs_int)
        }
        NumNode::Age => (
            PN::Age {
                birth: ix.birth.as_ref(),
                persons: &ix.persons,
                today: ctx.today_key,
            },
            // birth years 0..=9999
            20_000.0,
        ),
        NumNode::SizeAttr(name) => {
            let attr = ix.attr(name);
            let chars = attr
                .text
                .dict
                .names
                .iter()
                .map(|s| s.chars().count() as f64)
                .collect::<Vec<f64>>();
            let longest_list = attr.list.rows.values().map(|r| r.len()).max().unwrap_or(0);
            let bound = chars.iter().copied().fold(longest_list as f64, f64::max);
            (PN::SizeAttr { attr, chars }, bound)
        }
        NumNode::SizeTags => (PN::SizeTags(ix), ix.tags.len() as f64),
        NumNode::Neg(x) => {
            let (x, b) = prepare_num(x, ctx)?;
            (PN::Neg(Box::new(x)), b)
        }
        NumNode::Arith(op, a, b) => {
            let (a, ba) = prepare_num(a, ctx)?;
            let (b, bb) = prepare_num(b, ctx)?;
            let bound = match op {
                ArithOp::Add | ArithOp::Sub => ba + bb,
                ArithOp::Mul => ba * bb,
                ArithOp::Div | ArithOp::Rem => ba,
            };
            (PN::Arith(*op, Box::new(a), Box::new(b)), bound)
        }
        NumNode::Cond(c, a, b) => {
            let (a, ba) = prepare_num(a, ctx)?;
            let (b, bb) = prepare_num(b, ctx)?;
            (
                PN::Cond(Box::new(prepare(c, ctx)), Box::new(a), Box::new(b)),
                ba.max(bb),
            )
        }
        NumNode::Never => (PN::Never, 0.0),
    };
    (bound < EXACT_INT).then_some((pn, bound))
}

pub(super) fn prepare_cmp<'a>(
    op: CmpOp,
    a: &'a NumNode,
    b: &'a NumNode,
    ctx: &Ctx<'a>,
) -> Option<NumTest<'a>> {
    let (a, _) = prepare_num(a, ctx)?;
    let (b, _) = prepare_num(b, ctx)?;
    Some(NumTest::Cmp(op, a, b))
}

pub(super) fn prepare_in<'a>(a: &'a NumNode, items: &[Num], ctx: &Ctx<'a>) -> Option<NumTest<'a>> {
    if items.iter().any(|n| int_mag(*n) >= EXACT_INT) {
        return None;
    }
    let (a, _) = prepare_num(a, ctx)?;
    Some(NumTest::In(a, items.iter().map(|n| n.as_f64()).collect()))
}

/// A number node whose conditions are evaluated within the current scope.
enum R<'p, 'a> {
    Leaf(&'p PN<'a>),
    Neg(Box<R<'p, 'a>>),
    Arith(ArithOp, Box<R<'p, 'a>>, Box<R<'p, 'a>>),
    Cond {
        t: RoaringBitmap,
        f: RoaringBitmap,
        a: Box<R<'p, 'a>>,
        b: Box<R<'p, 'a>>,
    },
}

fn resolve<'p, 'a>(pn: &'p PN<'a>, ctx: &Ctx<'_>, scope: &RoaringBitmap) -> R<'p, 'a> {
    match pn {
        PN::Neg(x) => R::Neg(Box::new(resolve(x, ctx, scope))),
        PN::Arith(op, a, b) => R::Arith(
            *op,
            Box::new(resolve(a, ctx, scope)),
            Box::new(resolve(b, ctx, scope)),
        ),
        PN::Cond(c, a, b) => {
            let tc = eval_bool(c, ctx, scope);
            let f = tc.falses(scope);
            R::Cond {
                t: tc.t,
                f,
                a: Box::new(resolve(a, ctx, scope)),
                b: Box::new(resolve(b, ctx, scope)),
            }
        }
        leaf => R::Leaf(leaf),
    }
}

thread_local! {
    /// Chunk buffers kept per thread between runs (allocating 512 KiB per node per
    /// shard would cost more in page faults than the scans themselves).
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Reusable chunk buffers.
#[derive(Default)]
struct Scratch {
    vals: Vec<Vec<f64>>,
    words: Vec<Box<Words>>,
}

impl Scratch {
    fn vals(&mut self) -> Vec<f64> {
        self.vals.pop().unwrap_or_else(|| vec![0.0; CHUNK])
    }
    fn words(&mut self) -> Box<Words> {
        self.words.pop().unwrap_or_else(|| Box::new([0; WORDS]))
    }
}

/// Sets `out` bit by bit from `f(i)`, 64 at a time.
#[inline]
fn pack(out: &mut Words, f: impl Fn(usize) -> bool) {
    for (w, word) in out.iter_mut().enumerate() {
        let base = w * 64;
        let mut bits = 0u64;
        for j in 0..64 {
            bits |= (f(base + j) as u64) << j;
        }
        *word = bits;
    }
}

fn id_at(c: usize, id: u32) -> usize {
    (id as usize) - chunk_range(c).start as usize
}

/// The values and known bits of `r` over chunk `c`.
fn chunk(r: &R<'_, '_>, c: usize, vals: &mut [f64], ok: &mut Words, s: &mut Scratch) {
    match r {
        R::Leaf(leaf) => chunk_leaf(leaf, c, vals, ok, s),
        R::Neg(x) => {
            chunk(x, c, vals, ok, s);
            for v in vals.iter_mut() {
                *v = -*v;
            }
        }
        R::Arith(op, a, b) => {
            chunk(a, c, vals, ok, s);
            let mut vb = s.vals();
            let mut okb = s.words();
            chunk(b, c, &mut vb, &mut okb, s);
            arith(*op, vals, &vb);
            let mut fin = s.words();
            pack(&mut fin, |i| vals[i].is_finite());
            for ((o, b), f) in ok.iter_mut().zip(okb.iter()).zip(fin.iter()) {
                *o &= b & f;
            }
            s.vals.push(vb);
            s.words.push(okb);
            s.words.push(fin);
        }
        R::Cond { t, f, a, b } => {
            let mut tw = s.words();
            let mut fw = s.words();
            fill_words(t, c, &mut tw);
            fill_words(f, c, &mut fw);
            chunk(a, c, vals, ok, s);
            let mut vb = s.vals();
            let mut okb = s.words();
            chunk(b, c, &mut vb, &mut okb, s);
            for w in 0..WORDS {
                let bits = tw[w];
                for j in 0..64 {
                    let i = w * 64 + j;
                    vals[i] = if (bits >> j) & 1 == 1 { vals[i] } else { vb[i] };
                }
                ok[w] = (tw[w] & ok[w]) | (fw[w] & okb[w]);
            }
            s.vals.push(vb);
            s.words.extend([tw, fw, okb]);
        }
    }
}

fn chunk_leaf(leaf: &PN<'_>, c: usize, vals: &mut [f64], ok: &mut Words, s: &mut Scratch) {
    match leaf {
        PN::Lit(x) => {
            vals.fill(*x);
            ok.fill(!0);
        }
        PN::Never => ok.fill(0),
        PN::Col(f) => {
            match f.vals.chunk(c) {
                Some(v) => vals.copy_from_slice(v),
                None => vals.fill(0.0),
            }
            fill_words(&f.present, c, ok);
        }
        PN::Age {
            birth,
            persons,
            today,
        } => {
            fill_words(persons, c, ok);
            match birth.and_then(|b| b.chunk(c)) {
                Some(b) => {
                    for (v, b) in vals.iter_mut().zip(b) {
                        *v = (today - b).div_euclid(10_000) as f64;
                    }
                }
                None => vals.fill(0.0),
            }
        }
        PN::SizeAttr { attr, chars } => {
            vals.fill(0.0);
            fill_words(&attr.text.present, c, ok);
            let mut lw = s.words();
            fill_words(&attr.list.present, c, &mut lw);
            for (o, l) in ok.iter_mut().zip(lw.iter()) {
                *o |= l;
            }
            s.words.push(lw);
            if let Some(codes) = attr.text.codes.chunk(c) {
                for id in attr.text.present.range(chunk_range(c)) {
                    let i = id_at(c, id);
                    vals[i] = chars[codes[i] as usize];
                }
            }
            for id in attr.list.present.range(chunk_range(c)) {
                vals[id_at(c, id)] = attr.list.rows.get(&id).map_or(0, |r| r.len()) as f64;
            }
        }
        PN::SizeTags(ix) => {
            vals.fill(0.0);
            fill_words(&ix.all, c, ok);
            for b in ix.tags.values() {
                for id in b.range(chunk_range(c)) {
                    vals[id_at(c, id)] += 1.0;
                }
            }
        }
        PN::Neg(_) | PN::Arith(..) | PN::Cond(..) => unreachable!("resolved before chunks"),
    }
}

fn arith(op: ArithOp, a: &mut [f64], b: &[f64]) {
    let zip = a.iter_mut().zip(b);
    match op {
        ArithOp::Add => zip.for_each(|(x, y)| *x += y),
        ArithOp::Sub => zip.for_each(|(x, y)| *x -= y),
        ArithOp::Mul => zip.for_each(|(x, y)| *x *= y),
        ArithOp::Div => zip.for_each(|(x, y)| *x /= y),
        ArithOp::Rem => zip.for_each(|(x, y)| *x %= y),
    }
}

/// The comparison's answer within `scope`.
pub(super) fn eval(test: &NumTest<'_>, ctx: &Ctx<'_>, scope: &RoaringBitmap) -> Tri {
    let (a, b) = match test {
        NumTest::Cmp(_, a, b) => (resolve(a, ctx, scope), Some(resolve(b, ctx, scope))),
        NumTest::In(a, _) => (resolve(a, ctx, scope), None),
    };
    if let Some(tri) = direct(test, &a, b.as_ref(), scope) {
        return tri;
    }
    let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut va = s.vals();
    let mut vb = s.vals();
    let mut oka = s.words();
    let mut okb = s.words();
    let mut tw = s.words();
    let mut t = RoaringBitmap::new();
    let mut known = RoaringBitmap::new();
    for c in chunks(scope) {
        chunk(&a, c, &mut va, &mut oka, &mut s);
        match (test, &b) {
            (NumTest::Cmp(op, ..), Some(b)) => {
                chunk(b, c, &mut vb, &mut okb, &mut s);
                for (x, y) in oka.iter_mut().zip(okb.iter()) {
                    *x &= y;
                }
                if !op.is_equality() {
                    pack(&mut tw, |i| va[i].is_nan() || vb[i].is_nan());
                    for (x, n) in oka.iter_mut().zip(tw.iter()) {
                        *x &= !n;
                    }
                }
                compare(*op, &va, &vb, &mut tw);
            }
            (NumTest::In(_, items), _) => {
                pack(&mut tw, |i| items.iter().any(|x| va[i] == *x));
            }
            _ => unreachable!("a comparison has two sides"),
        }
        for (x, k) in tw.iter_mut().zip(oka.iter()) {
            *x &= k;
        }
        t |= words_to_bitmap(c, &tw);
        known |= words_to_bitmap(c, &oka);
    }
    s.vals.extend([va, vb]);
    s.words.extend([oka, okb, tw]);
    SCRATCH.with(|c| *c.borrow_mut() = s);
    Tri::leaf(&t, Some(&known), scope)
}

/// Chunks of `scope`.
fn chunks(scope: &RoaringBitmap) -> impl Iterator<Item = usize> + '_ {
    let (lo, hi) = (scope.min().unwrap_or(0), scope.max().unwrap_or(0));
    ((lo as usize >> 16)..=(hi as usize >> 16))
        .filter(move |c| scope.range_cardinality(chunk_range(*c)) > 0)
}

/// The common case without buffers: a numeric column or `age` against a literal,
/// compared straight from the column into bits; known is the column's presence.
fn direct(
    test: &NumTest<'_>,
    a: &R<'_, '_>,
    b: Option<&R<'_, '_>>,
    scope: &RoaringBitmap,
) -> Option<Tri> {
    let NumTest::Cmp(op, ..) = test else {
        return None;
    };
    let (leaf, lit, op) = match (a, b?) {
        (R::Leaf(x), R::Leaf(PN::Lit(k))) => (*x, *k, *op),
        (R::Leaf(PN::Lit(k)), R::Leaf(x)) => (*x, *k, flip(*op)),
        _ => return None,
    };
    let mut tw = [0u64; WORDS];
    let mut t = RoaringBitmap::new();
    match leaf {
        PN::Col(f) if f.float.is_empty() || op.is_equality() => {
            for c in chunks(scope) {
                let Some(v) = f.vals.chunk(c) else { continue };
                if sparse(scope, c) {
                    let lo = chunk_range(c).start;
                    t.extend(
                        scope
                            .range(chunk_range(c))
                            .filter(|id| holds(op, v[(id - lo) as usize], lit)),
                    );
                    continue;
                }
                compare_lit(op, v, lit, &mut tw);
                t |= words_to_bitmap(c, &tw);
            }
            t &= &f.present;
            Some(Tri::leaf(&t, Some(&f.present), scope))
        }
        PN::Age {
            birth: Some(birth),
            persons,
            today,
        } => {
            let mut ages = vec![0.0; CHUNK];
            for c in chunks(scope) {
                let Some(b) = birth.chunk(c) else { continue };
                if sparse(scope, c) {
                    let lo = chunk_range(c).start;
                    t.extend(scope.range(chunk_range(c)).filter(|id| {
                        let age = (today - b[(id - lo) as usize]).div_euclid(10_000);
                        holds(op, age as f64, lit)
                    }));
                    continue;
                }
                for (v, b) in ages.iter_mut().zip(b) {
                    *v = (today - b).div_euclid(10_000) as f64;
                }
                compare_lit(op, &ages, lit, &mut tw);
                t |= words_to_bitmap(c, &tw);
            }
            t &= *persons;
            Some(Tri::leaf(&t, Some(persons), scope))
        }
        _ => None,
    }
}

/// Whether a chunk of the scope is sparse enough to test its members one by one
/// rather than scanning the whole chunk.
fn sparse(scope: &RoaringBitmap, c: usize) -> bool {
    scope.range_cardinality(chunk_range(c)) < (CHUNK / 32) as u64
}

fn holds(op: CmpOp, x: f64, k: f64) -> bool {
    match op {
        CmpOp::Eq => x == k,
        CmpOp::Ne => x != k,
        CmpOp::Lt => x < k,
        CmpOp::Le => x <= k,
        CmpOp::Gt => x > k,
        CmpOp::Ge => x >= k,
    }
}

/// `k op x` as `x op' k`.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        eq => eq,
    }
}

fn compare_lit(op: CmpOp, a: &[f64], k: f64, out: &mut Words) {
    match op {
        CmpOp::Eq => pack(out, |i| a[i] == k),
        CmpOp::Ne => pack(out, |i| a[i] != k),
        CmpOp::Lt => pack(out, |i| a[i] < k),
        CmpOp::Le => pack(out, |i| a[i] <= k),
        CmpOp::Gt => pack(out, |i| a[i] > k),
        CmpOp::Ge => pack(out, |i| a[i] >= k),
    }
}

fn compare(op: CmpOp, a: &[f64], b: &[f64], out: &mut Words) {
    match op {
        CmpOp::Eq => pack(out, |i| a[i] == b[i]),
        CmpOp::Ne => pack(out, |i| a[i] != b[i]),
        CmpOp::Lt => pack(out, |i| a[i] < b[i]),
        CmpOp::Le => pack(out, |i| a[i] <= b[i]),
        CmpOp::Gt => pack(out, |i| a[i] > b[i]),
        CmpOp::Ge => pack(out, |i| a[i] >= b[i]),
    }
}
