//! Packing a batch of messages into provider requests that carry several numbers each.
//!
//! A request holds messages of one group key only (Tencent: the same template parameters),
//! at most `max_numbers` numbers, each number at most once (the provider's per-number
//! answer and id are keyed by the number), and names every push it carries in one
//! reference field (Alibaba `OutId`, Tencent `SessionContext`): the push ids joined by
//! `,`, which must stay within `max_ref` bytes. That reference is what keeps a number of a
//! batch findable by push id after a crash.

use crate::{OutgoingMessage, SendOutcome};
use domain::ids::MobileNumber;
use std::collections::HashSet;

/// One request to make: indices into the batch, with their parsed numbers.
pub(crate) type Request = Vec<(usize, MobileNumber)>;

/// The requests for `batch` (messages grouped by `key`, of a message's index), and the outcomes already known:
/// `Permanent(invalid_mobile)` for a number that does not parse (never sent).
pub(crate) fn requests<'k>(
    batch: &[OutgoingMessage],
    key: impl Fn(usize) -> &'k str,
    max_numbers: usize,
    max_ref: usize,
) -> (Vec<Option<SendOutcome>>, Vec<Request>) {
    let mut outcomes: Vec<Option<SendOutcome>> = vec![None; batch.len()];
    let mut valid: Vec<(usize, MobileNumber)> = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        match MobileNumber::parse(&m.to) {
            Ok(mobile) => valid.push((i, mobile)),
            Err(e) => outcomes[i] = Some(SendOutcome::permanent("invalid_mobile", e.to_string())),
        }
    }
    let items: Vec<Item<'_>> = valid
        .iter()
        .enumerate()
        .map(|(k, (i, mobile))| Item {
            index: k,
            phone: mobile.as_str(),
            push_id: &batch[*i].push_id,
            key: key(*i),
        })
        .collect();
    let requests = pack(&items, max_numbers, max_ref)
        .into_iter()
        .map(|g| g.into_iter().map(|k| valid[k].clone()).collect())
        .collect();
    (outcomes, requests)
}

/// Every outcome, `Transient(internal)` for one never filled (a bug, retried).
pub(crate) fn finish(outcomes: Vec<Option<SendOutcome>>) -> Vec<SendOutcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| SendOutcome::transient("internal", "not sent")))
        .collect()
}

/// One message to pack: its index in the batch, normalized number, push id, group key.
pub(crate) struct Item<'a> {
    pub index: usize,
    pub phone: &'a str,
    pub push_id: &'a str,
    pub key: &'a str,
}

/// Requests as lists of batch indices, in batch order of their first message.
pub(crate) fn pack(items: &[Item<'_>], max_numbers: usize, max_ref: usize) -> Vec<Vec<usize>> {
    struct Open<'a> {
        key: &'a str,
        phones: HashSet<&'a str>,
        ref_len: usize,
        indices: Vec<usize>,
    }
    let max_numbers = max_numbers.max(1);
    let mut done: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<Open<'_>> = Vec::new();
    for it in items {
        let fits = |o: &Open<'_>| {
            o.key == it.key
                && o.indices.len() < max_numbers
                && !o.phones.contains(it.phone)
                && o.ref_len + 1 + it.push_id.len() <= max_ref
        };
        match open.iter_mut().find(|o| fits(o)) {
            Some(o) => {
                o.ref_len += 1 + it.push_id.len();
                o.phones.insert(it.phone);
                o.indices.push(it.index);
            }
            None => open.push(Open {
                key: it.key,
                phones: HashSet::from([it.phone]),
                ref_len: it.push_id.len(),
                indices: vec![it.index],
            }),
        }
        // Full requests leave the open list so the search stays short.
        if let Some(pos) = open.iter().position(|o| o.indices.len() >= max_numbers) {
            done.push(open.swap_remove(pos).indices);
        }
    }
    done.extend(open.into_iter().map(|o| o.indices));
    done.sort_by_key(|g| g[0]);
    done
}

/// The reference naming the pushes of one request: their ids joined by `,`.
pub(crate) fn joined_ref<'a>(push_ids: impl IntoIterator<Item = &'a str>) -> String {
    push_ids.into_iter().collect::<Vec<_>>().join(",")
}

/// Whether a request reference (`OutId` / `SessionContext`) names `push_id`.
pub(crate) fn names(reference: &str, push_id: &str) -> bool {
    reference.split(',').any(|r| r == push_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items<'a>(rows: &'a [(&'a str, &'a str, &'a str)]) -> Vec<Item<'a>> {
        rows.iter()
            .enumerate()
            .map(|(index, (phone, push_id, key))| Item {
                index,
                phone,
                push_id,
                key,
            })
            .collect()
    }

    #[test]
    fn respects_count_key_duplicates_and_reference_length() {
        let rows = [
            ("a", "p1", "k"),
            ("b", "p2", "k"),
            ("a", "p3", "k"), // same number: another request
            ("c", "p4", "x"), // other key
            ("d", "p5", "k"),
        ];
        assert_eq!(
            pack(&items(&rows), 100, 255),
            vec![vec![0, 1, 4], vec![2], vec![3]]
        );
        assert_eq!(
            pack(&items(&rows), 2, 255),
            vec![vec![0, 1], vec![2, 4], vec![3]]
        );
        // "p1,p2" is 5 bytes: a third id does not fit in 7.
        assert_eq!(
            pack(&items(&rows), 100, 7),
            vec![vec![0, 1], vec![2, 4], vec![3]]
        );
        let many: Vec<(String, String)> = (0..250)
            .map(|i| (format!("1380000{i:04}"), format!("p{i:014}")))
            .collect();
        let its: Vec<Item<'_>> = many
            .iter()
            .enumerate()
            .map(|(index, (ph, id))| Item {
                index,
                phone: ph,
                push_id: id,
                key: "",
            })
            .collect();
        let groups = pack(&its, 100, 255);
        // 15-byte ids: 16 of them and 15 commas make 255 bytes.
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, [vec![16; 15], vec![10]].concat());
        assert_eq!(groups[1][0], 16, "in batch order");
        assert!(names("p1,p22,p3", "p22") && !names("p1,p22", "p2"));
    }
}
