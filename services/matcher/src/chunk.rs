//! Chunk geometry shared by columns and scans: ids are cut into chunks of 65,536 (one
//! roaring container each); columns allocate a chunk on its first write, so an attribute
//! only some subjects carry costs memory only where they are.

use roaring::RoaringBitmap;

/// log2 of the ids in a chunk.
pub const CHUNK_BITS: u32 = 16;
/// Ids in a chunk.
pub const CHUNK: usize = 1 << CHUNK_BITS;
/// 64-bit words in a chunk's dense bitset.
pub const WORDS: usize = CHUNK / 64;

/// A dense bitset of one chunk.
pub type Words = [u64; WORDS];

/// The chunk of an id and its position within it.
#[inline]
pub fn split(id: u32) -> (usize, usize) {
    ((id >> CHUNK_BITS) as usize, (id as usize) & (CHUNK - 1))
}

/// The ids of chunk `c`.
pub fn chunk_range(c: usize) -> std::ops::Range<u32> {
    let lo = (c as u32) << CHUNK_BITS;
    lo..lo.saturating_add(CHUNK as u32)
}

/// A column of `T` over dense ids, chunk by chunk; unwritten chunks read as `fill`.
#[derive(Debug, Clone)]
pub struct Chunked<T: Copy> {
    chunks: Vec<Option<Box<[T]>>>,
    fill: T,
}

impl<T: Copy> Chunked<T> {
    pub fn new(fill: T) -> Self {
        Self {
            chunks: Vec::new(),
            fill,
        }
    }

    #[inline]
    pub fn get(&self, id: u32) -> T {
        let (c, i) = split(id);
        match self.chunks.get(c) {
            Some(Some(v)) => v[i],
            _ => self.fill,
        }
    }

    pub fn set(&mut self, id: u32, value: T) {
        let (c, i) = split(id);
        if c >= self.chunks.len() {
            self.chunks.resize_with(c + 1, || None);
        }
        let fill = self.fill;
        self.chunks[c].get_or_insert_with(|| vec![fill; CHUNK].into_boxed_slice())[i] = value;
    }

    /// The values of chunk `c`, if any was ever written.
    #[inline]
    pub fn chunk(&self, c: usize) -> Option<&[T]> {
        self.chunks.get(c).and_then(|x| x.as_deref())
    }

    /// Bytes held by the column.
    pub fn heap_bytes(&self) -> usize {
        let allocated = self.chunks.iter().flatten().count();
        allocated * CHUNK * std::mem::size_of::<T>()
            + self.chunks.capacity() * std::mem::size_of::<Option<Box<[T]>>>()
    }
}

/// Sets `words` to the members of `bitmap` within chunk `c`.
///
/// A chunk with few ids (an array container) is read id by id; a dense one (a bitmap or
/// run container) is read from roaring's portable serialised form (the
/// RoaringFormatSpec: a bitmap container is its 1,024 words, a run container its runs),
/// a copy instead of one search per run of set bits.
pub fn fill_words(bitmap: &RoaringBitmap, c: usize, words: &mut Words) {
    words.fill(0);
    let r = chunk_range(c);
    let lo = r.start;
    let card = bitmap.range_cardinality(r.clone());
    if card == 0 {
        return;
    }
    if card == CHUNK as u64 {
        words.fill(!0);
        return;
    }
    if card > 4096 {
        let mut only = RoaringBitmap::new();
        only.insert_range(r.clone());
        let part = bitmap & &only;
        let done = SERIALISED.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            part.serialize_into(&mut *buf).is_ok() && read_serialised(&buf, words)
        });
        if done {
            return;
        }
        words.fill(0);
    }
    let mut it = bitmap.range(r);
    let mut buf = [0u32; 1024];
    loop {
        let ids = it.next_many(&mut buf);
        if ids.is_empty() {
            return;
        }
        for id in ids.iter() {
            let i = (id - lo) as usize;
            words[i / 64] |= 1 << (i % 64);
        }
    }
}

thread_local! {
    /// The serialised chunk read by [`fill_words`], kept per thread.
    static SERIALISED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(8_300));
}

/// Reads the one container of a serialised single-chunk bitmap into `words` (which
/// must be zero); `false` if `bytes` are not that.
fn read_serialised(bytes: &[u8], words: &mut Words) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(cookie) = u32_at(0) else {
        return false;
    };
    // (is a run container, offset of the description)
    let (run, desc) = if cookie == 12_346 && u32_at(4) == Some(1) {
        (false, 8)
    } else if cookie == 12_347 {
        // one container (count − 1 = 0 in the high half), its run flag, no offsets
        (bytes.get(4).is_some_and(|f| f & 1 == 1), 5)
    } else {
        return false;
    };
    let Some(card) = u16_at(desc + 2).map(|c| usize::from(c) + 1) else {
        return false;
    };
    // the plain format always has offsets
    let data = if run { desc + 4 } else { desc + 8 };
    if run {
        let Some(n) = u16_at(data) else { return false };
        for k in 0..usize::from(n) {
            let (Some(start), Some(len)) = (u16_at(data + 2 + 4 * k), u16_at(data + 4 + 4 * k))
            else {
                return false;
            };
            let (a, b) = (usize::from(start), usize::from(start) + usize::from(len));
            if b >= CHUNK {
                return false;
            }
            for i in a..=b {
                words[i / 64] |= 1 << (i % 64);
            }
        }
    } else if card <= 4096 {
        for k in 0..card {
            let Some(v) = u16_at(data + 2 * k) else {
                return false;
            };
            let i = usize::from(v);
            words[i / 64] |= 1 << (i % 64);
        }
    } else {
        let Some(raw) = bytes.get(data..data + CHUNK / 8) else {
            return false;
        };
        for (w, b) in words.iter_mut().zip(raw.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
    }
    true
}

/// The set bits of a chunk's words as a bitmap of ids.
pub fn words_to_bitmap(c: usize, words: &Words) -> RoaringBitmap {
    if words.iter().all(|w| *w == 0) {
        return RoaringBitmap::new();
    }
    let mut bytes = [0u8; CHUNK / 8];
    for (w, out) in words.iter().zip(bytes.chunks_exact_mut(8)) {
        out.copy_from_slice(&w.to_le_bytes());
    }
    RoaringBitmap::from_lsb0_bytes(chunk_range(c).start, &bytes)
}

/// Heap bytes of a bitmap, as roaring would serialise it (a close estimate of its
/// in-memory size).
pub fn bitmap_bytes(b: &RoaringBitmap) -> usize {
    b.serialized_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_bitmaps() {
        let b: RoaringBitmap = [65_536u32, 65_600, 65_601, 70_000, 131_071]
            .into_iter()
            .chain(66_000..67_000)
            .collect();
        let mut w = [0u64; WORDS];
        fill_words(&b, 1, &mut w);
        assert_eq!(words_to_bitmap(1, &w), b);
        fill_words(&b, 0, &mut w);
        assert!(w.iter().all(|x| *x == 0));
        // dense chunks: scattered bits (a bitmap container) and long runs (a run
        // container after `optimize`), read from their serialised form
        let scattered: RoaringBitmap = (0..200_000u32).filter(|i| i % 3 != 0).collect();
        let mut runs: RoaringBitmap = (65_536..131_072u32).filter(|i| i % 1000 < 900).collect();
        runs.optimize();
        for (b, c) in [(&scattered, 0), (&scattered, 2), (&runs, 1)] {
            let mut only = RoaringBitmap::new();
            only.insert_range(chunk_range(c));
            let mut bytes = Vec::new();
            (b & &only).serialize_into(&mut bytes).unwrap();
            w.fill(0);
            assert!(
                read_serialised(&bytes, &mut w),
                "chunk {c} read from its form"
            );
            fill_words(b, c, &mut w);
            for i in 0..CHUNK {
                let id = chunk_range(c).start + i as u32;
                assert_eq!((w[i / 64] >> (i % 64)) & 1 == 1, b.contains(id), "{id}");
            }
        }
    }

    #[test]
    fn chunked_columns_allocate_on_write() {
        let mut c = Chunked::new(0i32);
        assert_eq!(c.get(1_000_000), 0);
        c.set(1_000_000, 7);
        assert_eq!(c.get(1_000_000), 7);
        assert!(c.chunk(0).is_none());
        assert!(c.chunk(15).is_some());
    }
}
