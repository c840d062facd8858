//! photon-perplexity: perplexity of a text (or token) file under any of our models and modes,
//! and agreement (KL divergence, top-1) with a reference model or its saved logits. It calls
//! the runtime's one evaluator (`photon_runtime::model::eval`), the one the quantizer's gate
//! uses.
//!
//! ```text
//! photon-perplexity -m models/photon-tiny-f16.gguf --text corpus.txt
//! photon-perplexity -m models/photon-tiny-f16.gguf --tokens data/val.bin --mode recgen --prompt 128
//! photon-perplexity -m ref.gguf --text t.txt --save-logits ref.phtk      # top-32 + lse per position
//! photon-perplexity -m q4.gguf --text t.txt --reference-logits ref.phtk  # KL, top-1 vs saved
//! photon-perplexity -m q4.gguf --text t.txt --reference-model ref.gguf   # KL, top-1 vs a model
//! ```
//! Windows: consecutive non-overlapping windows of `--window` tokens (default: the trained
//! context, or the largest whole number of meta-contexts the text holds when it is shorter);
//! scored tokens 1…T−1 (RecGen: P…T−1), exactly like training/train.py.
use clap::Parser;
use photon_runtime::model::eval::{self, Latents};
use photon_runtime::model::{Model, ModelKind};
use photon_runtime::tokenizer::Tokenizer;
use photon_runtime::Mode;
use photon_tools::parse_mode;
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "photon-perplexity",
    version,
    about = "Perplexity, KL divergence and top-1 agreement of photon models over a text"
)]
struct Cli {
    /// Model file (PHOTON or vanilla GGUF).
    #[arg(short = 'm', long = "model")]
    model: String,
    /// UTF-8 text file, tokenized with the model's tokenizer (BOS first when the model adds it).
    #[arg(long, conflicts_with = "tokens")]
    text: Option<String>,
    /// Token file: little-endian u16 ids (training/prepare.py's val.bin), or u32 with --u32.
    #[arg(long)]
    tokens: Option<String>,
    /// Token file holds u32 ids.
    #[arg(long)]
    u32: bool,
    /// hiergen (teacher-forced latents) or recgen (latents from the recursive stream after a
    /// prompt of --prompt tokens, tokens teacher-forced inside units). Vanilla: ignored.
    #[arg(long, default_value = "hiergen")]
    mode: String,
    /// RecGen prompt length P (tokens; a multiple of 4).
    #[arg(long, default_value_t = 128)]
    prompt: usize,
    /// Window length (tokens; PHOTON: a multiple of 16).
    #[arg(long)]
    window: Option<usize>,
    /// At most this many windows (0 = all).
    #[arg(long, default_value_t = 0)]
    max_windows: usize,
    /// Threads.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Save this model's top-k log-probs + log-sum-exp per scored position (PHTK format).
    #[arg(long)]
    save_logits: Option<String>,
    /// k for --save-logits.
    #[arg(long, default_value_t = 32)]
    top_k: usize,
    /// Compare with a reference's saved logits (PHTK file).
    #[arg(long)]
    reference_logits: Option<String>,
    /// Compare with a reference model (same kind and vocabulary) run over the same windows.
    #[arg(long)]
    reference_model: Option<String>,
    /// Output: text or json.
    #[arg(short = 'o', long, default_value = "text")]
    output: String,
}

fn load_tokens(cli: &Cli, m: &Model) -> Result<Vec<u32>, String> {
    if let Some(p) = &cli.text {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
        let tok = Tokenizer::from_gguf(&m.gguf())
            .map_err(|e| format!("{}: no usable tokenizer: {e}", cli.model))?;
        let mut out = Vec::new();
        if tok.add_bos() {
            if let Some(b) = tok.bos() {
                out.push(b);
            }
        }
        tok.encode(&text, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    } else if let Some(p) = &cli.tokens {
        let raw = std::fs::read(p).map_err(|e| format!("{p}: {e}"))?;
        let w = if cli.u32 { 4 } else { 2 };
        if raw.len() % w != 0 {
            return Err(format!(
                "{p}: {} bytes is not a whole number of u{} ids",
                raw.len(),
                w * 8
            ));
        }
        let v: Vec<u32> = raw
            .chunks_exact(w)
            .map(|c| {
                if w == 2 {
                    u16::from_le_bytes([c[0], c[1]]) as u32
                } else {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                }
            })
            .collect();
        if let Some(t) = v.iter().find(|&&t| t as usize >= m.vocab_size()) {
            return Err(format!(
                "{p}: token id {t} is outside the model's vocabulary of {}",
                m.vocab_size()
            ));
        }
        Ok(v)
    } else {
        Err("give a --text or --tokens file".into())
    }
}

fn run(cli: Cli) -> Result<String, String> {
    let mode = parse_mode(&cli.mode)?;
    if !matches!(cli.output.as_str(), "text" | "json") {
        return Err(format!(
            "unknown output format '{}' (text, json)",
            cli.output
        ));
    }
    if cli.threads == 0 {
        return Err("--threads must be ≥ 1".into());
    }
    let m = Model::open(&cli.model).map_err(|e| format!("{}: {e}", cli.model))?;
    let photon = m.kind() == ModelKind::Photon;
    let stream = load_tokens(&cli, &m)?;
    let meta = if photon { m.config().meta_tokens() } else { 1 };
    let window = match cli.window {
        Some(w) => w,
        None => eval::default_window(&m, stream.len()),
    };
    if window < 2 || (photon && window % meta != 0) {
        return Err(format!(
            "window of {window} tokens: it must be ≥ 2{} (the text has {} tokens)",
            if photon {
                format!(" and a multiple of {meta}")
            } else {
                String::new()
            },
            stream.len()
        ));
    }
    if stream.len() < window {
        return Err(format!(
            "the text has {} tokens, fewer than one window of {window}",
            stream.len()
        ));
    }
    let latents = match (photon, mode) {
        (true, Mode::RecGen) => {
            if cli.prompt == 0 || cli.prompt >= window || cli.prompt % m.config().c1 != 0 {
                return Err(format!(
                    "RecGen prompt {} must be a positive multiple of {} below the window {window}",
                    cli.prompt,
                    m.config().c1
                ));
            }
            Latents::Recursive { prompt: cli.prompt }
        }
        _ => Latents::Encoder,
    };
    let mode_label = match latents {
        Latents::Recursive { prompt } => format!("recgen (P = {prompt})"),
        _ if photon => "hiergen (teacher-forced)".to_string(),
        _ => "vanilla".to_string(),
    };
    let t = Instant::now();
    let p = eval::perplexity(&m, &stream, window, latents, cli.max_windows, cli.threads)
        .map_err(|e| e.to_string())?;
    let mut j = json!({
        "model": cli.model,
        "mode": mode_label,
        "tokens_in_file": stream.len(),
        "window": window,
        "windows": (stream.len() / window).min(if cli.max_windows > 0 { cli.max_windows } else { usize::MAX }),
        "scored": p.tokens,
        "nll": p.nll,
        "ppl": p.ppl,
        "seconds": t.elapsed().as_secs_f64(),
    });
    let mut text = format!(
        "{}: {mode_label}: perplexity {:.4} (nll {:.5}) over {} scored tokens, {}-token windows ({:.1} s)\n",
        cli.model,
        p.ppl,
        p.nll,
        p.tokens,
        window,
        t.elapsed().as_secs_f64()
    );
    if let Some(out) = &cli.save_logits {
        let mut buf = Vec::new();
        let n = eval::save_topk(
            &m,
            &stream,
            window,
            latents,
            cli.max_windows,
            cli.threads,
            cli.top_k,
            &mut buf,
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(out, &buf).map_err(|e| format!("{out}: {e}"))?;
        text += &format!("saved top-{} logits of {n} positions to {out}\n", cli.top_k);
        j["saved_positions"] = json!(n);
    }
    let mut agree = |label: &str, a: eval::Agreement| {
        text += &format!(
            "vs {label}: KL mean {:.6} max {:.4} nats, top-1 agreement {:.4}, ppl reference {:.4} / model {:.4} over {} positions\n",
            a.kl_mean, a.kl_max, a.top1, a.ppl_reference, a.ppl_model, a.positions
        );
        j[label] = json!({
            "positions": a.positions, "kl_mean": a.kl_mean, "kl_max": a.kl_max, "top1": a.top1,
            "ppl_reference": a.ppl_reference, "ppl_model": a.ppl_model,
        });
    };
    if let Some(rp) = &cli.reference_logits {
        let bytes = std::fs::read(rp).map_err(|e| format!("{rp}: {e}"))?;
        let (vocab, saved) = eval::read_topk(&bytes).map_err(|e| format!("{rp}: {e}"))?;
        if vocab != m.vocab_size() {
            return Err(format!(
                "{rp}: saved for a vocabulary of {vocab}, the model has {}",
                m.vocab_size()
            ));
        }
        let a = eval::compare_topk(
            &m,
            &stream,
            window,
            latents,
            cli.max_windows,
            cli.threads,
            &saved,
        )
        .map_err(|e| format!("{rp}: {e}"))?;
        agree("reference_logits", a);
    }
    if let Some(rp) = &cli.reference_model {
        let r = Model::open(rp).map_err(|e| format!("{rp}: {e}"))?;
        let a = eval::compare(
            &r,
            &m,
            &stream,
            window,
            latents,
            cli.max_windows,
            cli.threads,
        )
        .map_err(|e| format!("{rp}: {e}"))?;
        agree("reference_model", a);
    }
    Ok(if cli.output == "json" {
        serde_json::to_string_pretty(&j).unwrap_or_default() + "\n"
    } else {
        text
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    photon_tools::finish("photon-perplexity", run(cli))
}
