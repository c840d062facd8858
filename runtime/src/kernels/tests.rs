//! Every SIMD kernel against the scalar reference, on every ISA this CPU supports.
use super::*;
use crate::quant::{self, f16_to_f32, f32_to_f16};
use alloc::vec;
use alloc::vec::Vec;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f() * scale).collect()
    }
}

/// Every ISA this CPU supports, one thread each.
fn all_kernels() -> Vec<Kernels> {
    Isa::ALL
        .iter()
        .filter_map(|&i| Kernels::with_isa(i))
        .collect()
}

fn weights(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..rows {
        // Rows of varied magnitude, some with outliers.
        let scale = 0.01 + 3.0 * rng.f().abs();
        let mut x = rng.vec(cols, scale);
        if rng.next() % 4 == 0 {
            x[0] = 40.0 * scale;
        }
        quant::quantize_row(ty, &x, &mut data).unwrap();
    }
    data
}

/// Σ|elementwise products| of one output, for the stated error bound.
fn abs_terms(ty: GgmlType, row: &[u8], x: &[f32], act: &[BlockQ8Act]) -> f32 {
    match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 => {
            let bs = ty.block_bytes();
            row.chunks_exact(bs)
                .zip(act)
                .map(|(w, a)| {
                    let d = f16_to_f32(u16::from_le_bytes([w[0], w[1]]));
                    let mut wf = [0.0f32; QK];
                    quant::dequantize_row(ty, w, &mut wf).unwrap();
                    // Σ_j |q_j·a_j| (the weight value over d is q_j, or q_j − 8 for Q4_0).
                    let s: f32 = wf
                        .iter()
                        .zip(&a.qs)
                        .map(|(x, &q)| {
                            if d != 0.0 {
                                (x / d * q as f32).abs()
                            } else {
                                0.0
                            }
                        })
                        .sum();
                    (d * a.d).abs() * s
                })
                .sum()
        }
        _ => {
            let mut wf = vec![0.0; x.len()];
            quant::dequantize_row(ty, row, &mut wf).unwrap();
            wf.iter().zip(x).map(|(a, b)| (a * b).abs()).sum()
        }
    }
}

fn check_matmul(k: &Kernels, ty: GgmlType, rows: usize, cols: usize, n_vec: usize, seed: u64) {
    let mut rng = Rng(seed | 1);
    let data = weights(&mut rng, ty, rows, cols);
    let w = Matrix::new(ty, rows, cols, &data).unwrap();
    let x = rng.vec(cols * n_vec, 2.0);
    let nb = act_blocks(cols, n_vec).max(1);
    let mut act = vec![BlockQ8Act::zeroed(); nb];
    let mut act_ref = vec![BlockQ8Act::zeroed(); nb];
    let mut out = vec![f32::NAN; rows * n_vec];
    let mut out_ref = vec![f32::NAN; rows * n_vec];
    k.matmul(&w, &x, n_vec, &mut out, &mut act);
    Kernels::scalar().matmul(&w, &x, n_vec, &mut out_ref, &mut act_ref);
    let quantized = matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0);
    if quantized {
        assert_eq!(act, act_ref, "{:?}: activations differ", k.isa());
    }
    let cb = cols / QK;
    for v in 0..n_vec {
        for r in 0..rows {
            let (a, b) = (out[v * rows + r], out_ref[v * rows + r]);
            let sum_abs = abs_terms(
                ty,
                w.row(r),
                &x[v * cols..(v + 1) * cols],
                &act_ref[(v * cb).min(nb - 1)..],
            );
            let n = if quantized { cb } else { cols };
            let tol = (n as f32 + 16.0) * f32::EPSILON * sum_abs + f32::MIN_POSITIVE;
            assert!(
                (a - b).abs() <= tol,
                "{:?} {} {rows}×{cols} n_vec={n_vec} v={v} r={r}: {a} vs {b} (tol {tol})",
                k.isa(),
                ty.name()
            );
        }
    }
}

use bytemuck::Zeroable;

const TYPES: [GgmlType; 5] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
];

#[test]
fn matmul_matches_scalar_odd_shapes() {
    for k in all_kernels() {
        for ty in TYPES {
            for rows in [1, 3, 17] {
                for cols in [32, 96, 4096] {
                    for n_vec in 1..=17 {
                        check_matmul(&k, ty, rows, cols, n_vec, (rows * 31 + cols + n_vec) as u64);
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_float_odd_cols() {
    for k in all_kernels() {
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            for cols in [1, 7, 9, 35, 100] {
                for n_vec in [1, 2, 5, 16, 17] {
                    check_matmul(&k, ty, 5, cols, n_vec, cols as u64 * 7 + n_vec as u64);
                }
            }
        }
    }
}

#[test]
fn matmul_threads_match_one_thread() {
    for k in all_kernels() {
        let k2 = k.clone().with_threads(2);
        let k3 = k.clone().with_threads(3);
        for ty in TYPES {
            for (rows, n_vec) in [(257, 1), (130, 4), (64, 17)] {
                let cols = 512;
                let mut rng = Rng(99);
                let data = weights(&mut rng, ty, rows, cols);
                let w = Matrix::new(ty, rows, cols, &data).unwrap();
                let x = rng.vec(cols * n_vec, 1.0);
                let mut act = vec![BlockQ8Act::zeroed(); act_blocks(cols, n_vec)];
                let mut o1 = vec![0.0; rows * n_vec];
                let mut o2 = vec![1.0; rows * n_vec];
                let mut o3 = vec![2.0; rows * n_vec];
                k.matmul(&w, &x, n_vec, &mut o1, &mut act);
                k2.matmul(&w, &x, n_vec, &mut o2, &mut act);
                k3.matmul(&w, &x, n_vec, &mut o3, &mut act);
                assert_eq!(o1, o2, "{:?} {}", k.isa(), ty.name());
                assert_eq!(o1, o3, "{:?} {}", k.isa(), ty.name());
            }
        }
    }
}

/// Activation blocks that stress the quantizer: ties, zeros, tiny and huge values.
fn act_inputs(rng: &mut Rng) -> Vec<[f32; QK]> {
    let mut v = Vec::new();
    v.push([0.0; QK]);
    v.push([-0.0; QK]);
    // Exact ties: amax = 127 so id = 1 and x·id = k + 0.5.
    let mut t = [0.0f32; QK];
    for (i, e) in t.iter_mut().enumerate() {
        *e = i as f32 - 15.5;
    }
    t[31] = 127.0;
    v.push(t);
    let mut t2 = t;
    t2.iter_mut().for_each(|e| *e = -*e);
    v.push(t2);
    for scale in [1e-30f32, 1e-38, 1e-44, 1e-3, 1.0, 1e3, 1e30, 3e38] {
        for _ in 0..50 {
            let mut b = [0.0f32; QK];
            b.iter_mut().for_each(|e| *e = rng.f() * scale);
            v.push(b);
        }
    }
    for _ in 0..2000 {
        let mut b = [0.0f32; QK];
        b.iter_mut()
            .for_each(|e| *e = (rng.f() * 254.0).round() * 0.5);
        v.push(b);
    }
    v
}

#[test]
fn act_quantizer_bit_identical() {
    let mut rng = Rng(7);
    let inputs = act_inputs(&mut rng);
    for k in all_kernels() {
        for x in &inputs {
            let mut b = BlockQ8Act::zeroed();
            k.quantize_acts(x, QK, 1, core::slice::from_mut(&mut b));
            let r = quant::quantize_act_block(x);
            assert_eq!(b.d.to_bits(), r.d.to_bits(), "{:?} {x:?}", k.isa());
            assert_eq!((b.sum, b.qs), (r.sum, r.qs), "{:?} {x:?}", k.isa());
        }
    }
}

#[test]
fn block_sums_bit_identical() {
    let mut rng = Rng(11);
    let nblocks = 301;
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
        // Raw random weight bytes (every i8 / nibble value, including −128).
        let row: Vec<u8> = (0..nblocks * ty.block_bytes())
            .map(|_| rng.next() as u8)
            .collect();
        // Activations: random, and all-extreme blocks (±127).
        let act: Vec<BlockQ8Act> = (0..nblocks)
            .map(|b| {
                let mut qs = [0i8; QK];
                for q in qs.iter_mut() {
                    *q = match b % 3 {
                        0 => (rng.next() % 255) as i32 - 127,
                        1 => 127,
                        _ => -127,
                    } as i8;
                }
                BlockQ8Act {
                    d: 1.0,
                    sum: qs.iter().map(|&q| q as i32).sum(),
                    qs,
                }
            })
            .collect();
        let mut want = vec![0i32; nblocks];
        Kernels::scalar().block_isums(ty, &row, &act, &mut want);
        for k in all_kernels() {
            let mut got = vec![0i32; nblocks];
            k.block_isums(ty, &row, &act, &mut got);
            assert_eq!(got, want, "{:?} {}", k.isa(), ty.name());
        }
    }
}

#[test]
fn quantize_dequantize_error_bounds() {
    // Q8_0: |x − x̂| ≤ d/2 + 127·|d − d16| (+1e-6·amax): rounding to the nearest step, plus the
    // f16 rounding of the stored scale. Q4_0: |x − x̂| ≤ |d| + 8·|d − d16| (+1e-6·amax): one step
    // where the clamp at 15 bites (values near +|max|), half a step elsewhere.
    let mut rng = Rng(5);
    for scale in [1e-3f32, 1.0, 300.0] {
        for _ in 0..500 {
            let x: [f32; QK] = core::array::from_fn(|_| rng.f() * scale);
            let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let mut out = [0.0f32; QK];

            let b8 = quant::quantize_block_q8_0(&x);
            quant::dequantize_block_q8_0(&b8, &mut out);
            let d = amax / 127.0;
            let dd = (d - f16_to_f32(b8.d)).abs();
            for (a, b) in x.iter().zip(&out) {
                assert!(
                    (a - b).abs() <= d / 2.0 + 127.0 * dd + 1e-6 * amax,
                    "q8 {a} {b}"
                );
            }

            let b4 = quant::quantize_block_q4_0(&x);
            quant::dequantize_block_q4_0(&b4, &mut out);
            let d = amax / 8.0;
            let dd = (d - f16_to_f32(b4.d).abs()).abs();
            for (a, b) in x.iter().zip(&out) {
                assert!((a - b).abs() <= d + 8.0 * dd + 1e-6 * amax, "q4 {a} {b}");
            }
        }
    }
}

#[test]
fn f16_round_trip() {
    // Every finite f16 survives f16 → f32 → f16 exactly.
    for bits in 0..=u16::MAX {
        let f = f16_to_f32(bits);
        if f.is_nan() {
            continue;
        }
        assert_eq!(f32_to_f16(f), bits);
    }
    // f32 → f16 → f32 is within half an f16 ulp (relative 2^-11) in the normal range.
    let mut rng = Rng(3);
    for _ in 0..10000 {
        let x = rng.f() * 1000.0;
        if x.abs() < 1e-4 {
            continue;
        }
        let y = f16_to_f32(f32_to_f16(x));
        assert!((x - y).abs() <= x.abs() * (1.0 / 2048.0), "{x} {y}");
    }
}

#[test]
fn detect_respects_support() {
    let k = Kernels::detect();
    #[cfg(feature = "std")]
    std::eprintln!(
        "detected {:?}; tested ISAs: {:?}",
        k.isa(),
        all_kernels().iter().map(|k| k.isa()).collect::<Vec<_>>()
    );
    assert!(k.isa().supported());
    assert!(k.threads() >= 1);
    for isa in Isa::ALL {
        assert_eq!(Kernels::with_isa(isa).is_some(), isa.supported());
    }
}

#[test]
fn photon_isa_values() {
    assert_eq!(parse_isa_cap("scalar"), Some(0));
    assert_eq!(parse_isa_cap("AVX2"), Some(1));
    assert_eq!(parse_isa_cap("neon"), Some(1));
    assert_eq!(parse_isa_cap(" avx512 "), Some(2));
    assert_eq!(parse_isa_cap("neon-dotprod"), Some(2));
    assert_eq!(parse_isa_cap("fast"), None);
    assert_eq!(best_capped(0), Isa::Scalar);
    for cap in 0..=2 {
        let i = best_capped(cap);
        assert!(i.supported() && i.rank() <= cap);
    }
}

/// Random shapes (rows 1..40, K a multiple of 32 up to 1024, n_vec 1..=40), every type and ISA.
#[test]
fn matmul_random_shapes() {
    let mut rng = Rng(0xC0FFEE);
    for k in all_kernels() {
        for _ in 0..30 {
            let rows = 1 + (rng.next() % 40) as usize;
            let cols = 32 * (1 + (rng.next() % 32) as usize);
            let n_vec = 1 + (rng.next() % 40) as usize;
            let ty = TYPES[(rng.next() % 5) as usize];
            check_matmul(&k, ty, rows, cols, n_vec, rng.next());
        }
    }
}

/// Several threads share one pool (clones of one `Kernels`) and call `matmul` concurrently;
/// every result equals the one-thread result.
#[cfg(feature = "std")]
#[test]
fn pool_shared_by_concurrent_callers() {
    let k = Kernels::detect().with_threads(3);
    let (rows, cols, n_vec) = (300, 256, 3);
    let mut rng = Rng(42);
    let data = weights(&mut rng, GgmlType::Q4_0, rows, cols);
    let x = rng.vec(cols * n_vec, 1.0);
    let w = Matrix::new(GgmlType::Q4_0, rows, cols, &data).unwrap();
    let mut act = vec![BlockQ8Act::zeroed(); act_blocks(cols, n_vec)];
    let mut want = vec![0.0; rows * n_vec];
    Kernels::with_isa(k.isa())
        .unwrap()
        .matmul(&w, &x, n_vec, &mut want, &mut act);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let k = k.clone();
            let (w, x, want) = (&w, &x, &want);
            s.spawn(move || {
                let mut act = vec![BlockQ8Act::zeroed(); act_blocks(cols, n_vec)];
                let mut out = vec![0.0; rows * n_vec];
                for _ in 0..200 {
                    k.matmul(w, x, n_vec, &mut out, &mut act);
                    assert_eq!(&out, want);
                }
            });
        }
    });
}
