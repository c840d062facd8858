//! Shared pieces of photon's measurement tools (`photon-bench`, `photon-perplexity`,
//! `photon-gen-model`): model presets and a synthetic tokenizer for random-weight files, the
//! bytes a decode step reads, peak RSS, statistics and table output. See docs/results.md.
use photon_runtime::gguf::OwnedValue;
use photon_runtime::model::testing::RandomSpec;
use photon_runtime::model::{CacheType, Model, ModelKind};
use photon_runtime::quant::GgmlType;
use photon_runtime::Mode;
use std::process::ExitCode;

/// Control tokens of the synthetic vocabulary (ids 0, 1, 2).
pub const CONTROL: [&str; 3] = ["<unk>", "<s>", "</s>"];
/// First id after the control and byte tokens: prompts of random models use ids from here.
pub const FIRST_PIECE: u32 = 3 + 256;

/// Tokenizer metadata (llama.cpp's SentencePiece keys, docs/format.md) of a synthetic
/// vocabulary of `vocab` tokens: `<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0xNN>`, then
/// filler pieces `▁p{i}`. It loads and encodes any text (every byte falls back to its byte
/// token); it carries no meaning. `vocab` must be at least 260.
pub fn synthetic_tokenizer(vocab: usize) -> Vec<(String, OwnedValue)> {
    let mut tokens: Vec<String> = CONTROL.iter().map(|s| s.to_string()).collect();
    let mut types = vec![2i32, 3, 3];
    for b in 0..256 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let mut i = 0;
    while tokens.len() < vocab {
        tokens.push(format!("\u{2581}p{i}"));
        types.push(1);
        i += 1;
    }
    let scores: Vec<f32> = (0..vocab)
        .map(|j| {
            if j < FIRST_PIECE as usize {
                0.0
            } else {
                -(j as f32)
            }
        })
        .collect();
    let s = |k: &str| k.to_string();
    vec![
        (s("tokenizer.ggml.model"), OwnedValue::Str(s("llama"))),
        (s("tokenizer.ggml.tokens"), OwnedValue::str_array(&tokens)),
        (s("tokenizer.ggml.scores"), OwnedValue::f32_array(&scores)),
        (
            s("tokenizer.ggml.token_type"),
            OwnedValue::i32_array(&types),
        ),
        (s("tokenizer.ggml.unknown_token_id"), OwnedValue::U32(0)),
        (s("tokenizer.ggml.bos_token_id"), OwnedValue::U32(1)),
        (s("tokenizer.ggml.eos_token_id"), OwnedValue::U32(2)),
        (s("tokenizer.ggml.add_bos_token"), OwnedValue::Bool(true)),
        (s("tokenizer.ggml.add_eos_token"), OwnedValue::Bool(false)),
        (s("tokenizer.ggml.add_space_prefix"), OwnedValue::Bool(true)),
    ]
}

/// A named configuration pair: a PHOTON model and its matched vanilla baseline (same D, FFN and
/// heads; as many layers as PHOTON's four stacks together).
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub d: usize,
    pub ffn: usize,
    pub heads: usize,
    /// PHOTON layers a stack.
    pub layers: usize,
    pub vocab: usize,
    pub w1: usize,
    pub what: &'static str,
}

pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "d768",
        d: 768,
        ffn: 2048,
        heads: 12,
        layers: 3,
        vocab: 32000,
        w1: 4,
        what: "the targets' pair: D 768, FFN 2048, 12 heads, 3 layers a stack vs 12 vanilla layers",
    },
    Preset {
        name: "photon-600m",
        d: 1664,
        ffn: 4096,
        heads: 26,
        layers: 4,
        vocab: 32000,
        w1: 4,
        what: "the paper's PHOTON-600M (head size 64: 26 heads) vs its 16-layer vanilla baseline",
    },
    Preset {
        name: "tiny",
        d: 256,
        ffn: 704,
        heads: 4,
        layers: 3,
        vocab: 4096,
        w1: 4,
        what: "photon-tiny's shape (D 256, FFN 704, 4 heads, 3 layers a stack) vs 12 layers",
    },
    Preset {
        name: "test",
        d: 128,
        ffn: 128,
        heads: 2,
        layers: 1,
        vocab: 320,
        w1: 4,
        what: "a very small pair for tests (D 128, FFN 128, 2 heads, 1 layer a stack vs 4)",
    },
];

pub fn preset(name: &str) -> Option<Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}

/// Parses a tensor type name (f32, f16, bf16, q8_0, q4_0).
pub fn parse_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::from_name(s).ok_or_else(|| {
        format!(
            "unknown tensor type '{}' (f32, f16, bf16, q8_0, q4_0)",
            s.to_ascii_lowercase()
        )
    })
}

pub fn parse_cache(s: &str) -> Result<CacheType, String> {
    match s.to_ascii_lowercase().as_str() {
        "f32" => Ok(CacheType::F32),
        "f16" => Ok(CacheType::F16),
        o => Err(format!("unknown cache type '{o}' (f32, f16)")),
    }
}

pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.to_ascii_lowercase().as_str() {
        "hiergen" | "hier" => Ok(Mode::HierGen),
        "recgen" | "rec" => Ok(Mode::RecGen),
        o => Err(format!("unknown mode '{o}' (hiergen, recgen)")),
    }
}

pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::HierGen => "hiergen",
        Mode::RecGen => "recgen",
    }
}

/// The random spec of a file `photon-gen-model` writes.
#[allow(clippy::too_many_arguments)]
pub fn spec(
    photon: bool,
    d: usize,
    ffn: usize,
    heads: usize,
    layers: usize,
    vocab: usize,
    w1: usize,
    context: usize,
    mat_type: GgmlType,
    seed: u64,
) -> RandomSpec {
    RandomSpec {
        photon,
        vocab,
        d,
        heads,
        ffn,
        layers: if photon {
            [layers; 4]
        } else {
            [layers, 0, 0, 0]
        },
        c1: 4,
        c2: 4,
        r: 2,
        w1,
        context,
        mat_type,
        vec_type: GgmlType::F32,
        // Small enough that deep random stacks stay well conditioned.
        scale: 0.02,
        seed,
    }
}

/// Bytes of tensor data per group of a model file.
#[derive(Debug, Clone, Default)]
pub struct WeightBytes {
    pub total: usize,
    /// llama: `blk.*`; PHOTON: the four stacks `[F1, F2, G2, G1]`.
    pub stacks: [usize; 4],
    pub output: usize,
    /// One row of each embedding table (llama: token_embd; PHOTON: E_enc + E_dec).
    pub embd_row_enc: usize,
    pub embd_row_dec: usize,
    pub chunk2: usize,
    pub conv1: usize,
    pub conv2: usize,
}

pub fn weight_bytes(m: &Model) -> WeightBytes {
    let g = m.gguf();
    let v = m.vocab_size().max(1);
    let mut w = WeightBytes::default();
    for t in g.tensors() {
        let n = t.data.len();
        let name = t.name;
        w.total += n;
        let stack = ["enc1.", "enc2.", "dec2.blk", "dec1.blk"]
            .iter()
            .position(|p| name.starts_with(p));
        if let Some(i) = stack {
            w.stacks[i] += n;
        } else if name.starts_with("blk.") || name == "output_norm.weight" {
            w.stacks[0] += n;
        } else if name.starts_with("dec2.output_norm") {
            w.stacks[2] += n;
        } else if name.starts_with("dec1.output_norm") {
            w.stacks[3] += n;
        } else if name == "output.weight" {
            w.output += n;
        } else if name == "token_embd.weight" || name == "enc.token_embd.weight" {
            w.embd_row_enc += n / v;
        } else if name == "dec1.token_embd.weight" {
            w.embd_row_dec += n / v;
        } else if name.starts_with("chunk2.") {
            w.chunk2 += n;
        } else if name.starts_with("dec1.conv") {
            w.conv1 += n;
        } else if name.starts_with("dec2.conv") {
            w.conv2 += n;
        }
    }
    w
}

/// Average weight bytes one generated token reads (decode), from the engine's schedule
/// (docs/engine.md): vanilla reads every layer and the LM head per token; PHOTON HierGen reads
/// G1 and the LM head per token, F1, G2 and U1 per unit (C1 tokens), the chunker, F2 and U2 per
/// meta-context (C1·C2 tokens); RecGen reads, per meta-context, G2 C2 times, G1 and the LM head
/// C1 times (each pass serves every unfinished unit), U1, U2, the chunker and F2 once.
pub fn weight_bytes_per_token(m: &Model, mode: Mode) -> f64 {
    let w = weight_bytes(m);
    let c = m.config();
    if m.kind() == ModelKind::Llama {
        return (w.stacks[0] + w.output + w.embd_row_enc) as f64;
    }
    let (c1, c2) = (c.c1 as f64, c.c2 as f64);
    let s = |i: usize| w.stacks[i] as f64;
    match mode {
        Mode::HierGen => {
            s(3) + w.output as f64
                + w.embd_row_dec as f64
                + (s(0) + s(2) + w.conv1 as f64 + c1 * w.embd_row_enc as f64) / c1
                + (w.chunk2 as f64 + s(1) + w.conv2 as f64) / (c1 * c2)
        }
        Mode::RecGen => {
            (c2 * s(2)
                + w.conv2 as f64
                + w.conv1 as f64
                + c1 * (s(3) + w.output as f64)
                + c1 * c2 * w.embd_row_dec as f64
                + w.chunk2 as f64
                + s(1))
                / (c1 * c2)
        }
    }
}

/// Average cache bytes one generated token reads at a context of `ctx` tokens (attention over
/// every cached key and value): vanilla all `ctx` positions of every layer; PHOTON the coarse F2
/// cache (ctx/16 positions) once per meta-context, the local windows as scheduled.
pub fn cache_bytes_per_token(m: &Model, mode: Mode, ctx: usize, cache: CacheType) -> f64 {
    let c = m.config();
    let elt = match cache {
        CacheType::F32 => 4.0,
        CacheType::F16 => 2.0,
    };
    let pos = |layers: usize, n: f64| 2.0 * layers as f64 * c.d as f64 * elt * n;
    if m.kind() == ModelKind::Llama {
        return pos(c.layers[0], ctx as f64);
    }
    let (c1, c2) = (c.c1 as f64, c.c2 as f64);
    let meta = c1 * c2;
    let f2 = pos(
        c.layers[1],
        (ctx as f64 / meta).min((c.context / c.meta_tokens()) as f64),
    );
    let g1 = pos(c.layers[3], (c.r + c.c1) as f64 / 2.0);
    let g2 = pos(c.layers[2], (c.r + c.c2) as f64 / 2.0);
    let f1 = pos(c.layers[0], c.w1.max(1) as f64);
    match mode {
        Mode::HierGen => g1 + (f1 + g2) / c1 + f2 / meta,
        Mode::RecGen => g1 + (c2 * g2 + f2) / meta,
    }
}

/// (VmRSS, VmHWM) of this process in bytes, from /proc/self/status (0 where unavailable).
pub fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Median, minimum and maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn stats(v: &[f64]) -> Stats {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return Stats {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stats {
        median,
        min: s[0],
        max: s[n - 1],
    }
}

/// Deterministic prompt of `n` tokens: BOS, then ids spread over the vocabulary's ordinary
/// pieces (or the whole vocabulary when it is small).
pub fn prompt_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let lo = if vocab > FIRST_PIECE as usize + 16 {
        FIRST_PIECE as u64
    } else {
        3.min(vocab as u64 - 1)
    };
    let span = (vocab as u64 - lo).max(1);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            if i == 0 && vocab > 1 {
                return 1;
            }
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (lo + (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % span) as u32
        })
        .collect()
}

/// Human-readable bytes (MiB with 2 decimals, or KiB below 1 MiB).
pub fn human(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.2} MiB", b / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// A markdown table.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", header.join(" | "));
    s += &format!("|{}\n", " --- |".repeat(header.len()));
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

/// CSV with quoting where needed.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let q = |x: &str| {
        if x.contains([',', '"', '\n']) {
            format!("\"{}\"", x.replace('"', "\"\""))
        } else {
            x.to_string()
        }
    };
    let mut s = header.iter().map(|h| q(h)).collect::<Vec<_>>().join(",") + "\n";
    for r in rows {
        s += &(r.iter().map(|x| q(x)).collect::<Vec<_>>().join(",") + "\n");
    }
    s
}

/// Ends a tool's `main`: the output on standard output, or the error as one line on standard
/// error (`TOOL: error: …`) and exit status 1.
pub fn finish(tool: &str, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{tool}: error: {e}");
            ExitCode::from(1)
        }
    }
}
