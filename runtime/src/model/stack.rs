//! The one LLaMA stack every model uses: pre-norm RMSNorm, multi-head causal attention with RoPE
//! on adjacent pairs, SwiGLU FFN, final RMSNorm.
//!
//! [`forward`] runs several rows at once: every weight is applied to all rows in one
//! `Kernels::matmul` call. Rows are grouped in segments ([`Seg`]); each segment is one causal
//! sequence with its own key/value cache (or none: then it attends only to its own rows, as in
//! teacher-forced evaluation), so independent sequences (RecGen's unfinished units, the
//! evaluator's decoder windows) share the weight passes.
use super::weights::{Mat, StackW};
use crate::cache::{KvRef, KvView};
use crate::kernels::Kernels;
use crate::quant::BlockQ8Act;
use libm::sqrtf;

/// What every forward pass needs: kernels, the model's bytes and the shape constants.
pub(crate) struct Env<'a> {
    pub kern: &'a Kernels,
    pub bytes: &'a [u8],
    pub d: usize,
    pub ffn: usize,
    pub head_dim: usize,
    pub eps: f32,
    /// `base^(−2i/head_dim)` for `i < head_dim/2`.
    pub inv_freq: &'a [f32],
}

impl Env<'_> {
    /// `out[v·rows + r] = W[r,:] · x[v]` for `n` vectors.
    #[inline]
    pub fn matmul(&self, w: &Mat, x: &[f32], n: usize, out: &mut [f32], act: &mut [BlockQ8Act]) {
        self.kern.matmul(&w.view(self.bytes), x, n, out, act);
    }
}

/// Scratch buffers for up to `rows` rows (all carved from the arena).
pub(crate) struct Scratch<'a> {
    pub rows: usize,
    pub xb: &'a mut [f32],     // rows × D
    pub q: &'a mut [f32],      // rows × D
    pub k: &'a mut [f32],      // rows × D
    pub v: &'a mut [f32],      // rows × D
    pub att: &'a mut [f32],    // rows × D
    pub hb: &'a mut [f32],     // rows × I
    pub hb2: &'a mut [f32],    // rows × I
    pub cs: &'a mut [f32],     // rows × head_dim (cos | sin)
    pub scores: &'a mut [f32], // longest attention span
    pub act: &'a mut [BlockQ8Act],
}

/// One causal sequence of rows in a batch.
#[derive(Default)]
pub(crate) struct Seg<'a> {
    pub n: usize,
    /// Cache holding the sequence's earlier rows; `None`: only this batch's rows exist.
    pub cache: Option<KvView<'a>>,
    /// RoPE position of the first row when there is no cache.
    pub pos0: usize,
}

/// Dot product (SIMD where the CPU has it; see `ops`).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::ops::dot(a, b)
}

/// RMSNorm in f32: `x · w / sqrt(mean(x²) + eps)`.
#[inline]
pub(crate) fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    crate::ops::rmsnorm(out, x, w, eps)
}

/// In-place RMSNorm.
#[inline]
pub(crate) fn rmsnorm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let ss: f32 = dot(x, x) / x.len() as f32;
    let inv = 1.0 / sqrtf(ss + eps);
    for (v, g) in x.iter_mut().zip(w) {
        *v = *v * inv * g;
    }
}

/// cos | sin of `pos · inv_freq[i]` (angle computed in f32, as the reference does).
#[inline]
pub(crate) fn rope_table(cs: &mut [f32], pos: usize, inv_freq: &[f32]) {
    let h = inv_freq.len();
    for (i, f) in inv_freq.iter().enumerate() {
        let ang = pos as f32 * f;
        cs[i] = libm::cosf(ang);
        cs[h + i] = libm::sinf(ang);
    }
}

/// Rotates adjacent pairs of every head of `x` with the table from [`rope_table`].
#[inline]
pub(crate) fn rope_apply(x: &mut [f32], head_dim: usize, cs: &[f32]) {
    let h = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..h {
            let (c, s) = (cs[i], cs[h + i]);
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

/// Widens a row of f16 bits into `out`.
#[inline]
fn widen(src: &[u16], out: &mut [f32]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    src.reinterpret_cast::<half::f16>()
        .convert_to_f32_slice(&mut out[..src.len()]);
}

/// One query row over key/value sources (each `rows × dim`, contiguous), every head.
fn attend(
    out: &mut [f32],
    q: &[f32],
    srcs: &[(KvRef, KvRef)],
    head_dim: usize,
    scores: &mut [f32],
) {
    let dim = q.len();
    let scale = 1.0 / sqrtf(head_dim as f32);
    let mut buf = [0.0f32; 256];
    for h in 0..dim / head_dim {
        let (lo, hi) = (h * head_dim, (h + 1) * head_dim);
        let qh = &q[lo..hi];
        let mut n = 0;
        for (ks, _) in srcs {
            match ks {
                KvRef::F32(ks) => {
                    for kr in ks.chunks_exact(dim) {
                        let s = dot(qh, &kr[lo..hi]) * scale;
                        scores[n] = s;
                        n += 1;
                    }
                }
                KvRef::F16(ks) => {
                    for kr in ks.chunks_exact(dim) {
                        widen(&kr[lo..hi], &mut buf[..head_dim]);
                        let s = dot(qh, &buf[..head_dim]) * scale;
                        scores[n] = s;
                        n += 1;
                    }
                }
            }
        }
        crate::ops::softmax(&mut scores[..n]);
        let oh = &mut out[lo..hi];
        oh.fill(0.0);
        let mut j = 0;
        for (_, vs) in srcs {
            match vs {
                KvRef::F32(vs) => {
                    for vr in vs.chunks_exact(dim) {
                        crate::ops::axpy(oh, scores[j], &vr[lo..hi]);
                        j += 1;
                    }
                }
                KvRef::F16(vs) => {
                    for vr in vs.chunks_exact(dim) {
                        widen(&vr[lo..hi], &mut buf[..head_dim]);
                        crate::ops::axpy(oh, scores[j], &buf[..head_dim]);
                        j += 1;
                    }
                }
            }
        }
    }
}

/// Runs `w` over the rows of `x` (`Σ segs[i].n` rows × D, in segment order), in place: on
/// return `x` holds the stack's outputs after the final norm. Caches receive the rows' keys
/// and values.
pub(crate) fn forward(env: &Env, w: &StackW, x: &mut [f32], segs: &mut [Seg], s: &mut Scratch) {
    let d = env.d;
    let hd = env.head_dim;
    let n: usize = segs.iter().map(|g| g.n).sum();
    if n == 0 {
        return;
    }
    assert!(
        n <= s.rows,
        "batch of {n} rows exceeds scratch of {}",
        s.rows
    );
    // Positions and RoPE tables.
    let mut row = 0;
    for g in segs.iter_mut() {
        let pos0 = match g.cache.as_mut() {
            Some(c) => c.prepare(g.n, hd, env.inv_freq),
            None => g.pos0,
        };
        for i in 0..g.n {
            rope_table(
                &mut s.cs[(row + i) * hd..(row + i + 1) * hd],
                pos0 + i,
                env.inv_freq,
            );
        }
        row += g.n;
    }
    let x = &mut x[..n * d];
    for (l, lw) in w.layers.iter().enumerate() {
        // Attention.
        for (o, xr) in s.xb.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            rmsnorm(o, xr, &lw.attn_norm, env.eps);
        }
        env.matmul(&lw.wq, s.xb, n, s.q, s.act);
        env.matmul(&lw.wk, s.xb, n, s.k, s.act);
        env.matmul(&lw.wv, s.xb, n, s.v, s.act);
        for r in 0..n {
            let cs = &s.cs[r * hd..(r + 1) * hd];
            rope_apply(&mut s.q[r * d..(r + 1) * d], hd, cs);
            rope_apply(&mut s.k[r * d..(r + 1) * d], hd, cs);
        }
        let mut row = 0;
        for g in segs.iter_mut() {
            for i in 0..g.n {
                let r = row + i;
                let empty = (KvRef::F32(&[]), KvRef::F32(&[]));
                let mut srcs: [(KvRef, KvRef); 4] = [empty; 4];
                let mut lo = row;
                if let Some(c) = g.cache.as_ref() {
                    let st = &*c.st;
                    let base = l * st.cap * d;
                    let pn = st.prefix * d;
                    srcs[0] = (
                        c.pk.slice(l * pn..(l + 1) * pn),
                        c.pv.slice(l * pn..(l + 1) * pn),
                    );
                    let (ck, cv) = (c.k.as_ref(), c.v.as_ref());
                    for (j, (a, b)) in c.old_ranges(i).into_iter().enumerate() {
                        srcs[j + 1] = (
                            ck.slice(base + a * d..base + b * d),
                            cv.slice(base + a * d..base + b * d),
                        );
                    }
                    if let Some(wnd) = st.window() {
                        lo = lo.max((r + 1).saturating_sub(wnd));
                    }
                }
                srcs[3] = (
                    KvRef::F32(&s.k[lo * d..(r + 1) * d]),
                    KvRef::F32(&s.v[lo * d..(r + 1) * d]),
                );
                attend(
                    &mut s.att[r * d..(r + 1) * d],
                    &s.q[r * d..(r + 1) * d],
                    &srcs,
                    hd,
                    s.scores,
                );
            }
            if let Some(c) = g.cache.as_mut() {
                c.store(l, &s.k[row * d..], &s.v[row * d..], g.n);
            }
            row += g.n;
        }
        env.matmul(&lw.wo, s.att, n, s.xb, s.act);
        for (a, b) in x.iter_mut().zip(s.xb.iter()) {
            *a += b;
        }
        // FFN.
        for (o, xr) in s.xb.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            rmsnorm(o, xr, &lw.ffn_norm, env.eps);
        }
        env.matmul(&lw.gate, s.xb, n, s.hb, s.act);
        env.matmul(&lw.up, s.xb, n, s.hb2, s.act);
        crate::ops::swiglu(&mut s.hb[..n * env.ffn], &s.hb2[..n * env.ffn]);
        env.matmul(&lw.down, s.hb, n, s.xb, s.act);
        for (a, b) in x.iter_mut().zip(s.xb.iter()) {
            *a += b;
        }
    }
    for g in segs.iter_mut() {
        if let Some(c) = g.cache.as_mut() {
            c.commit(g.n);
        }
    }
    for xr in x.chunks_exact_mut(d) {
        rmsnorm_inplace(xr, &w.norm, env.eps);
    }
}

/// `base^(−2i/head_dim)` in f32, as the reference computes it.
pub(crate) fn inv_freq(base: f32, head_dim: usize) -> alloc::vec::Vec<f32> {
    (0..head_dim / 2)
        .map(|i| libm::powf(base, -((2 * i) as f32) / head_dim as f32))
        .collect()
}
