//! A naive dense f32 re-implementation of the PyTorch reference (training/model.py), reading
//! tensors straight from a GGUF file: the oracle for the engine's incremental, cached, batched
//! paths on random-weight models.
#![allow(dead_code, clippy::type_complexity, clippy::needless_range_loop)]
use photon::gguf::Gguf;
use photon::quant::dequantize_row;
use std::collections::HashMap;

pub struct Ref {
    pub t: HashMap<String, (Vec<f32>, usize, usize)>,
    pub photon: bool,
    pub d: usize,
    pub heads: usize,
    pub c1: usize,
    pub c2: usize,
    pub r: usize,
    pub w1: usize,
    pub layers: [usize; 4],
    pub vocab: usize,
}

fn rms(x: &[f32], w: &[f32]) -> Vec<f32> {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ss + 1e-5).sqrt();
    x.iter().zip(w).map(|(v, g)| v * inv * g).collect()
}

impl Ref {
    pub fn new(bytes: &[u8]) -> Ref {
        let g = Gguf::parse(bytes).unwrap();
        let mut t = HashMap::new();
        for ti in g.tensors() {
            let n = ti.n_elements() as usize;
            let mut v = vec![0.0; n];
            dequantize_row(ti.ty, ti.data, &mut v).unwrap();
            let cols = ti.dims[0] as usize;
            t.insert(ti.name.to_string(), (v, n / cols, cols));
        }
        let arch = g.str("general.architecture").unwrap();
        let photon = arch == "photon";
        let u = |k: &str| g.u32(&format!("{arch}.{k}")).unwrap() as usize;
        let d = u("embedding_length");
        let heads = u("attention.head_count");
        let mut layers = [u("block_count"), 0, 0, 0];
        let (mut c1, mut c2, mut r, mut w1) = (1, 1, 0, 0);
        if photon {
            let cs = g.array("photon.chunk_sizes").unwrap().to_u32_vec().unwrap();
            c1 = cs[0] as usize;
            c2 = cs[1] as usize;
            r = g.u32("photon.prefix_length").unwrap() as usize;
            w1 = g.u32("photon.enc1.window").unwrap() as usize;
            for (i, s) in ["enc1", "enc2", "dec2", "dec1"].iter().enumerate() {
                layers[i] = g.u32(&format!("photon.{s}.block_count")).unwrap() as usize;
            }
        }
        Ref {
            t,
            photon,
            d,
            heads,
            c1,
            c2,
            r,
            w1,
            layers,
            vocab: u("vocab_size"),
        }
    }

    fn w(&self, n: &str) -> &[f32] {
        &self.t.get(n).unwrap_or_else(|| panic!("{n}")).0
    }

    pub fn linear(&self, n: &str, x: &[f32]) -> Vec<f32> {
        let (w, rows, cols) = self.t.get(n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(x.len(), *cols);
        (0..*rows)
            .map(|r| {
                w[r * cols..(r + 1) * cols]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    }

    fn row(&self, n: &str, i: usize) -> Vec<f32> {
        let (w, _, cols) = self.t.get(n).unwrap();
        w[i * cols..(i + 1) * cols].to_vec()
    }

    fn rope(&self, x: &mut [f32], pos: usize) {
        for head in x.chunks_exact_mut(64) {
            for i in 0..32 {
                let inv = 10000f32.powf(-((2 * i) as f32) / 64.0);
                let ang = pos as f32 * inv;
                let (s, c) = (ang.sin(), ang.cos());
                let (a, b) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = a * c - b * s;
                head[2 * i + 1] = a * s + b * c;
            }
        }
    }

    /// Full causal stack over `xs` (positions 0..T), optional sliding window.
    pub fn stack(&self, p: &str, n_layers: usize, xs: &[Vec<f32>], window: usize) -> Vec<Vec<f32>> {
        let t = xs.len();
        let d = self.d;
        let mut x: Vec<Vec<f32>> = xs.to_vec();
        for l in 0..n_layers {
            let b = format!("{p}blk.{l}.");
            let xb: Vec<Vec<f32>> = x
                .iter()
                .map(|r| rms(r, self.w(&format!("{b}attn_norm.weight"))))
                .collect();
            let mut q: Vec<Vec<f32>> = xb
                .iter()
                .map(|r| self.linear(&format!("{b}attn_q.weight"), r))
                .collect();
            let mut k: Vec<Vec<f32>> = xb
                .iter()
                .map(|r| self.linear(&format!("{b}attn_k.weight"), r))
                .collect();
            let v: Vec<Vec<f32>> = xb
                .iter()
                .map(|r| self.linear(&format!("{b}attn_v.weight"), r))
                .collect();
            for i in 0..t {
                self.rope(&mut q[i], i);
                self.rope(&mut k[i], i);
            }
            for i in 0..t {
                let mut att = vec![0.0f32; d];
                for h in 0..d / 64 {
                    let lo = if window > 0 {
                        (i + 1).saturating_sub(window)
                    } else {
                        0
                    };
                    let sc: Vec<f32> = (lo..=i)
                        .map(|j| {
                            (0..64)
                                .map(|e| q[i][h * 64 + e] * k[j][h * 64 + e])
                                .sum::<f32>()
                                / 8.0
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let ex: Vec<f32> = sc.iter().map(|s| (s - m).exp()).collect();
                    let z: f32 = ex.iter().sum();
                    for (jj, j) in (lo..=i).enumerate() {
                        for e in 0..64 {
                            att[h * 64 + e] += ex[jj] / z * v[j][h * 64 + e];
                        }
                    }
                }
                let o = self.linear(&format!("{b}attn_output.weight"), &att);
                for e in 0..d {
                    x[i][e] += o[e];
                }
                let hb = rms(&x[i], self.w(&format!("{b}ffn_norm.weight")));
                let g = self.linear(&format!("{b}ffn_gate.weight"), &hb);
                let u = self.linear(&format!("{b}ffn_up.weight"), &hb);
                let a: Vec<f32> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                    .collect();
                let o = self.linear(&format!("{b}ffn_down.weight"), &a);
                for e in 0..d {
                    x[i][e] += o[e];
                }
            }
        }
        x.iter()
            .map(|r| rms(r, self.w(&format!("{p}output_norm.weight"))))
            .collect()
    }

    pub fn llama_logits(&self, toks: &[u32]) -> Vec<Vec<f32>> {
        let xs: Vec<Vec<f32>> = toks
            .iter()
            .map(|&t| self.row("token_embd.weight", t as usize))
            .collect();
        let h = self.stack("", self.layers[0], &xs, 0);
        h.iter().map(|r| self.linear("output.weight", r)).collect()
    }

    pub fn encode1(&self, toks: &[u32]) -> Vec<Vec<f32>> {
        let a1: Vec<Vec<f32>> = toks
            .chunks_exact(self.c1)
            .map(|u| {
                u.iter()
                    .flat_map(|&t| self.row("enc.token_embd.weight", t as usize))
                    .collect()
            })
            .collect();
        self.stack("enc1.", self.layers[0], &a1, self.w1)
    }

    pub fn chunk(&self, group: &[Vec<f32>]) -> Vec<f32> {
        let cat: Vec<f32> = group.iter().flatten().cloned().collect();
        let n = rms(&cat, self.w("chunk2.norm.weight"));
        let mut o = self.linear("chunk2.weight", &n);
        for (a, b) in o.iter_mut().zip(self.w("chunk2.bias")) {
            *a += b;
        }
        o
    }

    fn conv(&self, p: &str, c: &[f32]) -> Vec<Vec<f32>> {
        let mut o = self.linear(&format!("{p}.conv.weight"), c);
        for (a, b) in o.iter_mut().zip(self.w(&format!("{p}.conv.bias"))) {
            *a += b;
        }
        o.chunks_exact(self.d).map(|r| r.to_vec()).collect()
    }

    /// x̂1 for every unit; units < u_p enter G2/chunker as X1, later ones recursively (RecGen).
    /// `toks.len()` a multiple of C1·C2. Returns (xhat, x1, x2).
    pub fn latents(
        &self,
        toks: &[u32],
        u_p: Option<usize>,
    ) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let x1 = self.encode1(toks);
        let n1 = x1.len();
        let c2 = self.c2;
        let g_n = n1 / c2;
        let u_p = u_p.unwrap_or(n1).min(n1);
        let start = self.w("dec2.start").to_vec();
        let mut a2: Vec<Vec<f32>> = vec![];
        let mut x2: Vec<Vec<f32>> = vec![];
        let mut xh = vec![];
        for g in 0..g_n {
            let cond = if g == 0 {
                start.clone()
            } else {
                x2[g - 1].clone()
            };
            let pre = self.conv("dec2", &cond);
            let mut ins: Vec<Vec<f32>> = vec![];
            for j in 0..c2 {
                let u = g * c2 + j;
                let mut seq = pre.clone();
                seq.extend(ins.iter().cloned());
                let out = self.stack("dec2.", self.layers[2], &seq, 0);
                let est = out[self.r - 1 + j].clone();
                xh.push(est.clone());
                ins.push(if u < u_p { x1[u].clone() } else { est });
            }
            a2.push(self.chunk(&ins));
            x2 = self.stack("enc2.", self.layers[1], &a2, 0);
        }
        (xh, x1, x2)
    }

    /// Logits of every token position (position i predicts token i) from conditions x̂1.
    pub fn decode1(&self, xhat: &[Vec<f32>], toks: &[u32]) -> Vec<Vec<f32>> {
        let mut out = vec![];
        for (u, c) in xhat.iter().enumerate() {
            let mut seq = self.conv("dec1", c);
            for q in 0..self.c1 - 1 {
                seq.push(self.row("dec1.token_embd.weight", toks[u * self.c1 + q] as usize));
            }
            let h = self.stack("dec1.", self.layers[3], &seq, 0);
            for j in 0..self.c1 {
                out.push(self.linear("output.weight", &h[self.r - 1 + j]));
            }
        }
        out
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn log_softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = x.iter().map(|v| (v - m).exp()).sum::<f32>().ln() + m;
    x.iter().map(|v| v - z).collect()
}

use photon::gguf::{GgufWriter, OwnedValue, Value};
use photon::quant::GgmlType;

pub fn owned(v: &Value) -> OwnedValue {
    match v {
        Value::U8(x) => OwnedValue::U8(*x),
        Value::I8(x) => OwnedValue::I8(*x),
        Value::U16(x) => OwnedValue::U16(*x),
        Value::I16(x) => OwnedValue::I16(*x),
        Value::U32(x) => OwnedValue::U32(*x),
        Value::I32(x) => OwnedValue::I32(*x),
        Value::F32(x) => OwnedValue::F32(*x),
        Value::Bool(x) => OwnedValue::Bool(*x),
        Value::Str(s) => OwnedValue::Str(s.to_string()),
        Value::U64(x) => OwnedValue::U64(*x),
        Value::I64(x) => OwnedValue::I64(*x),
        Value::F64(x) => OwnedValue::F64(*x),
        Value::Array(a) => OwnedValue::Array(a.elem_type(), a.iter().map(|x| owned(&x)).collect()),
    }
}

/// A tensor as the rewriter sees it: name, type, ggml dims, raw bytes.
pub type T = (String, GgmlType, Vec<u64>, Vec<u8>);

/// Rewrites a GGUF: `meta` may replace (Some) or drop (None) each value and `extra` adds keys;
/// `tensors` maps each tensor to zero or more tensors.
pub fn rewrite(
    bytes: &[u8],
    meta: impl Fn(&str, OwnedValue) -> Option<OwnedValue>,
    extra: &[(&str, OwnedValue)],
    tensors: impl Fn(T) -> Vec<T>,
) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in g.metadata() {
        if *k == "general.alignment" {
            continue;
        }
        if let Some(v) = meta(k, owned(v)) {
            w.add(k, v).unwrap();
        }
    }
    for (k, v) in extra {
        w.add(k, v.clone()).unwrap();
    }
    for t in g.tensors() {
        for (n, ty, dims, data) in
            tensors((t.name.to_string(), t.ty, t.dims.clone(), t.data.to_vec()))
        {
            w.add_tensor(&n, ty, &dims, data).unwrap();
        }
    }
    w.to_bytes().unwrap()
}
