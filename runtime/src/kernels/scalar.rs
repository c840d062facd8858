//! Scalar reference kernels: the oracle every SIMD path is tested against.
//!
//! Quantized rows are combined block by block in f32: `acc += d_w · d_a · isum`, where `isum` is
//! the exact integer block sum ([`block_sum_q8`], [`block_sum_q4`] minus `8·a.sum`).
use crate::quant::{bf16_to_f32, f16_to_f32, BlockQ8Act, GgmlType, QK};

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

/// The exact integer sum of block `w` (of type `ty`) with `a`, offset included:
/// `Σ_j q_j·a_j` for Q8_0 and `Σ_j (q_j − 8)·a_j` for Q4_0.
#[inline]
pub fn block_isum(ty: GgmlType, w: &[u8], a: &BlockQ8Act) -> i32 {
    match ty {
        GgmlType::Q8_0 => block_sum_q8(w, a),
        GgmlType::Q4_0 => block_sum_q4(w, a) - 8 * a.sum,
        _ => unreachable!("block_isum on a float type"),
    }
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

/// Rows `r0..r1` of the matrix × `n_vec` vectors, scalar. `out` is the full `[n_vec][rows]`
/// output; only rows `r0..r1` of each vector are written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows(
    ty: GgmlType,
    data: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    act: &[BlockQ8Act],
    n_vec: usize,
    out: super::OutPtr,
    r0: usize,
    r1: usize,
) {
    let rb = ty.block_bytes() * cols / ty.block_elems();
    let nb = cols / QK;
    for v in 0..n_vec {
        for r in r0..r1 {
            let row = &data[r * rb..(r + 1) * rb];
            let y = match ty {
                GgmlType::Q8_0 | GgmlType::Q4_0 => {
                    dot_quant_row(ty, row, &act[v * nb..(v + 1) * nb])
                }
                _ => dot_float_row(ty, row, &x[v * cols..(v + 1) * cols]),
            };
            // SAFETY: `out` covers `n_vec × rows` f32 and this task owns rows `r0..r1`.
            unsafe { out.write(v * rows + r, y) };
        }
    }
}
