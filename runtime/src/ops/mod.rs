//! Float operations of the LLaMA stacks, in f32.
//!
//! The public functions pick a SIMD version once per process (AVX2+FMA on x86-64, NEON on
//! aarch64; `PHOTON_ISA=scalar` forces the references) and fall back to [`scalar`], the
//! references. SIMD versions differ from the references only in summation order and in `exp`
//! (a Cephes-style polynomial, relative error ≤ 2e-7 against `libm::expf` on [−87, 88]):
//! `dot` and the rmsnorm sum of squares within `(n + 16)·ε·Σ|terms|`, softmax and SwiGLU
//! within `4e-6` relative (tested in `ops::tests`).
use core::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use scalar::{rope, silu};

/// 0: not chosen yet, 1: scalar, 2: AVX2+FMA, 3: NEON.
static LEVEL: AtomicU8 = AtomicU8::new(0);

#[inline]
fn level() -> u8 {
    let l = LEVEL.load(Ordering::Relaxed);
    if l != 0 {
        return l;
    }
    use crate::kernels::Isa;
    let l = match Isa::best() {
        Isa::Avx2 | Isa::Avx512Vnni => 2,
        Isa::Neon | Isa::NeonDot => 3,
        Isa::Scalar => 1,
    };
    LEVEL.store(l, Ordering::Relaxed);
    l
}

/// Runs the SIMD version `$simd` (an `unsafe fn` of the arch module) when chosen, else the
/// scalar reference.
macro_rules! dispatch {
    ($name:ident ( $($a:expr),* )) => {{
        match level() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: level 2 is chosen only when the CPU has AVX2 and FMA.
            2 => unsafe { x86::$name($($a),*) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: level 3 is chosen only when the CPU has NEON.
            3 => unsafe { aarch64::$name($($a),*) },
            _ => scalar::$name($($a),*),
        }
    }};
}

/// `Σ a[i]·b[i]` over the shorter length.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dispatch!(dot(a, b))
}

/// `y[i] += a·x[i]` over the shorter length.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    dispatch!(axpy(y, a, x))
}

/// RMSNorm: `out = x · w / sqrt(mean(x²) + eps)`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    dispatch!(rmsnorm(out, x, w, eps))
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    dispatch!(softmax(x))
}

/// SwiGLU: `gate[i] = silu(gate[i]) · up[i]`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    dispatch!(swiglu(gate, up))
}

/// One query row attending to `n_pos` cached positions (keys and values `n_pos × dim`, heads of
/// `head_dim` side by side). `scores` is scratch of at least `n_pos`.
pub fn attention(
    out: &mut [f32],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_pos: usize,
    head_dim: usize,
    scores: &mut [f32],
) {
    let dim = q.len();
    let scale = 1.0 / libm::sqrtf(head_dim as f32);
    for h in 0..dim / head_dim {
        let qh = &q[h * head_dim..(h + 1) * head_dim];
        for p in 0..n_pos {
            let kh = &keys[p * dim + h * head_dim..p * dim + (h + 1) * head_dim];
            scores[p] = dot(qh, kh) * scale;
        }
        softmax(&mut scores[..n_pos]);
        let oh = &mut out[h * head_dim..(h + 1) * head_dim];
        oh.fill(0.0);
        for p in 0..n_pos {
            let vh = &values[p * dim + h * head_dim..p * dim + (h + 1) * head_dim];
            axpy(oh, scores[p], vh);
        }
    }
}
