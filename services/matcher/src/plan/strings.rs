//! String predicates over bitmaps: each distinct value of an attribute is tested once,
//! and the bitmaps of the values that pass are unioned.

use super::node::{StrPred, StrSrc};
use crate::index::PopulationIndex;
use roaring::{MultiOps, RoaringBitmap};
use std::borrow::Cow;

/// Where a leaf is true, and where it is known (`None`: everywhere).
pub(super) struct LeafSets<'a> {
    /// Borrowed from the index where exactly one of its bitmaps is the answer.
    pub t: Cow<'a, RoaringBitmap>,
    /// Borrowed from the index where it is one of its bitmaps (no copy per run).
    pub known: Option<Cow<'a, RoaringBitmap>>,
}

/// `pred` over the strings of `src`.
pub(super) fn string_leaf<'a>(
    ix: &'a PopulationIndex,
    src: &StrSrc,
    pred: &StrPred,
) -> LeafSets<'a> {
    match src {
        StrSrc::Kind => LeafSets {
            t: pick(&[
                (pred.test("person"), &ix.persons),
                (pred.test("enterprise"), &ix.enterprises),
            ]),
            known: None,
        },
        StrSrc::Sex => LeafSets {
            t: pick(&[
                (pred.test("male"), &ix.male),
                (pred.test("female"), &ix.female),
            ]),
            // every person is male or female (the resident ID says which)
            known: Some(Cow::Borrowed(&ix.persons)),
        },
        StrSrc::Attr(name) => {
            let text = &ix.attr(name).text;
            LeafSets {
                t: text_matching(ix, name, |v| pred.test(v)),
                known: Some(Cow::Borrowed(&text.present)),
            }
        }
    }
}

fn pick<'a>(choices: &[(bool, &'a RoaringBitmap)]) -> Cow<'a, RoaringBitmap> {
    union_of(choices.iter().filter(|(on, _)| *on).map(|(_, b)| *b))
}

/// The union of index bitmaps, borrowed when there is only one (no copy per run).
pub(super) fn union_of<'a>(
    bitmaps: impl IntoIterator<Item = &'a RoaringBitmap>,
) -> Cow<'a, RoaringBitmap> {
    let all: Vec<&RoaringBitmap> = bitmaps.into_iter().collect();
    match all.as_slice() {
        [] => Cow::Owned(RoaringBitmap::new()),
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(all.union()),
    }
}

/// Subjects whose string value of `name` passes `test`.
pub(super) fn text_matching<'a>(
    ix: &'a PopulationIndex,
    name: &str,
    test: impl Fn(&str) -> bool,
) -> Cow<'a, RoaringBitmap> {
    let text = &ix.attr(name).text;
    union_of(
        text.dict
            .names
            .iter()
            .zip(&text.by_code)
            .filter(|(v, _)| test(v))
            .map(|(_, b)| b),
    )
}

/// `'e' in name` over list values.
pub(super) fn list_has<'a>(ix: &'a PopulationIndex, name: &str, elem: &str) -> LeafSets<'a> {
    let list = &ix.attr(name).list;
    LeafSets {
        t: list
            .dict
            .code(elem)
            .map_or_else(Cow::default, |c| Cow::Borrowed(&list.by_elem[c as usize])),
        known: Some(Cow::Borrowed(&list.present)),
    }
}

/// `name.contains('x')`: a substring of a string value, an element of a list value.
pub(super) fn attr_contains<'a>(ix: &'a PopulationIndex, name: &str, needle: &str) -> LeafSets<'a> {
    let a = ix.attr(name);
    let mut t = text_matching(ix, name, |v| v.contains(needle)).into_owned();
    t |= &*list_has(ix, name, needle).t;
    LeafSets {
        t: Cow::Owned(t),
        known: Some(Cow::Owned(&a.text.present | &a.list.present)),
    }
}

/// `name in []`: false where the value is a string or a number.
pub(super) fn empty_in<'a>(ix: &'a PopulationIndex, name: &str) -> LeafSets<'a> {
    let a = ix.attr(name);
    LeafSets {
        t: Cow::Owned(RoaringBitmap::new()),
        known: Some(Cow::Owned(&a.text.present | &a.num.present)),
    }
}
