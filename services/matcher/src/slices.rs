//! Bit-sliced integer columns: bit `i` of the values of a chunk kept as one dense
//! bitset (a *plane*), so `value <= c` over a chunk costs two word operations per plane
//! (64 ids at a time) instead of reading every value (O'Neil and Quass's algorithm).
//! Planes are added as larger values arrive; a plane that is all zero in a chunk is not
//! allocated. Ranges are `value <= hi && !(value <= lo)`, so any comparison with a
//! literal is at most two passes over the planes.
//!
//! Numbers are sliced when they are integers in `0..2^MAX_PLANES`; birth dates as
//! [`birth_code`], a code that orders as the date does and fits 17 bits. Values outside
//! the slices are not members and are tested one by one by the caller.

use crate::chunk::{split, Words, WORDS};
use roaring::RoaringBitmap;

/// The most planes of a column (values below 2^24).
pub const MAX_PLANES: usize = 24;

/// An integer column as bit planes.
#[derive(Debug, Clone, Default)]
pub struct BitSliced {
    /// `planes[i][c]`: bit `i` of the values of chunk `c` (`None`: all zero).
    planes: Vec<Vec<Option<Box<Words>>>>,
    /// Ids whose value is in the planes.
    pub members: RoaringBitmap,
}

impl BitSliced {
    /// Planes in use (the bits of the largest value ever held).
    pub fn planes(&self) -> usize {
        self.planes.len()
    }

    /// Holds `v` for `id` (replacing any value); `v` must be below 2^[`MAX_PLANES`].
    pub fn set(&mut self, id: u32, v: u64) {
        debug_assert!(v < 1 << MAX_PLANES);
        let (c, i) = split(id);
        let needed = (u64::BITS - v.leading_zeros()) as usize;
        while self.planes.len() < needed {
            self.planes.push(Vec::new());
        }
        for (bit, plane) in self.planes.iter_mut().enumerate() {
            let on = (v >> bit) & 1 == 1;
            if on {
                if plane.len() <= c {
                    plane.resize_with(c + 1, || None);
                }
                plane[c].get_or_insert_with(|| Box::new([0; WORDS]))[i / 64] |= 1 << (i % 64);
            } else if let Some(Some(w)) = plane.get_mut(c) {
                w[i / 64] &= !(1 << (i % 64));
            }
        }
        self.members.insert(id);
    }

    /// Forgets `id`'s value, if it has one.
    pub fn clear(&mut self, id: u32) {
        if !self.members.remove(id) {
            return;
        }
        let (c, i) = split(id);
        for plane in &mut self.planes {
            if let Some(Some(w)) = plane.get_mut(c) {
                w[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// Of the ids in `scope` (which must be members), those whose value in chunk `c`
    /// is `<= k` (none when `k < 0`, all when `k` is beyond every plane).
    pub fn le(&self, c: usize, k: i64, scope: &Words, out: &mut Words) {
        if k < 0 {
            out.fill(0);
            return;
        }
        let n = self.planes.len();
        if n < 63 && k >= 1 << n {
            out.copy_from_slice(scope);
            return;
        }
        // out: equal on the bits seen so far; lt: already below
        out.copy_from_slice(scope);
        let mut lt = [0u64; WORDS];
        for bit in (0..n).rev() {
            let kb = (k >> bit) & 1 == 1;
            match (self.planes[bit].get(c).and_then(|p| p.as_deref()), kb) {
                (None, true) => {
                    for (l, e) in lt.iter_mut().zip(out.iter_mut()) {
                        *l |= *e;
                        *e = 0;
                    }
                }
                (None, false) => {}
                (Some(p), true) => {
                    for ((l, e), s) in lt.iter_mut().zip(out.iter_mut()).zip(p.iter()) {
                        *l |= *e & !s;
                        *e &= s;
                    }
                }
                (Some(p), false) => {
                    for (e, s) in out.iter_mut().zip(p.iter()) {
                        *e &= !s;
                    }
                }
            }
        }
        for (e, l) in out.iter_mut().zip(lt.iter()) {
            *e |= l;
        }
    }

    /// Of the ids in `scope` (members), those with `lo < value <= hi` when `inside`,
    /// the others when not.
    pub fn range(&self, c: usize, lo: i64, hi: i64, inside: bool, scope: &Words, out: &mut Words) {
        self.le(c, hi, scope, out);
        if lo >= 0 {
            let mut below = [0u64; WORDS];
            self.le(c, lo, scope, &mut below);
            for (o, b) in out.iter_mut().zip(below.iter()) {
                *o &= !b;
            }
        }
        if !inside {
            for (o, s) in out.iter_mut().zip(scope.iter()) {
                *o = s & !*o;
            }
        }
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        let planes: usize = self
            .planes
            .iter()
            .map(|p| {
                p.capacity() * std::mem::size_of::<Option<Box<Words>>>()
                    + p.iter().flatten().count() * std::mem::size_of::<Words>()
            })
            .sum();
        planes + crate::chunk::bitmap_bytes(&self.members)
    }
}

/// The first year a birth code holds; codes cover 256 years from it.
const FIRST_YEAR: i32 = 1800;

/// A birth date `yyyymmdd` as a 17-bit code that orders as the dates do:
/// `(year − 1800) · 2^9 + month · 2^5 + day`; `None` outside 1800–2055.
pub fn birth_code(key: i32) -> Option<u64> {
    let y = key.div_euclid(10_000);
    let md = key.rem_euclid(10_000);
    let (m, d) = (md / 100, md % 100);
    if !(FIRST_YEAR..FIRST_YEAR + 256).contains(&y) || m > 15 || d > 31 {
        return None;
    }
    Some((((y - FIRST_YEAR) as u64) << 9) | ((m as u64) << 5) | d as u64)
}

/// The code `c` such that, for every valid date `b`, `b <= key` ⇔ `birth_code(b) <= c`
/// (`key` is any integer: -1 when no date is that early, `i64::MAX` when every one is).
pub fn birth_bound(key: i32) -> i64 {
    let y = key.div_euclid(10_000);
    if y < FIRST_YEAR {
        return -1;
    }
    if y >= FIRST_YEAR + 256 {
        return i64::MAX;
    }
    let md = key.rem_euclid(10_000);
    // months beyond 15 take the whole year, days beyond 31 the whole month
    let (m, d) = if md / 100 > 15 {
        (15, 31)
    } else {
        (md / 100, (md % 100).min(31))
    };
    ((i64::from(y - FIRST_YEAR)) << 9) | (i64::from(m) << 5) | i64::from(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{fill_words, CHUNK};

    fn values() -> Vec<(u32, u64)> {
        // ids over two chunks, values with gaps and repeats, some ids without one
        (0..3000u32)
            .filter(|i| i % 7 != 3)
            .map(|i| (i * 53 % (2 * CHUNK as u32), u64::from(i * 37 % 700)))
            .collect()
    }

    #[test]
    fn ranges_over_planes_match_the_values() {
        let mut bs = BitSliced::default();
        let vals = values();
        for (id, v) in &vals {
            bs.set(*id, *v);
        }
        // replacing a value and forgetting one
        bs.set(vals[0].0, 5);
        bs.clear(vals[1].0);
        let mut truth: std::collections::BTreeMap<u32, u64> = vals.iter().copied().collect();
        truth.insert(vals[0].0, 5);
        truth.remove(&vals[1].0);
        assert_eq!(bs.members.len(), truth.len() as u64);
        for (lo, hi, inside) in [
            (-1, 0, true),
            (4, 5, true),
            (99, 400, true),
            (99, 400, false),
            (-5, i64::MAX, true),
            (698, 1 << 40, true),
        ] {
            for c in 0..2 {
                let mut scope = [0u64; WORDS];
                fill_words(&bs.members, c, &mut scope);
                let mut out = [0u64; WORDS];
                bs.range(c, lo, hi, inside, &scope, &mut out);
                for (id, v) in truth.iter().filter(|(id, _)| split(**id).0 == c) {
                    let i = split(*id).1;
                    let v = *v as i64;
                    let want = (lo < v && v <= hi) == inside;
                    assert_eq!((out[i / 64] >> (i % 64)) & 1 == 1, want, "{lo} {hi} {v}");
                }
            }
        }
    }

    #[test]
    fn birth_codes_order_as_dates() {
        let dates = [18000101, 19491001, 19491231, 19500101, 20040229, 20551231];
        for a in dates {
            for b in dates {
                let (ca, cb) = (birth_code(a).unwrap(), birth_code(b).unwrap());
                assert_eq!(a <= b, ca <= cb);
            }
            for bound in [
                a - 1,
                a,
                a + 1,
                a + 50,
                a + 9_000,
                17991231,
                20560101,
                i32::MIN,
                i32::MAX,
            ] {
                assert_eq!(
                    a <= bound,
                    birth_code(a).unwrap() as i64 <= birth_bound(bound),
                    "{a} <= {bound}"
                );
            }
        }
        assert_eq!(birth_code(17991231), None);
        assert_eq!(birth_code(20560101), None);
    }
}
