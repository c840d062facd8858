//! photon-quantize: converts a training export (safetensors + config + tokenizer) or one of our
//! GGUF files into a GGUF with F32, F16, Q8_0 and Q4_0 tensors, measures every tensor's error,
//! and optionally gates the result on an end-to-end comparison with the float model.
//! See docs/quantize.md.
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use photon_quantize::convert::{self, TensorStats};
use photon_quantize::error::{EXIT_INTERRUPTED, EXIT_OK};
use photon_quantize::export::{self, TrainConfig};
use photon_quantize::gate::{self, Thresholds};
use photon_quantize::output::{self, TempOutput};
use photon_quantize::plan::{self, Override, Preset, TensorPlan, Why};
use photon_quantize::{spm, QError, QResult};
use photon_runtime::gguf::{Gguf, MappedFile};
use photon_runtime::tokenizer::Tokenizer;
use photon_runtime::Model;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
Presets (tensor roles: vector = norm weights, biases, dec2.start; embedding = token embeddings
and the LM head output.weight; matrix = every other 2-D tensor):
  f32    everything F32                                 general.file_type 0
  f16    matrices and embeddings F16, vectors F32       general.file_type 1
  q8_0   matrices and embeddings Q8_0, vectors F32      general.file_type 7
  q4_0   matrices Q4_0, embeddings Q8_0, vectors F32    general.file_type 2
  A preset falls back to F16 for a tensor whose rows are not a multiple of 32 values.

Exit codes:
  0    success (also --dry-run)
  1    error: missing, unreadable or corrupt input, names/shapes that disagree with the
       config, unsupported dtype or architecture, I/O failure
  2    usage error: bad option or value, unknown preset or type, invalid or unmatched
       --tensor-type pattern, output equal to the input, output exists without --force
  3    quality gate failed (--max-kl, --max-ppl-increase); no output is left unless
       --keep-failed
  130  interrupted (Ctrl-C); the temporary file is removed

Examples:
  photon-quantize models/photon-tiny-f16.gguf /tmp/p-q4.gguf --preset q4_0 --eval-text data/val.txt
  photon-quantize run/photon-tiny.safetensors /tmp/p-f16.gguf --preset f16 \\
      --config run/photon-tiny.config.json --tokenizer models/tokenizer.model
  photon-quantize models/vanilla-tiny-f16.gguf --preset q4_0 --tensor-type 'blk.11.*=q8_0' --dry-run";

/// Converts and quantizes photon models (PHOTON and the vanilla LLaMA baseline) to GGUF.
///
/// INPUT is a GGUF of ours (any mix of F32, F16, BF16, Q8_0, Q4_0 tensors: requantized) or a
/// training export: a .safetensors file with its config JSON and SentencePiece tokenizer,
/// converted exactly as training/export.py does. The output keeps all metadata and sets
/// general.file_type and general.quantization_version = 2. It is written atomically (temporary
/// file in the output's directory, fsync, rename): a failed or interrupted run leaves no file.
#[derive(Parser, Debug)]
#[command(name = "photon-quantize", version, after_help = AFTER_HELP)]
struct Args {
    /// Input: a .gguf file, or a .safetensors training export.
    input: PathBuf,
    /// Output .gguf file (not needed with --dry-run). Never the input; an existing file is
    /// replaced only with --force.
    output: Option<PathBuf>,
    /// File type preset: f32, f16, q8_0 or q4_0 (see below).
    #[arg(long, default_value = "q8_0")]
    preset: String,
    /// Per-tensor override PATTERN=TYPE (repeatable; first match wins). PATTERN is a glob over
    /// the whole GGUF tensor name (`*` and `?` match any characters including '.', `[..]`
    /// classes); TYPE is f32, f16, q8_0 or q4_0. A pattern that matches no tensor is an error.
    /// Example: --tensor-type '*.ffn_down.weight=q8_0'.
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE")]
    tensor_type: Vec<String>,
    /// Print each tensor's planned type and size and the file's total size; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace an existing output file (never the input).
    #[arg(long)]
    force: bool,
    /// Safetensors input: the training config JSON [default: INPUT with .config.json in place
    /// of .safetensors].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Safetensors input: the SentencePiece .model [default: tokenizer.model beside INPUT].
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Safetensors input: general.name [default: INPUT's file stem].
    #[arg(long)]
    name: Option<String>,
    /// Evaluation text: run the quality gate, comparing the output with the float source
    /// (the input; for a safetensors input, its float conversion) through the runtime's
    /// evaluator: perplexity of both, mean KL(float || quantized), top-1 agreement. The text is
    /// tokenized paragraph by paragraph (blank-line separated), EOS after each, and scored in
    /// windows of the trained context length.
    #[arg(long, value_name = "FILE")]
    eval_text: Option<PathBuf>,
    /// Evaluate at most N windows (0 = every window of the text).
    #[arg(long, value_name = "N", default_value_t = 0)]
    eval_windows: usize,
    /// Quality gate: largest allowed perplexity increase over the float model, in percent
    /// [default: 6 for the q4_0 preset, 1 for the others].
    #[arg(long, value_name = "PERCENT")]
    max_ppl_increase: Option<f64>,
    /// Quality gate: largest allowed mean KL divergence (nats) of the output from the float
    /// model [default: not checked].
    #[arg(long, value_name = "NATS")]
    max_kl: Option<f64>,
    /// When the quality gate fails, keep the output anyway (the exit code is still 3).
    #[arg(long)]
    keep_failed: bool,
    /// Threads for the evaluation [default: all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// No per-tensor table and no progress bars (the quality report, errors and the final line
    /// are still printed).
    #[arg(long, short)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    // Ctrl-C: remove any temporary output and exit 130.
    let _ = ctrlc::set_handler(|| {
        output::remove_pending();
        eprintln!("photon-quantize: interrupted; no output written");
        std::process::exit(EXIT_INTERRUPTED);
    });
    let code = match run(&args) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("photon-quantize: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

enum Bytes {
    Mapped(MappedFile),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m.bytes(),
            Bytes::Owned(v) => v,
        }
    }
}

fn read(path: &Path, what: &str) -> QResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            QError::Input(format!("{what} '{}' does not exist", path.display()))
        }
        _ => QError::Io(format!("reading {what} '{}': {e}", path.display())),
    })
}

fn is_gguf(path: &Path) -> QResult<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            QError::Input(format!("input '{}' does not exist", path.display()))
        }
        _ => QError::Io(format!("opening '{}': {e}", path.display())),
    })?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(QError::Input(format!(
            "input '{}' is a directory",
            path.display()
        )));
    }
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).unwrap_or(0);
    let gguf_ext = path.extension().is_some_and(|e| e == "gguf");
    let st_ext = path.extension().is_some_and(|e| e == "safetensors");
    if n == 4 && &magic == b"GGUF" {
        return Ok(true);
    }
    if st_ext {
        return Ok(false);
    }
    if gguf_ext || n < 4 {
        // Let the GGUF reader say what is wrong with it.
        return Ok(true);
    }
    Ok(false)
}

/// The input as float-or-quantized GGUF bytes, plus whether it came from safetensors.
fn load_input(a: &Args) -> QResult<(Bytes, bool)> {
    let p = &a.input;
    if is_gguf(p)? {
        let m = MappedFile::open(p).map_err(QError::from)?;
        return Ok((Bytes::Mapped(m), false));
    }
    let cfg_path = a.config.clone().unwrap_or_else(|| {
        let stem = p.file_stem().unwrap_or_default().to_string_lossy();
        p.with_file_name(format!("{stem}.config.json"))
    });
    let tok_path = a
        .tokenizer
        .clone()
        .unwrap_or_else(|| p.with_file_name("tokenizer.model"));
    let name = a.name.clone().unwrap_or_else(|| {
        p.file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    let st = read(p, "input")?;
    let cfg_text = read(&cfg_path, "config (--config)")?;
    let cfg_text = String::from_utf8(cfg_text)
        .map_err(|_| QError::Input(format!("config '{}' is not UTF-8", cfg_path.display())))?;
    let cfg = TrainConfig::parse(&cfg_text)
        .map_err(|e| QError::Input(format!("'{}': {e}", cfg_path.display())))?;
    let sp = spm::parse(&read(&tok_path, "tokenizer (--tokenizer)")?)
        .map_err(|e| QError::Input(format!("'{}': {e}", tok_path.display())))?;
    let bytes = export::export_gguf(&st, &cfg, &name, &sp)
        .map_err(|e| QError::Input(format!("'{}': {e}", p.display())))?;
    Ok((Bytes::Owned(bytes), true))
}

fn bar(quiet: bool, len: u64, msg: &str, elems: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    let tmpl = if elems {
        "{msg:12} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}"
    } else {
        "{msg:12} [{bar:40}] {pos}/{len} windows {elapsed_precise} eta {eta}"
    };
    if let Ok(s) = ProgressStyle::with_template(tmpl) {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

fn shape(dims: &[u64]) -> String {
    // PyTorch order [out, in], as docs/format.md lists them.
    let v: Vec<String> = dims.iter().rev().map(|d| d.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn why(p: &TensorPlan, ovs: &[Override]) -> String {
    match p.why {
        Why::Preset => p.role.name().to_string(),
        Why::Override(i) => format!("override '{}'", ovs[i].text),
        Why::Fallback => "fallback (row not a multiple of 32)".to_string(),
    }
}

fn print_plan(plans: &[TensorPlan], ovs: &[Override], stats: Option<&[TensorStats]>) {
    let w = plans.iter().map(|p| p.name.len()).max().unwrap_or(4).max(6);
    if stats.is_some() {
        println!(
            "{:w$}  {:>12}  {:>4} -> {:4}  {:>10}  {:>9}  {:>9}  reason",
            "tensor", "shape", "from", "to", "bytes", "rel RMSE", "max |err|"
        );
    } else {
        println!(
            "{:w$}  {:>12}  {:>4} -> {:4}  {:>10}  reason",
            "tensor", "shape", "from", "to", "bytes"
        );
    }
    for (i, p) in plans.iter().enumerate() {
        let base = format!(
            "{:w$}  {:>12}  {:>4} -> {:4}  {:>10}",
            p.name,
            shape(&p.dims),
            p.src.name(),
            p.dst.name(),
            p.out_bytes()
        );
        match stats {
            Some(s) => println!(
                "{base}  {:>9.3e}  {:>9.3e}  {}",
                s[i].rel_rmse,
                s[i].max_abs,
                why(p, ovs)
            ),
            None => println!("{base}  {}", why(p, ovs)),
        }
    }
}

fn run(a: &Args) -> QResult<()> {
    let preset = Preset::parse(&a.preset)?;
    let overrides = a
        .tensor_type
        .iter()
        .map(|s| Override::parse(s))
        .collect::<QResult<Vec<_>>>()?;
    for (flag, v) in [
        ("--max-ppl-increase", a.max_ppl_increase),
        ("--max-kl", a.max_kl),
    ] {
        if let Some(x) = v {
            if !(x >= 0.0 && x.is_finite()) {
                return Err(QError::Usage(format!(
                    "{flag} {x}: expected a finite non-negative number"
                )));
            }
        }
    }
    if a.threads == Some(0) {
        return Err(QError::Usage("--threads must be at least 1".into()));
    }
    let out = match (&a.output, a.dry_run) {
        (Some(o), _) => Some(o.clone()),
        (None, true) => None,
        (None, false) => {
            return Err(QError::Usage(
                "missing OUTPUT (only --dry-run runs without one)".into(),
            ))
        }
    };
    if let Some(o) = &out {
        if !a.dry_run {
            if output::same_file(&a.input, o) {
                return Err(QError::Usage(format!(
                    "refusing to overwrite the input '{}' with the output",
                    a.input.display()
                )));
            }
            if o.is_dir() {
                return Err(QError::Usage(format!(
                    "output '{}' is a directory",
                    o.display()
                )));
            }
            if o.exists() && !a.force {
                return Err(QError::Usage(format!(
                    "output '{}' exists (pass --force to replace it)",
                    o.display()
                )));
            }
        }
    }
    let eval_text = match &a.eval_text {
        Some(p) if !a.dry_run => {
            let b = read(p, "evaluation text (--eval-text)")?;
            Some(String::from_utf8(b).map_err(|_| {
                QError::Input(format!("evaluation text '{}' is not UTF-8", p.display()))
            })?)
        }
        _ => None,
    };

    let (src, from_st) = load_input(a)?;
    let in_name = a.input.display().to_string();
    let g = Gguf::parse(src.get()).map_err(|e| QError::Input(format!("'{in_name}': {e}")))?;
    // The whole model checked against its own config (names, shapes, types).
    let reference = match &src {
        Bytes::Mapped(_) => Model::open(&a.input),
        Bytes::Owned(v) => Model::from_bytes(v.clone()),
    }
    .map_err(|e| QError::Input(format!("'{in_name}': {e}")))?;

    let descs = convert::tensor_descs(&g);
    let plans = plan::plan(&descs, preset, &overrides)?;
    let meta = convert::output_metadata(&g, preset);
    let size = convert::planned_file_size(&meta, &plans);
    let in_size = src.get().len() as u64;
    if a.dry_run {
        print_plan(&plans, &overrides, None);
        println!(
            "total: {} tensors, {} bytes ({}), preset {} (general.file_type {}); input {} bytes ({}){}",
            plans.len(),
            size,
            mib(size),
            preset.name(),
            preset.file_type(),
            in_size,
            mib(in_size),
            if from_st { " as float GGUF" } else { "" }
        );
        println!("dry run: nothing written");
        return Ok(());
    }
    let out = out.expect("checked above");

    let total: u64 = plans.iter().map(|p| p.n_elements()).sum();
    let pb = bar(a.quiet, total, "quantizing", true);
    let (writer, stats) = convert::convert(&g, preset, &plans, &mut |n| pb.inc(n))?;
    pb.finish_and_clear();
    if !a.quiet {
        print_plan(&plans, &overrides, Some(&stats));
    }
    let tmp = TempOutput::write(&writer, &out)?;
    drop(writer);
    let written = std::fs::metadata(tmp.temp_path())
        .map(|m| m.len())
        .unwrap_or(0);
    // The output must load in the runtime (every tensor checked again).
    let model = Model::open(tmp.temp_path())
        .map_err(|e| QError::Input(format!("the output does not load: {e}")))?;
    let mut gate_result = Ok(());
    if let Some(text) = &eval_text {
        let tok = Tokenizer::from_gguf(&reference.gguf())?;
        let stream = gate::tokenize(&tok, text)?;
        let window = gate::window_for(&reference, stream.len())?;
        let mut n = stream.len() / window;
        if a.eval_windows > 0 {
            n = n.min(a.eval_windows);
        }
        let threads = a.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let pb = bar(a.quiet, n as u64, "evaluating", false);
        let q = gate::evaluate(
            &reference,
            &model,
            &stream,
            window,
            a.eval_windows,
            threads,
            &mut || pb.inc(1),
        )?;
        pb.finish_and_clear();
        let t = Thresholds {
            max_kl: a.max_kl,
            max_ppl_increase: a
                .max_ppl_increase
                .unwrap_or(preset.default_max_ppl_increase()),
        };
        let ag = &q.agreement;
        println!(
            "quality: {} windows x {} tokens ({} positions scored, {} tokens in the text)",
            q.windows,
            q.window,
            ag.positions,
            stream.len()
        );
        println!(
            "quality: PPL float {:.4} -> {} {:.4} ({:+.3}%), KL mean {:.6} max {:.4} nats, top-1 agreement {:.2}%",
            ag.ppl_reference,
            preset.name(),
            ag.ppl_model,
            q.ppl_increase(),
            ag.kl_mean,
            ag.kl_max,
            ag.top1 * 100.0
        );
        println!(
            "quality: thresholds --max-ppl-increase {}%{}",
            t.max_ppl_increase,
            t.max_kl
                .map(|k| format!(", --max-kl {k}"))
                .unwrap_or_default()
        );
        gate_result = gate::check(&q, &t);
    }
    drop(model);
    match gate_result {
        Ok(()) => {
            tmp.commit()?;
            println!(
                "wrote '{}': {} tensors, {} bytes ({}), preset {} (input {})",
                out.display(),
                plans.len(),
                written,
                mib(written),
                preset.name(),
                mib(in_size)
            );
            Ok(())
        }
        Err(e) => {
            if a.keep_failed {
                tmp.commit()?;
                eprintln!("photon-quantize: kept '{}' (--keep-failed)", out.display());
            } else {
                drop(tmp);
                eprintln!("photon-quantize: no output written");
            }
            Err(e)
        }
    }
}
