//! Presets, per-tensor overrides and the output type of every tensor.
//!
//! Every tensor has a role, decided by its name and shape:
//! - **vector**: 1-D tensors, RMSNorm weights (`*norm.weight`), biases (`*.bias`) and
//!   `dec2.start`. Always F32 under every preset (they are tiny and the runtime widens them to
//!   f32 anyway); an override may set F16 or F32, never a block type.
//! - **embedding**: the token embeddings (`*token_embd.weight`) and the LM head (`output.weight`).
//! - **matrix**: every other 2-D tensor (attention, FFN, chunker, converters).
//!
//! | preset | matrix | embedding | vector | `general.file_type` |
//! | --- | --- | --- | --- | --- |
//! | `f32`  | F32  | F32  | F32 | 0 (ALL_F32) |
//! | `f16`  | F16  | F16  | F32 | 1 (MOSTLY_F16) |
//! | `q8_0` | Q8_0 | Q8_0 | F32 | 7 (MOSTLY_Q8_0) |
//! | `q4_0` | Q4_0 | Q8_0 | F32 | 2 (MOSTLY_Q4_0) |
//!
//! Overrides `PATTERN=TYPE` are glob patterns over the whole tensor name (`*` and `?` also match
//! `.`; `[abc]` classes); the first matching override wins over the preset. A pattern that
//! matches no tensor is an error (a typo would otherwise silently do nothing).
//!
//! Block types (Q8_0, Q4_0) need rows that are a whole number of 32-element blocks. A preset
//! falls back to F16 for a tensor whose row is not (reported as `fallback`); an override that
//! asks for a block type on such a tensor is an error.
use crate::{QError, QResult};
use photon_runtime::quant::{GgmlType, QK};

/// A file type preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    F32,
    F16,
    Q8_0,
    Q4_0,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::F32, Preset::F16, Preset::Q8_0, Preset::Q4_0];

    /// Parses `f32`, `f16`, `q8_0`, `q4_0` (any case).
    pub fn parse(s: &str) -> QResult<Preset> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Preset::F32),
            "f16" => Ok(Preset::F16),
            "q8_0" => Ok(Preset::Q8_0),
            "q4_0" => Ok(Preset::Q4_0),
            _ => Err(QError::Usage(format!(
                "unknown preset '{s}' (choose f32, f16, q8_0 or q4_0)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::F32 => "f32",
            Preset::F16 => "f16",
            Preset::Q8_0 => "q8_0",
            Preset::Q4_0 => "q4_0",
        }
    }

    /// llama.cpp's `llama_ftype` for `general.file_type`.
    pub fn file_type(self) -> u32 {
        match self {
            Preset::F32 => 0,
            Preset::F16 => 1,
            Preset::Q4_0 => 2,
            Preset::Q8_0 => 7,
        }
    }

    /// Default `--max-ppl-increase` in percent: 1% for F32/F16/Q8_0 files, 6% for Q4_0 files.
    pub fn default_max_ppl_increase(self) -> f64 {
        match self {
            Preset::Q4_0 => 6.0,
            _ => 1.0,
        }
    }

    /// The type this preset gives a tensor of `role`.
    pub fn type_for(self, role: Role) -> GgmlType {
        match (self, role) {
            (_, Role::Vector) | (Preset::F32, _) => GgmlType::F32,
            (Preset::F16, _) => GgmlType::F16,
            (Preset::Q8_0, _) | (Preset::Q4_0, Role::Embedding) => GgmlType::Q8_0,
            (Preset::Q4_0, Role::Matrix) => GgmlType::Q4_0,
        }
    }
}

/// Parses an output tensor type: `f32`, `f16`, `q8_0`, `q4_0` (any case).
pub fn parse_type(s: &str) -> QResult<GgmlType> {
    match GgmlType::from_name(s) {
        Some(t) if t != GgmlType::BF16 => Ok(t),
        _ => Err(QError::Usage(format!(
            "unknown tensor type '{s}' (choose f32, f16, q8_0 or q4_0)"
        ))),
    }
}

/// What a tensor is, for the presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Vector,
    Embedding,
    Matrix,
}

impl Role {
    /// The role of tensor `name` with ggml dims `dims`.
    pub fn of(name: &str, dims: &[u64]) -> Role {
        let n_rows: u64 = dims.iter().skip(1).product();
        if dims.len() <= 1
            || n_rows == 1
            || name.ends_with("norm.weight")
            || name.ends_with(".bias")
            || name == "dec2.start"
        {
            Role::Vector
        } else if name.ends_with("token_embd.weight") || name == "output.weight" {
            Role::Embedding
        } else {
            Role::Matrix
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Vector => "vector",
            Role::Embedding => "embedding",
            Role::Matrix => "matrix",
        }
    }
}

/// One `--tensor-type PATTERN=TYPE`.
#[derive(Debug, Clone)]
pub struct Override {
    pub text: String,
    pub pattern: glob::Pattern,
    pub ty: GgmlType,
}

impl Override {
    /// Parses `PATTERN=TYPE` (split at the last `=`).
    pub fn parse(s: &str) -> QResult<Override> {
        let (pat, ty) = s.rsplit_once('=').ok_or_else(|| {
            QError::Usage(format!(
                "--tensor-type '{s}': expected PATTERN=TYPE, e.g. '*.ffn_down.weight=q8_0'"
            ))
        })?;
        if pat.is_empty() {
            return Err(QError::Usage(format!("--tensor-type '{s}': empty pattern")));
        }
        let pattern = glob::Pattern::new(pat).map_err(|e| {
            QError::Usage(format!("--tensor-type '{s}': invalid pattern '{pat}': {e}"))
        })?;
        let ty = parse_type(ty).map_err(|e| match e {
            QError::Usage(m) => QError::Usage(format!("--tensor-type '{s}': {m}")),
            e => e,
        })?;
        Ok(Override {
            text: s.to_string(),
            pattern,
            ty,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        self.pattern.matches_with(name, opts)
    }
}

/// Why a tensor gets its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The preset's rule for its role.
    Preset,
    /// Override number `i` (0-based, command-line order).
    Override(usize),
    /// The preset asked for a block type the row length does not allow: F16 instead.
    Fallback,
}

/// A tensor as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDesc {
    pub name: String,
    /// ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

/// The decision for one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPlan {
    pub name: String,
    pub dims: Vec<u64>,
    pub role: Role,
    pub src: GgmlType,
    pub dst: GgmlType,
    pub why: Why,
}

impl TensorPlan {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of the output tensor's data (without padding).
    pub fn out_bytes(&self) -> u64 {
        self.dst.bytes_for(self.n_elements()).unwrap_or(0)
    }
}

fn block_ok(ty: GgmlType, dims: &[u64]) -> bool {
    let row = dims.first().copied().unwrap_or(1);
    row % ty.block_elems() as u64 == 0
}

/// Chooses every tensor's output type. Errors: an override matching no tensor, a block type
/// asked (by override) for a tensor whose rows are not whole blocks, a block type on a vector.
pub fn plan(
    tensors: &[TensorDesc],
    preset: Preset,
    overrides: &[Override],
) -> QResult<Vec<TensorPlan>> {
    let mut used = vec![false; overrides.len()];
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let role = Role::of(&t.name, &t.dims);
        let hit = overrides.iter().position(|o| o.matches(&t.name));
        let (dst, why) = match hit {
            Some(i) => {
                used[i] = true;
                let ty = overrides[i].ty;
                let block = ty.block_elems() > 1;
                if block && role == Role::Vector {
                    return Err(QError::Usage(format!(
                        "--tensor-type '{}': tensor '{}' is a norm weight, bias or start latent; \
                         these stay F32 (or F16), not {}",
                        overrides[i].text,
                        t.name,
                        ty.name()
                    )));
                }
                if !block_ok(ty, &t.dims) {
                    return Err(QError::Usage(format!(
                        "--tensor-type '{}': tensor '{}' has rows of {} values, not a multiple of \
                         the {} block size {QK}",
                        overrides[i].text,
                        t.name,
                        t.dims.first().copied().unwrap_or(1),
                        ty.name()
                    )));
                }
                (ty, Why::Override(i))
            }
            None => {
                let ty = preset.type_for(role);
                if block_ok(ty, &t.dims) {
                    (ty, Why::Preset)
                } else {
                    (GgmlType::F16, Why::Fallback)
                }
            }
        };
        out.push(TensorPlan {
            name: t.name.clone(),
            dims: t.dims.clone(),
            role,
            src: t.ty,
            dst,
            why,
        });
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(QError::Usage(format!(
            "--tensor-type '{}': the pattern matches no tensor of this model",
            overrides[i].text
        )));
    }
    Ok(out)
}
