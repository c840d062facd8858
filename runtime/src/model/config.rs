//! Model hyper-parameters read from GGUF metadata, validated.
use super::source::Source;
use crate::{err, Result};

/// Which model a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// PHOTON (`general.architecture = "photon"`).
    Photon,
    /// The vanilla LLaMA baseline (`llama`, llama.cpp's names).
    Llama,
}

/// Hyper-parameters of a model (see docs/format.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: ModelKind,
    /// V
    pub vocab: usize,
    /// D
    pub d: usize,
    /// I (SwiGLU inner width)
    pub ffn: usize,
    /// H
    pub heads: usize,
    /// D / H (64 for PHOTON)
    pub head_dim: usize,
    pub eps: f32,
    pub rope_base: f32,
    /// Trained sequence length T (tokens).
    pub context: usize,
    /// Llama: `[layers, 0, 0, 0]`; PHOTON: layers of `[F1, F2, G2, G1]`.
    pub layers: [usize; 4],
    /// C_1, C_2 (PHOTON).
    pub c1: usize,
    pub c2: usize,
    /// Converter prefix length R (PHOTON).
    pub r: usize,
    /// F1 window in level-1 units, 0 = unbounded (PHOTON).
    pub w1: usize,
}

/// Largest chunk sizes the runtime accepts (bounded batches live on the stack).
pub const MAX_C: usize = 16;

impl Config {
    /// Reads and validates the hyper-parameters.
    pub(crate) fn from_source(src: &dyn Source) -> Result<Config> {
        let arch = src.meta_str("general.architecture")?;
        let kind = match arch {
            "photon" => ModelKind::Photon,
            "llama" => ModelKind::Llama,
            other => {
                return Err(err!(
                    Unsupported,
                    "architecture {other:?} (photon and llama are supported)"
                ))
            }
        };
        let key = |k: &str| alloc::format!("{arch}.{k}");
        let u = |k: &str| src.meta_u32(&key(k)).map(|v| v as usize);
        let d = u("embedding_length")?;
        let heads = u("attention.head_count")?;
        let ffn = u("feed_forward_length")?;
        let kv_heads = if src.has(&key("attention.head_count_kv")) {
            u("attention.head_count_kv")?
        } else {
            heads
        };
        let vocab = if src.has(&key("vocab_size")) {
            u("vocab_size")?
        } else {
            src.meta_array_len("tokenizer.ggml.tokens")?
        };
        let eps = if src.has(&key("attention.layer_norm_rms_epsilon")) {
            src.meta_f32(&key("attention.layer_norm_rms_epsilon"))?
        } else {
            1e-5
        };
        let rope_base = if src.has(&key("rope.freq_base")) {
            src.meta_f32(&key("rope.freq_base"))?
        } else {
            10000.0
        };
        let context = u("context_length")?;
        if heads == 0 || d == 0 || d % heads != 0 {
            return Err(err!(
                Model,
                "embedding_length {d} is not a multiple of head_count {heads}"
            ));
        }
        let head_dim = d / heads;
        if kv_heads != heads {
            return Err(err!(
                Unsupported,
                "grouped-query attention (head_count_kv {kv_heads} ≠ head_count {heads})"
            ));
        }
        if src.has(&key("rope.dimension_count")) {
            let rd = u("rope.dimension_count")?;
            if rd != head_dim {
                return Err(err!(
                    Unsupported,
                    "partial RoPE (rope.dimension_count {rd} ≠ head size {head_dim})"
                ));
            }
        }
        if head_dim % 2 != 0 {
            return Err(err!(Model, "head size {head_dim} is odd"));
        }
        let ok = eps > 0.0 && eps < 1.0 && rope_base > 1.0;
        if !ok {
            return Err(err!(
                Model,
                "bad rms epsilon {eps} or rope base {rope_base}"
            ));
        }
        if vocab == 0 || context == 0 || ffn == 0 {
            return Err(err!(
                Model,
                "vocab_size, context_length and feed_forward_length must be > 0"
            ));
        }
        let mut cfg = Config {
            kind,
            vocab,
            d,
            ffn,
            heads,
            head_dim,
            eps,
            rope_base,
            context,
            layers: [0; 4],
            c1: 1,
            c2: 1,
            r: 0,
            w1: 0,
        };
        match kind {
            ModelKind::Llama => {
                cfg.layers[0] = u("block_count")?;
                if cfg.layers[0] == 0 {
                    return Err(err!(Model, "llama.block_count is 0"));
                }
            }
            ModelKind::Photon => {
                let levels = src.meta_u32("photon.levels")?;
                if levels != 2 {
                    return Err(err!(
                        Unsupported,
                        "photon.levels = {levels}: this runtime implements exactly 2 levels"
                    ));
                }
                let cs = src.meta_u32s("photon.chunk_sizes")?;
                if cs.len() != 2 {
                    return Err(err!(
                        Model,
                        "photon.chunk_sizes has {} entries, photon.levels is 2",
                        cs.len()
                    ));
                }
                cfg.c1 = cs[0] as usize;
                cfg.c2 = cs[1] as usize;
                cfg.r = src.meta_u32("photon.prefix_length")? as usize;
                cfg.w1 = src.meta_u32("photon.enc1.window")? as usize;
                for (i, s) in ["enc1", "enc2", "dec2", "dec1"].iter().enumerate() {
                    let k = alloc::format!("photon.{s}.block_count");
                    cfg.layers[i] = if src.has(&k) {
                        src.meta_u32(&k)? as usize
                    } else {
                        u("block_count")?
                    };
                    if cfg.layers[i] == 0 {
                        return Err(err!(Model, "{k} is 0"));
                    }
                }
                if head_dim != 64 {
                    return Err(err!(
                        Model,
                        "PHOTON needs head size 64, file has D {d} / {heads} heads = {head_dim}"
                    ));
                }
                if !(2..=MAX_C).contains(&cfg.c1) || !(2..=MAX_C).contains(&cfg.c2) {
                    return Err(err!(
                        Unsupported,
                        "chunk sizes {:?}: each must be in 2..={MAX_C}",
                        cs
                    ));
                }
                if cfg.r == 0 || cfg.r > MAX_C {
                    return Err(err!(
                        Model,
                        "photon.prefix_length {} out of 1..={MAX_C}",
                        cfg.r
                    ));
                }
                if d % cfg.c1 != 0 || (d / cfg.c1) % 32 != 0 {
                    return Err(err!(
                        Model,
                        "D = {d}: D / C1 = D / {} must be a whole multiple of 32",
                        cfg.c1
                    ));
                }
                if ffn % 32 != 0 {
                    return Err(err!(
                        Model,
                        "feed_forward_length {ffn} is not a multiple of 32"
                    ));
                }
                let b = cfg.c1 * cfg.c2;
                if context % b != 0 {
                    return Err(err!(
                        Model,
                        "context_length {context} is not a whole number of {b}-token meta-contexts"
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// Tokens in one meta-context (`C1·C2`).
    pub fn meta_tokens(&self) -> usize {
        self.c1 * self.c2
    }

    /// Width of the encoder's token embedding `D0 = D / C1`.
    pub fn d0(&self) -> usize {
        self.d / self.c1
    }
}
