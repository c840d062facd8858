//! NEON versions of the float ops (dot products, axpy and rmsnorm; `exp` stays scalar here).
#![allow(unused_unsafe)]
use core::arch::aarch64::*;

/// # Safety
/// The CPU has NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (j, ac) in acc.iter_mut().enumerate() {
            // SAFETY: i + 4j + 4 ≤ n.
            let (x, y) = unsafe {
                (
                    vld1q_f32(a.as_ptr().add(i + 4 * j)),
                    vld1q_f32(b.as_ptr().add(i + 4 * j)),
                )
            };
            *ac = vfmaq_f32(*ac, x, y);
        }
        i += 16;
    }
    let mut s = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    for k in i..n {
        s += a[k] * b[k];
    }
    s
}

/// # Safety
/// The CPU has NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n for both slices.
        unsafe {
            let p = y.as_mut_ptr().add(i);
            vst1q_f32(
                p,
                vfmaq_n_f32(vld1q_f32(p), vld1q_f32(x.as_ptr().add(i)), a),
            );
        }
        i += 4;
    }
    for k in i..n {
        y[k] += a * x[k];
    }
}

/// # Safety
/// The CPU has NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    // SAFETY: same CPU contract.
    let ss = unsafe { dot(x, x) } / x.len() as f32;
    let inv = 1.0 / libm::sqrtf(ss + eps);
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = v * inv * g;
    }
}

/// # Safety
/// None beyond the module's (scalar `exp`).
pub(crate) unsafe fn softmax(x: &mut [f32]) {
    super::scalar::softmax(x)
}

/// # Safety
/// None beyond the module's (scalar `exp`).
pub(crate) unsafe fn swiglu(gate: &mut [f32], up: &[f32]) {
    super::scalar::swiglu(gate, up)
}
