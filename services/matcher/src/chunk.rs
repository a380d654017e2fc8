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
pub fn fill_words(bitmap: &RoaringBitmap, c: usize, words: &mut Words) {
    words.fill(0);
    let r = chunk_range(c);
    let lo = r.start;
    let mut it = bitmap.range(r);
    while let Some(run) = it.next_range() {
        set_run(
            words,
            (run.start() - lo) as usize,
            (run.end() - lo) as usize,
        );
    }
}

/// Sets bits `a..=b` of a chunk's words.
fn set_run(words: &mut Words, a: usize, b: usize) {
    let (wa, wb) = (a / 64, b / 64);
    let head = !0u64 << (a % 64);
    let tail = !0u64 >> (63 - b % 64);
    if wa == wb {
        words[wa] |= head & tail;
        return;
    }
    words[wa] |= head;
    for w in &mut words[wa + 1..wb] {
        *w = !0;
    }
    words[wb] |= tail;
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
