//! Quality when the coarse cache is small: perplexity of a model read token by token through a
//! session whose coarse cache (PHOTON: F2; vanilla: the KV cache) holds `cap` positions, for
//! several caps, against a cache with room for the trained range. Beyond it, the oldest positions
//! give way (attention sink of 4 + sliding window, positions re-based).
//!
//! cargo run --release --example perplexity_window -- MODEL.gguf data/val.bin \
//!     [--tokens 4096] [--caps 8,16,32,64] [--threads 2]
//!
//! `val.bin`: little-endian u16 token ids (training/prepare.py's format). Scored: every token
//! after the first of the stream (`--tokens` of them), teacher forced (HierGen semantics).
use photon::model::eval;
use photon::{EngineOptions, Mode, Model, ModelKind, Session};
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
    let raw = std::fs::read(&a[1]).expect("tokens");
    let stream: Vec<u32> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
        .collect();
    let n: usize = get("--tokens", "4096").parse().unwrap();
    let threads: usize = get("--threads", "1").parse().unwrap();
    let full = m.max_useful_memory();
    let mut caps: Vec<usize> = get("--caps", "8,16,32,64")
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    caps.push(usize::MAX);
    let toks = &stream[..(n + 1).min(stream.len())];
    let v = m.vocab_size();
    let mut lp = vec![0.0f32; v];
    println!(
        "{}: {} tokens scored, trained context {}",
        a[0],
        toks.len() - 1,
        m.trained_context()
    );
    for cap in caps {
        let budget = if cap == usize::MAX {
            full
        } else {
            m.budget_for_coarse(cap)
        };
        let o = EngineOptions {
            memory_budget: budget,
            threads,
            mode: Mode::HierGen,
        };
        let mut s = Session::new(&m, &o).unwrap();
        let t = Instant::now();
        let mut nll = 0.0f64;
        s.feed(&toks[..1]).unwrap();
        for i in 1..toks.len() {
            eval::log_softmax(s.logits(0), &mut lp);
            nll -= lp[toks[i] as usize] as f64;
            s.feed(&toks[i..i + 1]).unwrap();
        }
        let mem = s.memory();
        let k = (toks.len() - 1) as f64;
        println!(
            "coarse cache {:5} positions ({} tokens of coarse context), arena {:8.2} MiB: ppl {:8.3}  (evicted {}, {:.0} tok/s)",
            mem.coarse_capacity,
            if m.kind() == ModelKind::Photon { mem.coarse_capacity * m.config().meta_tokens() } else { mem.coarse_capacity },
            mem.arena_bytes as f64 / (1 << 20) as f64,
            (nll / k).exp(),
            mem.coarse_evicted,
            k / t.elapsed().as_secs_f64()
        );
    }
    let t = m.trained_context();
    if toks.len() >= t {
        let p = eval::perplexity(
            &m,
            &stream[..(toks.len() / t) * t],
            t,
            eval::Latents::Encoder,
            0,
            threads,
        )
        .unwrap();
        println!(
            "reference: batched evaluator over {}-token windows: ppl {:.3} ({} tokens)",
            t, p.ppl, p.tokens
        );
        if m.kind() == ModelKind::Photon {
            for prompt in [32usize, 128, 256] {
                let p = eval::perplexity(
                    &m,
                    &stream[..(toks.len() / t) * t],
                    t,
                    eval::Latents::Recursive { prompt },
                    0,
                    threads,
                )
                .unwrap();
                println!(
                    "RecGen (latents recursive after a {prompt}-token prompt, tokens teacher-forced in units): ppl {:.3} ({} tokens)",
                    p.ppl, p.tokens
                );
            }
        }
    }
}
