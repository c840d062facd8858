//! The GGUF reader: parses and validates a whole file held in a byte slice.
use super::cursor::Cursor;
use super::value::{read_value, Array, Value, ValueType};
use super::{ggml_type_name, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::quant::GgmlType;
use crate::{err, Error, Result};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

/// One tensor: its name, type, shape and data borrowed from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    /// ggml order: dims[0] is the row length (innermost). A PyTorch [out, in] weight has dims [in, out].
    pub dims: Vec<u64>,
    /// Offset of the data from the start of the file.
    pub offset: u64,
    pub data: &'a [u8],
}

impl TensorInfo<'_> {
    /// Product of the dims (1 for a tensor with no dims). The reader has checked that it does
    /// not overflow.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }

    /// Row length (`dims[0]`; 1 for a tensor with no dims).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows (product of `dims[1..]`).
    pub fn n_rows(&self) -> u64 {
        self.dims
            .iter()
            .skip(1)
            .fold(1u64, |n, &d| n.saturating_mul(d))
    }
}

/// A parsed GGUF file. Everything (strings, arrays, tensor data) borrows from the input slice.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    /// Format version (3, or 2 which has the same layout).
    pub version: u32,
    /// `general.alignment`, or 32 when absent.
    pub alignment: u64,
    /// Offset of the tensor data section from the start of the file.
    pub data_offset: u64,
    metadata: Vec<(&'a str, Value<'a>)>,
    keys: BTreeMap<&'a str, usize>,
    tensors: Vec<TensorInfo<'a>>,
    names: BTreeMap<&'a str, usize>,
}

/// Smallest encoding of one key/value pair: key length (8), type (4), a 1-byte value.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
/// Smallest encoding of one tensor info: name length (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

fn with_context(e: Error, ctx: &str) -> Error {
    match e {
        Error::Format(m) => Error::Format(format!("{ctx}: {m}")),
        Error::Unsupported(m) => Error::Unsupported(format!("{ctx}: {m}")),
        other => other,
    }
}

fn check_count(count: u64, what: &str, min_bytes: usize, cur: &Cursor<'_>) -> Result<usize> {
    let max = (cur.remaining() / min_bytes) as u64;
    if count > max {
        return Err(err!(
            Format,
            "{what} count {count} is impossible: only {} bytes remain after offset {}",
            cur.remaining(),
            cur.pos()
        ));
    }
    Ok(count as usize) // count <= remaining bytes, so it fits
}

impl<'a> Gguf<'a> {
    /// Parses and validates a GGUF v3 (or v2) file. Tensor data is borrowed, not copied.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>> {
        let mut cur = Cursor::new(bytes);
        let magic = cur.u32("magic")?;
        if magic != MAGIC {
            return Err(err!(
                Format,
                "bad magic {:02x?} (expected \"GGUF\"): not a GGUF file",
                magic.to_le_bytes()
            ));
        }
        let version = cur.u32("version")?;
        match version {
            2 | 3 => {}
            v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
                return Err(err!(
                    Unsupported,
                    "GGUF version {v:#x} looks like a big-endian GGUF v{}; only little-endian files are supported",
                    v.swap_bytes()
                ))
            }
            v => {
                return Err(err!(
                    Unsupported,
                    "GGUF version {v} (only versions 3 and 2 are supported)"
                ))
            }
        }
        let n_tensors = cur.u64("tensor count")?;
        let n_kv = cur.u64("metadata key/value count")?;
        let n_kv = check_count(n_kv, "metadata key/value", MIN_KV_BYTES, &cur)?;
        let n_tensors = check_count(n_tensors, "tensor", MIN_TENSOR_INFO_BYTES, &cur)?;

        // Metadata.
        let mut metadata = Vec::with_capacity(n_kv);
        let mut keys = BTreeMap::new();
        for i in 0..n_kv {
            let at = cur.pos();
            let ctx = format!("metadata entry {i} at offset {at}");
            let key = cur
                .string("metadata key")
                .map_err(|e| with_context(e, &ctx))?;
            let ctx = format!("metadata entry {i} ('{key}') at offset {at}");
            let tat = cur.pos();
            let tid = cur
                .u32("metadata value type")
                .map_err(|e| with_context(e, &ctx))?;
            let ty = ValueType::from_id(tid).ok_or_else(|| {
                err!(Format, "{ctx}: unknown value type id {tid} at offset {tat}")
            })?;
            let value = read_value(&mut cur, ty, 0).map_err(|e| with_context(e, &ctx))?;
            if keys.insert(key, metadata.len()).is_some() {
                return Err(err!(Format, "{ctx}: duplicate metadata key '{key}'"));
            }
            metadata.push((key, value));
        }

        // Alignment.
        let alignment = match keys
            .get("general.alignment")
            .and_then(|&i| metadata.get(i))
            .map(|(_, v)| v)
        {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) => {
                if *a == 0 || !a.is_power_of_two() {
                    return Err(err!(
                        Format,
                        "general.alignment = {a} is not a power of two"
                    ));
                }
                u64::from(*a)
            }
            Some(v) => {
                return Err(err!(
                    Format,
                    "general.alignment has type {}, expected u32",
                    v.value_type().name()
                ))
            }
        };

        // Tensor infos.
        struct Raw<'a> {
            name: &'a str,
            ty: GgmlType,
            dims: Vec<u64>,
            rel: u64,
            size: u64,
        }
        let mut raws = Vec::with_capacity(n_tensors);
        let mut names = BTreeMap::new();
        for i in 0..n_tensors {
            let at = cur.pos();
            let ctx = format!("tensor info {i} at offset {at}");
            let name = cur
                .string("tensor name")
                .map_err(|e| with_context(e, &ctx))?;
            let ctx = format!("tensor info {i} ('{name}') at offset {at}");
            let n_dims = cur
                .u32("tensor dimension count")
                .map_err(|e| with_context(e, &ctx))?;
            if n_dims as usize > MAX_DIMS {
                return Err(err!(
                    Format,
                    "{ctx}: {n_dims} dimensions (at most {MAX_DIMS} allowed)"
                ));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            let mut n_elem = 1u64;
            for _ in 0..n_dims {
                let d = cur
                    .u64("tensor dimension")
                    .map_err(|e| with_context(e, &ctx))?;
                dims.push(d);
            }
            for &d in &dims {
                n_elem = n_elem.checked_mul(d).ok_or_else(|| {
                    err!(
                        Format,
                        "{ctx}: dimensions {dims:?} overflow (element count exceeds 2^64)"
                    )
                })?;
            }
            let tid = cur.u32("tensor type").map_err(|e| with_context(e, &ctx))?;
            let offset_at = cur.pos();
            let rel = cur
                .u64("tensor offset")
                .map_err(|e| with_context(e, &ctx))?;
            let ty = GgmlType::from_id(tid).ok_or_else(|| {
                err!(
                    Unsupported,
                    "{ctx}: tensor type id {tid}{} is not supported (F32, F16, BF16, Q8_0, Q4_0 are)",
                    ggml_type_name(tid)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            })?;
            let be = ty.block_elems() as u64;
            if dims.first().copied().unwrap_or(1) % be != 0 {
                return Err(err!(
                    Format,
                    "{ctx}: row length {} is not a multiple of the {} block size {be}",
                    dims.first().copied().unwrap_or(1),
                    ty.name()
                ));
            }
            let size = ty.bytes_for(n_elem).map_err(|e| with_context(e, &ctx))?;
            if rel % alignment != 0 {
                return Err(err!(
                    Format,
                    "{ctx}: data offset {rel} (read at offset {offset_at}) is not a multiple of the alignment {alignment}"
                ));
            }
            if names.insert(name, raws.len()).is_some() {
                return Err(err!(Format, "{ctx}: duplicate tensor name '{name}'"));
            }
            raws.push(Raw {
                name,
                ty,
                dims,
                rel,
                size,
            });
        }

        // The data section starts at the next multiple of the alignment.
        let end_infos = cur.pos() as u64;
        let data_offset = end_infos
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| err!(Format, "data section offset overflows"))?;
        let file_len = bytes.len() as u64;
        let mut tensors = Vec::with_capacity(raws.len());
        for (i, r) in raws.into_iter().enumerate() {
            let start = data_offset.checked_add(r.rel);
            let end = start.and_then(|s| s.checked_add(r.size));
            let data = match (start, end) {
                (Some(s), Some(e)) if e <= file_len => bytes.get(s as usize..e as usize),
                _ => None,
            };
            let (Some(start), Some(data)) = (start, data) else {
                return Err(err!(
                    Format,
                    "tensor {i} ('{}'): data of {} bytes at offset {} + {} lies beyond the end of the file ({file_len} bytes)",
                    r.name,
                    r.size,
                    data_offset,
                    r.rel
                ));
            };
            tensors.push(TensorInfo {
                name: r.name,
                ty: r.ty,
                dims: r.dims,
                offset: start,
                data,
            });
        }

        Ok(Gguf {
            version,
            alignment,
            data_offset,
            metadata,
            keys,
            tensors,
            names,
        })
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[(&'a str, Value<'a>)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.keys
            .get(key)
            .and_then(|&i| self.metadata.get(i))
            .map(|(_, v)| v)
    }

    fn need(&self, key: &str) -> Result<&Value<'a>> {
        self.get(key)
            .ok_or_else(|| err!(Model, "metadata key '{key}' is missing"))
    }

    fn wrong_type(key: &str, v: &Value<'_>, want: &str) -> Error {
        err!(
            Model,
            "metadata key '{key}' has type {}, expected {want}",
            v.value_type().name()
        )
    }

    /// Any integer value that fits in `u32`.
    pub fn u32(&self, key: &str) -> Result<u32> {
        let v = self.need(key)?;
        if let Some(x) = v.as_u64() {
            return u32::try_from(x)
                .map_err(|_| err!(Model, "metadata key '{key}' = {x} does not fit in u32"));
        }
        match v.as_i64() {
            Some(x) => Err(err!(
                Model,
                "metadata key '{key}' = {x} does not fit in u32"
            )),
            None => Err(Self::wrong_type(key, v, "an integer")),
        }
    }

    /// An `f32` value.
    pub fn f32(&self, key: &str) -> Result<f32> {
        match self.need(key)? {
            Value::F32(x) => Ok(*x),
            v => Err(Self::wrong_type(key, v, "f32")),
        }
    }

    /// A `bool` value.
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.need(key)? {
            Value::Bool(x) => Ok(*x),
            v => Err(Self::wrong_type(key, v, "bool")),
        }
    }

    /// A string value, borrowed from the file.
    pub fn str(&self, key: &str) -> Result<&'a str> {
        match self.need(key)? {
            Value::Str(s) => Ok(s),
            v => Err(Self::wrong_type(key, v, "string")),
        }
    }

    /// An array value.
    pub fn array(&self, key: &str) -> Result<&Array<'a>> {
        match self.need(key)? {
            Value::Array(a) => Ok(a),
            v => Err(Self::wrong_type(key, v, "array")),
        }
    }

    /// All tensors, in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.names.get(name).and_then(|&i| self.tensors.get(i))
    }
}
