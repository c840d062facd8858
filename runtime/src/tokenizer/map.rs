//! A small open-addressing hash table from piece text to token id, over the vocabulary's own
//! strings (no copies of the keys, no dependency).
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

const EMPTY: u32 = u32::MAX;

/// Piece text → id, for a subset of the vocabulary.
#[derive(Clone, Debug)]
pub(crate) struct PieceMap {
    slots: Vec<u32>,
    mask: usize,
}

fn hash(bytes: &[u8]) -> usize {
    // FNV-1a, 64 bit.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 29)) as usize
}

impl PieceMap {
    /// A table with room for `n` entries at load factor ≤ 1/2.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let cap = (n.max(4) * 2).next_power_of_two();
        PieceMap {
            slots: vec![EMPTY; cap],
            mask: cap - 1,
        }
    }

    /// Inserts `id` (whose text is `tokens[id]`); keeps the first id of a duplicated text.
    pub(crate) fn insert(&mut self, tokens: &[String], id: u32) {
        let key = tokens[id as usize].as_bytes();
        let mut i = hash(key) & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                self.slots[i] = id;
                return;
            }
            if tokens[s as usize].as_bytes() == key {
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    pub(crate) fn get(&self, tokens: &[String], key: &[u8]) -> Option<u32> {
        let mut i = hash(key) & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if tokens[s as usize].as_bytes() == key {
                return Some(s);
            }
            i = (i + 1) & self.mask;
        }
    }
}
