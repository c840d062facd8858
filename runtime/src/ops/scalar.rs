//! Scalar references of the float operations: the oracle the SIMD versions are tested against.
use libm::{expf, sqrtf};

/// RMSNorm: `out = x · w / sqrt(mean(x²) + eps)`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / sqrtf(ss + eps);
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = v * inv * g;
    }
}

/// RoPE on adjacent pairs `(x[2i], x[2i+1])` of every head, angle `pos · base^(−2i/head_dim)`.
pub fn rope(x: &mut [f32], head_dim: usize, pos: usize, base: f32) {
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..head_dim / 2 {
            let freq = libm::powf(base, -2.0 * i as f32 / head_dim as f32);
            let ang = pos as f32 * freq;
            let (s, c) = (libm::sinf(ang), libm::cosf(ang));
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0;
    for v in x.iter_mut() {
        *v = expf(*v - m);
        s += *v;
    }
    for v in x.iter_mut() {
        *v /= s;
    }
}

/// SiLU.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + expf(-x))
}

/// SwiGLU: `gate[i] = silu(gate[i]) · up[i]`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
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
    let scale = 1.0 / sqrtf(head_dim as f32);
    for h in 0..dim / head_dim {
        let qh = &q[h * head_dim..(h + 1) * head_dim];
        for p in 0..n_pos {
            let kh = &keys[p * dim + h * head_dim..p * dim + (h + 1) * head_dim];
            scores[p] = qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale;
        }
        softmax(&mut scores[..n_pos]);
        let oh = &mut out[h * head_dim..(h + 1) * head_dim];
        oh.fill(0.0);
        for p in 0..n_pos {
            let vh = &values[p * dim + h * head_dim..p * dim + (h + 1) * head_dim];
            for (o, v) in oh.iter_mut().zip(vh) {
                *o += scores[p] * v;
            }
        }
    }
}

/// `Σ a[i]·b[i]` over the shorter length.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y[i] += a·x[i]` over the shorter length.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (o, v) in y.iter_mut().zip(x) {
        *o += a * v;
    }
}
