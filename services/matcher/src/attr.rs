//! One attribute over all ids, split by the type each subject's value has (an attribute
//! has no declared type: the same name can be a number for one subject and text for
//! another, and a rule treats a value of the wrong type as unknown).
//!
//! - numbers: a chunked `f64` column, a presence bitmap, which values were decimals,
//!   the rare integers beyond 2^53 kept exactly on the side, and the integers in
//!   `0..2^24` bit-sliced;
//! - strings: a dictionary, a bitmap per distinct value and a chunked code column;
//! - booleans: a bitmap of `true` and one of `false`;
//! - lists: a bitmap per element, a bitmap per list length (so `size()` is bitmap
//!   algebra, and a chunk of sizes is filled without reading the rows) and each
//!   subject's elements.

use crate::chunk::{bitmap_bytes, Chunked};
use crate::slices::{BitSliced, MAX_PLANES};
use domain::AttrValue;
use roaring::RoaringBitmap;
use std::collections::HashMap;

/// Integers up to this magnitude are exact in an `f64`.
pub const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Distinct strings of one attribute, each with a code.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    pub names: Vec<Box<str>>,
    lookup: HashMap<Box<str>, u32>,
}

impl Dict {
    pub fn code(&self, s: &str) -> Option<u32> {
        self.lookup.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(c) = self.lookup.get(s) {
            return *c;
        }
        let c = self.names.len() as u32;
        self.names.push(s.into());
        self.lookup.insert(s.into(), c);
        c
    }

    fn heap_bytes(&self) -> usize {
        self.names.iter().map(|n| n.len() * 2 + 48).sum()
    }
}

#[derive(Debug, Clone)]
pub struct NumFacet {
    pub present: RoaringBitmap,
    /// Of `present`, the values that were decimals (the rest are integers).
    pub float: RoaringBitmap,
    pub vals: Chunked<f64>,
    /// Integers too large for an exact `f64`.
    pub big: HashMap<u32, i64>,
    /// The largest magnitude of an integer value ever stored (never shrinks).
    pub max_abs_int: f64,
    /// The integers in `0..2^24`, bit-sliced (ranges as bitmap operations).
    pub sliced: BitSliced,
}

#[derive(Debug, Clone)]
pub struct TextFacet {
    pub present: RoaringBitmap,
    pub dict: Dict,
    /// Subjects by value code.
    pub by_code: Vec<RoaringBitmap>,
    pub codes: Chunked<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct FlagFacet {
    pub t: RoaringBitmap,
    pub f: RoaringBitmap,
}

#[derive(Debug, Clone, Default)]
pub struct ListFacet {
    pub present: RoaringBitmap,
    pub dict: Dict,
    /// Subjects by element code.
    pub by_elem: Vec<RoaringBitmap>,
    /// Subjects by the length of their list (`by_len[k]`: lists of `k` items).
    pub by_len: Vec<RoaringBitmap>,
    /// Each subject's elements, in order, as codes.
    pub rows: HashMap<u32, Box<[u32]>>,
}

/// Every facet of one attribute.
#[derive(Debug, Clone)]
pub struct AttrIndex {
    /// Subjects with any value.
    pub present: RoaringBitmap,
    pub num: NumFacet,
    pub text: TextFacet,
    pub flag: FlagFacet,
    pub list: ListFacet,
}

impl Default for AttrIndex {
    fn default() -> Self {
        Self {
            present: RoaringBitmap::new(),
            num: NumFacet {
                present: RoaringBitmap::new(),
                float: RoaringBitmap::new(),
                vals: Chunked::new(0.0),
                big: HashMap::new(),
                max_abs_int: 0.0,
                sliced: BitSliced::default(),
            },
            text: TextFacet {
                present: RoaringBitmap::new(),
                dict: Dict::default(),
                by_code: Vec::new(),
                codes: Chunked::new(u32::MAX),
            },
            flag: FlagFacet::default(),
            list: ListFacet::default(),
        }
    }
}

impl AttrIndex {
    /// Records `id`'s value; the id must have none (see [`AttrIndex::clear`]).
    pub fn set(&mut self, id: u32, v: &AttrValue) {
        self.present.insert(id);
        match v {
            AttrValue::Int(i) => {
                let n = &mut self.num;
                n.present.insert(id);
                n.vals.set(id, *i as f64);
                let mag = (*i as f64).abs();
                if mag > n.max_abs_int {
                    n.max_abs_int = mag;
                }
                if mag >= EXACT_INT {
                    n.big.insert(id, *i);
                }
                if (0..1 << MAX_PLANES).contains(i) {
                    n.sliced.set(id, *i as u64);
                }
            }
            AttrValue::Float(x) => {
                let n = &mut self.num;
                n.present.insert(id);
                n.float.insert(id);
                n.vals.set(id, *x);
            }
            AttrValue::Str(s) => {
                let t = &mut self.text;
                let code = t.dict.intern(s);
                if code as usize == t.by_code.len() {
                    t.by_code.push(RoaringBitmap::new());
                }
                t.by_code[code as usize].insert(id);
                t.present.insert(id);
                t.codes.set(id, code);
            }
            AttrValue::Bool(true) => {
                self.flag.t.insert(id);
            }
            AttrValue::Bool(false) => {
                self.flag.f.insert(id);
            }
            AttrValue::List(items) => {
                let l = &mut self.list;
                let codes: Box<[u32]> = items
                    .iter()
                    .map(|s| {
                        let code = l.dict.intern(s);
                        if code as usize == l.by_elem.len() {
                            l.by_elem.push(RoaringBitmap::new());
                        }
                        l.by_elem[code as usize].insert(id);
                        code
                    })
                    .collect();
                l.present.insert(id);
                if codes.len() >= l.by_len.len() {
                    l.by_len.resize_with(codes.len() + 1, RoaringBitmap::new);
                }
                l.by_len[codes.len()].insert(id);
                l.rows.insert(id, codes);
            }
        }
    }

    /// Forgets `id`'s value, if it has one.
    pub fn clear(&mut self, id: u32) {
        if !self.present.remove(id) {
            return;
        }
        if self.num.present.remove(id) {
            self.num.float.remove(id);
            self.num.big.remove(&id);
            self.num.sliced.clear(id);
            self.num.vals.set(id, 0.0);
        }
        if self.text.present.remove(id) {
            let code = self.text.codes.get(id);
            self.text.by_code[code as usize].remove(id);
            self.text.codes.set(id, u32::MAX);
        }
        self.flag.t.remove(id);
        self.flag.f.remove(id);
        if self.list.present.remove(id) {
            if let Some(codes) = self.list.rows.remove(&id) {
                self.list.by_len[codes.len()].remove(id);
                for c in codes.iter() {
                    self.list.by_elem[*c as usize].remove(id);
                }
            }
        }
    }

    /// `id`'s value, exactly as it was recorded.
    pub fn get(&self, id: u32) -> Option<AttrValue> {
        if !self.present.contains(id) {
            return None;
        }
        if self.num.present.contains(id) {
            if let Some(i) = self.num.big.get(&id) {
                return Some(AttrValue::Int(*i));
            }
            let x = self.num.vals.get(id);
            return Some(if self.num.float.contains(id) {
                AttrValue::Float(x)
            } else {
                AttrValue::Int(x as i64)
            });
        }
        if self.text.present.contains(id) {
            let code = self.text.codes.get(id);
            return Some(AttrValue::Str(
                self.text.dict.names[code as usize].to_string(),
            ));
        }
        if self.flag.t.contains(id) {
            return Some(AttrValue::Bool(true));
        }
        if self.flag.f.contains(id) {
            return Some(AttrValue::Bool(false));
        }
        let codes = self.list.rows.get(&id)?;
        Some(AttrValue::List(
            codes
                .iter()
                .map(|c| self.list.dict.names[*c as usize].to_string())
                .collect(),
        ))
    }

    /// Bytes held (bitmaps as serialised, columns, dictionaries, list rows).
    pub fn heap_bytes(&self) -> usize {
        let bitmaps = [
            &self.present,
            &self.num.present,
            &self.num.float,
            &self.text.present,
            &self.flag.t,
            &self.flag.f,
            &self.list.present,
        ]
        .into_iter()
        .chain(&self.text.by_code)
        .chain(&self.list.by_elem)
        .chain(&self.list.by_len)
        .map(bitmap_bytes)
        .sum::<usize>();
        let rows: usize = self.list.rows.values().map(|r| r.len() * 4 + 32).sum();
        bitmaps
            + self.num.vals.heap_bytes()
            + self.num.big.len() * 16
            + self.num.sliced.heap_bytes()
            + self.text.codes.heap_bytes()
            + self.text.dict.heap_bytes()
            + self.list.dict.heap_bytes()
            + rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_type_round_trip_and_clear() {
        let mut a = AttrIndex::default();
        let vals = [
            AttrValue::Int(3),
            AttrValue::Int(i64::MAX),
            AttrValue::Float(2.5),
            AttrValue::Str("浦东新区".into()),
            AttrValue::Bool(false),
            AttrValue::List(vec!["a".into(), "b".into()]),
        ];
        for (i, v) in vals.iter().enumerate() {
            a.set(i as u32, v);
        }
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(a.get(i as u32).as_ref(), Some(v));
        }
        for i in 0..vals.len() as u32 {
            a.clear(i);
            assert_eq!(a.get(i), None);
        }
        assert!(a.text.by_code.iter().all(RoaringBitmap::is_empty));
        assert!(a.list.by_elem.iter().all(RoaringBitmap::is_empty));
        assert!(a.list.by_len.iter().all(RoaringBitmap::is_empty));
    }
}
