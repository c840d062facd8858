//! Weight matrix × vectors, for every tensor type, with one dispatch point.
//!
//! `Kernels::matmul` computes `out[v·rows + r] = Σ_k W[r,k] · x[v·cols + k]` for `v < n_vec`.
//! Quantized weights (Q8_0, Q4_0) take activations quantized on the fly to Q8_0 blocks
//! ([`crate::quant::quantize_act_block`]); float weights take the f32 activations directly.
//! The scalar path here is the reference every SIMD path is tested against.
use crate::quant::{self, BlockQ8Act, GgmlType, QK};
use crate::{err, Result};

/// A weight matrix of `rows` outputs × `cols` inputs, row-major, borrowed from a file.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

impl<'a> Matrix<'a> {
    /// Checks that `data` holds exactly `rows × cols` elements of `ty`.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self> {
        let row_bytes = ty.bytes_for(cols as u64)?;
        let need = row_bytes
            .checked_mul(rows as u64)
            .ok_or_else(|| err!(Format, "matrix {rows}×{cols} overflows"))?;
        if data.len() as u64 != need {
            return Err(err!(
                Format,
                "matrix {rows}×{cols} {} needs {need} bytes, has {}",
                ty.name(),
                data.len()
            ));
        }
        Ok(Matrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    /// Raw bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Row `r` widened to f32 (for embedding lookups).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<()> {
        quant::dequantize_row(self.ty, self.row(r), out)
    }
}

/// Activation blocks needed by `matmul` for `n_vec` vectors of `cols` values.
pub fn act_blocks(cols: usize, n_vec: usize) -> usize {
    cols.div_ceil(QK) * n_vec
}

/// The instruction set a [`Kernels`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
}

/// The kernels chosen for this CPU.
#[derive(Debug, Clone)]
pub struct Kernels {
    isa: Isa,
}

impl Kernels {
    /// The best kernels this CPU supports.
    pub fn detect() -> Self {
        Kernels { isa: Isa::Scalar }
    }

    /// The scalar reference kernels.
    pub fn scalar() -> Self {
        Kernels { isa: Isa::Scalar }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `out[v·rows + r] = Σ_k W[r,k]·x[v·cols + k]` for every row `r` and vector `v < n_vec`.
    /// `act` is scratch for the quantized activations, at least [`act_blocks`] long.
    pub fn matmul(
        &self,
        w: &Matrix,
        x: &[f32],
        n_vec: usize,
        out: &mut [f32],
        act: &mut [BlockQ8Act],
    ) {
        assert!(x.len() >= n_vec * w.cols && out.len() >= n_vec * w.rows);
        match w.ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 => {
                let nb = w.cols / QK;
                for v in 0..n_vec {
                    let xv = &x[v * w.cols..(v + 1) * w.cols];
                    for (b, blk) in act[v * nb..(v + 1) * nb].iter_mut().enumerate() {
                        *blk = quant::quantize_act_block(&xv[b * QK..(b + 1) * QK]);
                    }
                }
                for v in 0..n_vec {
                    let a = &act[v * nb..(v + 1) * nb];
                    for r in 0..w.rows {
                        out[v * w.rows + r] = scalar::dot_quant_row(w.ty, w.row(r), a);
                    }
                }
            }
            _ => {
                for v in 0..n_vec {
                    let xv = &x[v * w.cols..(v + 1) * w.cols];
                    for r in 0..w.rows {
                        out[v * w.rows + r] = scalar::dot_float_row(w.ty, w.row(r), xv);
                    }
                }
            }
        }
    }
}

/// Scalar reference kernels.
pub mod scalar {
    use super::*;
    use crate::quant::{bf16_to_f32, f16_to_f32};

    /// Exact integer block sum of a Q8_0 weight block with an activation block.
    #[inline]
    pub fn block_sum_q8(w: &[u8], a: &BlockQ8Act) -> i32 {
        let mut s = 0i32;
        for j in 0..QK {
            s += (w[2 + j] as i8 as i32) * a.qs[j] as i32;
        }
        s
    }

    /// Exact integer block sum of a Q4_0 weight block (nibbles 0..15, offset not applied) with
    /// an activation block; the `−8` offset is applied by the caller through `a.sum`.
    #[inline]
    pub fn block_sum_q4(w: &[u8], a: &BlockQ8Act) -> i32 {
        let mut s = 0i32;
        for j in 0..QK / 2 {
            let b = w[2 + j];
            s += (b & 0x0f) as i32 * a.qs[j] as i32 + (b >> 4) as i32 * a.qs[j + QK / 2] as i32;
        }
        s
    }

    /// One quantized row · activation blocks, combined in f32 block by block.
    pub fn dot_quant_row(ty: GgmlType, row: &[u8], act: &[BlockQ8Act]) -> f32 {
        let mut acc = 0.0f32;
        match ty {
            GgmlType::Q8_0 => {
                for (w, a) in row.chunks_exact(34).zip(act) {
                    let d = f16_to_f32(u16::from_le_bytes([w[0], w[1]]));
                    acc += d * a.d * block_sum_q8(w, a) as f32;
                }
            }
            GgmlType::Q4_0 => {
                for (w, a) in row.chunks_exact(18).zip(act) {
                    let d = f16_to_f32(u16::from_le_bytes([w[0], w[1]]));
                    acc += d * a.d * (block_sum_q4(w, a) - 8 * a.sum) as f32;
                }
            }
            _ => unreachable!("dot_quant_row on a float type"),
        }
        acc
    }

    /// One float row · f32 vector.
    pub fn dot_float_row(ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
        let mut acc = 0.0f32;
        match ty {
            GgmlType::F32 => {
                for (c, v) in row.chunks_exact(4).zip(x) {
                    acc += f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * v;
                }
            }
            GgmlType::F16 => {
                for (c, v) in row.chunks_exact(2).zip(x) {
                    acc += f16_to_f32(u16::from_le_bytes([c[0], c[1]])) * v;
                }
            }
            GgmlType::BF16 => {
                for (c, v) in row.chunks_exact(2).zip(x) {
                    acc += bf16_to_f32(u16::from_le_bytes([c[0], c[1]])) * v;
                }
            }
            _ => unreachable!("dot_float_row on a quantized type"),
        }
        acc
    }
}
