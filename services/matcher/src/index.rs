//! [`PopulationIndex`]: every subject under a dense `u32` id, as bitmaps and columns.
//!
//! Ids are given in order of first insertion and never reused (subjects are not
//! deleted). An upsert of a known subject clears its old bits and writes the new ones,
//! so the index always describes the latest version of each subject.

use crate::attr::AttrIndex;
use crate::chunk::{bitmap_bytes, Chunked};
use crate::keys::Keys;
use crate::slices::{birth_code, BitSliced};
use chrono::Datelike;
use domain::ids::Sex;
use domain::{Subject, SubjectId, SubjectKind};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;

pub use crate::keys::{Key, KeyText};

/// The columnar index of the population.
#[derive(Debug, Clone, Default)]
pub struct PopulationIndex {
    keys: Keys,
    /// Every id (`0..len`).
    pub all: RoaringBitmap,
    pub persons: RoaringBitmap,
    pub enterprises: RoaringBitmap,
    pub male: RoaringBitmap,
    pub female: RoaringBitmap,
    /// Persons' birth dates as `yyyymmdd` (age on a date is `⌊(today − birth) / 10⁴⌋`).
    pub birth: Option<Chunked<i32>>,
    /// The same birth dates bit-sliced as [`birth_code`]s (age ranges as bitmap
    /// operations).
    pub birth_sliced: BitSliced,
    /// Subjects with a mobile number / a WeChat openid (reachability).
    pub mobile: RoaringBitmap,
    pub wechat: RoaringBitmap,
    pub attrs: BTreeMap<Box<str>, AttrIndex>,
    pub tags: BTreeMap<Box<str>, RoaringBitmap>,
}

/// An empty attribute, read for names no subject has.
static NO_ATTR: std::sync::LazyLock<AttrIndex> = std::sync::LazyLock::new(AttrIndex::default);

/// `yyyymmdd` of a date.
pub fn date_key(d: chrono::NaiveDate) -> i32 {
    d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32
}

fn key_of(id: &SubjectId) -> Key {
    let mut k = [0u8; 18];
    k.copy_from_slice(&id.as_str().as_bytes()[..18]);
    k
}

impl PopulationIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from subjects and their tags.
    pub fn build<'a>(subjects: impl IntoIterator<Item = (&'a Subject, &'a [String])>) -> Self {
        let mut ix = Self::new();
        for (s, tags) in subjects {
            ix.upsert(s, tags);
        }
        ix
    }

    /// Subjects in the index.
    pub fn len(&self) -> u32 {
        self.keys.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id of a subject key.
    pub fn id_of(&self, key: &str) -> Option<u32> {
        let k: Key = key.as_bytes().try_into().ok()?;
        self.keys.id(&k)
    }

    /// The key (resident ID or credit code) of an id.
    pub fn key(&self, id: u32) -> KeyText {
        self.keys.key(id)
    }

    /// Inserts or replaces a subject with its tags; returns its id.
    pub fn upsert(&mut self, s: &Subject, tags: &[String]) -> u32 {
        let key = key_of(&s.id);
        let id = match self.keys.id(&key) {
            Some(id) => {
                self.clear(id);
                id
            }
            None => {
                let id = self.keys.push(key);
                self.all.insert(id);
                id
            }
        };
        match &s.id {
            SubjectId::Person(r) => {
                self.persons.insert(id);
                match r.sex() {
                    Sex::Male => self.male.insert(id),
                    Sex::Female => self.female.insert(id),
                };
                let key = date_key(r.birth_date());
                self.birth
                    .get_or_insert_with(|| Chunked::new(0))
                    .set(id, key);
                match birth_code(key) {
                    Some(code) => self.birth_sliced.set(id, code),
                    None => self.birth_sliced.clear(id),
                }
            }
            SubjectId::Enterprise(_) => {
                self.enterprises.insert(id);
            }
        }
        if s.mobile.is_some() {
            self.mobile.insert(id);
        }
        if s.wechat_openid.is_some() {
            self.wechat.insert(id);
        }
        for (name, v) in &s.attributes {
            if !self.attrs.contains_key(name.as_str()) {
                self.attrs
                    .insert(name.as_str().into(), AttrIndex::default());
            }
            self.attrs
                .get_mut(name.as_str())
                .expect("just inserted")
                .set(id, v);
        }
        self.set_tags(id, tags);
        id
    }

    /// Replaces the tags of `id`.
    pub fn set_tags(&mut self, id: u32, tags: &[String]) {
        for (name, b) in self.tags.iter_mut() {
            if !tags.iter().any(|t| **t == **name) {
                b.remove(id);
            }
        }
        for t in tags {
            match self.tags.get_mut(t.as_str()) {
                Some(b) => {
                    b.insert(id);
                }
                None => {
                    let mut b = RoaringBitmap::new();
                    b.insert(id);
                    self.tags.insert(t.as_str().into(), b);
                }
            }
        }
    }

    /// Replaces the members of one tag (a tag recomputed in bulk, or an imported list).
    pub fn set_tag_members(&mut self, tag: &str, members: RoaringBitmap) {
        self.tags.insert(tag.into(), members);
    }

    fn clear(&mut self, id: u32) {
        for b in [
            &mut self.persons,
            &mut self.enterprises,
            &mut self.male,
            &mut self.female,
            &mut self.mobile,
            &mut self.wechat,
        ] {
            b.remove(id);
        }
        for a in self.attrs.values_mut() {
            a.clear(id);
        }
    }

    /// One attribute (empty for a name no subject has).
    pub fn attr(&self, name: &str) -> &AttrIndex {
        self.attrs.get(name).unwrap_or(&NO_ATTR)
    }

    /// The members of a tag (empty for an unknown tag).
    pub fn tag(&self, name: &str) -> &RoaringBitmap {
        static EMPTY: std::sync::LazyLock<RoaringBitmap> =
            std::sync::LazyLock::new(RoaringBitmap::new);
        self.tags.get(name).unwrap_or(&EMPTY)
    }

    pub fn kind(&self, id: u32) -> SubjectKind {
        if self.persons.contains(id) {
            SubjectKind::Person
        } else {
            SubjectKind::Enterprise
        }
    }

    /// Reads one row back as a subject (no name or contact points) with its tags: what
    /// the per-subject interpreter needs for the parts of a plan that are not vectorised.
    pub fn row(&self, id: u32) -> (Subject, Vec<String>) {
        let id_ = SubjectId::parse(self.kind(id), &self.key(id)).expect("keys were parsed ids");
        let attributes = self
            .attrs
            .iter()
            .filter_map(|(n, a)| Some((n.to_string(), a.get(id)?)))
            .collect();
        let tags = self
            .tags
            .iter()
            .filter(|(_, b)| b.contains(id))
            .map(|(n, _)| n.to_string())
            .collect();
        let s = Subject {
            id: id_,
            name: String::new(),
            mobile: None,
            wechat_openid: None,
            attributes,
        };
        (s, tags)
    }

    /// Bytes held by the index, split into the matching structures and the key map
    /// (ids ↔ resident ID numbers / credit codes).
    pub fn heap_bytes(&self) -> MemoryUse {
        let fixed = [
            &self.all,
            &self.persons,
            &self.enterprises,
            &self.male,
            &self.female,
            &self.mobile,
            &self.wechat,
        ]
        .into_iter()
        .chain(self.tags.values())
        .map(bitmap_bytes)
        .sum::<usize>();
        let attrs: usize = self.attrs.values().map(AttrIndex::heap_bytes).sum();
        let birth =
            self.birth.as_ref().map_or(0, Chunked::heap_bytes) + self.birth_sliced.heap_bytes();
        MemoryUse {
            matching: fixed + attrs + birth,
            keys: self.keys.column_bytes(),
            key_map: self.keys.map_bytes(),
        }
    }
}

/// What an index holds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Bitmaps and columns read by plans.
    pub matching: usize,
    /// The key of every id (for samples and audiences as ids).
    pub keys: usize,
    /// Key → id (for upserts).
    pub key_map: usize,
}
