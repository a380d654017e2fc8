//! Numeric comparisons, chunk by chunk (65,536 ids).
//!
//! - A column or `age` against a literal is a range of integers: on the bit-sliced
//!   column (`age` as a range of birth dates), or id by id where the scope is sparse
//!   in the chunk ([`by_chunk`] chooses per chunk by the scope's density). Several
//!   orderings of one column from one `&&` chain are one range ([`range`]), and
//!   `x ∘ m op k` with small integer literals is rewritten onto `x` alone ([`linear`]:
//!   `insured_months / 12 >= 5` is `insured_months >= 60`).
//! - `size(attr)` against a literal is a union of bitmaps ([`size_leaf`]).
//! - Anything else (arithmetic, sizes, two attributes compared) is evaluated fused: a
//!   block of 512 ids at a time, the whole expression in one pass with every
//!   intermediate value in a block buffer (in L1), blocks without an id of the scope
//!   skipped, true and unknown written straight as bits; a block with few ids of the
//!   scope evaluates each of them alone ([`one`]), reading only its offset.
//!
//! The per-subject interpreter keeps integers exact and continues in decimals only on
//! division without remainder or overflow. In `f64` the two agree whenever every integer
//! along the way stays within 2^53; [`prepare_cmp`] checks that bound against the
//! columns' largest values and declines (so the comparison runs per subject) otherwise.
//! Unknowns follow the interpreter: a missing or non-numeric operand, a non-finite
//! arithmetic result, and NaN in an ordering are unknown.

use super::node::NumNode;
use super::run::{eval as eval_bool, prepare, Ctx, P};
use super::strings::{union_of, LeafSets};
use crate::attr::{AttrIndex, NumFacet, EXACT_INT};
use crate::chunk::{chunk_range, fill_words, words_to_bitmap, Chunked, Words, CHUNK, WORDS};
use crate::index::PopulationIndex;
use crate::slices::{birth_bound, BitSliced};
use crate::tri::Tri;
use domain::rule::ast::{ArithOp, CmpOp, Num};
use roaring::RoaringBitmap;
use std::borrow::Cow;

/// A prepared number node.
pub(super) enum PN<'a> {
    Lit(f64),
    Col(&'a NumFacet),
    Age {
        birth: Option<&'a Chunked<i32>>,
        persons: &'a RoaringBitmap,
        sliced: &'a BitSliced,
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
    /// An integer column (no decimals) or `age` within every bound (orderings).
    Range(PN<'a>, Vec<(CmpOp, f64)>),
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
                sliced: &ix.birth_sliced,
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

/// Bounds of one column or `age` as one test, when it can be a range of integers (an
/// integer column, or `age` with persons present); `None`: test them one by one.
pub(super) fn prepare_range<'a>(
    a: &'a NumNode,
    bounds: &[(CmpOp, Num)],
    ctx: &Ctx<'a>,
) -> Option<NumTest<'a>> {
    let (leaf, _) = prepare_num(a, ctx)?;
    match &leaf {
        PN::Col(f) if f.float.is_empty() => {}
        PN::Age { birth: Some(_), .. } => {}
        _ => return None,
    }
    let bounds = bounds.iter().map(|(op, k)| (*op, k.as_f64())).collect();
    Some(NumTest::Range(leaf, bounds))
}

pub(super) fn prepare_in<'a>(a: &'a NumNode, items: &[Num], ctx: &Ctx<'a>) -> Option<NumTest<'a>> {
    if items.iter().any(|n| int_mag(*n) >= EXACT_INT) {
        return None;
    }
    let (a, _) = prepare_num(a, ctx)?;
    Some(NumTest::In(a, items.iter().map(|n| n.as_f64()).collect()))
}

/// `size(attr) op k` (either way round) as a leaf: each list length and each distinct
/// string of the attribute is tested once, and the bitmaps of those that pass are
/// unioned; other values (numbers, booleans) are unknown, as per subject.
pub(super) fn size_leaf<'a>(
    op: CmpOp,
    a: &NumNode,
    b: &NumNode,
    ix: &'a PopulationIndex,
) -> Option<LeafSets<'a>> {
    let (name, k, op) = match (a, b) {
        (NumNode::SizeAttr(n), NumNode::Lit(k)) => (n, k.as_f64(), op),
        (NumNode::Lit(k), NumNode::SizeAttr(n)) => (n, k.as_f64(), op.flipped()),
        _ => return None,
    };
    if k.is_nan() {
        return None;
    }
    let attr = ix.attr(name);
    let lists = attr
        .list
        .by_len
        .iter()
        .enumerate()
        .filter(|(len, _)| holds(op, *len as f64, k))
        .map(|(_, b)| b);
    let strings = attr
        .text
        .dict
        .names
        .iter()
        .zip(&attr.text.by_code)
        .filter(|(v, _)| holds(op, v.chars().count() as f64, k))
        .map(|(_, b)| b);
    let (text, list) = (&attr.text.present, &attr.list.present);
    let known = if text.is_empty() {
        Cow::Borrowed(list)
    } else if list.is_empty() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text | list)
    };
    Some(LeafSets {
        t: union_of(lists.chain(strings)),
        known: Some(known),
    })
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

/// Ids evaluated together by a fused expression: small enough that every intermediate
/// value of an expression stays in the L1 cache.
const BLOCK: usize = 512;
/// Words of a block's bitset.
const BW: usize = BLOCK / 64;

type Vals = [f64; BLOCK];
type Bits = [u64; BW];

thread_local! {
    /// Chunk bitsets kept per thread between runs (allocating them per node per shard
    /// would cost more in page faults than the scans themselves).
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
    fn filled(&mut self, b: &RoaringBitmap, c: usize) -> Box<Words> {
        let mut w = self.words();
        fill_words(b, c, &mut w);
        w
    }
}

/// Sets `out` bit by bit from `f(i)`, 64 at a time.
#[inline]
fn pack(out: &mut [u64], f: impl Fn(usize) -> bool) {
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

/// A number node bound to one chunk: its leaves as slices of the columns (or values
/// filled once for the chunk) with their known bits.
enum K<'a> {
    Lit(f64),
    Never,
    Col {
        vals: Option<&'a [f64]>,
        ok: Box<Words>,
    },
    Age {
        birth: Option<&'a [i32]>,
        ok: Box<Words>,
        today: i32,
    },
    Filled {
        vals: Vec<f64>,
        ok: Box<Words>,
    },
    Neg(Box<K<'a>>),
    Arith(ArithOp, Box<K<'a>>, Box<K<'a>>),
    Cond {
        t: Box<Words>,
        f: Box<Words>,
        a: Box<K<'a>>,
        b: Box<K<'a>>,
    },
}

impl K<'_> {
    /// Block buffers needed below this node (one per pending right operand).
    fn depth(&self) -> usize {
        match self {
            K::Neg(x) => x.depth(),
            K::Arith(_, a, b) | K::Cond { a, b, .. } => a.depth().max(1 + b.depth()),
            _ => 0,
        }
    }

    /// Gives the node's buffers back to the scratch pool.
    fn recycle(self, s: &mut Scratch) {
        match self {
            K::Lit(_) | K::Never => {}
            K::Col { ok, .. } | K::Age { ok, .. } => s.words.push(ok),
            K::Filled { vals, ok } => {
                s.vals.push(vals);
                s.words.push(ok);
            }
            K::Neg(x) => x.recycle(s),
            K::Arith(_, a, b) => {
                a.recycle(s);
                b.recycle(s);
            }
            K::Cond { t, f, a, b } => {
                s.words.extend([t, f]);
                a.recycle(s);
                b.recycle(s);
            }
        }
    }
}

/// Binds `r` to chunk `c`.
fn bind<'a>(r: &R<'_, 'a>, c: usize, s: &mut Scratch) -> K<'a> {
    match r {
        R::Leaf(leaf) => bind_leaf(leaf, c, s),
        R::Neg(x) => K::Neg(Box::new(bind(x, c, s))),
        R::Arith(op, a, b) => K::Arith(*op, Box::new(bind(a, c, s)), Box::new(bind(b, c, s))),
        R::Cond { t, f, a, b } => K::Cond {
            t: s.filled(t, c),
            f: s.filled(f, c),
            a: Box::new(bind(a, c, s)),
            b: Box::new(bind(b, c, s)),
        },
    }
}

fn bind_leaf<'a>(leaf: &PN<'a>, c: usize, s: &mut Scratch) -> K<'a> {
    match leaf {
        PN::Lit(x) => K::Lit(*x),
        PN::Never => K::Never,
        PN::Col(f) => K::Col {
            vals: f.vals.chunk(c),
            ok: s.filled(&f.present, c),
        },
        PN::Age {
            birth,
            persons,
            today,
            ..
        } => K::Age {
            birth: birth.and_then(|b| b.chunk(c)),
            ok: s.filled(persons, c),
            today: *today,
        },
        PN::SizeAttr { attr, chars } => {
            let mut vals = s.vals();
            vals.fill(0.0);
            let mut ok = s.filled(&attr.text.present, c);
            let lw = s.filled(&attr.list.present, c);
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
            for (len, b) in attr.list.by_len.iter().enumerate().skip(1) {
                for id in b.range(chunk_range(c)) {
                    vals[id_at(c, id)] = len as f64;
                }
            }
            K::Filled { vals, ok }
        }
        PN::SizeTags(ix) => {
            let mut vals = s.vals();
            vals.fill(0.0);
            for b in ix.tags.values() {
                for id in b.range(chunk_range(c)) {
                    vals[id_at(c, id)] += 1.0;
                }
            }
            K::Filled {
                vals,
                ok: s.filled(&ix.all, c),
            }
        }
        PN::Neg(_) | PN::Arith(..) | PN::Cond(..) => unreachable!("resolved before chunks"),
    }
}

/// Block buffers for the right operands of a fused expression.
type Spare = [(Vals, Bits)];

/// The values and known bits of `k` over the block starting at `lo` (an offset within
/// the chunk), in one pass: intermediate values live in `spare`, one block each.
fn block(k: &K<'_>, lo: usize, v: &mut Vals, ok: &mut Bits, spare: &mut Spare) {
    let wlo = lo / 64;
    match k {
        K::Lit(x) => {
            v.fill(*x);
            ok.fill(!0);
        }
        K::Never => {
            v.fill(0.0);
            ok.fill(0);
        }
        K::Col { vals, ok: w } => {
            match vals {
                Some(x) => v.copy_from_slice(&x[lo..lo + BLOCK]),
                None => v.fill(0.0),
            }
            ok.copy_from_slice(&w[wlo..wlo + BW]);
        }
        K::Age {
            birth,
            ok: w,
            today,
        } => {
            match birth {
                Some(b) => {
                    for (o, b) in v.iter_mut().zip(&b[lo..lo + BLOCK]) {
                        *o = (today - b).div_euclid(10_000) as f64;
                    }
                }
                None => v.fill(0.0),
            }
            ok.copy_from_slice(&w[wlo..wlo + BW]);
        }
        K::Filled { vals, ok: w } => {
            v.copy_from_slice(&vals[lo..lo + BLOCK]);
            ok.copy_from_slice(&w[wlo..wlo + BW]);
        }
        K::Neg(x) => {
            block(x, lo, v, ok, spare);
            for e in v.iter_mut() {
                *e = -*e;
            }
        }
        K::Arith(op, a, b) => {
            block(a, lo, v, ok, spare);
            let ((vb, okb), rest) = spare.split_first_mut().expect("spare sized by depth");
            block(b, lo, vb, okb, rest);
            arith(*op, v, vb);
            let mut fin = [0u64; BW];
            pack(&mut fin, |i| v[i].is_finite());
            for w in 0..BW {
                ok[w] &= okb[w] & fin[w];
            }
        }
        K::Cond { t, f, a, b } => {
            block(a, lo, v, ok, spare);
            let ((vb, okb), rest) = spare.split_first_mut().expect("spare sized by depth");
            block(b, lo, vb, okb, rest);
            for w in 0..BW {
                let bits = t[wlo + w];
                for j in 0..64 {
                    let i = w * 64 + j;
                    if (bits >> j) & 1 == 0 {
                        v[i] = vb[i];
                    }
                }
                ok[w] = (bits & ok[w]) | (f[wlo + w] & okb[w]);
            }
        }
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

/// The comparison's answer within `scope`: each chunk's expressions evaluated block by
/// block, fused (no chunk-sized intermediate buffers), skipping blocks with no id of
/// the scope; true and unknown are written straight as bits of the scope.
pub(super) fn eval(test: &NumTest<'_>, ctx: &Ctx<'_>, scope: &RoaringBitmap) -> Tri {
    let (a, b) = match test {
        NumTest::Cmp(_, a, b) => (resolve(a, ctx, scope), Some(resolve(b, ctx, scope))),
        NumTest::In(a, _) => (resolve(a, ctx, scope), None),
        NumTest::Range(leaf, bounds) => return range(leaf, bounds, scope),
    };
    if let Some(tri) = direct(test, &a, b.as_ref(), scope) {
        return tri;
    }
    let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut sw = s.words();
    let mut tw = s.words();
    let mut uw = s.words();
    let mut t = RoaringBitmap::new();
    let mut u = RoaringBitmap::new();
    let mut va = [0.0; BLOCK];
    let mut vb = [0.0; BLOCK];
    let (mut oka, mut okb) = ([0u64; BW], [0u64; BW]);
    let mut spare: Vec<(Vals, Bits)> = Vec::new();
    for c in chunks(scope) {
        fill_words(scope, c, &mut sw);
        let ka = bind(&a, c, &mut s);
        let kb = b.as_ref().map(|b| bind(b, c, &mut s));
        let depth = ka.depth().max(kb.as_ref().map_or(0, K::depth));
        if spare.len() < depth {
            spare.resize(depth, ([0.0; BLOCK], [0; BW]));
        }
        for (blk, (tb, ub)) in tw
            .chunks_exact_mut(BW)
            .zip(uw.chunks_exact_mut(BW))
            .enumerate()
        {
            let sc = &sw[blk * BW..(blk + 1) * BW];
            if sc.iter().all(|w| *w == 0) {
                tb.fill(0);
                ub.fill(0);
                continue;
            }
            let lo = blk * BLOCK;
            if sc.iter().map(|w| w.count_ones()).sum::<u32>() <= SPARSE {
                // few ids: each evaluated alone, the expression read at its offset only
                for w in 0..BW {
                    let (mut tbits, mut ubits) = (0u64, 0u64);
                    let mut bits = sc[w];
                    while bits != 0 {
                        let j = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let i = lo + w * 64 + j;
                        match one_test(test, &ka, kb.as_ref(), i) {
                            Some(true) => tbits |= 1 << j,
                            Some(false) => {}
                            None => ubits |= 1 << j,
                        }
                    }
                    tb[w] = tbits;
                    ub[w] = ubits;
                }
                continue;
            }
            block(&ka, lo, &mut va, &mut oka, &mut spare);
            let mut hit = [0u64; BW];
            match (test, &kb) {
                (NumTest::Cmp(op, ..), Some(kb)) => {
                    block(kb, lo, &mut vb, &mut okb, &mut spare);
                    for (x, y) in oka.iter_mut().zip(okb.iter()) {
                        *x &= y;
                    }
                    if !op.is_equality() {
                        let mut nan = [0u64; BW];
                        pack(&mut nan, |i| va[i].is_nan() || vb[i].is_nan());
                        for (x, n) in oka.iter_mut().zip(nan.iter()) {
                            *x &= !n;
                        }
                    }
                    compare(*op, &va, &vb, &mut hit);
                }
                (NumTest::In(_, items), _) => {
                    pack(&mut hit, |i| items.iter().any(|x| va[i] == *x));
                }
                _ => unreachable!("a comparison has two sides"),
            }
            for w in 0..BW {
                tb[w] = sc[w] & oka[w] & hit[w];
                ub[w] = sc[w] & !oka[w];
            }
        }
        t |= words_to_bitmap(c, &tw);
        u |= words_to_bitmap(c, &uw);
        ka.recycle(&mut s);
        if let Some(kb) = kb {
            kb.recycle(&mut s);
        }
    }
    s.words.extend([sw, tw, uw]);
    SCRATCH.with(|c| *c.borrow_mut() = s);
    Tri::new(t, u)
}

/// Ids of a block's scope at or below which they are evaluated one by one: an id alone
/// costs a few reads where the block pass costs one per id of the block per node.
const SPARSE: u32 = 24;

fn bit(w: &[u64], i: usize) -> bool {
    (w[i / 64] >> (i % 64)) & 1 == 1
}

/// The value of `k` at offset `i` of its chunk and whether it is known: [`block`] for
/// one id.
fn one(k: &K<'_>, i: usize) -> (f64, bool) {
    match k {
        K::Lit(x) => (*x, true),
        K::Never => (0.0, false),
        K::Col { vals, ok } => (vals.map_or(0.0, |v| v[i]), bit(&ok[..], i)),
        K::Age { birth, ok, today } => (
            birth.map_or(0.0, |b| (today - b[i]).div_euclid(10_000) as f64),
            bit(&ok[..], i),
        ),
        K::Filled { vals, ok } => (vals[i], bit(&ok[..], i)),
        K::Neg(x) => {
            let (v, ok) = one(x, i);
            (-v, ok)
        }
        K::Arith(op, a, b) => {
            let (mut va, oa) = one(a, i);
            let (vb, ob) = one(b, i);
            arith(*op, std::slice::from_mut(&mut va), &[vb]);
            (va, oa && ob && va.is_finite())
        }
        K::Cond { t, f, a, b } => {
            let (va, oa) = one(a, i);
            let (vb, ob) = one(b, i);
            if bit(&t[..], i) {
                (va, oa)
            } else {
                (vb, bit(&f[..], i) && ob)
            }
        }
    }
}

/// The test at offset `i` (`None`: unknown), as the block pass decides it.
fn one_test(test: &NumTest<'_>, ka: &K<'_>, kb: Option<&K<'_>>, i: usize) -> Option<bool> {
    let (va, oka) = one(ka, i);
    match (test, kb) {
        (NumTest::Cmp(op, ..), Some(kb)) => {
            let (vb, okb) = one(kb, i);
            let nan = !op.is_equality() && (va.is_nan() || vb.is_nan());
            (oka && okb && !nan).then(|| holds(*op, va, vb))
        }
        (NumTest::In(_, items), _) => oka.then(|| items.contains(&va)),
        _ => unreachable!("a comparison has two sides"),
    }
}

/// An integer column (no decimals; or any column for one equality) or `age` within
/// every bound: one comparison as its interval of integers, several orderings as the
/// intersection of theirs, tested in one pass over the bit slices.
fn range(leaf: &PN<'_>, bounds: &[(CmpOp, f64)], scope: &RoaringBitmap) -> Tri {
    /// `(lo, hi, inside)` of all the bounds (several are orderings: all inside).
    fn meet<T: Ord + Copy>(
        each: impl Iterator<Item = (T, T, bool)>,
        min: T,
        max: T,
    ) -> (T, T, bool) {
        let mut all: Vec<(T, T, bool)> = each.collect();
        if all.len() == 1 {
            return all.pop().expect("one");
        }
        let lo = all.iter().map(|b| b.0).fold(min, Ord::max);
        let hi = all.iter().map(|b| b.1).fold(max, Ord::min);
        (lo, hi.max(lo), true)
    }
    match leaf {
        PN::Col(f) => {
            let each = bounds.iter().map(|(op, k)| int_interval(*op, *k));
            let interval = meet(each, i64::MIN, i64::MAX);
            let one = |c: usize, i: usize| {
                f.vals
                    .chunk(c)
                    .is_some_and(|v| bounds.iter().all(|(op, k)| holds(*op, v[i], *k)))
            };
            let mut t = by_chunk(scope, &f.sliced, interval, one);
            t &= &f.present;
            Tri::leaf(&t, Some(&f.present), scope)
        }
        PN::Age {
            birth: Some(birth),
            persons,
            sliced,
            today,
        } => {
            let each = bounds.iter().map(|(op, k)| birth_interval(*op, *k, *today));
            let (lo, hi, inside) = meet(each, i32::MIN, i32::MAX);
            let test = |b: i32| (b > lo && b <= hi) == inside;
            let one = |c: usize, i: usize| birth.chunk(c).is_some_and(|b| test(b[i]));
            let codes = (birth_bound(lo), birth_bound(hi), inside);
            let mut t = by_chunk(scope, sliced, codes, one);
            t &= *persons;
            Tri::leaf(&t, Some(persons), scope)
        }
        _ => unreachable!("prepared for integer columns and age only"),
    }
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
        (R::Leaf(PN::Lit(k)), R::Leaf(x)) => (*x, *k, op.flipped()),
        (x, R::Leaf(PN::Lit(k))) => linear(x, *op, *k)?,
        (R::Leaf(PN::Lit(k)), x) => linear(x, op.flipped(), *k)?,
        _ => return None,
    };
    if lit.is_nan() {
        // unknown in an ordering, false in an equality: the general path says which
        return None;
    }
    match leaf {
        PN::Col(f) if f.float.is_empty() || op.is_equality() => {
            Some(range(leaf, &[(op, lit)], scope))
        }
        PN::Age { birth: Some(_), .. } => Some(range(leaf, &[(op, lit)], scope)),
        _ => None,
    }
}

/// `x ∘ m op k`, with `x` an integer column (no decimals) or `age` and `m`, `k` small
/// integer literals, as the comparison of `x` alone that holds for the same integers:
/// `x + m op k` ⇔ `x op k − m`, `x − m op k` ⇔ `x op k + m`, and for `m > 0`
/// `x / m op k` ⇔ `x op k·m`, `x · m op k` ⇔ `x op k / m` (a fraction is a bound
/// between integers, which the integer intervals round). Exact: `x ∘ m` is unknown
/// exactly where `x` is, the operations are monotone, and with `|k| < 2^24`,
/// `0 < m < 2^16` every integer is at least `1/m` from a fractional bound, far beyond
/// `f64` rounding. So `insured_months / 12 >= 5` is `insured_months >= 60`, a range
/// on its bit slices.
fn linear<'p, 'a>(r: &R<'p, 'a>, op: CmpOp, k: f64) -> Option<(&'p PN<'a>, f64, CmpOp)> {
    let R::Arith(aop, x, m) = r else {
        return None;
    };
    let (R::Leaf(x), R::Leaf(PN::Lit(m))) = (&**x, &**m) else {
        return None;
    };
    match x {
        PN::Col(f) if f.float.is_empty() => {}
        PN::Age { birth: Some(_), .. } => {}
        _ => return None,
    }
    let whole = |v: f64, limit: f64| v.fract() == 0.0 && v.abs() < limit;
    if !whole(k, (1u64 << 24) as f64) || !whole(*m, (1u64 << 16) as f64) {
        return None;
    }
    let k = match aop {
        ArithOp::Add => k - m,
        ArithOp::Sub => k + m,
        ArithOp::Div if *m > 0.0 => k * m,
        ArithOp::Mul if *m > 0.0 => k / m,
        _ => return None,
    };
    Some((*x, k, op))
}

/// The ids of `scope` where a comparison with a literal holds, chunk by chunk, each
/// chunk the cheapest way: few ids are tested one by one (`one(chunk, offset)` reads
/// the column); otherwise the bit-sliced members are compared on their planes
/// (`lo < value <= hi`, or outside when not `inside`) and the others in the scope one
/// by one. Ids without a value may come out true: the caller intersects with presence.
fn by_chunk(
    scope: &RoaringBitmap,
    sliced: &BitSliced,
    (lo, hi, inside): (i64, i64, bool),
    one: impl Fn(usize, usize) -> bool,
) -> RoaringBitmap {
    let sides = if lo >= 0 { 2 } else { 1 };
    // a plane costs a word operation per 64 ids, an id tested alone about 8
    let per_id_below = (sliced.planes().max(1) * sides * WORDS / 8) as u64;
    let mut t = RoaringBitmap::new();
    let mut sw = Box::new([0u64; WORDS]);
    let mut mw = Box::new([0u64; WORDS]);
    let mut out = Box::new([0u64; WORDS]);
    for c in chunks(scope) {
        let first = chunk_range(c).start;
        if scope.range_cardinality(chunk_range(c)) < per_id_below {
            t.extend(
                scope
                    .range(chunk_range(c))
                    .filter(|id| one(c, (id - first) as usize)),
            );
            continue;
        }
        fill_words(scope, c, &mut sw);
        fill_words(&sliced.members, c, &mut mw);
        for (s, m) in sw.iter_mut().zip(mw.iter_mut()) {
            // mw: the rest of the scope, sw: its members
            let rest = *s & !*m;
            *s &= *m;
            *m = rest;
        }
        sliced.range(c, lo, hi, inside, &sw, &mut out);
        for (w, rest) in mw.iter().enumerate() {
            let mut bits = *rest;
            while bits != 0 {
                let j = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if one(c, w * 64 + j) {
                    out[w] |= 1 << j;
                }
            }
        }
        t |= words_to_bitmap(c, &out);
    }
    t
}

/// `value op k` for integer values as `(lo, hi, inside)`: it holds for
/// `lo < value <= hi` when `inside`, for the other values when not.
fn int_interval(op: CmpOp, k: f64) -> (i64, i64, bool) {
    // saturating conversions: a bound beyond i64 is beyond every value
    let (fl, ce) = (k.floor() as i64, k.ceil() as i64);
    match op {
        CmpOp::Le => (i64::MIN, fl, true),
        CmpOp::Lt => (i64::MIN, ce.saturating_sub(1), true),
        CmpOp::Ge => (ce.saturating_sub(1), i64::MAX, true),
        CmpOp::Gt => (fl, i64::MAX, true),
        CmpOp::Eq | CmpOp::Ne => {
            let inside = op == CmpOp::Eq;
            if k.fract() != 0.0 {
                return (0, 0, inside);
            }
            (fl.saturating_sub(1), fl, inside)
        }
    }
}

/// `age op k` as birth keys (`yyyymmdd`): `(lo, hi, inside)` such that it holds for
/// the keys `lo < b <= hi` when `inside`, for the others when not. Age on `today` is
/// `⌊(today − b) / 10⁴⌋`, an integer that falls as `b` grows, so
/// `age >= m` ⇔ `b <= today − 10⁴·m` for every integer `m`: a range on `age` is an
/// integer range on the birth column, compared without computing any age.
fn birth_interval(op: CmpOp, k: f64, today: i32) -> (i32, i32, bool) {
    // the last key with age >= m (saturating: no key is beyond i32)
    let upto = |m: f64| (f64::from(today) - 10_000.0 * m) as i32;
    match op {
        CmpOp::Ge => (i32::MIN, upto(k.ceil()), true),
        CmpOp::Gt => (i32::MIN, upto(k.floor() + 1.0), true),
        CmpOp::Le => (upto(k.floor() + 1.0), i32::MAX, true),
        CmpOp::Lt => (upto(k.ceil()), i32::MAX, true),
        CmpOp::Eq | CmpOp::Ne => {
            let inside = op == CmpOp::Eq;
            if k.fract() != 0.0 {
                return (0, 0, inside);
            }
            (upto(k + 1.0), upto(k), inside)
        }
    }
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

fn compare(op: CmpOp, a: &[f64], b: &[f64], out: &mut [u64]) {
    match op {
        CmpOp::Eq => pack(out, |i| a[i] == b[i]),
        CmpOp::Ne => pack(out, |i| a[i] != b[i]),
        CmpOp::Lt => pack(out, |i| a[i] < b[i]),
        CmpOp::Le => pack(out, |i| a[i] <= b[i]),
        CmpOp::Gt => pack(out, |i| a[i] > b[i]),
        CmpOp::Ge => pack(out, |i| a[i] >= b[i]),
    }
}
