//! A training export → the float GGUF `training/export.py` writes, byte for byte in tensors and
//! metadata (docs/format.md): safetensors (F32, F16 or BF16 tensors with PyTorch state-dict
//! names) + the training config JSON + the SentencePiece `.model`.
//!
//! Tensor names are mapped exactly as `export.py`'s `gguf_name`, tensors are written in the
//! order of their PyTorch names (as `export.py` reads them), norm weights, biases and
//! `dec2.start` as F32, everything else as F16 (round to nearest even, as numpy's `astype`).
//! Every tensor is checked against the shape the config implies; missing, unknown or misshaped
//! tensors, unsupported dtypes and unknown architectures are errors.
use crate::spm::SpModel;
use crate::{QError, QResult};
use photon_runtime::gguf::{GgufWriter, OwnedValue};
use photon_runtime::quant::{self, GgmlType};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// The chat strings `export.py` writes (`photon.chat.*`).
pub const CHAT: [(&str, &str); 4] = [
    ("user_prefix", "<|user|>"),
    ("user_suffix", "<|end|>"),
    ("assistant_prefix", "<|assistant|>"),
    ("assistant_suffix", "<|end|>"),
];

/// The Jinja chat template `export.py` writes (`tokenizer.chat_template`).
pub const CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}\
{% if message['role'] == 'user' %}{{ '<|user|>' + message['content'] + '<|end|>' }}\
{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + '<|end|>' }}\
{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

const BLOCK: [(&str, &str); 9] = [
    ("attn_norm.weight", "attn_norm.weight"),
    ("attn.q.weight", "attn_q.weight"),
    ("attn.k.weight", "attn_k.weight"),
    ("attn.v.weight", "attn_v.weight"),
    ("attn.o.weight", "attn_output.weight"),
    ("ffn_norm.weight", "ffn_norm.weight"),
    ("ffn.gate.weight", "ffn_gate.weight"),
    ("ffn.up.weight", "ffn_up.weight"),
    ("ffn.down.weight", "ffn_down.weight"),
];
const PHOTON_TOP: [(&str, &str); 11] = [
    ("enc_embd.weight", "enc.token_embd.weight"),
    ("chunk2_norm.weight", "chunk2.norm.weight"),
    ("chunk2.weight", "chunk2.weight"),
    ("chunk2.bias", "chunk2.bias"),
    ("dec2_start", "dec2.start"),
    ("dec2_conv.weight", "dec2.conv.weight"),
    ("dec2_conv.bias", "dec2.conv.bias"),
    ("dec1_conv.weight", "dec1.conv.weight"),
    ("dec1_conv.bias", "dec1.conv.bias"),
    ("dec1_embd.weight", "dec1.token_embd.weight"),
    ("output.weight", "output.weight"),
];
const LLAMA_TOP: [(&str, &str); 3] = [
    ("embd.weight", "token_embd.weight"),
    ("stack.norm.weight", "output_norm.weight"),
    ("output.weight", "output.weight"),
];
const STACKS: [&str; 4] = ["enc1", "enc2", "dec2", "dec1"];

/// The architectures the exporter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Photon,
    Llama,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Photon => "photon",
            Arch::Llama => "llama",
        }
    }
}

fn block_name(rest: &str) -> Option<&'static str> {
    BLOCK.iter().find(|(t, _)| *t == rest).map(|(_, g)| *g)
}

/// `blocks.N.REST` → (N, REST) with N all digits.
fn split_block(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix("blocks.")?;
    let (n, rest) = s.split_once('.')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((n, rest))
}

/// PyTorch state-dict name → GGUF tensor name (`export.py`'s `gguf_name`); `None` if unknown.
pub fn gguf_name(arch: Arch, name: &str) -> Option<String> {
    match arch {
        Arch::Photon => {
            if let Some((_, g)) = PHOTON_TOP.iter().find(|(t, _)| *t == name) {
                return Some(g.to_string());
            }
            let (stack, rest) = name.split_once('.')?;
            if !STACKS.contains(&stack) {
                return None;
            }
            if rest == "norm.weight" {
                return Some(format!("{stack}.output_norm.weight"));
            }
            let (n, r) = split_block(rest)?;
            Some(format!("{stack}.blk.{n}.{}", block_name(r)?))
        }
        Arch::Llama => {
            if let Some((_, g)) = LLAMA_TOP.iter().find(|(t, _)| *t == name) {
                return Some(g.to_string());
            }
            let (n, r) = split_block(name.strip_prefix("stack.")?)?;
            Some(format!("blk.{n}.{}", block_name(r)?))
        }
    }
}

/// Tensors `export.py` keeps in F32 (by GGUF name).
pub fn keep_f32(gname: &str) -> bool {
    gname.ends_with("norm.weight") || gname.ends_with(".bias") || gname == "dec2.start"
}

/// The training config (`*.config.json`) fields the exporter uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub arch: Arch,
    pub vocab_size: u32,
    pub d: u32,
    pub n_heads: u32,
    pub ffn: u32,
    pub context_length: u32,
    /// llama: `[n_layers]`; photon: `[F1, F2, G2, G1]`.
    pub layers: Vec<u32>,
    pub levels: u32,
    pub chunks: Vec<u32>,
    pub prefix: u32,
    pub window1: u32,
}

fn cfg_err(m: impl std::fmt::Display) -> QError {
    QError::Input(format!("config: {m}"))
}

fn get_u32(v: &serde_json::Value, key: &str) -> QResult<u32> {
    let x = v
        .get(key)
        .ok_or_else(|| cfg_err(format!("missing key '{key}'")))?;
    x.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| cfg_err(format!("'{key}' is {x}, expected a non-negative integer")))
}

fn get_u32s(v: &serde_json::Value, key: &str) -> QResult<Vec<u32>> {
    let x = v
        .get(key)
        .ok_or_else(|| cfg_err(format!("missing key '{key}'")))?;
    let a = x
        .as_array()
        .ok_or_else(|| cfg_err(format!("'{key}' is {x}, expected an array of integers")))?;
    a.iter()
        .map(|e| {
            e.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| cfg_err(format!("'{key}' holds {e}, expected integers")))
        })
        .collect()
}

impl TrainConfig {
    /// Parses the config JSON that `training/train.py` writes next to the safetensors.
    pub fn parse(json: &str) -> QResult<TrainConfig> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| cfg_err(format!("not valid JSON: {e}")))?;
        let arch_s = v
            .get("arch")
            .and_then(|a| a.as_str())
            .ok_or_else(|| cfg_err("missing string key 'arch'"))?;
        let arch = match arch_s {
            "photon" => Arch::Photon,
            "llama" => Arch::Llama,
            other => {
                return Err(QError::Input(format!(
                    "config: unknown architecture '{other}' (photon and llama are supported)"
                )))
            }
        };
        let mut c = TrainConfig {
            arch,
            vocab_size: get_u32(&v, "vocab_size")?,
            d: get_u32(&v, "d")?,
            n_heads: get_u32(&v, "n_heads")?,
            ffn: get_u32(&v, "ffn")?,
            context_length: get_u32(&v, "context_length")?,
            layers: Vec::new(),
            levels: 0,
            chunks: Vec::new(),
            prefix: 0,
            window1: 0,
        };
        match arch {
            Arch::Photon => {
                c.layers = get_u32s(&v, "layers")?;
                if c.layers.len() != 4 {
                    return Err(cfg_err(format!(
                        "'layers' has {} entries, expected 4 (enc1, enc2, dec2, dec1)",
                        c.layers.len()
                    )));
                }
                if c.layers.iter().any(|&l| l != c.layers[0]) {
                    return Err(cfg_err(format!(
                        "'layers' {:?}: the four stacks must have equal depth (photon.block_count)",
                        c.layers
                    )));
                }
                c.levels = get_u32(&v, "levels")?;
                c.chunks = get_u32s(&v, "chunks")?;
                if c.chunks.len() != 2 || c.chunks.contains(&0) {
                    return Err(cfg_err(format!(
                        "'chunks' {:?}: expected two chunk sizes",
                        c.chunks
                    )));
                }
                c.prefix = get_u32(&v, "prefix")?;
                c.window1 = get_u32(&v, "window1")?;
            }
            Arch::Llama => c.layers = vec![get_u32(&v, "n_layers")?],
        }
        if c.d == 0 || c.n_heads == 0 || c.vocab_size == 0 || c.ffn == 0 {
            return Err(cfg_err("d, n_heads, vocab_size and ffn must be > 0"));
        }
        if c.d % c.chunks.first().copied().unwrap_or(1) != 0 {
            return Err(cfg_err(format!(
                "d {} is not a multiple of the first chunk size {}",
                c.d, c.chunks[0]
            )));
        }
        Ok(c)
    }

    /// Every tensor the config implies: GGUF name → PyTorch-order shape.
    pub fn expected_shapes(&self) -> BTreeMap<String, Vec<u64>> {
        let (v, d, f) = (self.vocab_size as u64, self.d as u64, self.ffn as u64);
        let mut m = BTreeMap::new();
        let stack = |p: &str, n: u32, m: &mut BTreeMap<String, Vec<u64>>| {
            for l in 0..n {
                let b = format!("{p}blk.{l}.");
                m.insert(format!("{b}attn_norm.weight"), vec![d]);
                for x in ["attn_q", "attn_k", "attn_v", "attn_output"] {
                    m.insert(format!("{b}{x}.weight"), vec![d, d]);
                }
                m.insert(format!("{b}ffn_norm.weight"), vec![d]);
                m.insert(format!("{b}ffn_gate.weight"), vec![f, d]);
                m.insert(format!("{b}ffn_up.weight"), vec![f, d]);
                m.insert(format!("{b}ffn_down.weight"), vec![d, f]);
            }
            m.insert(format!("{p}output_norm.weight"), vec![d]);
        };
        match self.arch {
            Arch::Llama => {
                m.insert("token_embd.weight".into(), vec![v, d]);
                stack("", self.layers[0], &mut m);
                m.insert("output.weight".into(), vec![v, d]);
            }
            Arch::Photon => {
                let (c1, c2, r) = (
                    self.chunks[0] as u64,
                    self.chunks[1] as u64,
                    self.prefix as u64,
                );
                m.insert("enc.token_embd.weight".into(), vec![v, d / c1]);
                for (s, &n) in STACKS.iter().zip(&self.layers) {
                    stack(&format!("{s}."), n, &mut m);
                }
                m.insert("chunk2.norm.weight".into(), vec![c2 * d]);
                m.insert("chunk2.weight".into(), vec![d, c2 * d]);
                m.insert("chunk2.bias".into(), vec![d]);
                m.insert("dec2.start".into(), vec![d]);
                for s in ["dec2", "dec1"] {
                    m.insert(format!("{s}.conv.weight"), vec![r * d, d]);
                    m.insert(format!("{s}.conv.bias"), vec![r * d]);
                }
                m.insert("dec1.token_embd.weight".into(), vec![v, d]);
                m.insert("output.weight".into(), vec![v, d]);
            }
        }
        m
    }
}

/// The metadata `export.py` writes, in its order (without `general.alignment`, which the
/// writer adds).
pub fn export_metadata(
    cfg: &TrainConfig,
    name: &str,
    sp: &SpModel,
) -> QResult<Vec<(String, OwnedValue)>> {
    let a = cfg.arch.name();
    let mut m: Vec<(String, OwnedValue)> = Vec::new();
    let u32k = |m: &mut Vec<(String, OwnedValue)>, k: String, v: u32| {
        m.push((k, OwnedValue::U32(v)));
    };
    m.push(("general.architecture".into(), OwnedValue::str(a)));
    m.push(("general.name".into(), OwnedValue::str(name)));
    u32k(&mut m, "general.file_type".into(), 1);
    u32k(&mut m, format!("{a}.context_length"), cfg.context_length);
    u32k(&mut m, format!("{a}.embedding_length"), cfg.d);
    u32k(&mut m, format!("{a}.feed_forward_length"), cfg.ffn);
    u32k(&mut m, format!("{a}.attention.head_count"), cfg.n_heads);
    u32k(&mut m, format!("{a}.attention.head_count_kv"), cfg.n_heads);
    m.push((
        format!("{a}.attention.layer_norm_rms_epsilon"),
        OwnedValue::F32(1e-5),
    ));
    m.push((format!("{a}.rope.freq_base"), OwnedValue::F32(10000.0)));
    u32k(&mut m, format!("{a}.rope.dimension_count"), 64);
    u32k(&mut m, format!("{a}.vocab_size"), cfg.vocab_size);
    match cfg.arch {
        Arch::Photon => {
            u32k(&mut m, "photon.block_count".into(), cfg.layers[0]);
            u32k(&mut m, "photon.levels".into(), cfg.levels);
            m.push((
                "photon.chunk_sizes".into(),
                OwnedValue::u32_array(&cfg.chunks),
            ));
            u32k(&mut m, "photon.prefix_length".into(), cfg.prefix);
            u32k(&mut m, "photon.enc1.window".into(), cfg.window1);
            for (s, &n) in STACKS.iter().zip(&cfg.layers) {
                u32k(&mut m, format!("photon.{s}.block_count"), n);
            }
        }
        Arch::Llama => u32k(&mut m, "llama.block_count".into(), cfg.layers[0]),
    }
    for (k, v) in CHAT {
        m.push((format!("photon.chat.{k}"), OwnedValue::str(v)));
    }
    // Tokenizer, as export.py's add_tokenizer.
    if sp.pieces.len() != cfg.vocab_size as usize {
        return Err(QError::Input(format!(
            "the tokenizer has {} pieces, the config's vocab_size is {}",
            sp.pieces.len(),
            cfg.vocab_size
        )));
    }
    let toks: Vec<&str> = sp.pieces.iter().map(|p| p.piece.as_str()).collect();
    let scores: Vec<f32> = sp.pieces.iter().map(|p| p.score).collect();
    let types: Vec<i32> = (0..sp.pieces.len())
        .map(|i| sp.gguf_token_type(i))
        .collect();
    m.push(("tokenizer.ggml.model".into(), OwnedValue::str("llama")));
    m.push(("tokenizer.ggml.tokens".into(), OwnedValue::str_array(&toks)));
    m.push((
        "tokenizer.ggml.scores".into(),
        OwnedValue::f32_array(&scores),
    ));
    m.push((
        "tokenizer.ggml.token_type".into(),
        OwnedValue::i32_array(&types),
    ));
    for (k, id) in [
        ("bos_token_id", sp.bos_id),
        ("eos_token_id", sp.eos_id),
        ("unknown_token_id", sp.unk_id),
        ("padding_token_id", sp.pad_id),
        ("eot_token_id", sp.piece_to_id("<|end|>")),
    ] {
        // A disabled special token (id −1) is left out rather than written as 2^32 − 1.
        if id >= 0 {
            u32k(&mut m, format!("tokenizer.ggml.{k}"), id as u32);
        }
    }
    m.push((
        "tokenizer.ggml.add_bos_token".into(),
        OwnedValue::Bool(true),
    ));
    m.push((
        "tokenizer.ggml.add_eos_token".into(),
        OwnedValue::Bool(false),
    ));
    m.push((
        "tokenizer.ggml.add_space_prefix".into(),
        OwnedValue::Bool(sp.add_dummy_prefix),
    ));
    m.push((
        "tokenizer.chat_template".into(),
        OwnedValue::str(CHAT_TEMPLATE),
    ));
    Ok(m)
}

fn st_err(m: impl std::fmt::Display) -> QError {
    QError::Input(format!("malformed safetensors file: {m}"))
}

/// safetensors bytes + config + tokenizer → the float GGUF file (bytes) `export.py` writes.
pub fn export_gguf(
    safetensors: &[u8],
    cfg: &TrainConfig,
    name: &str,
    sp: &SpModel,
) -> QResult<Vec<u8>> {
    let st = SafeTensors::deserialize(safetensors).map_err(st_err)?;
    let mut w = GgufWriter::new();
    for (k, v) in export_metadata(cfg, name, sp)? {
        w.add(&k, v)?;
    }
    let mut expected = cfg.expected_shapes();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for tname in &names {
        let t = st.tensor(tname).map_err(st_err)?;
        let g = gguf_name(cfg.arch, tname).ok_or_else(|| {
            QError::Input(format!(
                "tensor '{tname}' is not a tensor of the {} architecture (no GGUF name for it)",
                cfg.arch.name()
            ))
        })?;
        let shape: Vec<u64> = t.shape().iter().map(|&x| x as u64).collect();
        let want = expected.remove(&g).ok_or_else(|| {
            QError::Input(format!(
                "tensor '{tname}' ({g}) is not part of the model the config describes \
                 (or appears twice)"
            ))
        })?;
        if shape != want {
            return Err(QError::Input(format!(
                "tensor '{tname}' has shape {shape:?}, the config implies {want:?}"
            )));
        }
        let n = shape.iter().product::<u64>() as usize;
        let data = t.data();
        let mut values = vec![0.0f32; n];
        let src = match t.dtype() {
            Dtype::F32 => GgmlType::F32,
            Dtype::F16 => GgmlType::F16,
            Dtype::BF16 => GgmlType::BF16,
            other => {
                return Err(QError::Input(format!(
                    "tensor '{tname}' has dtype {other:?}; F32, F16 and BF16 are supported"
                )))
            }
        };
        quant::dequantize_row(src, data, &mut values)
            .map_err(|e| QError::Input(format!("tensor '{tname}': {e}")))?;
        let dst = if keep_f32(&g) {
            GgmlType::F32
        } else {
            GgmlType::F16
        };
        let mut out = Vec::with_capacity(n * 4);
        quant::quantize_row(dst, &values, &mut out)?;
        let dims: Vec<u64> = shape.iter().rev().copied().collect();
        w.add_tensor(&g, dst, &dims, out)?;
    }
    if let Some((g, shape)) = expected.iter().next() {
        return Err(QError::Input(format!(
            "tensor {g} {shape:?} is missing from the safetensors file ({} of {} missing)",
            expected.len(),
            cfg.expected_shapes().len()
        )));
    }
    Ok(w.to_bytes()?)
}
