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
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str, d: &str| -> String {
        a.iter()
            .position(|x| x == k)
            .map(|i| a[i + 1].clone())
            .unwrap_or_else(|| d.to_string())
    };
    let m = Model::open(&a[0]).expect("model");
    let tok = Tokenizer::from_gguf(&m.gguf()).expect("tokenizer");
    let mode = if get("--mode", "hiergen") == "recgen" {
        Mode::RecGen
    } else {
        Mode::HierGen
    };
    let n: usize = get("--n", "64").parse().unwrap();
    let temp: f32 = get("--temp", "0").parse().unwrap();
    let threads: usize = get("--threads", "1").parse().unwrap();
    let mut cfg = if temp > 0.0 {
        SamplerConfig::unrestricted(get("--seed", "1").parse().unwrap())
    } else {
        SamplerConfig::greedy()
    };
    cfg.temperature = temp;
    let mut sampler = Sampler::new(cfg, m.vocab_size()).unwrap();
    let mut prompt = vec![];
    if tok.add_bos() {
        prompt.extend(tok.bos());
    }
    tok.encode(&a[1], &mut prompt).unwrap();
    let o = EngineOptions {
        memory_budget: m.max_useful_memory(),
        threads,
        mode,
    };
    let mut s = Session::new(&m, &o).unwrap();
    let t = Instant::now();
    s.feed(&prompt).unwrap();
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
        s.accept(&toks[..rows]).unwrap();
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
}
