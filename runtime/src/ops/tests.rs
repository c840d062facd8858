//! SIMD float ops against the scalar references.
use super::*;
use alloc::vec;
use alloc::vec::Vec;

fn rng_vec(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

const SIZES: [usize; 9] = [1, 3, 7, 8, 9, 31, 64, 100, 4099];

#[test]
fn dot_axpy_rmsnorm_match_scalar() {
    let mut s = 1;
    for n in SIZES {
        let a = rng_vec(&mut s, n, 3.0);
        let b = rng_vec(&mut s, n, 3.0);
        let sum_abs: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        let tol = (n as f32 + 16.0) * f32::EPSILON * sum_abs;
        assert!((dot(&a, &b) - scalar::dot(&a, &b)).abs() <= tol, "dot {n}");

        let mut y1 = b.clone();
        let mut y2 = b.clone();
        axpy(&mut y1, 0.37, &a);
        scalar::axpy(&mut y2, 0.37, &a);
        for (p, q) in y1.iter().zip(&y2) {
            assert!((p - q).abs() <= 1e-6 * (1.0 + q.abs()), "axpy {n}");
        }

        let w = rng_vec(&mut s, n, 1.0);
        let mut o1 = vec![0.0; n];
        let mut o2 = vec![0.0; n];
        rmsnorm(&mut o1, &a, &w, 1e-5);
        scalar::rmsnorm(&mut o2, &a, &w, 1e-5);
        for (p, q) in o1.iter().zip(&o2) {
            assert!(
                (p - q).abs() <= 1e-5 * (1e-3 + q.abs()),
                "rmsnorm {n}: {p} {q}"
            );
        }
    }
}

#[test]
fn softmax_swiglu_match_scalar() {
    let mut s = 2;
    for n in SIZES {
        for scale in [0.1f32, 5.0, 60.0] {
            let x = rng_vec(&mut s, n, scale);
            let mut a = x.clone();
            let mut b = x.clone();
            softmax(&mut a);
            scalar::softmax(&mut b);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() <= 4e-6 * q + 1e-30, "softmax {n}: {p} {q}");
            }
            let up = rng_vec(&mut s, n, 2.0);
            let mut g1 = x.clone();
            let mut g2 = x.clone();
            swiglu(&mut g1, &up);
            scalar::swiglu(&mut g2, &up);
            for (p, q) in g1.iter().zip(&g2) {
                assert!(
                    (p - q).abs() <= 4e-6 * q.abs() + 1e-30,
                    "swiglu {n}: {p} {q}"
                );
            }
        }
    }
    // −inf scores (masked positions) get exactly 0.
    let mut m = [
        0.0f32,
        f32::NEG_INFINITY,
        1.0,
        f32::NEG_INFINITY,
        0.5,
        0.1,
        0.2,
        0.3,
        0.4,
    ];
    softmax(&mut m);
    assert_eq!((m[1], m[3]), (0.0, 0.0));
}

#[test]
fn attention_matches_scalar() {
    let mut s = 3;
    let (head_dim, heads) = (64, 3);
    let dim = head_dim * heads;
    for n_pos in [1, 2, 17, 100] {
        let q = rng_vec(&mut s, dim, 1.0);
        let k = rng_vec(&mut s, dim * n_pos, 1.0);
        let v = rng_vec(&mut s, dim * n_pos, 1.0);
        let mut sc = vec![0.0; n_pos];
        let mut o1 = vec![0.0; dim];
        let mut o2 = vec![0.0; dim];
        attention(&mut o1, &q, &k, &v, n_pos, head_dim, &mut sc);
        scalar::attention(&mut o2, &q, &k, &v, n_pos, head_dim, &mut sc);
        for (p, q) in o1.iter().zip(&o2) {
            assert!((p - q).abs() <= 1e-5, "attention {n_pos}: {p} {q}");
        }
    }
}
