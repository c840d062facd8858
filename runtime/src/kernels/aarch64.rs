//! aarch64 kernels: NEON, with `sdot` (dotprod) through inline asm where the CPU has it.
//!
//! One macro body is instantiated twice (`plain`: "neon"; `dot`: "neon,dotprod"); only the
//! integer block dot differs:
//! - dotprod: `sdot` on signed weights (Q4_0: nibbles − 8) and signed activations;
//! - plain NEON: `smull`/`smull2` to i16 and `sadalp` pairwise into i32.
//!
//! Either way each i32 lane holds the exact sum of its own 8 products, so the lanes sum to the
//! scalar block sum bit for bit. Register tiles: up to 4 rows × 4 vectors (32 vector registers).
// Some NEON intrinsics are safe `target_feature` functions, others (loads) are not; blocks are
// kept uniform.
#![allow(unused_unsafe)]

use crate::kernels::TileArgs;
use crate::quant::{BlockQ8Act, GgmlType, QK};
use core::arch::aarch64::*;
use core::arch::asm;

/// Vectors per register tile.
pub(crate) const VMAX: usize = 4;

/// `acc + Σ a·b` over groups of 4 signed bytes, with `sdot`.
///
/// # Safety
/// The CPU has the dotprod extension.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: dotprod is enabled for this function (checked at run time by the caller);
    // the instruction only reads and writes the named registers.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// IEEE half (bits) to f32 with `fcvt` (base ARMv8 floating point).
#[inline]
fn f16_bits_to_f32(bits: u16) -> f32 {
    let out: f32;
    // SAFETY: `fcvt s, h` is a base ARMv8 FP instruction with no memory access.
    unsafe {
        asm!(
            "fcvt {o:s}, {i:h}",
            o = lateout(vreg) out,
            i = in(vreg) bits as i16,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Four halves to four f32 with `fcvtl`.
#[inline]
fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: `fcvtl` is a base ARMv8 SIMD instruction with no memory access.
    unsafe {
        asm!(
            "fcvtl {o:v}.4s, {i:v}.4h",
            o = lateout(vreg) out,
            i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// Dispatches a register tile to the plain or dotprod instantiation.
///
/// # Safety
/// The CPU has NEON (and dotprod when `dot`); `t` is valid for `nr` rows × `nv` vectors.
pub(crate) unsafe fn tile(dot: bool, ty: GgmlType, nr: usize, nv: usize, t: &TileArgs) {
    // SAFETY: forwarded from the contract.
    unsafe {
        if dot {
            dot::tile(ty, nr, nv, t)
        } else {
            plain::tile(ty, nr, nv, t)
        }
    }
}

/// Exact integer block sums (test hook).
///
/// # Safety
/// As [`tile`]; `row` holds `out.len()` blocks of `ty`.
pub(crate) unsafe fn block_isums(
    dot: bool,
    ty: GgmlType,
    row: &[u8],
    act: &[BlockQ8Act],
    out: &mut [i32],
) {
    // SAFETY: forwarded from the contract.
    unsafe {
        if dot {
            dot::block_isums(ty, row, act, out)
        } else {
            plain::block_isums(ty, row, act, out)
        }
    }
}

/// The activation quantizer, bit-identical to [`crate::quant::quantize_act_block`].
///
/// # Safety
/// The CPU has NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_act(x: &[f32; QK], out: &mut BlockQ8Act) {
    // SAFETY: `x` is 32 readable f32.
    let v: [float32x4_t; 8] = unsafe { core::array::from_fn(|i| vld1q_f32(x.as_ptr().add(4 * i))) };
    let mut m = vabsq_f32(v[0]);
    for vi in &v[1..] {
        m = vmaxq_f32(m, vabsq_f32(*vi));
    }
    let amax = vmaxvq_f32(m);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if !id.is_finite() || !amax.is_finite() {
        *out = crate::quant::quantize_act_block(x);
        return;
    }
    let mut sum = vdupq_n_s32(0);
    let mut q16 = [vdupq_n_s16(0); 4];
    for i in 0..4 {
        // FCVTNS: round to nearest, ties to even, as `round_ties_even`.
        let a = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i], id));
        let b = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i + 1], id));
        sum = vaddq_s32(sum, vaddq_s32(a, b));
        q16[i] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    }
    let lo = vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1]));
    let hi = vcombine_s8(vqmovn_s16(q16[2]), vqmovn_s16(q16[3]));
    out.d = d;
    out.sum = vaddvq_s32(sum);
    // SAFETY: `qs` is 32 writable bytes.
    unsafe {
        vst1q_s8(out.qs.as_mut_ptr(), lo);
        vst1q_s8(out.qs.as_mut_ptr().add(16), hi);
    }
}

macro_rules! neon_kernels {
    ($m:ident, $feat:literal, $dot:literal) => {
        mod $m {
            #![allow(unused_unsafe)]
            use super::{f16_bits_to_f32, f16x4_to_f32, sdot};
            use crate::kernels::TileArgs;
            use crate::quant::{bf16_to_f32, f16_to_f32, BlockQ8Act, GgmlType};
            use core::arch::aarch64::*;

            #[target_feature(enable = $feat)]
            pub(super) unsafe fn tile(ty: GgmlType, nr: usize, nv: usize, t: &TileArgs) {
                // SAFETY: forwarded from the contract of `super::tile`.
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
                // SAFETY: forwarded.
                unsafe {
                    match (nr, nv) {
                        (4, 1) => qtile::<Q4, 4, 1>(t),
                        (4, 2) => qtile::<Q4, 4, 2>(t),
                        (4, 3) => qtile::<Q4, 4, 3>(t),
                        (4, 4) => qtile::<Q4, 4, 4>(t),
                        (1, 1) => qtile::<Q4, 1, 1>(t),
                        (1, 2) => qtile::<Q4, 1, 2>(t),
                        (1, 3) => qtile::<Q4, 1, 3>(t),
                        (1, 4) => qtile::<Q4, 1, 4>(t),
                        _ => unreachable!("tile {nr}×{nv}"),
                    }
                }
            }

            #[target_feature(enable = $feat)]
            unsafe fn fdispatch<const T: u8>(nr: usize, nv: usize, t: &TileArgs) {
                // SAFETY: forwarded.
                unsafe {
                    match (nr, nv) {
                        (4, 1) => ftile::<T, 4, 1>(t),
                        (4, 2) => ftile::<T, 4, 2>(t),
                        (4, 3) => ftile::<T, 4, 3>(t),
                        (4, 4) => ftile::<T, 4, 4>(t),
                        (1, 1) => ftile::<T, 1, 1>(t),
                        (1, 2) => ftile::<T, 1, 2>(t),
                        (1, 3) => ftile::<T, 1, 3>(t),
                        (1, 4) => ftile::<T, 1, 4>(t),
                        _ => unreachable!("tile {nr}×{nv}"),
                    }
                }
            }

            /// The 32 weights of the block at `p` as signed bytes (Q4_0: nibble − 8), in
            /// element order: (elements 0..16, elements 16..32).
            ///
            /// # Safety
            /// `p` points at a whole block.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn load_wq<const Q4: bool>(p: *const u8) -> (int8x16_t, int8x16_t) {
                // SAFETY: the block holds 2 + 32 (Q8_0) or 2 + 16 (Q4_0) bytes.
                unsafe {
                    if Q4 {
                        let x = vld1q_u8(p.add(2));
                        let eight = vdupq_n_s8(8);
                        let lo =
                            vsubq_s8(vreinterpretq_s8_u8(vandq_u8(x, vdupq_n_u8(0x0f))), eight);
                        let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(x)), eight);
                        (lo, hi)
                    } else {
                        (vld1q_s8(p.add(2).cast()), vld1q_s8(p.add(18).cast()))
                    }
                }
            }

            /// Four i32 lanes summing exactly to the block's integer sum.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn block_dot(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
                if $dot {
                    // SAFETY: this instantiation runs only on CPUs with dotprod.
                    unsafe { sdot(sdot(vdupq_n_s32(0), w.0, a.0), w.1, a.1) }
                } else {
                    let p0 = vmull_s8(vget_low_s8(w.0), vget_low_s8(a.0));
                    let p1 = vmull_high_s8(w.0, a.0);
                    let p2 = vmull_s8(vget_low_s8(w.1), vget_low_s8(a.1));
                    let p3 = vmull_high_s8(w.1, a.1);
                    let s = vpaddlq_s16(p0);
                    let s = vpadalq_s16(s, p1);
                    let s = vpadalq_s16(s, p2);
                    vpadalq_s16(s, p3)
                }
            }

            /// # Safety
            /// `t` describes `R` rows of `t.nb` blocks and `V` vectors of `t.nb` blocks.
            #[target_feature(enable = $feat)]
            unsafe fn qtile<const Q4: bool, const R: usize, const V: usize>(t: &TileArgs) {
                let bs = if Q4 { 18 } else { 34 };
                let mut acc = [[vdupq_n_f32(0.0); V]; R];
                for b in 0..t.nb {
                    let mut aq = [(vdupq_n_s8(0), vdupq_n_s8(0)); V];
                    let mut ad = [0.0f32; V];
                    for v in 0..V {
                        // SAFETY: block `b` of vector `v` is inside `t.act`.
                        let a: &BlockQ8Act = unsafe { &*t.act.add(v * t.nb + b) };
                        // SAFETY: `qs` is 32 readable bytes.
                        aq[v] =
                            unsafe { (vld1q_s8(a.qs.as_ptr()), vld1q_s8(a.qs.as_ptr().add(16))) };
                        ad[v] = a.d;
                    }
                    for r in 0..R {
                        // SAFETY: block `b` of row `r` is inside the matrix.
                        let (dw, wq) = unsafe {
                            let p = t.w.add(r * t.rb + b * bs);
                            (
                                f16_bits_to_f32(p.cast::<u16>().read_unaligned()),
                                load_wq::<Q4>(p),
                            )
                        };
                        for v in 0..V {
                            // SAFETY: features as above.
                            let s = vcvtq_f32_s32(unsafe { block_dot(wq, aq[v]) });
                            acc[r][v] = vfmaq_n_f32(acc[r][v], s, dw * ad[v]);
                        }
                    }
                }
                for r in 0..R {
                    for v in 0..V {
                        // SAFETY: output (v, r) of this tile is inside `t.out`.
                        unsafe { *t.out.add(v * t.ostride + r) = vaddvq_f32(acc[r][v]) };
                    }
                }
            }

            /// Four weights of a float row at element `k`, widened to f32.
            ///
            /// # Safety
            /// Elements `k..k+4` of the row at `p` are readable.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn load_wf<const T: u8>(p: *const u8, k: usize) -> float32x4_t {
                // SAFETY: the caller guarantees the 4 elements are readable.
                unsafe {
                    match T {
                        0 => vld1q_f32(p.add(4 * k).cast()),
                        1 => f16x4_to_f32(vld1_u16(p.add(2 * k).cast())),
                        _ => vreinterpretq_f32_u32(vshlq_n_u32::<16>(vmovl_u16(vld1_u16(
                            p.add(2 * k).cast(),
                        )))),
                    }
                }
            }

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

            /// # Safety
            /// `t` describes `R` rows of `t.cols` elements and `V` vectors of `t.cols` f32.
            #[target_feature(enable = $feat)]
            unsafe fn ftile<const T: u8, const R: usize, const V: usize>(t: &TileArgs) {
                let mut acc = [[vdupq_n_f32(0.0); V]; R];
                let k4 = t.cols / 4 * 4;
                let mut k = 0;
                while k < k4 {
                    let mut xv = [vdupq_n_f32(0.0); V];
                    for v in 0..V {
                        // SAFETY: elements `k..k+4` of vector `v` are inside `t.x`.
                        xv[v] = unsafe { vld1q_f32(t.x.add(v * t.cols + k)) };
                    }
                    for r in 0..R {
                        // SAFETY: elements `k..k+4` of row `r` are inside the matrix.
                        let wv = unsafe { load_wf::<T>(t.w.add(r * t.rb), k) };
                        for v in 0..V {
                            acc[r][v] = vfmaq_f32(acc[r][v], wv, xv[v]);
                        }
                    }
                    k += 4;
                }
                for r in 0..R {
                    for v in 0..V {
                        let mut s = vaddvq_f32(acc[r][v]);
                        for k in k4..t.cols {
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

            /// # Safety
            /// CPU features as for this instantiation; `row` holds `out.len()` blocks.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn block_isums(
                ty: GgmlType,
                row: &[u8],
                act: &[BlockQ8Act],
                out: &mut [i32],
            ) {
                let bs = ty.block_bytes();
                assert!(row.len() >= out.len() * bs && act.len() >= out.len());
                for (b, o) in out.iter_mut().enumerate() {
                    let a = &act[b];
                    // SAFETY: block `b` is inside `row` (asserted), `qs` is 32 bytes.
                    unsafe {
                        let p = row.as_ptr().add(b * bs);
                        let aq = (vld1q_s8(a.qs.as_ptr()), vld1q_s8(a.qs.as_ptr().add(16)));
                        let wq = if ty == GgmlType::Q4_0 {
                            load_wq::<true>(p)
                        } else {
                            load_wq::<false>(p)
                        };
                        *o = vaddvq_s32(block_dot(wq, aq));
                    }
                }
            }
        }
    };
}

neon_kernels!(plain, "neon", false);
neon_kernels!(dot, "neon,dotprod", true);
