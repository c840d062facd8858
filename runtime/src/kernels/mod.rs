//! Weight matrix × vectors, for every tensor type, with one dispatch point.
//!
//! `Kernels::matmul` computes `out[v·rows + r] = Σ_k W[r,k] · x[v·cols + k]` for `v < n_vec`.
//! Quantized weights (Q8_0, Q4_0) take activations quantized on the fly to Q8_0 blocks
//! ([`crate::quant::quantize_act_block`]); float weights take the f32 activations directly.
//! The scalar path ([`scalar`]) is the reference every SIMD path is tested against.
//!
//! Layout: [`scalar`] (reference), `x86` (AVX2+FMA+F16C; AVX-512F/BW/VL + VNNI), `aarch64`
//! (NEON; `sdot` through inline asm where the CPU has dotprod). [`Isa`] is picked once, at run
//! time where `std` can ask the CPU, else from the compile-time target features; the
//! environment variable `PHOTON_ISA=scalar|avx2|avx512|neon` (std) forces a lower path.
//!
//! Work is split over output rows (a persistent [`pool::Pool`] in `std` builds). Within a task,
//! rows are taken in blocks whose weights fit in L2; inside a row block, vectors are taken in
//! tiles of up to [`VEC_TILE`] (16), and inside a tile, register tiles of 4 rows × up to 2 (AVX2)
//! or 4 (AVX-512, NEON) vectors. Weights are read from memory once per row block whatever
//! `n_vec` is; activations of one vector tile stay in cache.
//!
//! # Accuracy
//! Integer block sums are exact and identical on every ISA (see [`Kernels::block_isums`]). The
//! float combine differs only in rounding order (SIMD paths convert partial integer sums of
//! 4–8 products to f32 before scaling): for a row of `nb` blocks,
//! `|simd − scalar| ≤ (nb + 16)·ε·Σ_b |d_w·d_a|·Σ_j |q_j·a_j|` (ε = `f32::EPSILON`); for float
//! weights over `K` elements, `|simd − scalar| ≤ (K + 16)·ε·Σ_k |w_k·x_k|`. Results do not
//! depend on the number of threads.
use crate::quant::{self, BlockQ8Act, GgmlType, QK};
use crate::{err, Result};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(feature = "std")]
pub mod pool;
#[cfg(feature = "std")]
pub mod probe;
pub mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

/// A weight matrix of `rows` outputs × `cols` inputs, row-major, borrowed from a file.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

impl<'a> Matrix<'a> {
    /// Checks that `data` holds exactly `rows × cols` elements of `ty`.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self> {
        let row_bytes = ty.bytes_for(cols as u64)?;
        let need = row_bytes
            .checked_mul(rows as u64)
            .ok_or_else(|| err!(Format, "matrix {rows}×{cols} overflows"))?;
        if data.len() as u64 != need {
            return Err(err!(
                Format,
                "matrix {rows}×{cols} {} needs {need} bytes, has {}",
                ty.name(),
                data.len()
            ));
        }
        Ok(Matrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    /// Raw bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Row `r` widened to f32 (for embedding lookups).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<()> {
        quant::dequantize_row(self.ty, self.row(r), out)
    }
}

/// Activation blocks needed by `matmul` for `n_vec` vectors of `cols` values.
pub fn act_blocks(cols: usize, n_vec: usize) -> usize {
    cols.div_ceil(QK) * n_vec
}

/// Vectors per tile: weights of a register tile are reused across this many vectors.
pub const VEC_TILE: usize = 16;

/// Default software prefetch distance in bytes ahead of each weight row (0: none).
const PREFETCH: usize = 1024;

/// Bytes of weights per row block (kept in L2 while the vector tiles pass over it).
const ROW_BLOCK_BYTES: usize = 256 * 1024;

/// Below this many weight bytes × vectors, `matmul` stays on the calling thread.
const PAR_MIN_WORK: usize = 48 * 1024;

#[cfg(target_arch = "x86_64")]
macro_rules! x86_has {
    ($f:tt) => {{
        #[cfg(feature = "std")]
        {
            std::is_x86_feature_detected!($f)
        }
        #[cfg(not(feature = "std"))]
        {
            cfg!(target_feature = $f)
        }
    }};
}

/// The instruction set a [`Kernels`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable scalar reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512F/BW/VL with VNNI (`vpdpbusd`), on 256-bit vectors.
    Avx512Vnni,
    /// aarch64 NEON without the dot-product extension.
    Neon,
    /// aarch64 NEON with `sdot` (dotprod).
    NeonDot,
}

impl Isa {
    /// Every ISA, best last within each architecture.
    pub const ALL: [Isa; 5] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::Avx512Vnni,
        Isa::Neon,
        Isa::NeonDot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dotprod",
        }
    }

    /// Whether this CPU can run `self` (run-time detection with `std`, compile-time target
    /// features without).
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_has!("avx2") && x86_has!("fma") && x86_has!("f16c"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.supported()
                    && x86_has!("avx512f")
                    && x86_has!("avx512bw")
                    && x86_has!("avx512vl")
                    && x86_has!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => cfg!(target_feature = "neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => Isa::Neon.supported() && arm_has_dotprod(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Rank within its architecture, for `PHOTON_ISA` capping.
    fn rank(self) -> u8 {
        match self {
            Isa::Scalar => 0,
            Isa::Avx2 | Isa::Neon => 1,
            Isa::Avx512Vnni | Isa::NeonDot => 2,
        }
    }

    /// The best supported ISA, capped by `PHOTON_ISA` when set (std).
    pub fn best() -> Isa {
        let best = Isa::ALL
            .iter()
            .rev()
            .copied()
            .find(|i| i.supported())
            .unwrap_or(Isa::Scalar);
        match env_cap() {
            Some(cap) => best_capped(cap.min(best.rank())),
            None => best,
        }
    }

    /// Vectors per register tile.
    fn vmax(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2::VMAX,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => x86::avx512::VMAX,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDot => aarch64::VMAX,
            _ => 1,
        }
    }
}

#[cfg(target_arch = "aarch64")]
fn arm_has_dotprod() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// `PHOTON_ISA` as a rank cap: scalar 0, avx2/neon 1, avx512/neon-dotprod 2.
fn env_cap() -> Option<u8> {
    #[cfg(feature = "std")]
    {
        parse_isa_cap(&std::env::var("PHOTON_ISA").ok()?)
    }
    #[cfg(not(feature = "std"))]
    {
        None
    }
}

/// A `PHOTON_ISA` value as a rank cap (`None`: unknown value, no cap).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
fn parse_isa_cap(v: &str) -> Option<u8> {
    match v.trim().to_ascii_lowercase().as_str() {
        "scalar" => Some(0),
        "avx2" | "neon" => Some(1),
        "avx512" | "avx512vnni" | "neondot" | "neon-dotprod" | "dotprod" => Some(2),
        _ => None,
    }
}

/// The best supported ISA of rank at most `cap`.
fn best_capped(cap: u8) -> Isa {
    Isa::ALL
        .iter()
        .rev()
        .copied()
        .find(|i| i.supported() && i.rank() <= cap)
        .unwrap_or(Isa::Scalar)
}

/// Raw output pointer shared by the row tasks (each writes disjoint rows).
#[derive(Clone, Copy)]
pub(crate) struct OutPtr {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks write disjoint elements; the owner waits for all tasks before reading.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `i < len`, and no other task writes element `i`.
    #[inline]
    pub(crate) unsafe fn write(self, i: usize, v: f32) {
        debug_assert!(i < self.len);
        // SAFETY: forwarded from the contract.
        unsafe { *self.ptr.add(i) = v };
    }
}

/// One register tile's operands (raw, so every ISA module shares one shape).
#[allow(dead_code)]
pub(crate) struct TileArgs {
    /// First weight row of the tile.
    pub w: *const u8,
    /// Bytes per weight row.
    pub rb: usize,
    /// First activation block of the first vector (quantized types).
    pub act: *const BlockQ8Act,
    /// Blocks per row (and per activation vector).
    pub nb: usize,
    /// First f32 of the first vector (float types).
    pub x: *const f32,
    /// Elements per row.
    pub cols: usize,
    /// Output of (first vector, first row).
    pub out: *mut f32,
    /// Distance between one vector's outputs and the next's (= rows).
    pub ostride: usize,
    /// Software prefetch distance in bytes (0: none).
    pub pf: usize,
}

/// The kernels chosen for this CPU.
#[derive(Clone)]
pub struct Kernels {
    isa: Isa,
    threads: usize,
    prefetch: usize,
    #[cfg(feature = "std")]
    pool: Option<alloc::sync::Arc<pool::Pool>>,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .field("threads", &self.threads)
            .finish()
    }
}

/// A parallel-for: runs `f(i)` for every `i < n`, possibly at once, and returns when all are
/// done. [`Kernels::matmul_with`] takes one so other thread pools (rayon) can be compared.
///
/// # Safety
/// Implementations must never run `f(i)` for the same `i` on two threads at the same time
/// (tasks write disjoint parts of the output through a shared pointer), and must return only
/// after every call has returned.
pub unsafe trait ParFor {
    fn par_for(&self, n: usize, f: &(dyn Fn(usize) + Sync));
}

/// Runs tasks one after another on the calling thread.
pub struct Serial;

// SAFETY: one call at a time, on the calling thread.
unsafe impl ParFor for Serial {
    fn par_for(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(f)
    }
}

#[cfg(feature = "std")]
// SAFETY: `Pool::run` hands out each index once (atomic claim) and returns when all are done.
unsafe impl ParFor for pool::Pool {
    fn par_for(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        self.run(n, f)
    }
}

impl Kernels {
    /// The best kernels this CPU supports, on all available cores (std; one thread without).
    pub fn detect() -> Self {
        let k = Kernels::with_isa(Isa::best()).unwrap_or_else(Kernels::scalar);
        #[cfg(feature = "std")]
        let k = k.with_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        );
        k
    }

    /// The scalar reference kernels, one thread.
    pub fn scalar() -> Self {
        Kernels {
            isa: Isa::Scalar,
            threads: 1,
            prefetch: PREFETCH,
            #[cfg(feature = "std")]
            pool: None,
        }
    }

    /// Kernels for `isa` on one thread, or `None` if this CPU lacks it.
    pub fn with_isa(isa: Isa) -> Option<Self> {
        isa.supported().then_some(Kernels {
            isa,
            ..Kernels::scalar()
        })
    }

    /// The same kernels on `n` threads (1 to 1024; std, ignored without). Starts a persistent
    /// pool.
    pub fn with_threads(self, n: usize) -> Self {
        #[cfg(feature = "std")]
        {
            let n = n.clamp(1, 1024);
            Kernels {
                isa: self.isa,
                threads: n,
                prefetch: self.prefetch,
                pool: (n > 1).then(|| alloc::sync::Arc::new(pool::Pool::new(n))),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = n;
            self
        }
    }

    /// The same kernels with a software prefetch `bytes` ahead in each weight row (0: none;
    /// for benchmarks).
    #[doc(hidden)]
    pub fn with_prefetch(mut self, bytes: usize) -> Self {
        self.prefetch = bytes;
        self
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Quantizes `n_vec` vectors of `cols` values (a multiple of 32) into `act`, with the
    /// activation quantizer of [`quant::quantize_act_block`] (bit-identical on every ISA).
    pub fn quantize_acts(&self, x: &[f32], cols: usize, n_vec: usize, act: &mut [BlockQ8Act]) {
        let nb = cols / QK;
        assert!(cols % QK == 0 && x.len() >= cols * n_vec && act.len() >= nb * n_vec);
        for v in 0..n_vec {
            let xv = &x[v * cols..(v + 1) * cols];
            for (blk, xs) in act[v * nb..(v + 1) * nb]
                .iter_mut()
                .zip(xv.chunks_exact(QK))
            {
                let xs: &[f32; QK] = xs.try_into().expect("chunks of QK");
                self.quantize_act_block(xs, blk);
            }
        }
    }

    #[inline]
    fn quantize_act_block(&self, x: &[f32; QK], out: &mut BlockQ8Act) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_isa` checked that the CPU has AVX2/FMA/F16C.
            Isa::Avx2 => unsafe { x86::avx2::quantize_act(x, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_isa` checked that the CPU has AVX-512F/BW/VL/VNNI.
            Isa::Avx512Vnni => unsafe { x86::avx512::quantize_act(x, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_isa` checked that the CPU has NEON.
            Isa::Neon | Isa::NeonDot => unsafe { aarch64::quantize_act(x, out) },
            _ => *out = quant::quantize_act_block(x),
        }
    }

    /// Exact integer block sums of one quantized row (`Q8_0`/`Q4_0`) with activation blocks,
    /// offset included, computed with this ISA's block primitive (test hook: must equal
    /// [`scalar::block_isum`] bit for bit).
    pub fn block_isums(&self, ty: GgmlType, row: &[u8], act: &[BlockQ8Act], out: &mut [i32]) {
        assert!(matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0));
        let bs = ty.block_bytes();
        assert!(row.len() >= out.len() * bs && act.len() >= out.len());
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_isa` checked the CPU; sizes asserted above.
            Isa::Avx2 => unsafe { x86::avx2::block_isums(ty, row, act, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx512Vnni => unsafe { x86::avx512::block_isums(ty, row, act, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above.
            Isa::Neon | Isa::NeonDot => unsafe {
                aarch64::block_isums(self.isa == Isa::NeonDot, ty, row, act, out)
            },
            _ => {
                for (b, o) in out.iter_mut().enumerate() {
                    *o = scalar::block_isum(ty, &row[b * bs..(b + 1) * bs], &act[b]);
                }
            }
        }
    }

    /// `out[v·rows + r] = Σ_k W[r,k]·x[v·cols + k]` for every row `r` and vector `v < n_vec`.
    /// `act` is scratch for the quantized activations, at least [`act_blocks`] long. Does not
    /// allocate.
    pub fn matmul(
        &self,
        w: &Matrix,
        x: &[f32],
        n_vec: usize,
        out: &mut [f32],
        act: &mut [BlockQ8Act],
    ) {
        #[cfg(feature = "std")]
        if let Some(p) = &self.pool {
            return self.matmul_with(w, x, n_vec, out, act, &**p);
        }
        self.matmul_with(w, x, n_vec, out, act, &Serial)
    }

    /// [`Kernels::matmul`] with the row tasks run by `par` (sized for `self.threads()`).
    pub fn matmul_with(
        &self,
        w: &Matrix,
        x: &[f32],
        n_vec: usize,
        out: &mut [f32],
        act: &mut [BlockQ8Act],
        par: &dyn ParFor,
    ) {
        assert!(x.len() >= n_vec * w.cols && out.len() >= n_vec * w.rows);
        if n_vec == 0 || w.rows == 0 {
            return;
        }
        let quantized = matches!(w.ty, GgmlType::Q8_0 | GgmlType::Q4_0);
        if quantized {
            assert!(
                act.len() >= act_blocks(w.cols, n_vec),
                "act scratch too small"
            );
            self.quantize_acts(x, w.cols, n_vec, act);
        }
        let act: &[BlockQ8Act] = act;
        let optr = OutPtr {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        };
        let work = w.data.len().saturating_mul(n_vec);
        // One task per ~256 KB of weights (at least one per thread, at most 8 per thread) so a
        // thread that falls behind (preempted, slow to wake) leaves work for the others.
        let tasks = if work < PAR_MIN_WORK || self.threads == 1 {
            1
        } else {
            (w.data.len() / (256 << 10)).clamp(self.threads, 8 * self.threads)
        };
        // Rows per task, a multiple of 4 so register tiles stay whole.
        let per = w.rows.div_ceil(tasks).next_multiple_of(4);
        let run = |i: usize| {
            let r0 = (i * per).min(w.rows);
            let r1 = ((i + 1) * per).min(w.rows);
            if r0 < r1 {
                self.rows(w, x, act, n_vec, optr, r0, r1);
            }
        };
        if tasks == 1 {
            run(0);
        } else {
            par.par_for(tasks, &run);
        }
    }

    /// Rows `r0..r1` for all vectors, on this thread.
    #[allow(clippy::too_many_arguments)]
    fn rows(
        &self,
        w: &Matrix,
        x: &[f32],
        act: &[BlockQ8Act],
        n_vec: usize,
        out: OutPtr,
        r0: usize,
        r1: usize,
    ) {
        if self.isa == Isa::Scalar {
            return scalar::rows(w.ty, w.data, w.rows, w.cols, x, act, n_vec, out, r0, r1);
        }
        let rb = w.row_bytes();
        let nb = w.cols / QK;
        let vmax = self.isa.vmax();
        let rows_per_block = (ROW_BLOCK_BYTES / rb.max(1)) / 4 * 4;
        let rows_per_block = rows_per_block.max(4);
        let mut rs = r0;
        while rs < r1 {
            let re = (rs + rows_per_block).min(r1);
            let mut vt = 0;
            while vt < n_vec {
                let ve = (vt + VEC_TILE).min(n_vec);
                let mut r = rs;
                while r < re {
                    let nr = if re - r >= 4 { 4 } else { 1 };
                    let mut v = vt;
                    while v < ve {
                        let nv = (ve - v).min(vmax);
                        let t = TileArgs {
                            // SAFETY (all four): row `r` < rows, vector `v` < n_vec, and the
                            // slices were checked to hold rows × rb bytes, n_vec × nb blocks,
                            // n_vec × cols f32 and n_vec × rows outputs.
                            w: unsafe { w.data.as_ptr().add(r * rb) },
                            rb,
                            act: if nb > 0 && v * nb < act.len() {
                                // SAFETY: in bounds, checked just above.
                                unsafe { act.as_ptr().add(v * nb) }
                            } else {
                                act.as_ptr()
                            },
                            nb,
                            // SAFETY: see above.
                            x: unsafe { x.as_ptr().add(v * w.cols) },
                            cols: w.cols,
                            // SAFETY: see above.
                            out: unsafe { out.ptr.add(v * w.rows + r) },
                            ostride: w.rows,
                            pf: self.prefetch,
                        };
                        // SAFETY: the ISA was checked by `with_isa`; `t` covers `nr` rows and
                        // `nv` vectors inside the checked slices.
                        unsafe { self.tile(w.ty, nr, nv, &t) };
                        v += nv;
                    }
                    r += nr;
                }
                vt = ve;
            }
            rs = re;
        }
    }

    /// # Safety
    /// `self.isa` is supported and `t` is valid for `nr` rows × `nv` vectors.
    #[inline]
    unsafe fn tile(&self, ty: GgmlType, nr: usize, nv: usize, t: &TileArgs) {
        let _ = (ty, nr, nv, t);
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded from the contract.
            Isa::Avx2 => unsafe { x86::avx2::tile(ty, nr, nv, t) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded from the contract.
            Isa::Avx512Vnni => unsafe { x86::avx512::tile(ty, nr, nv, t) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: forwarded from the contract.
            Isa::Neon => unsafe { aarch64::tile(false, ty, nr, nv, t) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: forwarded from the contract.
            Isa::NeonDot => unsafe { aarch64::tile(true, ty, nr, nv, t) },
            _ => unreachable!("no SIMD tile for {:?}", self.isa),
        }
    }
}
