//! Teacher-forced evaluation: log-probabilities of every position of a token window, perplexity
//! over a token stream in consecutive `T`-token windows, KL divergence and top-1 agreement
//! between two models' runs. The quantizer's quality gate and `photon-perplexity` call these.
//!
//! Windows are scored exactly as the reference does (training/train.py): tokens `1 … T−1` of
//! each window for HierGen and vanilla (PHOTON also predicts `t_0` from `s^(2)`; it is not
//! scored); RecGen scores tokens `P … T−1` with latents of units `≥ P / C1` from the recursive
//! stream. Evaluation runs the whole window at once (many rows per weight pass) and allocates its
//! own buffers: it is not part of the decode loop.
use super::config::{Config, ModelKind};
use super::stack::{forward, Env, Scratch, Seg};
use super::weights::{LlamaW, PhotonW, Weights};
use super::Model;
use crate::cache::{CachePolicy, KvMut, KvRef, KvState, KvView};
use crate::kernels::{act_blocks, Kernels};
use crate::quant::BlockQ8Act;
use crate::{err, Result};
use alloc::vec;
use alloc::vec::Vec;

/// Where PHOTON's level-1 conditions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latents {
    /// Teacher forcing on the encoder's states (HierGen semantics; the only choice for vanilla).
    Encoder,
    /// RecGen: units completed by the first `prompt` tokens use X1, later units x̂1 from G2 run
    /// on its own outputs, and the top stream advances from the reconstructions.
    Recursive { prompt: usize },
}

/// Rows processed per weight pass.
const ROWS: usize = 64;

/// Owned scratch for evaluation.
struct Buf {
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    cs: Vec<f32>,
    scores: Vec<f32>,
    act: Vec<BlockQ8Act>,
}

impl Buf {
    fn new(c: &Config, span: usize) -> Buf {
        let (d, f) = (c.d, c.ffn);
        let cols = d.max(f).max(c.c2 * d);
        Buf {
            xb: vec![0.0; ROWS * d],
            q: vec![0.0; ROWS * d],
            k: vec![0.0; ROWS * d],
            v: vec![0.0; ROWS * d],
            att: vec![0.0; ROWS * d],
            hb: vec![0.0; ROWS * f],
            hb2: vec![0.0; ROWS * f],
            cs: vec![0.0; ROWS * c.head_dim],
            scores: vec![0.0; span + ROWS],
            act: vec![bytemuck::Zeroable::zeroed(); act_blocks(cols, ROWS)],
        }
    }
    fn scratch(&mut self) -> Scratch<'_> {
        Scratch {
            rows: ROWS,
            xb: &mut self.xb,
            q: &mut self.q,
            k: &mut self.k,
            v: &mut self.v,
            att: &mut self.att,
            hb: &mut self.hb,
            hb2: &mut self.hb2,
            cs: &mut self.cs,
            scores: &mut self.scores,
            act: &mut self.act,
        }
    }
}

/// An owned cache (state + storage).
struct OwnedKv {
    st: KvState,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl OwnedKv {
    fn new(policy: CachePolicy, layers: usize, d: usize, cap: usize, limit: usize) -> Self {
        let st = KvState::new(policy, layers, d, cap, limit);
        let n = st.elems();
        OwnedKv {
            st,
            k: vec![0.0; n],
            v: vec![0.0; n],
        }
    }
    fn view(&mut self) -> KvView<'_> {
        KvView {
            st: &mut self.st,
            k: KvMut::F32(&mut self.k),
            v: KvMut::F32(&mut self.v),
            pk: KvRef::F32(&[]),
            pv: KvRef::F32(&[]),
        }
    }
}

fn env<'a>(m: &'a Model, kern: &'a Kernels) -> Env<'a> {
    let c = m.config();
    Env {
        kern,
        bytes: m.bytes(),
        d: c.d,
        ffn: c.ffn,
        head_dim: c.head_dim,
        eps: c.eps,
        inv_freq: &m.inv_freq,
    }
}

/// Runs `rows` (n × D) through a stack as one causal sequence with a fresh linear cache,
/// `ROWS` rows at a time; outputs in place.
fn run_causal(
    e: &Env,
    w: &super::weights::StackW,
    x: &mut [f32],
    n: usize,
    kv: &mut OwnedKv,
    b: &mut Buf,
) {
    let d = e.d;
    let mut s = b.scratch();
    let mut i = 0;
    while i < n {
        let m = (n - i).min(ROWS);
        let mut segs = [Seg {
            n: m,
            cache: Some(kv.view()),
            pos0: 0,
        }];
        forward(e, w, &mut x[i * d..(i + m) * d], &mut segs, &mut s);
        i += m;
    }
}

/// Runs many independent short sequences (each `len` rows, positions from 0, no cache), as many
/// per weight pass as fit. `x` holds `count × len` rows; outputs in place.
fn run_windows(
    e: &Env,
    w: &super::weights::StackW,
    x: &mut [f32],
    count: usize,
    len: usize,
    b: &mut Buf,
) {
    let d = e.d;
    let per = (ROWS / len).max(1);
    let mut s = b.scratch();
    let mut segs: Vec<Seg> = Vec::with_capacity(per);
    let mut i = 0;
    while i < count {
        let m = (count - i).min(per);
        segs.clear();
        for _ in 0..m {
            segs.push(Seg {
                n: len,
                cache: None,
                pos0: 0,
            });
        }
        forward(
            e,
            w,
            &mut x[i * len * d..(i + m) * len * d],
            &mut segs,
            &mut s,
        );
        i += m;
    }
}

fn add_bias(x: &mut [f32], b: &[f32]) {
    for (o, v) in x.iter_mut().zip(b) {
        *o += v;
    }
}

/// Calls `f(i, logits)` with the logits predicting `tokens[i]` for every `i` in `1..T`
/// (T = `tokens.len()`; PHOTON: a multiple of `C1·C2`). Under [`Latents::Recursive`] only
/// `i ≥ prompt` are reported.
pub fn window_logits(
    model: &Model,
    tokens: &[u32],
    latents: Latents,
    f: impl FnMut(usize, &[f32]),
) -> Result<()> {
    window_logits_with(&super::kernels(1), model, tokens, latents, f)
}

/// [`window_logits`] with given kernels (threads).
pub fn window_logits_with(
    kern: &Kernels,
    model: &Model,
    tokens: &[u32],
    latents: Latents,
    mut f: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let c = model.config();
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
        return Err(err!(
            Input,
            "token id {t} is outside the vocabulary of {}",
            c.vocab
        ));
    }
    let e = env(model, kern);
    match &model.w {
        Weights::Llama(w) => {
            if latents != Latents::Encoder {
                return Err(err!(Input, "RecGen latents need a PHOTON model"));
            }
            llama_window(model, &e, w, tokens, &mut f);
            Ok(())
        }
        Weights::Photon(w) => photon_window(model, &e, w, tokens, latents, &mut f),
    }
}

fn llama_window(
    model: &Model,
    e: &Env,
    w: &LlamaW,
    toks: &[u32],
    f: &mut dyn FnMut(usize, &[f32]),
) {
    let c = model.config();
    let (d, v, n) = (c.d, c.vocab, toks.len());
    if n < 2 {
        return;
    }
    let mut b = Buf::new(c, n);
    let mut x = vec![0.0f32; n * d];
    let embd = w.embd.view(e.bytes);
    for (i, &t) in toks.iter().enumerate() {
        embd.row_f32(t as usize, &mut x[i * d..(i + 1) * d])
            .expect("embedding row");
    }
    let mut kv = OwnedKv::new(
        CachePolicy::Linear { sink: 0, evict: 0 },
        c.layers[0],
        d,
        n,
        n,
    );
    run_causal(e, &w.stack, &mut x, n, &mut kv, &mut b);
    let mut logits = vec![0.0f32; ROWS * v];
    let mut i = 0;
    while i < n - 1 {
        let m = (n - 1 - i).min(ROWS);
        e.matmul(
            &w.output,
            &x[i * d..(i + m) * d],
            m,
            &mut logits,
            &mut b.act,
        );
        for r in 0..m {
            f(i + r + 1, &logits[r * v..(r + 1) * v]);
        }
        i += m;
    }
}

/// X1 (units × D), X2 (meta-contexts × D) and x̂1 (units × D) of a window.
#[allow(clippy::type_complexity)]
fn photon_latents(
    model: &Model,
    e: &Env,
    w: &PhotonW,
    toks: &[u32],
    latents: Latents,
    b: &mut Buf,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let c = model.config();
    let (d, c1, c2, r) = (c.d, c.c1, c.c2, c.r);
    let bt = c1 * c2;
    let n = toks.len();
    if n % bt != 0 {
        return Err(err!(
            Input,
            "a PHOTON window must be a whole number of {bt}-token meta-contexts, got {n} tokens"
        ));
    }
    let n1 = n / c1;
    let ng = n1 / c2;
    let u_p = match latents {
        Latents::Encoder => n1,
        Latents::Recursive { prompt } => (prompt / c1).min(n1),
    };
    // F1 over every unit.
    let mut x1 = vec![0.0f32; n1 * d];
    let d0 = c.d0();
    let ee = w.enc_embd.view(e.bytes);
    for (i, &t) in toks.iter().enumerate() {
        let o = (i / c1) * d + (i % c1) * d0;
        ee.row_f32(t as usize, &mut x1[o..o + d0])
            .expect("embedding row");
    }
    let mut f1 = if c.w1 > 0 {
        OwnedKv::new(CachePolicy::Ring, c.layers[0], d, c.w1, n1.max(c.w1 + ROWS))
    } else {
        OwnedKv::new(
            CachePolicy::Linear { sink: 0, evict: 0 },
            c.layers[0],
            d,
            n1,
            n1,
        )
    };
    run_causal(e, &w.enc1, &mut x1, n1, &mut f1, b);
    // Chunker + F2 over the meta-contexts completed with encoder states (all of them, or the
    // prompt's under RecGen).
    let g_p = if u_p >= n1 { ng } else { u_p / c2 };
    let mut wide = vec![0.0f32; c2 * d];
    let mut x2 = vec![0.0f32; ng * d];
    let chunk = |src: &[f32], out: &mut [f32], wide: &mut [f32], act: &mut [BlockQ8Act]| {
        super::stack::rmsnorm(wide, src, &w.chunk_norm, e.eps);
        e.matmul(&w.chunk_w, wide, 1, out, act);
        add_bias(out, &w.chunk_b);
    };
    for g in 0..g_p {
        chunk(
            &x1[g * c2 * d..(g + 1) * c2 * d],
            &mut x2[g * d..(g + 1) * d],
            &mut wide,
            &mut b.act,
        );
    }
    let mut f2 = OwnedKv::new(
        CachePolicy::Linear { sink: 0, evict: 0 },
        c.layers[1],
        d,
        ng,
        ng,
    );
    run_causal(e, &w.enc2, &mut x2[..g_p * d], g_p, &mut f2, b);
    // G2 (teacher forced) for meta-contexts < g_p: one window of R + C2 − 1 rows each.
    let mut xhat = vec![0.0f32; n1 * d];
    let len2 = r + c2 - 1;
    let mut seq = vec![0.0f32; g_p * len2 * d];
    for g in 0..g_p {
        let cond = if g == 0 {
            &w.start[..]
        } else {
            &x2[(g - 1) * d..g * d]
        };
        let o = g * len2 * d;
        e.matmul(&w.dec2_conv, cond, 1, &mut seq[o..o + r * d], &mut b.act);
        add_bias(&mut seq[o..o + r * d], &w.dec2_conv_b);
        seq[o + r * d..o + len2 * d].copy_from_slice(&x1[g * c2 * d..(g * c2 + c2 - 1) * d]);
    }
    run_windows(e, &w.dec2, &mut seq, g_p, len2, b);
    for g in 0..g_p {
        let o = (g * len2 + r - 1) * d;
        xhat[g * c2 * d..(g + 1) * c2 * d].copy_from_slice(&seq[o..o + c2 * d]);
    }
    // RecGen: the remaining meta-contexts one at a time, G2 on its own outputs.
    if g_p < ng {
        let mut g2 = OwnedKv::new(
            CachePolicy::Linear { sink: 0, evict: 0 },
            c.layers[2],
            d,
            len2,
            len2,
        );
        let mut row = vec![0.0f32; r.max(1) * d];
        let mut ins = vec![0.0f32; c2 * d];
        for g in g_p..ng {
            let cond: Vec<f32> = if g == 0 {
                w.start.clone()
            } else {
                x2[(g - 1) * d..g * d].to_vec()
            };
            g2.st.clear();
            e.matmul(&w.dec2_conv, &cond, 1, &mut row[..r * d], &mut b.act);
            add_bias(&mut row[..r * d], &w.dec2_conv_b);
            let mut nrows = r;
            for j in 0..c2 {
                {
                    let mut s = b.scratch();
                    let mut segs = [Seg {
                        n: nrows,
                        cache: Some(g2.view()),
                        pos0: 0,
                    }];
                    forward(e, &w.dec2, &mut row[..nrows * d], &mut segs, &mut s);
                }
                let est = &row[(nrows - 1) * d..nrows * d];
                let u = g * c2 + j;
                xhat[u * d..(u + 1) * d].copy_from_slice(est);
                if u < u_p {
                    ins[j * d..(j + 1) * d].copy_from_slice(&x1[u * d..(u + 1) * d]);
                } else {
                    let est = est.to_vec();
                    ins[j * d..(j + 1) * d].copy_from_slice(&est);
                }
                row[..d].copy_from_slice(&ins[j * d..(j + 1) * d]);
                nrows = 1;
            }
            let mut a2 = vec![0.0f32; d];
            chunk(&ins, &mut a2, &mut wide, &mut b.act);
            {
                let mut s = b.scratch();
                let mut segs = [Seg {
                    n: 1,
                    cache: Some(f2.view()),
                    pos0: 0,
                }];
                forward(e, &w.enc2, &mut a2, &mut segs, &mut s);
            }
            x2[g * d..(g + 1) * d].copy_from_slice(&a2);
        }
    }
    Ok((x1, x2, xhat))
}

fn photon_window(
    model: &Model,
    e: &Env,
    w: &PhotonW,
    toks: &[u32],
    latents: Latents,
    f: &mut dyn FnMut(usize, &[f32]),
) -> Result<()> {
    let c = model.config();
    let (d, v, c1, r) = (c.d, c.vocab, c.c1, c.r);
    let n1 = toks.len() / c1;
    let mut b = Buf::new(c, n1 + r + c1 + c.c2);
    let (_, _, xhat) = photon_latents(model, e, w, toks, latents, &mut b)?;
    // G1 for every unit: R + C1 − 1 rows each, then the LM head over rows R−1 … R+C1−2.
    let len1 = r + c1 - 1;
    let first_unit = match latents {
        Latents::Encoder => 0,
        Latents::Recursive { prompt } => (prompt / c1).min(n1),
    };
    let per = (ROWS / len1).max(1);
    let mut seq = vec![0.0f32; per * len1 * d];
    let mut hid = vec![0.0f32; per * c1 * d];
    let mut logits = vec![0.0f32; per * c1 * v];
    let ed = w.dec1_embd.view(e.bytes);
    let mut u0 = first_unit;
    while u0 < n1 {
        let m = (n1 - u0).min(per);
        for k in 0..m {
            let u = u0 + k;
            let o = k * len1 * d;
            e.matmul(
                &w.dec1_conv,
                &xhat[u * d..(u + 1) * d],
                1,
                &mut seq[o..o + r * d],
                &mut b.act,
            );
            add_bias(&mut seq[o..o + r * d], &w.dec1_conv_b);
            for q in 0..c1 - 1 {
                let oo = o + (r + q) * d;
                ed.row_f32(toks[u * c1 + q] as usize, &mut seq[oo..oo + d])
                    .expect("embedding row");
            }
        }
        run_windows(e, &w.dec1, &mut seq[..m * len1 * d], m, len1, &mut b);
        for k in 0..m {
            let o = (k * len1 + r - 1) * d;
            hid[k * c1 * d..(k + 1) * c1 * d].copy_from_slice(&seq[o..o + c1 * d]);
        }
        e.matmul(
            &w.output,
            &hid[..m * c1 * d],
            m * c1,
            &mut logits,
            &mut b.act,
        );
        for k in 0..m {
            for j in 0..c1 {
                let pos = (u0 + k) * c1 + j;
                let lo = match latents {
                    Latents::Encoder => 1,
                    Latents::Recursive { prompt } => prompt.max(1),
                };
                if pos >= lo {
                    let o = (k * c1 + j) * v;
                    f(pos, &logits[o..o + v]);
                }
            }
        }
        u0 += m;
    }
    Ok(())
}

/// PHOTON's latent streams over a window (each row-major, `D` wide).
#[derive(Debug, Clone, PartialEq)]
pub struct PhotonLatents {
    /// Encoder states X1, one per level-1 unit.
    pub x1: Vec<f32>,
    /// Top states X2, one per meta-context (under RecGen, made from reconstructions after the
    /// prompt).
    pub x2: Vec<f32>,
    /// Level-1 conditions x̂1, one per unit.
    pub xhat: Vec<f32>,
}

/// The latent streams of a PHOTON window (whole meta-contexts).
pub fn latents(model: &Model, tokens: &[u32], latents: Latents) -> Result<PhotonLatents> {
    latents_with(&super::kernels(1), model, tokens, latents)
}

/// [`latents`] with given kernels (threads).
pub fn latents_with(
    kern: &Kernels,
    model: &Model,
    tokens: &[u32],
    latents: Latents,
) -> Result<PhotonLatents> {
    let c = model.config();
    let w = match &model.w {
        Weights::Photon(w) => w,
        _ => return Err(err!(Input, "latents need a PHOTON model")),
    };
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
        return Err(err!(
            Input,
            "token id {t} is outside the vocabulary of {}",
            c.vocab
        ));
    }
    let e = env(model, kern);
    let n1 = tokens.len() / c.c1;
    let mut b = Buf::new(c, n1 + c.r + c.c1 + c.c2);
    let (x1, x2, xhat) = photon_latents(model, &e, w, tokens, latents, &mut b)?;
    Ok(PhotonLatents { x1, x2, xhat })
}

/// Log-softmax of `logits` into `out`; returns log-sum-exp.
pub fn log_softmax(logits: &[f32], out: &mut [f32]) -> f32 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f64 = logits.iter().map(|&x| libm::exp((x - m) as f64)).sum();
    let lse = m + libm::log(s) as f32;
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = x - lse;
    }
    lse
}

/// Perplexity over a token stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// Tokens scored.
    pub tokens: usize,
    /// Mean negative log-likelihood (nats).
    pub nll: f64,
    pub ppl: f64,
}

/// Splits `stream` into consecutive non-overlapping windows of `window` tokens (an incomplete
/// last window is dropped; `windows` limits how many, 0 = all).
fn windows(stream: &[u32], window: usize, limit: usize) -> impl Iterator<Item = &[u32]> {
    let n = stream.len() / window.max(1);
    let n = if limit > 0 { n.min(limit) } else { n };
    stream.chunks_exact(window.max(1)).take(n)
}

/// Perplexity of `model` over `stream` in `window`-token windows (scored tokens as in
/// training/train.py). `max_windows` = 0 scores every window.
pub fn perplexity(
    model: &Model,
    stream: &[u32],
    window: usize,
    latents: Latents,
    max_windows: usize,
    threads: usize,
) -> Result<Perplexity> {
    let kern = super::kernels(threads);
    let v = model.vocab_size();
    let mut lp = vec![0.0f32; v];
    let (mut sum, mut count) = (0.0f64, 0usize);
    for win in windows(stream, window, max_windows) {
        window_logits_with(&kern, model, win, latents, |i, logits| {
            log_softmax(logits, &mut lp);
            sum -= lp[win[i] as usize] as f64;
            count += 1;
        })?;
    }
    if count == 0 {
        return Err(err!(Input, "no window of {window} tokens to score"));
    }
    let nll = sum / count as f64;
    Ok(Perplexity {
        tokens: count,
        nll,
        ppl: libm::exp(nll),
    })
}

/// Agreement of a model's run with a reference model's run over the same windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    pub positions: usize,
    /// Mean KL(reference ‖ model), nats.
    pub kl_mean: f64,
    pub kl_max: f64,
    /// Fraction of positions where both argmaxes agree.
    pub top1: f64,
    /// Perplexity of each over the same positions.
    pub ppl_reference: f64,
    pub ppl_model: f64,
}

/// Compares `model` against `reference` (e.g. a quantized file against the float one).
pub fn compare(
    reference: &Model,
    model: &Model,
    stream: &[u32],
    window: usize,
    latents: Latents,
    max_windows: usize,
    threads: usize,
) -> Result<Agreement> {
    let kern = super::kernels(threads);
    let v = reference.vocab_size();
    if model.vocab_size() != v || model.kind() != reference.kind() {
        return Err(err!(Input, "the two models differ in kind or vocabulary"));
    }
    let mut a = Agreement {
        positions: 0,
        kl_mean: 0.0,
        kl_max: 0.0,
        top1: 0.0,
        ppl_reference: 0.0,
        ppl_model: 0.0,
    };
    let (mut nll_r, mut nll_m, mut agree) = (0.0f64, 0.0f64, 0usize);
    let mut lp_r = vec![0.0f32; v];
    let mut lp_m = vec![0.0f32; v];
    for win in windows(stream, window, max_windows) {
        let mut refrows: Vec<(usize, Vec<f32>)> = Vec::new();
        // Both models on the same kernels (the `threads` given).
        window_logits_with(&kern, reference, win, latents, |i, l| {
            refrows.push((i, l.to_vec()))
        })?;
        let mut k = 0;
        window_logits_with(&kern, model, win, latents, |i, l| {
            let (ri, rl) = &refrows[k];
            debug_assert_eq!(*ri, i);
            k += 1;
            log_softmax(rl, &mut lp_r);
            log_softmax(l, &mut lp_m);
            let kl: f64 = lp_r
                .iter()
                .zip(&lp_m)
                .map(|(&p, &q)| libm::exp(p as f64) * (p as f64 - q as f64))
                .sum();
            a.kl_mean += kl;
            a.kl_max = a.kl_max.max(kl);
            agree += (argmax(&lp_r) == argmax(&lp_m)) as usize;
            nll_r -= lp_r[win[i] as usize] as f64;
            nll_m -= lp_m[win[i] as usize] as f64;
            a.positions += 1;
        })?;
    }
    if a.positions == 0 {
        return Err(err!(Input, "no window of {window} tokens to compare"));
    }
    let n = a.positions as f64;
    a.kl_mean /= n;
    a.top1 = agree as f64 / n;
    a.ppl_reference = libm::exp(nll_r / n);
    a.ppl_model = libm::exp(nll_m / n);
    Ok(a)
}

/// Index of the largest value (ties to the lowest index).
pub fn argmax(x: &[f32]) -> usize {
    let mut b = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[b] {
            b = i;
        }
    }
    b
}

/// The evaluation window for a stream of `n` tokens: the trained context, or, for a shorter
/// stream, the largest whole number of meta-contexts (PHOTON) or tokens (vanilla) that fits;
/// 0 when not even one meta-context does. `photon-perplexity` and the quantizer's gate use it.
pub fn default_window(model: &Model, n: usize) -> usize {
    let unit = match model.kind() {
        ModelKind::Photon => model.config().meta_tokens(),
        ModelKind::Llama => 1,
    };
    model.trained_context().min(n / unit * unit)
}

/// Kind check helper for callers.
pub fn supports_recgen(model: &Model) -> bool {
    model.kind() == ModelKind::Photon
}

/// One position of a saved reference run: the top-k of its log-softmax.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    /// Index in the stream of the token this position predicts.
    pub pos: u32,
    /// Log-probability of that token.
    pub target_logprob: f32,
    /// Log-sum-exp of the logits.
    pub lse: f32,
    /// Top-k token ids, most likely first, and their log-probabilities.
    pub ids: Vec<u32>,
    pub logprobs: Vec<f32>,
}

/// Magic of a saved top-k file.
pub const TOPK_MAGIC: [u8; 4] = *b"PHTK";

/// Runs `model` like [`perplexity`] and appends its top-`k` log-probabilities per scored position
/// to `out` in the saved-logits format (little-endian):
/// `"PHTK" | version u32 = 1 | k u32 | vocab u32 | n u64 | n × (pos u32, target_logprob f32,
/// lse f32, k × id u32, k × logprob f32)`.
#[allow(clippy::too_many_arguments)]
pub fn save_topk(
    model: &Model,
    stream: &[u32],
    window: usize,
    latents: Latents,
    max_windows: usize,
    threads: usize,
    k: usize,
    out: &mut Vec<u8>,
) -> Result<usize> {
    let kern = super::kernels(threads);
    let v = model.vocab_size();
    let k = k.min(v).max(1);
    let mut lp = vec![0.0f32; v];
    let mut idx: Vec<u32> = (0..v as u32).collect();
    let mut body = Vec::new();
    let mut n = 0u64;
    for (wi, win) in windows(stream, window, max_windows).enumerate() {
        let base = wi * window;
        window_logits_with(&kern, model, win, latents, |i, l| {
            let lse = log_softmax(l, &mut lp);
            idx.sort_unstable_by(|&a, &b| {
                lp[b as usize]
                    .partial_cmp(&lp[a as usize])
                    .unwrap_or(core::cmp::Ordering::Equal)
                    .then(a.cmp(&b))
            });
            body.extend_from_slice(&((base + i) as u32).to_le_bytes());
            body.extend_from_slice(&lp[win[i] as usize].to_le_bytes());
            body.extend_from_slice(&lse.to_le_bytes());
            for &t in &idx[..k] {
                body.extend_from_slice(&t.to_le_bytes());
            }
            for &t in &idx[..k] {
                body.extend_from_slice(&lp[t as usize].to_le_bytes());
            }
            n += 1;
        })?;
    }
    out.extend_from_slice(&TOPK_MAGIC);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(k as u32).to_le_bytes());
    out.extend_from_slice(&(v as u32).to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(n as usize)
}

/// Reads a saved top-k file: `(vocab, positions)`.
pub fn read_topk(bytes: &[u8]) -> Result<(usize, Vec<TopK>)> {
    let u32_at = |o: usize| -> Result<u32> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| err!(Format, "saved logits truncated at byte {o}"))
    };
    if bytes.len() < 24 || bytes[..4] != TOPK_MAGIC {
        return Err(err!(Format, "not a saved top-k logits file (magic PHTK)"));
    }
    if u32_at(4)? != 1 {
        return Err(err!(Unsupported, "saved logits version {}", u32_at(4)?));
    }
    let k = u32_at(8)? as usize;
    let vocab = u32_at(12)? as usize;
    let n = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let rec = 12 + 8 * k;
    let need = (n as u128) * rec as u128 + 24;
    if k == 0 || need != bytes.len() as u128 {
        return Err(err!(
            Format,
            "saved logits: {n} positions of top-{k} need {need} bytes, file has {}",
            bytes.len()
        ));
    }
    let f32_at = |o: usize| -> Result<f32> { Ok(f32::from_bits(u32_at(o)?)) };
    let mut out = Vec::with_capacity(n as usize);
    for p in 0..n as usize {
        let o = 24 + p * rec;
        let mut t = TopK {
            pos: u32_at(o)?,
            target_logprob: f32_at(o + 4)?,
            lse: f32_at(o + 8)?,
            ids: Vec::with_capacity(k),
            logprobs: Vec::with_capacity(k),
        };
        for j in 0..k {
            let id = u32_at(o + 12 + 4 * j)?;
            if id as usize >= vocab {
                return Err(err!(Format, "saved logits: token id {id} ≥ vocab {vocab}"));
            }
            t.ids.push(id);
            t.logprobs.push(f32_at(o + 12 + 4 * k + 4 * j)?);
        }
        out.push(t);
    }
    Ok((vocab, out))
}

/// Compares `model` against a saved reference run (same stream, window and latents):
/// top-1 agreement, perplexities, and KL(reference ‖ model) over the reference's top-k plus one
/// bucket for the remaining probability mass.
#[allow(clippy::too_many_arguments)]
pub fn compare_topk(
    model: &Model,
    stream: &[u32],
    window: usize,
    latents: Latents,
    max_windows: usize,
    threads: usize,
    saved: &[TopK],
) -> Result<Agreement> {
    let kern = super::kernels(threads);
    let v = model.vocab_size();
    let mut lp = vec![0.0f32; v];
    let mut a = Agreement {
        positions: 0,
        kl_mean: 0.0,
        kl_max: 0.0,
        top1: 0.0,
        ppl_reference: 0.0,
        ppl_model: 0.0,
    };
    let (mut nll_r, mut nll_m, mut agree) = (0.0f64, 0.0f64, 0usize);
    let mut it = saved.iter();
    let mut bad = None;
    for (wi, win) in windows(stream, window, max_windows).enumerate() {
        let base = wi * window;
        window_logits_with(&kern, model, win, latents, |i, l| {
            let Some(r) = it.next() else {
                bad = Some(base + i);
                return;
            };
            if r.pos as usize != base + i {
                bad = Some(base + i);
                return;
            }
            log_softmax(l, &mut lp);
            let (mut kl, mut pr, mut qm) = (0.0f64, 0.0f64, 0.0f64);
            for (&id, &lr) in r.ids.iter().zip(&r.logprobs) {
                let p = libm::exp(lr as f64);
                kl += p * (lr as f64 - lp[id as usize] as f64);
                pr += p;
                qm += libm::exp(lp[id as usize] as f64);
            }
            let (pt, qt) = ((1.0 - pr).max(0.0), (1.0 - qm).max(1e-12));
            if pt > 1e-12 {
                kl += pt * (libm::log(pt) - libm::log(qt));
            }
            a.kl_mean += kl;
            a.kl_max = a.kl_max.max(kl);
            agree += (r.ids.first().map(|&t| t as usize) == Some(argmax(&lp))) as usize;
            nll_r -= r.target_logprob as f64;
            nll_m -= lp[win[i] as usize] as f64;
            a.positions += 1;
        })?;
    }
    if let Some(p) = bad {
        return Err(err!(
            Input,
            "saved logits do not match this stream/window at position {p}"
        ));
    }
    if a.positions == 0 {
        return Err(err!(Input, "no position to compare"));
    }
    let n = a.positions as f64;
    a.kl_mean /= n;
    a.top1 = agree as f64 / n;
    a.ppl_reference = libm::exp(nll_r / n);
    a.ppl_model = libm::exp(nll_m / n);
    Ok(a)
}
