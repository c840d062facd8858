//! Random-weight model files for tests and tools: a PHOTON or LLaMA GGUF with the project's
//! tensor names (docs/format.md), any mix of tensor types.
use crate::gguf::{GgufWriter, OwnedValue};
use crate::quant::{self, GgmlType};
use crate::Result;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Shape of a random model.
#[derive(Debug, Clone)]
pub struct RandomSpec {
    pub photon: bool,
    pub vocab: usize,
    pub d: usize,
    pub heads: usize,
    pub ffn: usize,
    /// PHOTON: `[F1, F2, G2, G1]`; llama: `layers[0]`.
    pub layers: [usize; 4],
    pub c1: usize,
    pub c2: usize,
    pub r: usize,
    pub w1: usize,
    pub context: usize,
    /// Type of the matrices (embeddings, projections, LM head).
    pub mat_type: GgmlType,
    /// Type of the vectors (norms, biases, start latent).
    pub vec_type: GgmlType,
    /// Standard deviation of matrix entries.
    pub scale: f32,
    pub seed: u64,
}

impl RandomSpec {
    /// A small PHOTON: V 96, D 128 (2 heads), I 96, 2 layers a stack, C 4×4, R 2, W1 2.
    pub fn tiny_photon() -> Self {
        RandomSpec {
            photon: true,
            vocab: 96,
            d: 128,
            heads: 2,
            ffn: 96,
            layers: [2, 2, 2, 2],
            c1: 4,
            c2: 4,
            r: 2,
            w1: 2,
            context: 512,
            mat_type: GgmlType::F32,
            vec_type: GgmlType::F32,
            scale: 0.12,
            seed: 1,
        }
    }
    /// A small LLaMA of the same width, 3 layers.
    pub fn tiny_llama() -> Self {
        RandomSpec {
            photon: false,
            layers: [3, 0, 0, 0],
            ..Self::tiny_photon()
        }
    }
}

/// xorshift64*: the random numbers of random models and benchmark caches.
pub(crate) struct Rng(u64);
impl Rng {
    /// A generator for `seed` (any value).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [−0.5, 0.5).
    pub(crate) fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    /// A sum of uniforms ≈ normal with unit variance.
    fn next(&mut self) -> f32 {
        (0..4).map(|_| self.uniform()).sum::<f32>() * 1.732
    }
}

/// Builds the GGUF bytes of a random model.
pub fn random_model(spec: &RandomSpec) -> Result<Vec<u8>> {
    random_model_with(spec, Vec::new())
}

/// [`random_model`] with extra metadata entries (e.g. a tokenizer vocabulary, a name) written
/// after the architecture's keys. `general.name` in `extra` replaces the default name.
pub fn random_model_with(spec: &RandomSpec, extra: Vec<(String, OwnedValue)>) -> Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    let arch = if spec.photon { "photon" } else { "llama" };
    let mut rng = Rng::new(spec.seed);
    let k = |s: &str| format!("{arch}.{s}");
    w.add("general.architecture", OwnedValue::Str(arch.into()))?;
    if !extra.iter().any(|(k, _)| k == "general.name") {
        w.add("general.name", OwnedValue::Str(format!("random-{arch}")))?;
    }
    w.add(&k("context_length"), OwnedValue::U32(spec.context as u32))?;
    w.add(&k("embedding_length"), OwnedValue::U32(spec.d as u32))?;
    w.add(&k("feed_forward_length"), OwnedValue::U32(spec.ffn as u32))?;
    w.add(
        &k("attention.head_count"),
        OwnedValue::U32(spec.heads as u32),
    )?;
    w.add(
        &k("attention.head_count_kv"),
        OwnedValue::U32(spec.heads as u32),
    )?;
    w.add(
        &k("attention.layer_norm_rms_epsilon"),
        OwnedValue::F32(1e-5),
    )?;
    w.add(&k("rope.freq_base"), OwnedValue::F32(10000.0))?;
    w.add(
        &k("rope.dimension_count"),
        OwnedValue::U32((spec.d / spec.heads) as u32),
    )?;
    w.add(&k("vocab_size"), OwnedValue::U32(spec.vocab as u32))?;
    w.add(&k("block_count"), OwnedValue::U32(spec.layers[0] as u32))?;
    if spec.photon {
        w.add("photon.levels", OwnedValue::U32(2))?;
        w.add(
            "photon.chunk_sizes",
            OwnedValue::u32_array(&[spec.c1 as u32, spec.c2 as u32]),
        )?;
        w.add("photon.prefix_length", OwnedValue::U32(spec.r as u32))?;
        w.add("photon.enc1.window", OwnedValue::U32(spec.w1 as u32))?;
        for (i, s) in ["enc1", "enc2", "dec2", "dec1"].iter().enumerate() {
            w.add(
                &format!("photon.{s}.block_count"),
                OwnedValue::U32(spec.layers[i] as u32),
            )?;
        }
    }
    for (k, v) in extra {
        w.add(&k, v)?;
    }
    let mat = |w: &mut GgufWriter, name: &str, rows: usize, cols: usize, rng: &mut Rng| {
        let mut data = Vec::new();
        let mut row = alloc::vec![0.0f32; cols];
        for _ in 0..rows {
            for v in row.iter_mut() {
                *v = rng.next() * spec.scale;
            }
            quant::quantize_row(spec.mat_type, &row, &mut data)?;
        }
        w.add_tensor(name, spec.mat_type, &[cols as u64, rows as u64], data)
    };
    let vecf = |w: &mut GgufWriter, name: &str, n: usize, center: f32, sd: f32, rng: &mut Rng| {
        let v: Vec<f32> = (0..n).map(|_| center + rng.next() * sd).collect();
        let mut data = Vec::new();
        quant::quantize_row(spec.vec_type, &v, &mut data)?;
        w.add_tensor(name, spec.vec_type, &[n as u64], data)
    };
    let (d, ffn, v) = (spec.d, spec.ffn, spec.vocab);
    let stack = |w: &mut GgufWriter, p: &str, n: usize, rng: &mut Rng| -> Result<()> {
        for l in 0..n {
            let b = format!("{p}blk.{l}.");
            vecf(w, &format!("{b}attn_norm.weight"), d, 1.0, 0.1, rng)?;
            for m in ["attn_q", "attn_k", "attn_v", "attn_output"] {
                mat(w, &format!("{b}{m}.weight"), d, d, rng)?;
            }
            vecf(w, &format!("{b}ffn_norm.weight"), d, 1.0, 0.1, rng)?;
            mat(w, &format!("{b}ffn_gate.weight"), ffn, d, rng)?;
            mat(w, &format!("{b}ffn_up.weight"), ffn, d, rng)?;
            mat(w, &format!("{b}ffn_down.weight"), d, ffn, rng)?;
        }
        vecf(w, &format!("{p}output_norm.weight"), d, 1.0, 0.1, rng)
    };
    if spec.photon {
        let (c1, c2, r) = (spec.c1, spec.c2, spec.r);
        mat(&mut w, "enc.token_embd.weight", v, d / c1, &mut rng)?;
        stack(&mut w, "enc1.", spec.layers[0], &mut rng)?;
        vecf(&mut w, "chunk2.norm.weight", c2 * d, 1.0, 0.1, &mut rng)?;
        mat(&mut w, "chunk2.weight", d, c2 * d, &mut rng)?;
        vecf(&mut w, "chunk2.bias", d, 0.0, 0.1, &mut rng)?;
        stack(&mut w, "enc2.", spec.layers[1], &mut rng)?;
        vecf(&mut w, "dec2.start", d, 0.0, 1.0, &mut rng)?;
        mat(&mut w, "dec2.conv.weight", r * d, d, &mut rng)?;
        vecf(&mut w, "dec2.conv.bias", r * d, 0.0, 0.1, &mut rng)?;
        stack(&mut w, "dec2.", spec.layers[2], &mut rng)?;
        mat(&mut w, "dec1.conv.weight", r * d, d, &mut rng)?;
        vecf(&mut w, "dec1.conv.bias", r * d, 0.0, 0.1, &mut rng)?;
        mat(&mut w, "dec1.token_embd.weight", v, d, &mut rng)?;
        stack(&mut w, "dec1.", spec.layers[3], &mut rng)?;
        mat(&mut w, "output.weight", v, d, &mut rng)?;
    } else {
        mat(&mut w, "token_embd.weight", v, d, &mut rng)?;
        stack(&mut w, "", spec.layers[0], &mut rng)?;
        mat(&mut w, "output.weight", v, d, &mut rng)?;
    }
    w.to_bytes()
}

/// Names of every tensor of a model file (for robustness tests that drop or alter one).
pub fn tensor_names(bytes: &[u8]) -> Result<Vec<String>> {
    let g = crate::gguf::Gguf::parse(bytes)?;
    Ok(g.tensors().iter().map(|t| String::from(t.name)).collect())
}
