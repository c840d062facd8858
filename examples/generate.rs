//! Text continuation with the engine: HierGen, RecGen or vanilla, greedy or sampled.
//!
//! cargo run --release --example generate -- MODEL.gguf "PROMPT" [--mode hiergen|recgen]
//!     [--n 64] [--temp 0.8] [--seed 1] [--threads 2]
//!
//! RecGen prints the reply unit by unit, as units complete in order.
use photon::sample::{Sampler, SamplerConfig};
use photon::tokenizer::Tokenizer;
use photon::{EngineOptions, Mode, Model, ModelKind, Session};
use std::io::Write;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("generate: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 || a[0].starts_with('-') {
        return Err(
            "usage: generate MODEL.gguf PROMPT [--mode hiergen|recgen] [--n 64] \
             [--temp 0] [--seed 1] [--threads 1]"
                .into(),
        );
    }
    let get = |k: &str, d: &str| -> Result<String, String> {
        match a.iter().position(|x| x == k) {
            Some(i) => a.get(i + 1).cloned().ok_or(format!("{k} needs a value")),
            None => Ok(d.to_string()),
        }
    };
    fn num<T: std::str::FromStr>(k: &str, v: String) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{k}: not a valid number: {v:?}"))
    }
    let m = Model::open(&a[0]).map_err(|e| format!("{}: {e}", a[0]))?;
    let tok = Tokenizer::from_gguf(&m.gguf()).map_err(|e| format!("{}: {e}", a[0]))?;
    let mode = match get("--mode", "hiergen")?.as_str() {
        "hiergen" => Mode::HierGen,
        "recgen" => Mode::RecGen,
        other => return Err(format!("--mode: expected hiergen or recgen, got {other:?}")),
    };
    let n: usize = num("--n", get("--n", "64")?)?;
    let temp: f32 = num("--temp", get("--temp", "0")?)?;
    let threads: usize = num("--threads", get("--threads", "1")?)?;
    let seed: u64 = num("--seed", get("--seed", "1")?)?;
    let mut cfg = if temp > 0.0 {
        SamplerConfig::unrestricted(seed)
    } else {
        SamplerConfig::greedy()
    };
    cfg.temperature = temp;
    let mut sampler = Sampler::new(cfg, m.vocab_size()).map_err(|e| e.to_string())?;
    let mut prompt = vec![];
    if tok.add_bos() {
        prompt.extend(tok.bos());
    }
    tok.encode(&a[1], &mut prompt).map_err(|e| e.to_string())?;
    let o = EngineOptions {
        memory_budget: m.max_useful_memory(),
        threads,
        mode,
    };
    let mut s = Session::new(&m, &o).map_err(|e| e.to_string())?;
    let t = Instant::now();
    s.feed(&prompt).map_err(|e| e.to_string())?;
    let t_prefill = t.elapsed();
    print!("{}", a[1]);
    let p = s.position();
    let c1 = if m.kind() == ModelKind::Photon {
        m.config().c1
    } else {
        1
    };
    let mut units: Vec<Vec<u32>> = vec![];
    let mut out: Vec<u32> = vec![];
    let mut printed = 0;
    let mut toks = [0u32; 16];
    let t = Instant::now();
    while out.len() < n {
        let rows = s.pending_rows();
        for (r, t) in toks[..rows].iter_mut().enumerate() {
            *t = sampler.sample(s.logits_mut(r), &[]);
        }
        if mode == Mode::RecGen && m.kind() == ModelKind::Photon {
            let first = p / c1;
            for (r, &t) in toks[..rows].iter().enumerate() {
                let u = s.pending_unit(r) - first;
                if units.len() <= u {
                    units.resize(u + 1, vec![]);
                }
                units[u].push(t);
            }
            out.clear();
            for (k, u) in units.iter().enumerate() {
                let need = if k == 0 { c1 - p % c1 } else { c1 };
                if u.len() < need {
                    break;
                }
                out.extend(u);
            }
        } else {
            out.push(toks[0]);
        }
        s.accept(&toks[..rows]).map_err(|e| e.to_string())?;
        if out.len() > printed {
            let text = tok.decode(&out);
            let before = tok.decode(&out[..printed]);
            print!("{}", &text[before.len().min(text.len())..]);
            std::io::stdout().flush().ok();
            printed = out.len();
        }
    }
    let dt = t.elapsed();
    println!(
        "\n[{} prompt tokens in {:.1} ms; {} tokens in {:.1} ms = {:.0} tok/s; arena {:.2} MiB]",
        prompt.len(),
        t_prefill.as_secs_f64() * 1e3,
        out.len(),
        dt.as_secs_f64() * 1e3,
        out.len() as f64 / dt.as_secs_f64(),
        s.memory().arena_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
