//! The fixed-size arena and the key/value caches carved from it.
//!
//! A session makes ONE allocation ([`Arena`]) when it is created; every cache and scratch
//! buffer is a fixed region of it ([`Layout`] records where). Nothing grows afterwards.
//!
//! Two cache policies ([`KvState`]):
//! - **Ring** (`F1` with a finite window `W1`): `W1` slots, entry `a` (counting every entry ever
//!   appended) lives in slot `a mod W1`. Keys are stored rotated at their RoPE position
//!   `a − base`; when that would reach the trained range, every entry is re-rotated so the oldest
//!   sits at position 0 (`base` moves). Attention never needs more than the window, so this is
//!   exact.
//! - **Linear** with attention sink (the coarse `F2` cache, the vanilla model's cache, the local
//!   decoders): slot = RoPE position. When an append does not fit, `evict` positions right after
//!   the first `sink` ones are dropped at once, the rest moves down and its keys are re-rotated by
//!   `−evict`, so positions stay below the capacity (itself at most the trained range). No error,
//!   no growth; the cost of re-rotation is amortised over `evict` appends.
use crate::quant::BlockQ8Act;
use alloc::vec;
use alloc::vec::Vec;

/// Element type of the key/value caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheType {
    /// f32 (the reference's numerics; the default).
    #[default]
    F32,
    /// IEEE half precision: half the memory and bandwidth; keys/values rounded to f16.
    F16,
}

/// Mutable key or value storage of a cache.
pub enum KvMut<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [u16]),
}

/// Read-only key or value storage.
#[derive(Clone, Copy)]
pub enum KvRef<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
}

impl<'a> KvRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            KvRef::F32(x) => x.len(),
            KvRef::F16(x) => x.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn slice(self, r: core::ops::Range<usize>) -> KvRef<'a> {
        match self {
            KvRef::F32(x) => KvRef::F32(&x[r]),
            KvRef::F16(x) => KvRef::F16(&x[r]),
        }
    }
}

impl KvMut<'_> {
    pub(crate) fn as_ref(&self) -> KvRef<'_> {
        match self {
            KvMut::F32(x) => KvRef::F32(x),
            KvMut::F16(x) => KvRef::F16(x),
        }
    }
    pub(crate) fn reborrow(&mut self) -> KvMut<'_> {
        match self {
            KvMut::F32(x) => KvMut::F32(x),
            KvMut::F16(x) => KvMut::F16(x),
        }
    }
    fn copy_within(&mut self, src: core::ops::Range<usize>, dst: usize) {
        match self {
            KvMut::F32(x) => x.copy_within(src, dst),
            KvMut::F16(x) => x.copy_within(src, dst),
        }
    }
    /// Writes f32 values at `o`.
    pub(crate) fn write(&mut self, o: usize, src: &[f32]) {
        match self {
            KvMut::F32(x) => x[o..o + src.len()].copy_from_slice(src),
            KvMut::F16(x) => {
                use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
                x[o..o + src.len()]
                    .reinterpret_cast_mut::<half::f16>()
                    .convert_from_f32_slice(src);
            }
        }
    }
    /// Rotates the keys in `range` back by `shift` positions.
    fn rotate_back(
        &mut self,
        range: core::ops::Range<usize>,
        head_dim: usize,
        shift: usize,
        inv_freq: &[f32],
    ) {
        match self {
            KvMut::F32(x) => rotate_back(&mut x[range], head_dim, shift, inv_freq),
            KvMut::F16(x) => {
                let mut buf = [0.0f32; 256];
                for head in x[range].chunks_exact_mut(head_dim) {
                    let b = &mut buf[..head_dim];
                    for (o, h) in b.iter_mut().zip(head.iter()) {
                        *o = crate::quant::f16_to_f32(*h);
                    }
                    rotate_back(b, head_dim, shift, inv_freq);
                    for (h, o) in head.iter_mut().zip(b.iter()) {
                        *h = crate::quant::f32_to_f16(*o);
                    }
                }
            }
        }
    }
}

/// Cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// `cap` slots used as a ring; attention covers the last `cap` entries (a sliding window).
    Ring,
    /// Slots are positions; when full, `evict` positions after the first `sink` are dropped.
    Linear { sink: usize, evict: usize },
}

/// Bookkeeping of one key/value cache (the data lives in the arena).
#[derive(Debug, Clone)]
pub struct KvState {
    pub policy: CachePolicy,
    pub layers: usize,
    pub dim: usize,
    pub cap: usize,
    /// Valid entries.
    pub len: usize,
    /// Entries ever appended (ring slot = `abs % cap`).
    pub abs: u64,
    /// Ring only: RoPE position of entry `a` is `a − base`.
    pub base: u64,
    /// Positions must stay below this (the trained range).
    pub limit: usize,
    /// Entries dropped so far (sink/sliding eviction).
    pub evicted: u64,
    /// Element type of the storage.
    pub ty: CacheType,
    /// Linear only: positions held by a read-only shared prefix in front of this cache
    /// (`KvView::pk`/`pv`); this cache's slot `s` is position `prefix + s`.
    pub prefix: usize,
    /// Offsets (in f32 elements) of the key and value regions in the arena.
    pub off_k: usize,
    pub off_v: usize,
}

impl Default for KvState {
    fn default() -> Self {
        KvState::new(CachePolicy::Ring, 0, 0, 0, 0)
    }
}

impl KvState {
    pub fn new(policy: CachePolicy, layers: usize, dim: usize, cap: usize, limit: usize) -> Self {
        KvState {
            policy,
            layers,
            dim,
            cap,
            len: 0,
            abs: 0,
            base: 0,
            limit,
            evicted: 0,
            ty: CacheType::F32,
            prefix: 0,
            off_k: 0,
            off_v: 0,
        }
    }

    /// Values in the key region (the value region is the same size).
    pub fn values(&self) -> usize {
        self.layers * self.cap * self.dim
    }

    /// f32 arena slots of the key region (f16 storage packs two values a slot).
    pub fn elems(&self) -> usize {
        match self.ty {
            CacheType::F32 => self.values(),
            CacheType::F16 => self.values().div_ceil(2),
        }
    }

    /// Bytes of keys + values.
    pub fn bytes(&self) -> usize {
        8 * self.elems()
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.abs = 0;
        self.base = 0;
    }

    /// The window (in entries) a query attends to, if any.
    pub fn window(&self) -> Option<usize> {
        match self.policy {
            CachePolicy::Ring => Some(self.cap),
            CachePolicy::Linear { .. } => None,
        }
    }

    /// Most rows one forward pass may append.
    pub fn max_batch(&self) -> usize {
        match self.policy {
            CachePolicy::Ring => usize::MAX,
            CachePolicy::Linear { sink, .. } => self.cap - sink,
        }
    }
}

/// A cache's state with its key and value regions borrowed from the arena.
pub struct KvView<'a> {
    pub st: &'a mut KvState,
    /// `layers × cap × dim`.
    pub k: KvMut<'a>,
    pub v: KvMut<'a>,
    /// Shared read-only prefix, `layers × st.prefix × dim` (empty when none).
    pub pk: KvRef<'a>,
    pub pv: KvRef<'a>,
}

/// Rotates `x` (heads of `head_dim` side by side) by `−shift` positions.
pub(crate) fn rotate_back(x: &mut [f32], head_dim: usize, shift: usize, inv_freq: &[f32]) {
    if shift == 0 {
        return;
    }
    for head in x.chunks_exact_mut(head_dim) {
        for (i, f) in inv_freq.iter().enumerate().take(head_dim / 2) {
            // Angle in f64 so that large shifts lose nothing.
            let ang = -(shift as f64) * *f as f64;
            let (s, c) = (libm::sin(ang) as f32, libm::cos(ang) as f32);
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

impl KvView<'_> {
    /// Makes room for `n` new entries (evicting or re-basing as the policy says) and returns
    /// the RoPE position of the first.
    pub(crate) fn prepare(&mut self, n: usize, head_dim: usize, inv_freq: &[f32]) -> usize {
        let st = &mut *self.st;
        let dim = st.dim;
        match st.policy {
            CachePolicy::Linear { sink, evict } => {
                assert!(n <= st.cap - sink, "batch of {n} rows exceeds the cache");
                if st.len + n > st.cap {
                    let drop = evict.max(st.len + n - st.cap).min(st.len - sink);
                    let keep = st.len - sink - drop;
                    for l in 0..st.layers {
                        let base = l * st.cap * dim;
                        let (from, to) = ((sink + drop) * dim, sink * dim);
                        self.k
                            .copy_within(base + from..base + from + keep * dim, base + to);
                        self.v
                            .copy_within(base + from..base + from + keep * dim, base + to);
                        self.k.rotate_back(
                            base + to..base + to + keep * dim,
                            head_dim,
                            drop,
                            inv_freq,
                        );
                    }
                    st.len -= drop;
                    st.evicted += drop as u64;
                }
                st.prefix + st.len
            }
            CachePolicy::Ring => {
                let pos = (st.abs - st.base) as usize;
                if pos + n > st.limit {
                    // Re-base: the oldest valid entry goes to position 0.
                    let shift = pos - st.len;
                    let rows = st.len;
                    for l in 0..st.layers {
                        for a in st.abs - rows as u64..st.abs {
                            let s = (a % st.cap as u64) as usize;
                            let o = (l * st.cap + s) * dim;
                            self.k.rotate_back(o..o + dim, head_dim, shift, inv_freq);
                        }
                    }
                    st.base += shift as u64;
                }
                (st.abs - st.base) as usize
            }
        }
    }

    /// Stores the keys and values of `n` rows (`n × dim`, already rotated) for layer `l`.
    pub(crate) fn store(&mut self, l: usize, k: &[f32], v: &[f32], n: usize) {
        let st = &*self.st;
        let dim = st.dim;
        let base = l * st.cap * dim;
        match st.policy {
            CachePolicy::Linear { .. } => {
                let o = base + st.len * dim;
                self.k.write(o, &k[..n * dim]);
                self.v.write(o, &v[..n * dim]);
            }
            CachePolicy::Ring => {
                let first = n.saturating_sub(st.cap);
                for i in first..n {
                    let s = ((st.abs + i as u64) % st.cap as u64) as usize;
                    let o = base + s * dim;
                    self.k.write(o, &k[i * dim..(i + 1) * dim]);
                    self.v.write(o, &v[i * dim..(i + 1) * dim]);
                }
            }
        }
    }

    /// Counts `n` stored rows as valid (after every layer stored them).
    pub(crate) fn commit(&mut self, n: usize) {
        let st = &mut *self.st;
        st.abs += n as u64;
        st.len = (st.len + n).min(st.cap);
    }

    /// Slot ranges (at most two) of old entries that a query `i` rows into the current batch
    /// may attend to, given the window `w` (None = all).
    pub(crate) fn old_ranges(&self, i: usize) -> [(usize, usize); 2] {
        let st = &*self.st;
        match st.policy {
            CachePolicy::Linear { .. } => [(0, st.len), (0, 0)],
            CachePolicy::Ring => {
                // Query's entry index: abs + i; it sees entries > abs + i − cap.
                let lo_abs = (st.abs + i as u64 + 1).saturating_sub(st.cap as u64);
                let lo_abs = lo_abs.max(st.abs - st.len as u64);
                let count = st.abs.saturating_sub(lo_abs) as usize;
                if count == 0 {
                    return [(0, 0), (0, 0)];
                }
                let s0 = (lo_abs % st.cap as u64) as usize;
                if s0 + count <= st.cap {
                    [(s0, s0 + count), (0, 0)]
                } else {
                    [(s0, st.cap), (0, s0 + count - st.cap)]
                }
            }
        }
    }

    /// Drops the newest `n` entries (linear caches; used to undo RecGen's coarse entries).
    pub(crate) fn truncate_newest(&mut self, n: usize) {
        let st = &mut *self.st;
        let n = n.min(st.len);
        st.len -= n;
        st.abs -= n as u64;
    }
}

/// The one allocation of a session: f32 elements, carved by offsets.
#[derive(Debug, Clone)]
pub struct Arena {
    buf: Vec<f32>,
}

impl Arena {
    /// Allocates `elems` f32 elements, zeroed.
    pub fn new(elems: usize) -> Self {
        Arena {
            buf: vec![0.0; elems],
        }
    }
    pub fn bytes(&self) -> usize {
        self.buf.len() * 4
    }
    /// Copies another arena of the same size (no allocation).
    pub fn copy_from(&mut self, other: &Arena) {
        self.buf.copy_from_slice(&other.buf);
    }
    pub fn slice_mut(&mut self) -> &mut [f32] {
        &mut self.buf
    }
    pub fn slice(&self) -> &[f32] {
        &self.buf
    }
}

/// Sequential planner of arena regions (offsets in f32 elements).
#[derive(Debug, Default, Clone)]
pub struct Planner {
    pub total: usize,
}

impl Planner {
    /// Reserves `n` f32 elements (rounded up to 16 = 64 bytes) and returns their offset.
    pub fn take(&mut self, n: usize) -> usize {
        let o = self.total;
        self.total += n.div_ceil(16) * 16;
        o
    }
    /// Reserves room for `n` activation blocks.
    pub fn take_blocks(&mut self, n: usize) -> usize {
        self.take(n * core::mem::size_of::<BlockQ8Act>() / 4)
    }
}

/// Splits off the next `n` elements of `*rest` (regions are carved in planning order).
pub(crate) fn carve<'a>(
    rest: &mut &'a mut [f32],
    at: usize,
    n: usize,
    cursor: &mut usize,
) -> &'a mut [f32] {
    if n == 0 {
        return &mut [];
    }
    assert!(at >= *cursor, "regions carved out of order");
    let r = core::mem::take(rest);
    let (_, r) = r.split_at_mut(at - *cursor);
    let (a, r) = r.split_at_mut(n);
    *rest = r;
    *cursor = at + n;
    a
}

/// Views activation-block scratch stored in the f32 arena.
pub(crate) fn as_blocks(x: &mut [f32]) -> &mut [BlockQ8Act] {
    let n = x.len() / (core::mem::size_of::<BlockQ8Act>() / 4);
    bytemuck::cast_slice_mut(&mut x[..n * (core::mem::size_of::<BlockQ8Act>() / 4)])
}

/// Views a cache region of the f32 arena as storage of `ty` holding `values` values.
pub(crate) fn as_kv(x: &mut [f32], ty: CacheType, values: usize) -> KvMut<'_> {
    match ty {
        CacheType::F32 => KvMut::F32(&mut x[..values]),
        CacheType::F16 => {
            let u: &mut [u16] = bytemuck::cast_slice_mut(x);
            KvMut::F16(&mut u[..values])
        }
    }
}

/// Read-only [`as_kv`].
pub(crate) fn as_kv_ref(x: &[f32], ty: CacheType, values: usize) -> KvRef<'_> {
    match ty {
        CacheType::F32 => KvRef::F32(&x[..values]),
        CacheType::F16 => {
            let u: &[u16] = bytemuck::cast_slice(x);
            KvRef::F16(&u[..values])
        }
    }
}

/// Owned key or value storage (a shared prefix).
#[derive(Debug, Clone)]
pub enum KvOwned {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl KvOwned {
    pub fn new(ty: CacheType) -> Self {
        match ty {
            CacheType::F32 => KvOwned::F32(Vec::new()),
            CacheType::F16 => KvOwned::F16(Vec::new()),
        }
    }
    pub fn view(&self) -> KvRef<'_> {
        match self {
            KvOwned::F32(x) => KvRef::F32(x),
            KvOwned::F16(x) => KvRef::F16(x),
        }
    }
    /// Appends values of the same type.
    pub fn extend(&mut self, src: KvRef) {
        match (self, src) {
            (KvOwned::F32(d), KvRef::F32(s)) => d.extend_from_slice(s),
            (KvOwned::F16(d), KvRef::F16(s)) => d.extend_from_slice(s),
            _ => panic!("cache element types differ"),
        }
    }
    pub fn bytes(&self) -> usize {
        match self {
            KvOwned::F32(x) => 4 * x.len(),
            KvOwned::F16(x) => 2 * x.len(),
        }
    }
}

/// Views token storage stored in the f32 arena.
pub(crate) fn as_tokens(x: &mut [f32]) -> &mut [u32] {
    bytemuck::cast_slice_mut(x)
}
