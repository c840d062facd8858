//! Requantizing a GGUF: every tensor read (any supported type), converted to its planned type
//! with the runtime's reference quantizers, and measured against its source values.
use crate::plan::{Preset, TensorDesc, TensorPlan};
use crate::{QError, QResult};
use photon_runtime::gguf::{Gguf, GgufWriter, OwnedValue, WRITE_ALIGNMENT};
use photon_runtime::quant::{self, GgmlType};

/// llama.cpp's `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// Error of one converted tensor against its source values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TensorStats {
    /// RMS of the source values.
    pub rms: f64,
    /// RMS of the error divided by the RMS of the source (0 when the source is all zeros and
    /// the error too).
    pub rel_rmse: f64,
    /// Largest absolute error.
    pub max_abs: f64,
}

/// Error statistics of `out` against `src` (same length).
pub fn error_stats(src: &[f32], out: &[f32]) -> TensorStats {
    let (mut ss, mut se, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in src.iter().zip(out) {
        let e = (b as f64 - a as f64).abs();
        ss += (a as f64) * (a as f64);
        se += e * e;
        max = max.max(e);
    }
    let n = src.len().max(1) as f64;
    let rms = (ss / n).sqrt();
    let rmse = (se / n).sqrt();
    TensorStats {
        rms,
        rel_rmse: if rms > 0.0 {
            rmse / rms
        } else if rmse > 0.0 {
            f64::INFINITY
        } else {
            0.0
        },
        max_abs: max,
    }
}

/// The tensors of a parsed file, as the planner sees them.
pub fn tensor_descs(g: &Gguf<'_>) -> Vec<TensorDesc> {
    g.tensors()
        .iter()
        .map(|t| TensorDesc {
            name: t.name.to_string(),
            dims: t.dims.clone(),
            ty: t.ty,
        })
        .collect()
}

/// The output's metadata: the input's, in order, with `general.file_type` set to the preset's
/// and `general.quantization_version = 2` (right after it); `general.alignment` is the
/// writer's own (64).
pub fn output_metadata(g: &Gguf<'_>, preset: Preset) -> Vec<(String, OwnedValue)> {
    let mut out = Vec::new();
    let mut done = false;
    let ft = |out: &mut Vec<(String, OwnedValue)>| {
        out.push((
            "general.file_type".to_string(),
            OwnedValue::U32(preset.file_type()),
        ));
        out.push((
            "general.quantization_version".to_string(),
            OwnedValue::U32(QUANTIZATION_VERSION),
        ));
    };
    for (k, v) in g.metadata() {
        match *k {
            "general.alignment" | "general.quantization_version" => {}
            "general.file_type" => {
                ft(&mut out);
                done = true;
            }
            _ => out.push((k.to_string(), v.to_owned_value())),
        }
    }
    if !done {
        ft(&mut out);
    }
    out
}

fn value_len(v: &OwnedValue) -> u64 {
    match v {
        OwnedValue::U8(_) | OwnedValue::I8(_) | OwnedValue::Bool(_) => 1,
        OwnedValue::U16(_) | OwnedValue::I16(_) => 2,
        OwnedValue::U32(_) | OwnedValue::I32(_) | OwnedValue::F32(_) => 4,
        OwnedValue::U64(_) | OwnedValue::I64(_) | OwnedValue::F64(_) => 8,
        OwnedValue::Str(s) => 8 + s.len() as u64,
        OwnedValue::Array(_, items) => 12 + items.iter().map(value_len).sum::<u64>(),
    }
}

fn pad(n: u64) -> u64 {
    n.next_multiple_of(WRITE_ALIGNMENT)
}

/// Exact size of the file [`convert`] writes for this metadata and plan (for `--dry-run`).
pub fn planned_file_size(meta: &[(String, OwnedValue)], plans: &[TensorPlan]) -> u64 {
    // magic, version, n_tensors, n_kv; general.alignment (key, type, u32).
    let mut h = 4 + 4 + 8 + 8 + (8 + "general.alignment".len() as u64 + 4 + 4);
    for (k, v) in meta {
        h += 8 + k.len() as u64 + 4 + value_len(v);
    }
    for p in plans {
        h += 8 + p.name.len() as u64 + 4 + 8 * p.dims.len() as u64 + 4 + 8;
    }
    pad(h) + plans.iter().map(|p| pad(p.out_bytes())).sum::<u64>()
}

/// Converts one tensor's data from `src` to `dst`. Returns the bytes and the error statistics
/// (zero when the data is copied unchanged: same type).
pub fn convert_tensor(
    name: &str,
    dims: &[u64],
    src: GgmlType,
    data: &[u8],
    dst: GgmlType,
) -> QResult<(Vec<u8>, TensorStats)> {
    let n: u64 = dims.iter().product();
    let row = dims.first().copied().unwrap_or(1).max(1) as usize;
    let mut values = vec![0.0f32; n as usize];
    quant::dequantize_row(src, data, &mut values)
        .map_err(|e| QError::Input(format!("tensor '{name}': {e}")))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(QError::Input(format!(
            "tensor '{name}' holds a non-finite value ({}) at element {i}",
            values[i]
        )));
    }
    if src == dst {
        let stats = TensorStats {
            rms: error_stats(&values, &values).rms,
            ..Default::default()
        };
        return Ok((data.to_vec(), stats));
    }
    let mut out = Vec::with_capacity(dst.bytes_for(n).unwrap_or(0) as usize);
    for r in values.chunks(row) {
        quant::quantize_row(dst, r, &mut out)
            .map_err(|e| QError::Input(format!("tensor '{name}': {e}")))?;
    }
    let mut back = vec![0.0f32; n as usize];
    quant::dequantize_row(dst, &out, &mut back)
        .map_err(|e| QError::Input(format!("tensor '{name}': {e}")))?;
    if let Some(i) = back.iter().position(|v| !v.is_finite()) {
        return Err(QError::Input(format!(
            "tensor '{name}': element {i} ({}) does not fit in {}",
            values[i],
            dst.name()
        )));
    }
    Ok((out, error_stats(&values, &back)))
}

/// Builds the output file: metadata from [`output_metadata`], tensors in input order converted
/// per `plans`. `progress(elements)` is called after each tensor.
pub fn convert(
    g: &Gguf<'_>,
    preset: Preset,
    plans: &[TensorPlan],
    progress: &mut dyn FnMut(u64),
) -> QResult<(GgufWriter, Vec<TensorStats>)> {
    let mut w = GgufWriter::new();
    for (k, v) in output_metadata(g, preset) {
        w.add(&k, v)?;
    }
    let mut stats = Vec::with_capacity(plans.len());
    for p in plans {
        let t = g
            .tensor(&p.name)
            .ok_or_else(|| QError::Input(format!("tensor '{}' vanished", p.name)))?;
        let (data, s) = convert_tensor(&p.name, &p.dims, t.ty, t.data, p.dst)?;
        w.add_tensor(&p.name, p.dst, &p.dims, data)?;
        stats.push(s);
        progress(p.n_elements());
    }
    Ok((w, stats))
}
