//! Three-valued sets: within a scope of ids, those for which a condition is *true* and
//! those for which it is *unknown*; it is *false* for the rest of the scope. The
//! operations are the SQL-NULL-like rules of `docs/rules.md`, applied to sets.

use roaring::RoaringBitmap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tri {
    pub t: RoaringBitmap,
    pub u: RoaringBitmap,
}

impl Tri {
    /// True for `t`, unknown for `u` (both already within the scope).
    pub fn new(t: RoaringBitmap, u: RoaringBitmap) -> Self {
        Self { t, u }
    }

    /// The same answer everywhere in `scope`.
    pub fn constant(value: Option<bool>, scope: &RoaringBitmap) -> Self {
        match value {
            Some(true) => Self::new(scope.clone(), RoaringBitmap::new()),
            Some(false) => Self::default(),
            None => Self::new(RoaringBitmap::new(), scope.clone()),
        }
    }

    /// From a leaf: true on `t`, known (true or false) on `known`, within `scope`.
    pub fn leaf(t: &RoaringBitmap, known: Option<&RoaringBitmap>, scope: &RoaringBitmap) -> Self {
        let u = match known {
            None => RoaringBitmap::new(),
            Some(k) => scope - k,
        };
        Self::new(t & scope, u)
    }

    /// Where the condition is true or unknown (not false).
    pub fn open(&self) -> RoaringBitmap {
        if self.u.is_empty() {
            self.t.clone()
        } else {
            &self.t | &self.u
        }
    }

    /// Where it is false, within `scope`.
    pub fn falses(&self, scope: &RoaringBitmap) -> RoaringBitmap {
        let mut f = scope - &self.t;
        if !self.u.is_empty() {
            f -= &self.u;
        }
        f
    }

    /// `!x`: unknown stays unknown.
    pub fn not(self, scope: &RoaringBitmap) -> Self {
        let t = self.falses(scope);
        Self::new(t, self.u)
    }

    /// `a && b`, where `b` was evaluated within `a.open()` only.
    pub fn and_within(a: Tri, b: Tri) -> Self {
        let t = &a.t & &b.t;
        let u = if b.u.is_empty() && a.u.is_empty() {
            RoaringBitmap::new()
        } else {
            let mut u = b.open();
            u -= &t;
            u
        };
        Self::new(t, u)
    }

    /// `a || b`, where `b` was evaluated within `scope − a.t` only.
    pub fn or_within(a: Tri, b: Tri) -> Self {
        let t = a.t | &b.t;
        let u = if a.u.is_empty() {
            b.u
        } else {
            let mut u = a.u - &b.t;
            u |= b.u;
            u
        };
        Self::new(t, u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bm(ids: &[u32]) -> RoaringBitmap {
        ids.iter().copied().collect()
    }

    /// Ids 0..9 cover every pair of (true, false, unknown).
    fn pair() -> (RoaringBitmap, Tri, Tri) {
        let scope = bm(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let a = Tri::new(bm(&[0, 1, 2]), bm(&[6, 7, 8]));
        let b = Tri::new(bm(&[0, 3, 6]), bm(&[2, 5, 8]));
        (scope, a, b)
    }

    #[test]
    fn and_or_not_follow_sql_null() {
        let (scope, a, b) = pair();
        let b_in_open = Tri::new(&b.t & &a.open(), &b.u & &a.open());
        let and = Tri::and_within(a.clone(), b_in_open);
        assert_eq!(and.t, bm(&[0]));
        assert_eq!(and.u, bm(&[2, 6, 8]));
        let rest = &scope - &a.t;
        let b_in_rest = Tri::new(&b.t & &rest, &b.u & &rest);
        let or = Tri::or_within(a.clone(), b_in_rest);
        assert_eq!(or.t, bm(&[0, 1, 2, 3, 6]));
        assert_eq!(or.u, bm(&[5, 7, 8]));
        let not = a.not(&scope);
        assert_eq!(not.t, bm(&[3, 4, 5]));
        assert_eq!(not.u, bm(&[6, 7, 8]));
    }
}
