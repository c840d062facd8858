//! The GGUF v3 container: a validating, zero-copy reader over `&[u8]` and a writer.
//!
//! ```text
//! "GGUF" | version u32 | n_tensors u64 | n_kv u64
//! n_kv × (key: string, type: u32, value)
//! n_tensors × (name: string, n_dims: u32, dims: n_dims × u64, type: u32, offset: u64)
//! padding to `general.alignment` (default 32)
//! tensor data (offsets relative to here, each a multiple of the alignment)
//! ```
//! Strings are a u64 byte length followed by UTF-8 without terminator; all numbers are
//! little-endian.
//!
//! [`Gguf::parse`] validates the whole file up front (see `docs/format.md` for exactly what it
//! accepts and rejects) and never panics or reads out of bounds, whatever the input: every read
//! goes through a bounds-checked cursor, and counts and lengths are checked against the bytes
//! that remain before anything is allocated. Strings, arrays and tensor data borrow from the
//! input: on `std` from a [`MappedFile`], on bare metal from a `static` slice.
//!
//! Tensor data is only as aligned in memory as the input slice: a memory map is page aligned,
//! a `Vec<u8>` may not be, so consumers read blocks with unaligned loads.
//!
//! Tensor types are [`GgmlType`]: F32, F16, BF16, Q8_0 and Q4_0 with ggml's byte layouts.
//! BF16 tensors are read as stored; the kernels widen them to f32 when they use them.
mod cursor;
mod reader;
mod value;
mod writer;

#[cfg(test)]
mod tests;

pub use crate::quant::GgmlType;
pub use reader::{Gguf, TensorInfo};
pub use value::{Array, OwnedValue, Value, ValueType, MAX_ARRAY_DEPTH};
pub use writer::GgufWriter;

/// "GGUF" read as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"GGUF");
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Alignment the writer uses (and records in `general.alignment`).
pub const WRITE_ALIGNMENT: u64 = 64;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// ggml's name for a tensor type id, for error messages about types photon does not support.
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 42] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
        "NVFP4",
        "Q1_0",
    ];
    match id {
        4 | 5 => None, // removed from ggml
        _ => NAMES.get(id as usize).copied(),
    }
}

/// A read-only memory map of a file (std only). Parse it with `Gguf::parse(map.bytes())`.
#[cfg(feature = "std")]
pub struct MappedFile {
    map: memmap2::Mmap,
}

#[cfg(feature = "std")]
impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: impl AsRef<std::path::Path>) -> crate::Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| crate::err!(Io, "opening '{}': {e}", path.display()))?;
        // SAFETY: the map is read-only and private to this process. Like every mmap-based model
        // loader, we rely on the file not being truncated or modified while it is mapped (that
        // would change or remove bytes under live `&[u8]` borrows); model files are written by
        // atomic rename (`GgufWriter::write_file_atomic`), which replaces the directory entry
        // and leaves an existing mapping's inode untouched.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| crate::err!(Io, "mapping '{}': {e}", path.display()))?;
        Ok(MappedFile { map })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}
