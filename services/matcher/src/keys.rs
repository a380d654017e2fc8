//! The ids ↔ keys columns, compressed: a resident ID (17 digits and a check character
//! `0`–`9` or `X`) packs into one `u64` (`digits · 11 + check`); the key → id map is an
//! open-addressing table of ids alone (4 bytes a slot), comparing through the packed
//! column. Other keys (credit codes) keep their 18 bytes in a side table.

use std::collections::HashMap;

/// Subject keys (resident ID numbers and credit codes) are 18 ASCII characters.
pub type Key = [u8; 18];

/// Marks a packed value that is an index into the side table.
const OTHER: u64 = 1 << 63;
const EMPTY: u32 = u32::MAX;

/// A key as text, read back from the packed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyText(Key);

impl std::ops::Deref for KeyText {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).expect("keys are ASCII")
    }
}

impl std::fmt::Display for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// A resident ID packed into 60 bits; `None` for any other key.
fn pack(k: &Key) -> Option<u64> {
    let mut v = 0u64;
    for b in &k[..17] {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    let check = match k[17] {
        b @ b'0'..=b'9' => u64::from(b - b'0'),
        b'X' => 10,
        _ => return None,
    };
    Some(v * 11 + check)
}

fn unpack(p: u64) -> Key {
    let mut k = [0u8; 18];
    let check = p % 11;
    k[17] = if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    };
    let mut v = p / 11;
    for b in k[..17].iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
    k
}

fn slot_of(p: u64, mask: usize) -> usize {
    (p.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// Every id's key and the way back.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Packed key of each id.
    packed: Vec<u64>,
    /// Ids of resident keys by hash of the packed key (`EMPTY`: free), linear probing.
    slots: Vec<u32>,
    /// Keys that do not pack, and their ids.
    others: Vec<Key>,
    other_ids: HashMap<Key, u32>,
}

impl Keys {
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The id of a key.
    pub fn id(&self, k: &Key) -> Option<u32> {
        let Some(p) = pack(k) else {
            return self.other_ids.get(k).copied();
        };
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = slot_of(p, mask);
        loop {
            match self.slots[i] {
                EMPTY => return None,
                id if self.packed[id as usize] == p => return Some(id),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Gives a new key the next id (the key must not be known).
    pub fn push(&mut self, k: Key) -> u32 {
        let id = self.packed.len() as u32;
        match pack(&k) {
            Some(p) => {
                self.packed.push(p);
                if (self.residents() + 1) * 4 > self.slots.len() * 3 {
                    self.grow();
                } else {
                    self.place(id);
                }
            }
            None => {
                self.packed.push(OTHER | self.others.len() as u64);
                self.others.push(k);
                self.other_ids.insert(k, id);
            }
        }
        id
    }

    /// The key of an id.
    pub fn key(&self, id: u32) -> KeyText {
        let p = self.packed[id as usize];
        KeyText(if p & OTHER != 0 {
            self.others[(p & !OTHER) as usize]
        } else {
            unpack(p)
        })
    }

    fn residents(&self) -> usize {
        self.packed.len() - self.others.len()
    }

    fn place(&mut self, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = slot_of(self.packed[id as usize], mask);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = id;
    }

    /// Doubles the table (at most 3/4 full) and places every resident id again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        self.slots = vec![EMPTY; size];
        for id in 0..self.packed.len() as u32 {
            if self.packed[id as usize] & OTHER == 0 {
                self.place(id);
            }
        }
    }

    /// Bytes of the id → key column (packed keys and the side table's keys).
    pub fn column_bytes(&self) -> usize {
        self.packed.capacity() * 8 + self.others.capacity() * 18
    }

    /// Bytes of the key → id map (slots and the side table's map).
    pub fn map_bytes(&self) -> usize {
        self.slots.capacity() * 4 + self.other_ids.capacity() * (18 + 4 + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        s.as_bytes().try_into().unwrap()
    }

    #[test]
    fn keys_round_trip_and_are_found() {
        let mut ks = Keys::default();
        let mut all = Vec::new();
        for i in 0..5_000u64 {
            let check = ["0", "7", "X"][i as usize % 3];
            all.push(key(&format!(
                "{:017}{check}",
                31_010_119_900_101_000 + i * 7_919
            )));
            if i % 10 == 0 {
                all.push(key(&format!("91440300{:09}X", i)));
                all.push(key(&format!("9144030MA{:08}Y", i)));
            }
        }
        for (i, k) in all.iter().enumerate() {
            assert_eq!(ks.id(k), None);
            assert_eq!(ks.push(*k), i as u32);
        }
        for (i, k) in all.iter().enumerate() {
            assert_eq!(ks.id(k), Some(i as u32));
            assert_eq!(ks.key(i as u32).as_bytes(), k);
        }
        assert_eq!(ks.id(&key("310101199001011230")), None);
        assert_eq!(ks.key(0).to_string(), "310101199001010000");
    }
}
