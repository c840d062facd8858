//! `chat`: talk to a PHOTON model on this machine (docs/chat.md).
//!
//! ```text
//! cargo run --release --example chat                     # interactive, default model
//! cargo run --release --example chat -- --prompt "Hi"    # one reply, then exit
//! ```
//!
//! Model text goes to standard output; the prompt, notices and status lines to standard error.
mod conv;
mod signal;
mod text;

#[cfg(test)]
#[path = "../../tests/chat_support/mod.rs"]
mod chat_support;

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use photon::model::ModelKind;
use photon::sample::SamplerConfig;
use photon::tokenizer::{TokenDecoder, Tokenizer};
use photon::{EngineOptions, Mode, Model, Session};

use conv::{Conv, Reply, StopReason, Template};
use signal::State;
use text::{clean_input, fmt_bytes, parse_size, read_line, Line};

/// The prompt marker (standard error).
const PROMPT: &str = "> ";

/// Model files tried when `--model` is not given, in order, in the current directory and then
/// in the source tree this example was built from.
const DEFAULT_MODELS: [&str; 2] = [
    "models/photon-tiny-q8_0.gguf",
    "models/photon-tiny-f16.gguf",
];

/// Everything that ends the program early.
#[derive(Debug)]
pub enum Fail {
    /// One line for `chat: error: ...`.
    Msg(String),
    /// Standard output was closed (`chat | head`): stop quietly.
    BrokenPipe,
}

impl Fail {
    pub fn msg(m: impl Into<String>) -> Fail {
        Fail::Msg(m.into())
    }
    pub fn engine(e: photon::Error) -> Fail {
        Fail::Msg(e.to_string())
    }
    fn io(what: &str, e: io::Error) -> Fail {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Fail::BrokenPipe
        } else {
            Fail::Msg(format!("{what}: {e}"))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Hierarchical generation: every unit re-encoded (best quality, the default)
    Hiergen,
    /// Recursive generation: units decoded in batches from the coarse stream (fastest)
    Recgen,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Hiergen => Mode::HierGen,
            ModeArg::Recgen => Mode::RecGen,
        }
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::HierGen => "HierGen",
        Mode::RecGen => "RecGen",
    }
}

/// Chat with a PHOTON language model on this machine.
///
/// Type a message and press Enter; the reply streams as it is generated. Ctrl-C stops a reply,
/// Ctrl-D (end of input) quits. Commands: /help, /reset, /stats, /mode hiergen|recgen, /quit.
#[derive(Parser, Debug)]
#[command(
    name = "chat",
    version,
    allow_negative_numbers = true,
    args_override_self = true
)]
struct Args {
    /// Model file (GGUF). Default: models/photon-tiny-q8_0.gguf, else models/photon-tiny-f16.gguf
    #[arg(long, short = 'm', value_name = "PATH")]
    model: Option<PathBuf>,
    /// Reply to this prompt, print the reply and exit ("-" reads the prompt from standard input)
    #[arg(long, short = 'p', value_name = "TEXT")]
    prompt: Option<String>,
    /// Plain text completion without the chat template (each input line is a new prompt)
    #[arg(long)]
    raw: bool,
    /// Sampling temperature; 0 is greedy
    #[arg(long, value_name = "T", default_value_t = 0.8, value_parser = parse_temp)]
    temp: f32,
    /// Sample from the K most likely tokens; 0 keeps all
    #[arg(long, value_name = "K", default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling: the smallest set of tokens whose probability reaches P, in (0, 1]
    #[arg(long, value_name = "P", default_value_t = 0.95, value_parser = parse_top_p)]
    top_p: f32,
    /// Drop tokens less likely than P times the most likely one, in [0, 1]
    #[arg(long, value_name = "P", default_value_t = 0.05, value_parser = parse_min_p)]
    min_p: f32,
    /// Penalty for tokens among the last 64 (1 = off)
    #[arg(long, value_name = "X", default_value_t = 1.1, value_parser = parse_penalty)]
    repeat_penalty: f32,
    /// Random seed (default: from the clock; /stats shows it)
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Most tokens in one reply
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = parse_max_tokens)]
    max_tokens: usize,
    /// Arena budget for all caches and scratch, in bytes (suffixes K, M, G: powers of 1024)
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    memory: usize,
    /// Worker threads (default: the number of cores)
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
    /// Generation mode
    #[arg(long, value_enum, default_value_t = ModeArg::Hiergen, ignore_case = true)]
    mode: ModeArg,
    /// Never end a reply at a stop token (benchmarks); replies end at --max-tokens or Ctrl-C
    #[arg(long)]
    ignore_eos: bool,
    /// No banner, prompt, echo or status lines on standard error (notices and errors remain)
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn parse_f32(s: &str) -> Result<f32, String> {
    s.trim()
        .parse::<f32>()
        .map_err(|_| format!("'{s}' is not a number"))
}
fn parse_temp(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a temperature: use a number >= 0"))
    }
}
fn parse_top_p(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} is outside (0, 1]"))
    }
}
fn parse_min_p(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is outside [0, 1]"))
    }
}
fn parse_penalty(s: &str) -> Result<f32, String> {
    let v = parse_f32(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a penalty: use a number > 0 (1 = off)"))
    }
}
fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("'{s}' is not a count: use a whole number >= 1")),
    }
}
fn parse_max_tokens(s: &str) -> Result<usize, String> {
    parse_count(s)
}
fn parse_threads(s: &str) -> Result<usize, String> {
    let v = parse_count(s)?;
    if v > 1024 {
        return Err(format!("{v} threads is too many"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    // Never a raw panic message: one line, like every other error.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("chat: error: internal error{at}: {what}");
    }));
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message up to its first blank line (no usage, no tips), on one line.
            let full = e.render().to_string();
            let msg: Vec<&str> = full
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let msg = msg.join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            eprintln!("chat: error: {msg} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(Fail::BrokenPipe) => ExitCode::SUCCESS,
        Err(Fail::Msg(m)) => {
            let _ = io::stdout().flush();
            eprintln!("chat: error: {m}");
            ExitCode::from(1)
        }
    }
}

/// `--model`, or the first default model that exists.
fn model_path(arg: Option<PathBuf>) -> Result<PathBuf, Fail> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let here = std::env::current_dir().unwrap_or_default();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![here];
    if !dirs.contains(&source) {
        dirs.push(source);
    }
    for (i, d) in dirs.iter().enumerate() {
        for m in DEFAULT_MODELS {
            if d.join(m).is_file() {
                // Relative when found from the current directory (shorter to read).
                return Ok(if i == 0 { PathBuf::from(m) } else { d.join(m) });
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Fail::msg(format!(
        "no model found: looked for {} and {} in {}; pass --model PATH",
        DEFAULT_MODELS[0],
        DEFAULT_MODELS[1],
        looked.join(" and ")
    )))
}

/// Is the status line to be dimmed.
fn dim_stderr() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Everything a run needs besides the conversation.
struct Ui {
    raw: bool,
    template: Option<Template>,
    max_tokens: usize,
    budget: usize,
    dim: bool,
    quiet: bool,
    sampling: SamplerConfig,
    model_label: String,
}

fn run(args: Args) -> Result<u8, Fail> {
    signal::install(if args.quiet { "" } else { PROMPT }).map_err(Fail::Msg)?;
    let path = model_path(args.model.clone())?;
    if path.is_dir() {
        return Err(Fail::msg(format!(
            "{}: is a directory, not a model file",
            path.display()
        )));
    }
    let model = Model::open(&path).map_err(|e| Fail::msg(format!("{}: {e}", path.display())))?;
    let g = model.gguf();
    let tok = Tokenizer::from_gguf(&g)
        .map_err(|e| Fail::msg(format!("{}: tokenizer: {e}", path.display())))?;
    if tok.vocab_size() > model.vocab_size() {
        return Err(Fail::msg(format!(
            "{}: the tokenizer has {} tokens but the model only {}",
            path.display(),
            tok.vocab_size(),
            model.vocab_size()
        )));
    }
    let template = Template::from_model(&g, &tok)?;
    if template.is_none() && !args.raw {
        return Err(Fail::msg(format!(
            "{}: the model has no chat template (photon.chat.* metadata); use --raw for plain completion",
            path.display()
        )));
    }
    let name = g
        .get("general.name")
        .and_then(|v| v.as_str())
        .unwrap_or("model")
        .to_string();
    drop(g);

    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let opts = EngineOptions {
        memory_budget: args.memory,
        threads,
        mode: args.mode.into(),
    };
    let sess = Session::new(&model, &opts).map_err(|e| match e {
        photon::Error::Memory(_) => Fail::msg(format!(
            "{e} (--memory {}K or more)",
            model.min_memory().div_ceil(1024)
        )),
        e => Fail::engine(e),
    })?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED)
    });
    let sampling = SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: 64,
        seed,
    };
    let mut conv = Conv::new(&model, &tok, sess, sampling, template.as_ref())?;
    conv.ignore_eos = args.ignore_eos;
    let kind = match model.kind() {
        ModelKind::Photon => "PHOTON",
        ModelKind::Llama => "vanilla",
    };
    let ui = Ui {
        raw: args.raw,
        template,
        max_tokens: args.max_tokens,
        budget: args.memory,
        dim: dim_stderr(),
        quiet: args.quiet,
        sampling,
        model_label: format!(
            "{name} ({kind}, {}, {})",
            fmt_bytes(model.weight_bytes()),
            path.display()
        ),
    };
    match args.prompt {
        Some(p) => one_shot(&ui, &mut conv, &p),
        None => interactive(&ui, &mut conv),
    }
}

/// Longest message in tokens: half of what the model sees at once, so a reply fits beside it.
fn message_limit(conv: &Conv<'_>) -> usize {
    (conv.context_tokens() / 2).max(1)
}

/// Bytes of input that certainly exceed `tokens` tokens (no piece covers more bytes than the
/// longest piece of the vocabulary), so longer lines are refused without being tokenized.
fn byte_cap(tok: &Tokenizer, tokens: usize) -> usize {
    let longest = (0..tok.vocab_size() as u32)
        .filter_map(|i| tok.token(i))
        .map(str::len)
        .max()
        .unwrap_or(16)
        .max(4);
    tokens.saturating_mul(longest).max(4096)
}

/// The tokens to feed for a message, or a one-line reason it is not sent.
fn message_tokens(ui: &Ui, conv: &Conv<'_>, text: &str) -> Result<Result<Vec<u32>, String>, Fail> {
    let toks = match &ui.template {
        Some(t) if !ui.raw => t.user_turn(conv.tok, text)?,
        _ => {
            let mut v = Vec::new();
            conv.tok.encode(text, &mut v).map_err(Fail::engine)?;
            v
        }
    };
    let limit = message_limit(conv);
    if toks.len() > limit {
        return Ok(Err(format!(
            "message too long: {} tokens, the limit is {limit} (half of the {}-token context); not sent",
            toks.len(),
            conv.context_tokens()
        )));
    }
    Ok(Ok(toks))
}

/// Feeds one message and streams the reply to standard output; returns how it ended.
fn reply(ui: &Ui, conv: &mut Conv<'_>, toks: &[u32]) -> Result<Reply, Fail> {
    let mut decoder = TokenDecoder::new();
    let suffix = if ui.raw {
        // Raw completion: a fresh sequence each time; the decoder has seen the prompt, so the
        // completion keeps the space that separates it from the prompt.
        conv.reset();
        let mut sink = String::new();
        for &t in toks {
            let _ = decoder.push(conv.tok, t, &mut sink);
        }
        Vec::new()
    } else {
        ui.template
            .as_ref()
            .map(|t| t.assistant_suffix.clone())
            .unwrap_or_default()
    };
    conv.feed(toks)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut last_nl = true;
    let mut emit = |s: &str| -> Result<(), Fail> {
        out.write_all(s.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Fail::io("writing the reply", e))?;
        if let Some(c) = s.chars().last() {
            last_nl = c == '\n';
        }
        Ok(())
    };
    let r = conv.generate(
        ui.max_tokens,
        &mut decoder,
        &suffix,
        &signal::stop_requested,
        &mut emit,
    )?;
    if !last_nl || r.tokens == 0 {
        out.write_all(b"\n")
            .and_then(|_| out.flush())
            .map_err(|e| Fail::io("writing the reply", e))?;
    }
    Ok(r)
}

/// The line after a reply: how it ended, tokens, speed, memory.
fn status(ui: &Ui, conv: &Conv<'_>, r: &Reply) {
    if ui.quiet {
        return;
    }
    let m = conv.sess.memory();
    let rate = if r.secs > 0.0 {
        r.tokens as f64 / r.secs
    } else {
        0.0
    };
    let line = format!(
        "[{} · {} tokens · {:.1} tokens/s · arena {} of {} · context {}/{} tokens]",
        r.reason.word(),
        r.tokens,
        rate,
        fmt_bytes(m.arena_used),
        fmt_bytes(ui.budget),
        conv.len().min(conv.context_tokens()),
        conv.context_tokens(),
    );
    if ui.dim {
        eprintln!("\x1b[2m{line}\x1b[0m");
    } else {
        eprintln!("{line}");
    }
}

fn notice(msg: &str) {
    eprintln!("chat: {msg}");
}

fn one_shot(ui: &Ui, conv: &mut Conv<'_>, prompt: &str) -> Result<u8, Fail> {
    let owned;
    let prompt = if prompt == "-" {
        let cap = byte_cap(conv.tok, message_limit(conv));
        let mut bytes = Vec::new();
        io::stdin()
            .lock()
            .take(cap as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Fail::io("reading the prompt", e))?;
        if bytes.len() > cap {
            return Err(Fail::msg(format!(
                "the prompt on standard input is too long (more than {cap} bytes)"
            )));
        }
        owned = String::from_utf8(bytes)
            .map_err(|_| Fail::msg("the prompt on standard input is not valid UTF-8"))?;
        owned.trim_end_matches(['\n', '\r'])
    } else {
        prompt
    };
    let (text, removed) = clean_input(prompt);
    if removed > 0 {
        notice(&format!(
            "removed {removed} control character(s) or escape sequence(s) from the prompt"
        ));
    }
    if text.trim().is_empty() && !ui.raw {
        return Err(Fail::msg("the prompt is empty"));
    }
    let toks = message_tokens(ui, conv, &text)?.map_err(Fail::Msg)?;
    signal::set_state(State::Busy);
    let r = reply(ui, conv, &toks)?;
    status(ui, conv, &r);
    Ok(if r.reason == StopReason::Interrupted {
        130
    } else {
        0
    })
}

const HELP: &str = "\
commands:
  /reset                 forget the conversation
  /mode [hiergen|recgen] show or set the generation mode
  /stats                 model, memory, speed and settings
  /help                  this list
  /quit                  leave (or Ctrl-D)
  //text                 send a message that starts with '/'
Ctrl-C stops a reply; at the prompt, Ctrl-C twice within a second quits.";

fn interactive(ui: &Ui, conv: &mut Conv<'_>) -> Result<u8, Fail> {
    let prompt = if ui.quiet { "" } else { PROMPT };
    if !ui.quiet {
        eprintln!(
            "photon chat · {} · {}{} · /help for commands, Ctrl-D to quit",
            ui.model_label,
            mode_name(conv.sess.mode()),
            if ui.raw { " · raw completion" } else { "" }
        );
    }
    let stdin = io::stdin();
    // Input that is not typed at a terminal is echoed after the prompt (cleaned), so standard
    // error reads as a transcript.
    let echo = !stdin.is_terminal() && !ui.quiet;
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    // Fixed for the session: the coarse cache's capacity does not change.
    let cap = byte_cap(conv.tok, message_limit(conv));
    loop {
        signal::set_state(State::Idle);
        eprint!("{prompt}");
        let line =
            read_line(&mut input, cap, &mut buf).map_err(|e| Fail::io("reading input", e))?;
        signal::set_state(State::Busy);
        if echo {
            match line {
                Line::Eof => {}
                Line::TooLong(n) => eprintln!("[{n} bytes]"),
                Line::Text => match std::str::from_utf8(&buf) {
                    Ok(l) => eprintln!("{}", clean_input(l).0),
                    Err(_) => eprintln!("[not UTF-8]"),
                },
            }
        }
        match line {
            Line::Eof => {
                if !ui.quiet {
                    eprintln!();
                }
                return Ok(0);
            }
            Line::TooLong(n) => {
                notice(&format!(
                    "message too long: {n} bytes, more than the {}-token limit (half of the {}-token context); not sent",
                    message_limit(conv),
                    conv.context_tokens()
                ));
                continue;
            }
            Line::Text => {}
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            notice("that line is not valid UTF-8; not sent");
            continue;
        };
        let (text, removed) = clean_input(line);
        if removed > 0 {
            notice(&format!(
                "removed {removed} control character(s) or escape sequence(s) from your message"
            ));
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let text = if let Some(rest) = trimmed.strip_prefix("//") {
            format!("/{rest}")
        } else if let Some(cmd) = trimmed.strip_prefix('/') {
            if command(ui, conv, cmd) {
                return Ok(0);
            }
            continue;
        } else {
            text
        };
        let toks = match message_tokens(ui, conv, &text)? {
            Ok(t) => t,
            Err(why) => {
                notice(&why);
                continue;
            }
        };
        let r = reply(ui, conv, &toks)?;
        status(ui, conv, &r);
    }
}

/// Runs a `/command`; true to quit.
fn command(ui: &Ui, conv: &mut Conv<'_>, cmd: &str) -> bool {
    let mut words = cmd.split_whitespace();
    let name = words.next().unwrap_or("");
    let arg = words.next();
    match (name, arg) {
        ("quit" | "exit" | "q", _) => return true,
        ("help" | "h" | "?", _) => eprintln!("{HELP}"),
        ("reset", _) => {
            conv.reset();
            eprintln!("(conversation reset)");
        }
        ("mode", None) => eprintln!("mode: {}", mode_name(conv.sess.mode())),
        ("mode", Some(m)) => {
            let mode = match m.to_ascii_lowercase().as_str() {
                "hiergen" | "hier" => Mode::HierGen,
                "recgen" | "rec" => Mode::RecGen,
                _ => {
                    notice("usage: /mode hiergen|recgen");
                    return false;
                }
            };
            conv.sess.set_mode(mode);
            if conv.sess.model().kind() == ModelKind::Photon {
                eprintln!("(mode: {})", mode_name(mode));
            } else {
                eprintln!(
                    "(mode: {}; a vanilla model generates the same way in both)",
                    mode_name(mode)
                );
            }
        }
        ("stats", _) => stats(ui, conv),
        _ => {
            let mut shown = String::new();
            text::clean_output(name, &mut shown);
            notice(&format!("unknown command /{shown}; /help lists them"));
        }
    }
    false
}

fn stats(ui: &Ui, conv: &Conv<'_>) {
    let m = conv.sess.memory();
    let c = conv.sess.model().config();
    eprintln!("model:    {}", ui.model_label);
    if conv.sess.model().kind() == ModelKind::Photon {
        eprintln!(
            "shape:    D {} · FFN {} · heads {} · layers {:?} · chunks {}x{} · W1 {} · vocab {} · trained context {}",
            c.d, c.ffn, c.heads, c.layers, c.c1, c.c2, c.w1, c.vocab, c.context
        );
    } else {
        eprintln!(
            "shape:    D {} · FFN {} · heads {} · layers {} · vocab {} · trained context {}",
            c.d, c.ffn, c.heads, c.layers[0], c.vocab, c.context
        );
    }
    eprintln!("mode:     {}", mode_name(conv.sess.mode()));
    eprintln!(
        "memory:   weights {} mapped · arena {} of a {} budget (caches {}) · coarse cache {}/{} positions, {} evicted",
        fmt_bytes(m.weights_mapped),
        fmt_bytes(m.arena_used),
        fmt_bytes(ui.budget),
        fmt_bytes(m.cache_bytes),
        m.coarse_len,
        m.coarse_capacity,
        m.coarse_evicted
    );
    eprintln!(
        "context:  {} tokens in the conversation · the model sees {} at once · messages up to {}",
        conv.len(),
        conv.context_tokens(),
        message_limit(conv)
    );
    let rate = if conv.reply_secs > 0.0 {
        conv.reply_tokens as f64 / conv.reply_secs
    } else {
        0.0
    };
    eprintln!(
        "replies:  {} · {} tokens · {:.1} tokens/s overall",
        conv.replies, conv.reply_tokens, rate
    );
    if let Some(r) = conv.last {
        let prefill = if r.feed_secs > 0.0 {
            r.fed as f64 / r.feed_secs
        } else {
            0.0
        };
        eprintln!(
            "last:     {} prompt tokens in {:.3} s ({:.0} tokens/s) · {} reply tokens in {:.3} s · {}",
            r.fed,
            r.feed_secs,
            prefill,
            r.tokens,
            r.secs,
            r.reason.word()
        );
    }
    let s = &ui.sampling;
    eprintln!(
        "sampling: temp {} · top-k {} · top-p {} · min-p {} · repeat penalty {} · seed {} · max tokens {}{}",
        s.temperature,
        s.top_k,
        s.top_p,
        s.min_p,
        s.repeat_penalty,
        s.seed,
        ui.max_tokens,
        if conv.ignore_eos { " · ignore eos" } else { "" }
    );
}
