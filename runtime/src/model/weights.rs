//! Weight tables: every matrix is a byte range of the model's bytes (zero copy); norm weights,
//! biases and the start latent are widened to f32 at load.
use super::config::{Config, ModelKind};
use super::source::{Source, TensorDesc};
use crate::kernels::Matrix;
use crate::quant::{self, GgmlType};
use crate::{err, Result};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

/// A matrix of `rows` outputs × `cols` inputs at `off..off+len` of the model's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub off: usize,
    pub len: usize,
}

impl Mat {
    #[inline]
    pub fn view<'a>(&self, bytes: &'a [u8]) -> Matrix<'a> {
        Matrix {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data: &bytes[self.off..self.off + self.len],
        }
    }
}

/// One LLaMA block. Shapes are PyTorch's `[out, in]`.
#[derive(Debug, Clone)]
pub(crate) struct LayerW {
    pub attn_norm: Vec<f32>, // [D]
    pub wq: Mat,             // [D, D]
    pub wk: Mat,             // [D, D]
    pub wv: Mat,             // [D, D]
    pub wo: Mat,             // [D, D]
    pub ffn_norm: Vec<f32>,  // [D]
    pub gate: Mat,           // [I, D]  W1
    pub up: Mat,             // [I, D]  W3
    pub down: Mat,           // [D, I]  W2
}

/// A LLaMA stack: blocks and the final norm.
#[derive(Debug, Clone)]
pub(crate) struct StackW {
    pub layers: Vec<LayerW>,
    pub norm: Vec<f32>, // [D]
}

#[derive(Debug, Clone)]
pub(crate) struct LlamaW {
    pub embd: Mat, // [V, D]
    pub stack: StackW,
    pub output: Mat, // [V, D]
}

#[derive(Debug, Clone)]
pub(crate) struct PhotonW {
    pub enc_embd: Mat,         // [V, D/C1]   E_enc
    pub enc1: StackW,          // F1
    pub chunk_norm: Vec<f32>,  // [C2·D]
    pub chunk_w: Mat,          // [D, C2·D]
    pub chunk_b: Vec<f32>,     // [D]
    pub enc2: StackW,          // F2
    pub start: Vec<f32>,       // [D]  s^(2)
    pub dec2_conv: Mat,        // [R·D, D]  U2
    pub dec2_conv_b: Vec<f32>, // [R·D]
    pub dec2: StackW,          // G2
    pub dec1_conv: Mat,        // [R·D, D]  U1
    pub dec1_conv_b: Vec<f32>, // [R·D]
    pub dec1_embd: Mat,        // [V, D]  E_dec
    pub dec1: StackW,          // G1
    pub output: Mat,           // [V, D]  LM head
}

#[derive(Debug, Clone)]
pub(crate) enum Weights {
    Llama(LlamaW),
    Photon(alloc::boxed::Box<PhotonW>),
}

struct Loader<'s> {
    src: &'s dyn Source,
    bytes: &'s [u8],
    total: usize,
}

fn dims_str(d: &[u64]) -> alloc::string::String {
    format!("{d:?}")
}

impl Loader<'_> {
    fn find(&self, name: &str) -> Result<TensorDesc> {
        let t = self
            .src
            .tensor(name)
            .ok_or_else(|| err!(Model, "tensor {name} is missing"))?;
        let end = t
            .offset
            .checked_add(t.len)
            .ok_or_else(|| err!(Format, "tensor {name}: offset overflows"))?;
        if end > self.bytes.len() {
            return Err(err!(
                Format,
                "tensor {name} extends past the end of the file"
            ));
        }
        let n: u64 = t.dims.iter().product();
        let need = t.ty.bytes_for(n)?;
        if need != t.len as u64 {
            return Err(err!(
                Format,
                "tensor {name}: {} × {n} elements need {need} bytes, has {}",
                t.ty.name(),
                t.len
            ));
        }
        Ok(t)
    }

    /// A `[rows, cols]` matrix (ggml dims `[cols, rows]`), any supported type.
    fn mat(&mut self, name: &str, rows: usize, cols: usize) -> Result<Mat> {
        let t = self.find(name)?;
        if t.dims.len() != 2 || t.dims[0] != cols as u64 || t.dims[1] != rows as u64 {
            return Err(err!(
                Model,
                "tensor {name} has ggml dims {}, expected [{cols}, {rows}]",
                dims_str(&t.dims)
            ));
        }
        if cols % t.ty.block_elems() != 0 {
            return Err(err!(
                Model,
                "tensor {name}: row of {cols} is not a whole number of {} blocks",
                t.ty.name()
            ));
        }
        self.total += t.len;
        // Validates once more through the kernel type.
        Matrix::new(t.ty, rows, cols, &self.bytes[t.offset..t.offset + t.len])?;
        Ok(Mat {
            ty: t.ty,
            rows,
            cols,
            off: t.offset,
            len: t.len,
        })
    }

    /// A vector of `n` values widened to f32.
    fn vec(&mut self, name: &str, n: usize) -> Result<Vec<f32>> {
        let t = self.find(name)?;
        let ok = match t.dims.len() {
            1 => t.dims[0] == n as u64,
            2 => t.dims[0] == n as u64 && t.dims[1] == 1,
            _ => false,
        };
        if !ok {
            return Err(err!(
                Model,
                "tensor {name} has ggml dims {}, expected [{n}]",
                dims_str(&t.dims)
            ));
        }
        self.total += t.len;
        let mut out = vec![0.0; n];
        quant::dequantize_row(t.ty, &self.bytes[t.offset..t.offset + t.len], &mut out)?;
        if out.iter().any(|v| !v.is_finite()) {
            return Err(err!(Model, "tensor {name} holds non-finite values"));
        }
        Ok(out)
    }

    fn stack(&mut self, p: &str, n: usize, d: usize, ffn: usize) -> Result<StackW> {
        let mut layers = Vec::with_capacity(n);
        for l in 0..n {
            let b = format!("{p}blk.{l}.");
            layers.push(LayerW {
                attn_norm: self.vec(&format!("{b}attn_norm.weight"), d)?,
                wq: self.mat(&format!("{b}attn_q.weight"), d, d)?,
                wk: self.mat(&format!("{b}attn_k.weight"), d, d)?,
                wv: self.mat(&format!("{b}attn_v.weight"), d, d)?,
                wo: self.mat(&format!("{b}attn_output.weight"), d, d)?,
                ffn_norm: self.vec(&format!("{b}ffn_norm.weight"), d)?,
                gate: self.mat(&format!("{b}ffn_gate.weight"), ffn, d)?,
                up: self.mat(&format!("{b}ffn_up.weight"), ffn, d)?,
                down: self.mat(&format!("{b}ffn_down.weight"), d, ffn)?,
            });
        }
        // A stack with more blocks than the metadata says is a malformed file.
        if self
            .src
            .tensor(&format!("{p}blk.{n}.attn_q.weight"))
            .is_some()
        {
            return Err(err!(
                Model,
                "tensor {p}blk.{n}.attn_q.weight exists but the metadata says {n} blocks"
            ));
        }
        Ok(StackW {
            layers,
            norm: self.vec(&format!("{p}output_norm.weight"), d)?,
        })
    }
}

/// Loads and checks every tensor. Returns the weights and the bytes of tensor data used.
pub(crate) fn load(cfg: &Config, src: &dyn Source, bytes: &[u8]) -> Result<(Weights, usize)> {
    let mut ld = Loader {
        src,
        bytes,
        total: 0,
    };
    let (d, v, ffn) = (cfg.d, cfg.vocab, cfg.ffn);
    let w = match cfg.kind {
        ModelKind::Llama => {
            let embd = ld.mat("token_embd.weight", v, d)?;
            let stack = ld.stack("", cfg.layers[0], d, ffn)?;
            // llama.cpp files may tie the LM head to the embedding.
            let output = if src.tensor("output.weight").is_some() {
                ld.mat("output.weight", v, d)?
            } else {
                embd
            };
            Weights::Llama(LlamaW {
                embd,
                stack,
                output,
            })
        }
        ModelKind::Photon => {
            let (c2, r) = (cfg.c2, cfg.r);
            Weights::Photon(alloc::boxed::Box::new(PhotonW {
                enc_embd: ld.mat("enc.token_embd.weight", v, cfg.d0())?,
                enc1: ld.stack("enc1.", cfg.layers[0], d, ffn)?,
                chunk_norm: ld.vec("chunk2.norm.weight", c2 * d)?,
                chunk_w: ld.mat("chunk2.weight", d, c2 * d)?,
                chunk_b: ld.vec("chunk2.bias", d)?,
                enc2: ld.stack("enc2.", cfg.layers[1], d, ffn)?,
                start: ld.vec("dec2.start", d)?,
                dec2_conv: ld.mat("dec2.conv.weight", r * d, d)?,
                dec2_conv_b: ld.vec("dec2.conv.bias", r * d)?,
                dec2: ld.stack("dec2.", cfg.layers[2], d, ffn)?,
                dec1_conv: ld.mat("dec1.conv.weight", r * d, d)?,
                dec1_conv_b: ld.vec("dec1.conv.bias", r * d)?,
                dec1_embd: ld.mat("dec1.token_embd.weight", v, d)?,
                dec1: ld.stack("dec1.", cfg.layers[3], d, ffn)?,
                output: ld.mat("output.weight", v, d)?,
            }))
        }
    };
    Ok((w, ld.total))
}
