//! x86-64 kernels: AVX2+FMA+F16C, and AVX-512 (F/BW/VL) with VNNI `vpdpbusd`.
//!
//! Both paths are instantiated from one macro body with different `target_feature` sets, so the
//! code is the same and only the integer block dot differs:
//! - AVX2, Q8_0: `maddubs(|w|, sign(a, w))` then `madd(·, 1)` (ggml's trick; activations are in
//!   ±127 so the i16 pair sums cannot saturate).
//! - AVX2, Q4_0: `maddubs(q, a) − maddubs(8, a)` (nibbles are unsigned, so no sign trick).
//!   Q4_0 rows are taken two blocks at a time: one 256-bit load + `and`/`srl` unpacks both
//!   blocks' nibbles (elements 0..16 of both, then 16..32 of both), against activations
//!   permuted to match (shared by the tile's rows); lanes 0–3 belong to one block, 4–7 to the
//!   other, with scales `[d_b ×4, d_b+1 ×4]`.
//! - VNNI, Q8_0: `dpbusd(c, w ⊕ 0x80, a)` with `c_lane = −128·Σ_{lane} a` (per-lane sums of
//!   the activations, one `dpbusd(0, 1, a)` per activation block shared by the tile's rows).
//! - VNNI, Q4_0: `dpbusd(c, q, a)` with `c_lane = −8·Σ_{lane} a`.
//!
//! In every case lane i holds exactly `Σ_{j∈lane i} w_j·a_j` (offsets applied), so the lanes
//! sum exactly to the scalar block sum. The float combine is
//! per lane: `acc_lane += f32(lane) · (d_w·d_a)`, horizontally summed at the end of the row.
//! Register blocking: up to 4 rows × 2 vectors (16 ymm registers).
#![allow(clippy::missing_safety_doc)]

use core::arch::x86_64::__m256i;

/// `acc + Σ u8(a)·i8(b)` over groups of 4 bytes: AVX512-VNNI `vpdpbusd` on 256-bit registers.
/// Inline asm rather than `_mm256_dpbusd_epi32` because the AVX-512 intrinsics and target
/// features need Rust 1.89 and the workspace MSRV is 1.85; the rest of the AVX-512 path is
/// compiled with AVX2 features (so it uses ymm0–15 only).
///
/// # Safety
/// The CPU has AVX512-VNNI and AVX512-VL.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
    let mut acc = acc;
    // SAFETY: the caller guarantees the CPU has the instruction; the EVEX form is forced
    // (`{evex}`) so the assembler never picks the AVX-VNNI (VEX) encoding this CPU may lack.
    unsafe {
        core::arch::asm!(
            "{{evex}} vpdpbusd {acc}, {a}, {b}",
            acc = inout(ymm_reg) acc,
            a = in(ymm_reg) a,
            b = in(ymm_reg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

macro_rules! x86_kernels {
    ($m:ident, $feat:literal, $vnni:literal, $vmax:literal) => {
        pub(crate) mod $m {
            use super::dpbusd;
            use crate::kernels::TileArgs;
            use crate::quant::{bf16_to_f32, f16_to_f32, BlockQ8Act, GgmlType, QK};
            use core::arch::x86_64::*;

            /// Vectors per register tile.
            pub(crate) const VMAX: usize = $vmax;

            /// One register tile: `nr` rows × `nv` vectors of `t`.
            ///
            /// # Safety
            /// The CPU supports this module's features and `t` describes valid memory.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn tile(ty: GgmlType, nr: usize, nv: usize, t: &TileArgs) {
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    match ty {
                        GgmlType::Q8_0 => qdispatch::<false>(nr, nv, t),
                        GgmlType::Q4_0 => qdispatch::<true>(nr, nv, t),
                        GgmlType::F32 => fdispatch::<0>(nr, nv, t),
                        GgmlType::F16 => fdispatch::<1>(nr, nv, t),
                        GgmlType::BF16 => fdispatch::<2>(nr, nv, t),
                    }
                }
            }

            #[target_feature(enable = $feat)]
            unsafe fn qdispatch<const Q4: bool>(nr: usize, nv: usize, t: &TileArgs) {
                // SAFETY: forwarded from `tile`'s contract.
                unsafe {
                    match (nr, nv) {
                        (4, 1) => qtile::<Q4, 4, 1>(t),
                        (4, 2) => qtile::<Q4, 4, 2>(t),
                        (4, 3) if VMAX >= 3 => qtile::<Q4, 4, 3>(t),
                        (4, 4) if VMAX >= 4 => qtile::<Q4, 4, 4>(t),
                        (1, 1) => qtile::<Q4, 1, 1>(t),
                        (1, 2) => qtile::<Q4, 1, 2>(t),
                        (1, 3) if VMAX >= 3 => qtile::<Q4, 1, 3>(t),
                        (1, 4) if VMAX >= 4 => qtile::<Q4, 1, 4>(t),
                        _ => unreachable!("tile {nr}×{nv}"),
                    }
                }
            }

            #[target_feature(enable = $feat)]
            unsafe fn fdispatch<const T: u8>(nr: usize, nv: usize, t: &TileArgs) {
                // SAFETY: forwarded from `tile`'s contract.
                unsafe {
                    match (nr, nv) {
                        (4, 1) => ftile::<T, 4, 1>(t),
                        (4, 2) => ftile::<T, 4, 2>(t),
                        (4, 3) if VMAX >= 3 => ftile::<T, 4, 3>(t),
                        (4, 4) if VMAX >= 4 => ftile::<T, 4, 4>(t),
                        (1, 1) => ftile::<T, 1, 1>(t),
                        (1, 2) => ftile::<T, 1, 2>(t),
                        (1, 3) if VMAX >= 3 => ftile::<T, 1, 3>(t),
                        (1, 4) if VMAX >= 4 => ftile::<T, 1, 4>(t),
                        _ => unreachable!("tile {nr}×{nv}"),
                    }
                }
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn hsum(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_movehdup_ps(s));
                _mm_cvtss_f32(s)
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn hsum_i32(v: __m256i) -> i32 {
                let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
                let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
                _mm_cvtsi128_si32(s)
            }

            /// The f16 scale at `p`, widened and broadcast to 8 lanes.
            ///
            /// # Safety
            /// `p` is readable for 2 bytes.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn bcast_f16(p: *const u8) -> __m256 {
                // SAFETY: the caller guarantees 2 readable bytes.
                let bits = unsafe { p.cast::<u16>().read_unaligned() };
                _mm256_cvtph_ps(_mm_set1_epi16(bits as i16))
            }

            /// The 32 weights of the block at `p` as bytes: signed for Q8_0, nibbles 0..15 in
            /// element order for Q4_0.
            ///
            /// # Safety
            /// `p` points at a whole block.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn load_wq<const Q4: bool>(p: *const u8) -> __m256i {
                // SAFETY: the block holds 2 + 32 (Q8_0) or 2 + 16 (Q4_0) bytes.
                unsafe {
                    if Q4 {
                        let x = _mm_loadu_si128(p.add(2).cast());
                        let y = _mm256_inserti128_si256::<1>(
                            _mm256_castsi128_si256(x),
                            _mm_srli_epi16::<4>(x),
                        );
                        _mm256_and_si256(y, _mm256_set1_epi8(0x0f))
                    } else {
                        _mm256_loadu_si256(p.add(2).cast())
                    }
                }
            }

            /// Per-activation-block precomputation shared by every row of a tile.
            #[target_feature(enable = $feat)]
            #[inline]
            fn act_prep<const Q4: bool>(aq: __m256i, sum: i32) -> __m256i {
                let _ = sum;
                if $vnni {
                    // Per-lane sums of 4 activations, times the weight offset, negated, so each
                    // lane ends as Σ (w_j − offset)·a_j over its own 4 elements.
                    // SAFETY: this instantiation runs only on CPUs with AVX512-VNNI/VL.
                    let s = unsafe { dpbusd(_mm256_setzero_si256(), _mm256_set1_epi8(1), aq) };
                    let s = if Q4 {
                        _mm256_slli_epi32::<3>(s)
                    } else {
                        _mm256_slli_epi32::<7>(s)
                    };
                    _mm256_sub_epi32(_mm256_setzero_si256(), s)
                } else if Q4 {
                    _mm256_maddubs_epi16(_mm256_set1_epi8(8), aq)
                } else {
                    _mm256_setzero_si256()
                }
            }

            /// Per-row precomputation of the weight bytes shared by every vector of a tile.
            #[target_feature(enable = $feat)]
            #[inline]
            fn w_prep<const Q4: bool>(wq: __m256i) -> __m256i {
                if Q4 {
                    wq
                } else if $vnni {
                    _mm256_xor_si256(wq, _mm256_set1_epi8(-128))
                } else {
                    _mm256_abs_epi8(wq)
                }
            }

            /// Eight i32 lanes summing exactly to the block's integer sum.
            #[target_feature(enable = $feat)]
            #[inline]
            fn block_dot<const Q4: bool>(
                wq: __m256i,
                wp: __m256i,
                aq: __m256i,
                ap: __m256i,
            ) -> __m256i {
                if $vnni {
                    // SAFETY: this instantiation runs only on CPUs with AVX512-VNNI/VL (the branch
                    // is compiled out of the AVX2 instantiation).
                    unsafe { dpbusd(ap, wp, aq) }
                } else if Q4 {
                    let p = _mm256_sub_epi16(_mm256_maddubs_epi16(wp, aq), ap);
                    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
                } else {
                    let p = _mm256_maddubs_epi16(wp, _mm256_sign_epi8(aq, wq));
                    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
                }
            }

            /// Two consecutive activation blocks arranged for [`q4_pair_dot`]: elements 0..16 of
            /// both blocks, elements 16..32 of both, the offset correction, and the scales
            /// (lanes 0–3 block `b`, lanes 4–7 block `b + 1`).
            #[target_feature(enable = $feat)]
            #[inline]
            fn act_pair(a0: &BlockQ8Act, a1: &BlockQ8Act) -> (__m256i, __m256i, __m256i, __m256) {
                // SAFETY: `qs` is 32 readable bytes in each block.
                let (x0, x1) = unsafe {
                    (
                        _mm256_loadu_si256(a0.qs.as_ptr().cast()),
                        _mm256_loadu_si256(a1.qs.as_ptr().cast()),
                    )
                };
                let alo = _mm256_permute2x128_si256::<0x20>(x0, x1);
                let ahi = _mm256_permute2x128_si256::<0x31>(x0, x1);
                let corr = if $vnni {
                    let ones = _mm256_set1_epi8(1);
                    // SAFETY: this instantiation runs only on CPUs with AVX512-VNNI/VL.
                    let s = unsafe { dpbusd(dpbusd(_mm256_setzero_si256(), ones, alo), ones, ahi) };
                    _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<3>(s))
                } else {
                    let eight = _mm256_set1_epi8(8);
                    _mm256_add_epi16(
                        _mm256_maddubs_epi16(eight, alo),
                        _mm256_maddubs_epi16(eight, ahi),
                    )
                };
                let ad = _mm256_insertf128_ps::<1>(
                    _mm256_castps128_ps256(_mm_set1_ps(a0.d)),
                    _mm_set1_ps(a1.d),
                );
                (alo, ahi, corr, ad)
            }

            /// Two consecutive Q4_0 blocks at `p`: nibbles 0..16 of both, nibbles 16..32 of both,
            /// and the two scales (lanes 0–3, 4–7).
            ///
            /// # Safety
            /// `p` points at two whole Q4_0 blocks.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn w_pair(p: *const u8) -> (__m256i, __m256i, __m256) {
                // SAFETY: two blocks of 18 bytes are readable at `p`.
                unsafe {
                    let y = _mm256_loadu2_m128i(p.add(20).cast(), p.add(2).cast());
                    let m = _mm256_set1_epi8(0x0f);
                    let lo = _mm256_and_si256(y, m);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(y), m);
                    let h0 = _mm_set1_epi16(p.cast::<u16>().read_unaligned() as i16);
                    let h1 = _mm_set1_epi16(p.add(18).cast::<u16>().read_unaligned() as i16);
                    (lo, hi, _mm256_cvtph_ps(_mm_unpacklo_epi64(h0, h1)))
                }
            }

            /// Lanes 0–3 sum exactly to block `b`'s integer sum (offset applied), lanes 4–7 to
            /// block `b + 1`'s.
            #[target_feature(enable = $feat)]
            #[inline]
            fn q4_pair_dot(
                lo: __m256i,
                hi: __m256i,
                alo: __m256i,
                ahi: __m256i,
                corr: __m256i,
            ) -> __m256i {
                if $vnni {
                    // SAFETY: this instantiation runs only on CPUs with AVX512-VNNI/VL.
                    unsafe { dpbusd(dpbusd(corr, lo, alo), hi, ahi) }
                } else {
                    // |each maddubs| ≤ 3810 and |corr| ≤ 4064: no i16 overflow.
                    let p = _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo, alo),
                        _mm256_maddubs_epi16(hi, ahi),
                    );
                    _mm256_madd_epi16(_mm256_sub_epi16(p, corr), _mm256_set1_epi16(1))
                }
            }

            /// `R` quantized rows × `V` activation vectors.
            ///
            /// # Safety
            /// `t` describes `R` rows of `t.nb` blocks and `V` vectors of `t.nb` blocks.
            #[target_feature(enable = $feat)]
            unsafe fn qtile<const Q4: bool, const R: usize, const V: usize>(t: &TileArgs) {
                let bs = if Q4 { 18 } else { 34 };
                let mut acc = [[_mm256_setzero_ps(); V]; R];
                let mut b0 = 0;
                if Q4 {
                    // Two blocks per step: one 256-bit unpack serves both blocks' nibbles.
                    while b0 + 2 <= t.nb {
                        let mut ap = [(_mm256_setzero_si256(), _mm256_setzero_si256()); V];
                        let mut ac = [_mm256_setzero_si256(); V];
                        let mut ad = [_mm256_setzero_ps(); V];
                        for v in 0..V {
                            // SAFETY: blocks `b0`, `b0 + 1` of vector `v` are inside `t.act`.
                            let (a0, a1) = unsafe {
                                let a = t.act.add(v * t.nb + b0);
                                (&*a, &*a.add(1))
                            };
                            let (lo, hi, c, d) = act_pair(a0, a1);
                            ap[v] = (lo, hi);
                            ac[v] = c;
                            ad[v] = d;
                        }
                        for r in 0..R {
                            if t.pf > 0 {
                                // A hint only: prefetching past the end of the row is harmless.
                                let p = t.w.wrapping_add(r * t.rb + b0 * bs + t.pf);
                                _mm_prefetch::<_MM_HINT_T0>(p.cast());
                            }
                            // SAFETY: blocks `b0`, `b0 + 1` of row `r` are inside the matrix.
                            let (lo, hi, dw) = unsafe { w_pair(t.w.add(r * t.rb + b0 * bs)) };
                            for v in 0..V {
                                let i = q4_pair_dot(lo, hi, ap[v].0, ap[v].1, ac[v]);
                                let s = _mm256_cvtepi32_ps(i);
                                acc[r][v] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, ad[v]), acc[r][v]);
                            }
                        }
                        b0 += 2;
                    }
                }
                for b in b0..t.nb {
                    let mut aq = [_mm256_setzero_si256(); V];
                    let mut ap = [_mm256_setzero_si256(); V];
                    let mut ad = [_mm256_setzero_ps(); V];
                    for v in 0..V {
                        // SAFETY: block `b` of vector `v` is inside `t.act`.
                        let a: &BlockQ8Act = unsafe { &*t.act.add(v * t.nb + b) };
                        // SAFETY: `qs` is 32 readable bytes.
                        aq[v] = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                        ap[v] = act_prep::<Q4>(aq[v], a.sum);
                        ad[v] = _mm256_set1_ps(a.d);
                    }
                    for r in 0..R {
                        if t.pf > 0 {
                            // A hint only: prefetching past the end of the row is harmless.
                            let p = t.w.wrapping_add(r * t.rb + b * bs + t.pf);
                            _mm_prefetch::<_MM_HINT_T0>(p.cast());
                        }
                        // SAFETY: block `b` of row `r` is inside the matrix.
                        let (dw, wq) = unsafe {
                            let p = t.w.add(r * t.rb + b * bs);
                            (bcast_f16(p), load_wq::<Q4>(p))
                        };
                        let wp = w_prep::<Q4>(wq);
                        for v in 0..V {
                            let s = _mm256_cvtepi32_ps(block_dot::<Q4>(wq, wp, aq[v], ap[v]));
                            acc[r][v] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, ad[v]), acc[r][v]);
                        }
                    }
                }
                for r in 0..R {
                    for v in 0..V {
                        // SAFETY: output (v, r) of this tile is inside `t.out`.
                        unsafe { *t.out.add(v * t.ostride + r) = hsum(acc[r][v]) };
                    }
                }
            }

            /// Eight weights of a float row at element `k`, widened to f32.
            ///
            /// # Safety
            /// Elements `k..k+8` of the row at `p` are readable.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn load_wf<const T: u8>(p: *const u8, k: usize) -> __m256 {
                // SAFETY: the caller guarantees the 8 elements are readable.
                unsafe {
                    match T {
                        0 => _mm256_loadu_ps(p.add(4 * k).cast()),
                        1 => _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * k).cast())),
                        _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                            _mm_loadu_si128(p.add(2 * k).cast()),
                        ))),
                    }
                }
            }

            /// One float weight element (tails).
            ///
            /// # Safety
            /// Element `k` of the row at `p` is readable.
            #[inline]
            unsafe fn load_w1<const T: u8>(p: *const u8, k: usize) -> f32 {
                // SAFETY: the caller guarantees the element is readable.
                unsafe {
                    match T {
                        0 => p.add(4 * k).cast::<f32>().read_unaligned(),
                        1 => f16_to_f32(p.add(2 * k).cast::<u16>().read_unaligned()),
                        _ => bf16_to_f32(p.add(2 * k).cast::<u16>().read_unaligned()),
                    }
                }
            }

            /// `R` float rows × `V` f32 vectors.
            ///
            /// # Safety
            /// `t` describes `R` rows of `t.cols` elements and `V` vectors of `t.cols` f32.
            #[target_feature(enable = $feat)]
            unsafe fn ftile<const T: u8, const R: usize, const V: usize>(t: &TileArgs) {
                let mut acc = [[_mm256_setzero_ps(); V]; R];
                let k8 = t.cols / 8 * 8;
                let mut k = 0;
                while k < k8 {
                    let mut xv = [_mm256_setzero_ps(); V];
                    for v in 0..V {
                        // SAFETY: elements `k..k+8` of vector `v` are inside `t.x`.
                        xv[v] = unsafe { _mm256_loadu_ps(t.x.add(v * t.cols + k)) };
                    }
                    for r in 0..R {
                        // SAFETY: elements `k..k+8` of row `r` are inside the matrix.
                        let wv = unsafe { load_wf::<T>(t.w.add(r * t.rb), k) };
                        for v in 0..V {
                            acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
                        }
                    }
                    k += 8;
                }
                for r in 0..R {
                    for v in 0..V {
                        let mut s = hsum(acc[r][v]);
                        for k in k8..t.cols {
                            // SAFETY: element `k` of row `r` and of vector `v` are in bounds.
                            s += unsafe {
                                load_w1::<T>(t.w.add(r * t.rb), k) * *t.x.add(v * t.cols + k)
                            };
                        }
                        // SAFETY: output (v, r) of this tile is inside `t.out`.
                        unsafe { *t.out.add(v * t.ostride + r) = s };
                    }
                }
            }

            /// The activation quantizer, bit-identical to [`crate::quant::quantize_act_block`].
            ///
            /// # Safety
            /// The CPU supports this module's features.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn quantize_act(x: &[f32; QK], out: &mut BlockQ8Act) {
                // SAFETY: `x` is 32 readable f32.
                let v: [__m256; 4] = unsafe {
                    [
                        _mm256_loadu_ps(x.as_ptr()),
                        _mm256_loadu_ps(x.as_ptr().add(8)),
                        _mm256_loadu_ps(x.as_ptr().add(16)),
                        _mm256_loadu_ps(x.as_ptr().add(24)),
                    ]
                };
                let sign = _mm256_set1_ps(-0.0);
                let m01 = _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1]));
                let m23 = _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3]));
                let m = _mm256_max_ps(m01, m23);
                let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
                let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
                let m = _mm_max_ss(m, _mm_movehdup_ps(m));
                let amax = _mm_cvtss_f32(m);
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                if !id.is_finite() || !amax.is_finite() {
                    *out = crate::quant::quantize_act_block(x);
                    return;
                }
                let idv = _mm256_set1_ps(id);
                // Round half to even (the default MXCSR mode), as `round_ties_even`.
                let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], idv));
                let i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], idv));
                let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], idv));
                let i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], idv));
                let sum = hsum_i32(_mm256_add_epi32(
                    _mm256_add_epi32(i0, i1),
                    _mm256_add_epi32(i2, i3),
                ));
                let p01 = _mm256_packs_epi32(i0, i1);
                let p23 = _mm256_packs_epi32(i2, i3);
                let p = _mm256_packs_epi16(p01, p23);
                let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                out.d = d;
                out.sum = sum;
                // SAFETY: `qs` is 32 writable bytes.
                unsafe { _mm256_storeu_si256(out.qs.as_mut_ptr().cast(), p) };
            }

            /// Exact integer block sums of one quantized row with activation blocks (test hook).
            ///
            /// # Safety
            /// The CPU supports this module's features; `row` holds `out.len()` blocks of `ty`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn block_isums(
                ty: GgmlType,
                row: &[u8],
                act: &[BlockQ8Act],
                out: &mut [i32],
            ) {
                let q4 = ty == GgmlType::Q4_0;
                let bs = ty.block_bytes();
                assert!(row.len() >= out.len() * bs && act.len() >= out.len());
                let mut b0 = 0;
                if q4 {
                    while b0 + 2 <= out.len() {
                        let (alo, ahi, corr, _) = act_pair(&act[b0], &act[b0 + 1]);
                        // SAFETY: blocks `b0`, `b0 + 1` are inside `row` (asserted).
                        let (lo, hi, _) = unsafe { w_pair(row.as_ptr().add(b0 * bs)) };
                        let i = q4_pair_dot(lo, hi, alo, ahi, corr);
                        let z = _mm256_setzero_si256();
                        out[b0] = hsum_i32(_mm256_blend_epi32::<0xf0>(i, z));
                        out[b0 + 1] = hsum_i32(_mm256_blend_epi32::<0x0f>(i, z));
                        b0 += 2;
                    }
                }
                for (b, o) in out.iter_mut().enumerate().skip(b0) {
                    let a = &act[b];
                    // SAFETY: block `b` is inside `row` (asserted) and `qs` is 32 bytes.
                    unsafe {
                        let p = row.as_ptr().add(b * bs);
                        let aq = _mm256_loadu_si256(a.qs.as_ptr().cast());
                        *o = if q4 {
                            let wq = load_wq::<true>(p);
                            hsum_i32(block_dot::<true>(
                                wq,
                                w_prep::<true>(wq),
                                aq,
                                act_prep::<true>(aq, a.sum),
                            ))
                        } else {
                            let wq = load_wq::<false>(p);
                            hsum_i32(block_dot::<false>(
                                wq,
                                w_prep::<false>(wq),
                                aq,
                                act_prep::<false>(aq, a.sum),
                            ))
                        };
                    }
                }
            }
        }
    };
}

x86_kernels!(avx2, "avx2,fma,f16c", false, 2);
x86_kernels!(avx512, "avx2,fma,f16c", true, 2);
