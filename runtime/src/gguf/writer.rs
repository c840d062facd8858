//! The GGUF v3 writer (for the quantizer, the exporter and tests).
use super::value::{encode_str, OwnedValue};
use super::{MAGIC, MAX_DIMS, WRITE_ALIGNMENT};
use crate::quant::GgmlType;
use crate::{err, Result};
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

struct PendingTensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// Builds a GGUF v3 file: metadata in insertion order (starting with `general.alignment = 64`),
/// then tensor infos, then tensor data, each tensor's data padded to 64 bytes (the last one
/// too, as ggml writes it).
pub struct GgufWriter {
    kv: Vec<(String, OwnedValue)>,
    keys: BTreeSet<String>,
    tensors: Vec<PendingTensor>,
    names: BTreeSet<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn pad_len(n: u64) -> u64 {
    n.next_multiple_of(WRITE_ALIGNMENT) - n
}

impl GgufWriter {
    /// An empty file with `general.alignment = 64`.
    pub fn new() -> Self {
        let mut w = GgufWriter {
            kv: Vec::new(),
            keys: BTreeSet::new(),
            tensors: Vec::new(),
            names: BTreeSet::new(),
        };
        w.kv.push((
            String::from("general.alignment"),
            OwnedValue::U32(WRITE_ALIGNMENT as u32),
        ));
        w.keys.insert(String::from("general.alignment"));
        w
    }

    /// Adds a metadata entry. A duplicate key (including `general.alignment`, which the writer
    /// sets itself) or a heterogeneous array is an `Error::Input`.
    pub fn add(&mut self, key: &str, value: OwnedValue) -> Result<()> {
        if self.keys.contains(key) {
            return Err(err!(Input, "duplicate metadata key '{key}'"));
        }
        value
            .validate(0)
            .map_err(|e| err!(Input, "metadata key '{key}': {e}"))?;
        self.keys.insert(String::from(key));
        self.kv.push((String::from(key), value));
        Ok(())
    }

    /// Adds a tensor. `dims` are in ggml order (`dims[0]` is the row length); `data` must hold
    /// exactly the bytes of that many elements of `ty`, and rows must be whole blocks.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ty: GgmlType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> Result<()> {
        if self.names.contains(name) {
            return Err(err!(Input, "duplicate tensor name '{name}'"));
        }
        if dims.len() > MAX_DIMS {
            return Err(err!(
                Input,
                "tensor '{name}' has {} dimensions (at most {MAX_DIMS})",
                dims.len()
            ));
        }
        let n = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| err!(Input, "tensor '{name}' dims {dims:?} overflow"))?;
        let row = dims.first().copied().unwrap_or(1);
        if row % ty.block_elems() as u64 != 0 {
            return Err(err!(
                Input,
                "tensor '{name}': row length {row} is not a multiple of the {} block size {}",
                ty.name(),
                ty.block_elems()
            ));
        }
        let need = ty
            .bytes_for(n)
            .map_err(|e| err!(Input, "tensor '{name}': {e}"))?;
        if need != data.len() as u64 {
            return Err(err!(
                Input,
                "tensor '{name}' ({} {dims:?}) needs {need} bytes of data, {} given",
                ty.name(),
                data.len()
            ));
        }
        self.names.insert(String::from(name));
        self.tensors.push(PendingTensor {
            name: String::from(name),
            ty,
            dims: dims.to_vec(),
            data,
        });
        Ok(())
    }

    /// Header, metadata and tensor infos, padded to the alignment (everything before the data).
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            encode_str(k, &mut out);
            out.extend_from_slice(&v.value_type().id().to_le_bytes());
            v.encode(&mut out);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            encode_str(&t.name, &mut out);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            let n = t.data.len() as u64;
            offset += n + pad_len(n);
        }
        let pad = pad_len(out.len() as u64) as usize;
        out.resize(out.len() + pad, 0);
        out
    }

    /// Streams the file to `sink` piece by piece (tensor data is not copied).
    fn emit(&self, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        sink(&self.header())?;
        const ZEROS: [u8; WRITE_ALIGNMENT as usize] = [0; WRITE_ALIGNMENT as usize];
        for t in &self.tensors {
            sink(&t.data)?;
            let pad = pad_len(t.data.len() as u64) as usize;
            sink(ZEROS.get(..pad).unwrap_or(&[]))?;
        }
        Ok(())
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.emit(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// Writes the file to `w`.
    #[cfg(feature = "std")]
    pub fn write_to(&self, w: &mut impl std::io::Write) -> Result<()> {
        self.emit(&mut |b| w.write_all(b).map_err(crate::Error::from))?;
        w.flush()?;
        Ok(())
    }

    /// Writes to a temporary file in the same directory, fsyncs it and renames it over `path`:
    /// `path` is never left holding a partial file.
    #[cfg(feature = "std")]
    pub fn write_file_atomic(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        use std::fs;
        let path = path.as_ref();
        let file_name = path
            .file_name()
            .ok_or_else(|| err!(Input, "'{}' is not a file path", path.display()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(std::format!(".{}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        let result = (|| -> Result<()> {
            let f = fs::File::create(&tmp)?;
            let mut bw = std::io::BufWriter::new(f);
            self.write_to(&mut bw)?;
            let f = bw
                .into_inner()
                .map_err(|e| crate::Error::from(e.into_error()))?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            return result.map_err(|e| match e {
                crate::Error::Io(m) => err!(Io, "writing '{}': {m}", path.display()),
                e => e,
            });
        }
        // Make the rename itself durable (best effort: not every platform can fsync a directory).
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
