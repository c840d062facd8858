//! photon-gen-model: writes a random-weight GGUF model of any configuration, for speed and
//! memory measurements at scale (the weights carry no meaning; never commit the files).
//!
//! ```text
//! photon-gen-model --preset d768 --arch photon --type q4_0 -o /tmp/photon-d768-q4_0.gguf
//! photon-gen-model --preset d768 --arch vanilla --type q4_0 -o /tmp/vanilla-d768-q4_0.gguf
//! photon-gen-model --d 1024 --ffn 2816 --heads 16 --layers 2 --arch photon -o x.gguf
//! ```
//! The vanilla model of a preset has the same D, FFN and heads and as many layers as PHOTON's
//! four stacks together (`--layers` counts layers a PHOTON stack; `--vanilla-layers` overrides).
//! Files carry a synthetic tokenizer (3 control tokens, 256 byte tokens, filler pieces) so every
//! tool loads them, and a context length of 262,144 tokens by default so that neither the
//! coarse cache nor the vanilla KV cache slides below that.
use clap::Parser;
use photon_runtime::gguf::OwnedValue;
use photon_runtime::model::testing::random_model_with;
use photon_runtime::Model;
use photon_tools::{parse_type, preset, spec, synthetic_tokenizer, PRESETS};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "photon-gen-model",
    version,
    about = "Write a random-weight PHOTON or vanilla GGUF model (for benchmarks)"
)]
struct Cli {
    /// Output file.
    #[arg(short, long)]
    output: String,
    /// photon or vanilla.
    #[arg(long, default_value = "photon")]
    arch: String,
    /// A named configuration: d768, photon-600m, tiny, test (flags below override it).
    #[arg(long, default_value = "d768")]
    preset: String,
    /// Matrix type: f32, f16, bf16, q8_0, q4_0 (norms and biases stay f32).
    #[arg(long = "type", default_value = "q4_0")]
    ty: String,
    #[arg(long)]
    d: Option<usize>,
    #[arg(long)]
    ffn: Option<usize>,
    #[arg(long)]
    heads: Option<usize>,
    /// Layers of each PHOTON stack (the vanilla model gets 4× as many).
    #[arg(long)]
    layers: Option<usize>,
    /// Vanilla layers (default: 4 × --layers).
    #[arg(long)]
    vanilla_layers: Option<usize>,
    #[arg(long)]
    vocab: Option<usize>,
    /// F1 window in units (0 = unbounded).
    #[arg(long)]
    w1: Option<usize>,
    /// Context length stored in the file (tokens; a multiple of 16).
    #[arg(long, default_value_t = 262_144)]
    context: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// List the presets and exit.
    #[arg(long)]
    list: bool,
}

fn run(cli: Cli) -> Result<String, String> {
    let p = preset(&cli.preset).ok_or_else(|| {
        format!(
            "unknown preset '{}' ({})",
            cli.preset,
            PRESETS.map(|p| p.name).join(", ")
        )
    })?;
    let photon = match cli.arch.as_str() {
        "photon" => true,
        "vanilla" | "llama" => false,
        o => return Err(format!("unknown arch '{o}' (photon, vanilla)")),
    };
    let ty = parse_type(&cli.ty)?;
    let d = cli.d.unwrap_or(p.d);
    let heads = cli
        .heads
        .unwrap_or(if cli.d.is_some() { d / 64 } else { p.heads });
    let ffn = cli.ffn.unwrap_or(p.ffn);
    let layers = cli.layers.unwrap_or(p.layers);
    let vocab = cli.vocab.unwrap_or(p.vocab);
    let w1 = cli.w1.unwrap_or(p.w1);
    let vl = cli.vanilla_layers.unwrap_or(4 * layers);
    if vocab < 260 {
        return Err(format!(
            "vocab {vocab} is too small: the synthetic tokenizer needs 3 control + 256 byte tokens + 1"
        ));
    }
    if heads == 0 || d % heads != 0 || d / heads != 64 {
        return Err(format!(
            "D {d} with {heads} heads: the head size must be 64"
        ));
    }
    if d % 128 != 0 || ffn % 32 != 0 || ffn == 0 {
        return Err(format!(
            "D {d} must be a multiple of 128 (D/4 a multiple of 32) and FFN {ffn} a multiple of 32"
        ));
    }
    if layers == 0 || vl == 0 || cli.context == 0 || cli.context % 16 != 0 {
        return Err("layers must be ≥ 1 and the context a positive multiple of 16".into());
    }
    let s = spec(
        photon,
        d,
        ffn,
        heads,
        if photon { layers } else { vl },
        vocab,
        w1,
        cli.context,
        ty,
        cli.seed,
    );
    let mut extra = synthetic_tokenizer(vocab);
    let name = format!(
        "random-{}-d{d}-l{}-{}",
        if photon { "photon" } else { "vanilla" },
        if photon { layers } else { vl },
        cli.ty.to_ascii_lowercase()
    );
    extra.insert(0, ("general.name".into(), OwnedValue::Str(name.clone())));
    let ft = match ty {
        photon_runtime::quant::GgmlType::F32 => 0,
        photon_runtime::quant::GgmlType::F16 => 1,
        photon_runtime::quant::GgmlType::Q4_0 => 2,
        photon_runtime::quant::GgmlType::Q8_0 => 7,
        _ => 32,
    };
    extra.push(("general.file_type".into(), OwnedValue::U32(ft)));
    let t = Instant::now();
    let bytes = random_model_with(&s, extra).map_err(|e| e.to_string())?;
    let size = bytes.len();
    // Write to a temporary file, check that it loads, then rename into place.
    let out = std::path::Path::new(&cli.output);
    let tmp = out.with_extension("gguf.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    drop(bytes);
    let m = Model::open(&tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("generated model does not load: {e}")
    })?;
    let params = m
        .gguf()
        .tensors()
        .iter()
        .map(|t| t.n_elements())
        .sum::<u64>();
    drop(m);
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} ({name}: {params} parameters, {:.1} MB, {:.1} s)",
        cli.output,
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for p in PRESETS {
            println!("{:12} {}", p.name, p.what);
        }
        return ExitCode::SUCCESS;
    }
    photon_tools::finish("photon-gen-model", run(cli).map(|msg| msg + "\n"))
}
