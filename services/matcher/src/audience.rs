//! An audience: the members as a bitmap, how many, breakdowns by kind, district and
//! reachable channel, and a sample of subject keys.

use crate::index::PopulationIndex;
use domain::Channel;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Audience {
    #[serde(skip)]
    pub members: RoaringBitmap,
    pub count: u64,
    /// The first `sample` members' keys (resident ID numbers, credit codes), in id order.
    pub sample: Vec<String>,
    pub by_kind: BTreeMap<String, u64>,
    pub by_district: BTreeMap<String, u64>,
    /// Of the audience, how many each channel can reach.
    pub reachable: BTreeMap<String, u64>,
}

impl Audience {
    pub fn of(ix: &PopulationIndex, members: RoaringBitmap, sample: usize) -> Self {
        let mut by_kind = BTreeMap::new();
        for (kind, b) in [("person", &ix.persons), ("enterprise", &ix.enterprises)] {
            let n = members.intersection_len(b);
            if n > 0 {
                by_kind.insert(kind.to_string(), n);
            }
        }
        let text = &ix.attr("district").text;
        let by_district = text
            .dict
            .names
            .iter()
            .zip(&text.by_code)
            .map(|(d, b)| (d.to_string(), members.intersection_len(b)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let reachable = Channel::ALL
            .iter()
            .map(|c| {
                let b = match c {
                    Channel::Wechat => &ix.wechat,
                    Channel::Sms | Channel::Hotline => &ix.mobile,
                };
                (c.as_str().to_string(), members.intersection_len(b))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Self {
            count: members.len(),
            sample: members
                .iter()
                .take(sample)
                .map(|id| ix.key(id).to_string())
                .collect(),
            by_kind,
            by_district,
            reachable,
            members,
        }
    }
}
