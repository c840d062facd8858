//! Tensor element types and ggml's block formats.
//!
//! Byte layouts are ggml's, so files are interchangeable with ggml/llama.cpp:
//! - `Q8_0`: f16 scale `d`, then 32 × i8; value = `d·q` (34 bytes a block).
//! - `Q4_0`: f16 scale `d`, then 16 bytes where byte j holds element j in its low nibble and
//!   element j+16 in its high nibble; value = `d·(q − 8)` (18 bytes a block).
//!
//! The reference quantizers here follow ggml's reference code exactly; the activation
//! quantizer (run time) is the one every ISA implements identically (round half to even).
use crate::{err, Result};
use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

/// Elements per quantization block for Q8_0 and Q4_0.
pub const QK: usize = 32;

/// Tensor element types, numbered as in ggml's `ggml_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q8_0,
    BF16,
}

impl GgmlType {
    /// From ggml's numeric id; `None` for a type this runtime does not support.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            8 => GgmlType::Q8_0,
            30 => GgmlType::BF16,
            _ => return None,
        })
    }

    /// ggml's numeric id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q8_0 => 8,
            GgmlType::BF16 => 30,
        }
    }

    /// Name as ggml prints it.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::BF16 => "BF16",
        }
    }

    /// From its name in any case (`q8_0`, `F16`, …); `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q4_0,
            GgmlType::Q8_0,
            GgmlType::BF16,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Elements per block (1 for the float types).
    pub fn block_elems(self) -> usize {
        match self {
            GgmlType::Q4_0 | GgmlType::Q8_0 => QK,
            _ => 1,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => core::mem::size_of::<BlockQ4_0>(),
            GgmlType::Q8_0 => core::mem::size_of::<BlockQ8_0>(),
        }
    }

    /// Bytes taken by `n` elements, or an error if `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn bytes_for(self, n: u64) -> Result<u64> {
        let be = self.block_elems() as u64;
        if n % be != 0 {
            return Err(err!(
                Format,
                "{} elements are not a whole number of {} blocks",
                n,
                self.name()
            ));
        }
        (n / be)
            .checked_mul(self.block_bytes() as u64)
            .ok_or_else(|| err!(Format, "tensor of {n} {} elements overflows", self.name()))
    }
}

/// One Q8_0 block: 32 signed bytes and their f16 scale.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale, IEEE binary16 bits.
    pub d: u16,
    pub qs: [i8; QK],
}

/// One Q4_0 block: 32 four-bit values (offset 8) and their f16 scale.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale, IEEE binary16 bits.
    pub d: u16,
    pub qs: [u8; QK / 2],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(core::mem::align_of::<BlockQ8_0>() == 2);

/// Activation block used at run time: Q8_0 values with an f32 scale, plus the scale times the
/// sum of the values (which Q4_0 kernels need for the `−8` offset).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct BlockQ8Act {
    pub d: f32,
    /// Sum of `qs` (exact integer, as i32).
    pub sum: i32,
    pub qs: [i8; QK],
}

#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

#[inline]
pub fn bf16_to_f32(bits: u16) -> f32 {
    bf16::from_bits(bits).to_f32()
}

/// ggml's `roundf`: round half away from zero.
#[inline]
fn round_away(x: f32) -> f32 {
    libm::roundf(x)
}

/// ggml's reference Q8_0 quantizer for one block of 32 values.
pub fn quantize_block_q8_0(x: &[f32; QK]) -> BlockQ8_0 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, v) in qs.iter_mut().zip(x) {
        *q = round_away(v * id) as i8;
    }
    BlockQ8_0 {
        d: f32_to_f16(d),
        qs,
    }
}

/// ggml's reference Q4_0 quantizer for one block of 32 values.
pub fn quantize_block_q4_0(x: &[f32; QK]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let x0 = x[j] * id;
        let x1 = x[j + QK / 2] * id;
        let q0 = ((x0 + 8.5) as i8).min(15) as u8;
        let q1 = ((x1 + 8.5) as i8).min(15) as u8;
        qs[j] = q0 | (q1 << 4);
    }
    BlockQ4_0 {
        d: f32_to_f16(d),
        qs,
    }
}

/// Dequantizes one Q8_0 block.
pub fn dequantize_block_q8_0(b: &BlockQ8_0, out: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = d * q as f32;
    }
}

/// Dequantizes one Q4_0 block.
pub fn dequantize_block_q4_0(b: &BlockQ4_0, out: &mut [f32; QK]) {
    let d = f16_to_f32(b.d);
    for j in 0..QK / 2 {
        out[j] = d * ((b.qs[j] & 0x0f) as i32 - 8) as f32;
        out[j + QK / 2] = d * ((b.qs[j] >> 4) as i32 - 8) as f32;
    }
}

/// The run-time activation quantizer (scalar reference; every ISA must match it bit for bit):
/// `d = amax/127` in f32, `q = round_half_to_even(x · (1/d))`.
pub fn quantize_act_block(x: &[f32]) -> BlockQ8Act {
    debug_assert_eq!(x.len(), QK);
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    let mut sum = 0i32;
    for (q, v) in qs.iter_mut().zip(x) {
        let r = libm::rintf(v * id) as i8; // rint: round half to even (core has no round_ties_even)
        *q = r;
        sum += r as i32;
    }
    BlockQ8Act { d, sum, qs }
}

/// Quantizes a row of f32 (length a multiple of 32) into weight blocks of `ty` appended to
/// `out` as raw bytes. Float types are converted element by element.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut alloc::vec::Vec<u8>) -> Result<()> {
    match ty {
        GgmlType::F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&f32_to_f16(*v).to_le_bytes())),
        GgmlType::BF16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_bits().to_le_bytes())),
        GgmlType::Q8_0 | GgmlType::Q4_0 => {
            if x.len() % QK != 0 {
                return Err(err!(
                    Input,
                    "row of {} values is not a multiple of {QK}",
                    x.len()
                ));
            }
            for chunk in x.chunks_exact(QK) {
                let c: &[f32; QK] = chunk.try_into().expect("chunks_exact gives QK");
                if ty == GgmlType::Q8_0 {
                    out.extend_from_slice(bytemuck::bytes_of(&quantize_block_q8_0(c)));
                } else {
                    out.extend_from_slice(bytemuck::bytes_of(&quantize_block_q4_0(c)));
                }
            }
        }
    }
    Ok(())
}

/// Dequantizes `n` elements of type `ty` from `bytes` into `out` (`out.len() == n`).
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let need = ty.bytes_for(out.len() as u64)? as usize;
    if bytes.len() < need {
        return Err(err!(
            Format,
            "row needs {need} bytes, {} given",
            bytes.len()
        ));
    }
    let bytes = &bytes[..need];
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::Q8_0 => {
            for (o, c) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(34)) {
                let b: BlockQ8_0 = bytemuck::pod_read_unaligned(c);
                dequantize_block_q8_0(&b, o.try_into().expect("QK"));
            }
        }
        GgmlType::Q4_0 => {
            for (o, c) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(18)) {
                let b: BlockQ4_0 = bytemuck::pod_read_unaligned(c);
                dequantize_block_q4_0(&b, o.try_into().expect("QK"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GgmlType;

    #[test]
    fn type_names_round_trip_in_any_case() {
        for t in [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q4_0,
            GgmlType::Q8_0,
            GgmlType::BF16,
        ] {
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
            assert_eq!(GgmlType::from_name(&t.name().to_lowercase()), Some(t));
        }
        assert_eq!(GgmlType::from_name("q6_k"), None);
        assert_eq!(GgmlType::from_name(""), None);
    }
}
