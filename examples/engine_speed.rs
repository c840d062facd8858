//! Decode and prefill speed of the engine: PHOTON HierGen, RecGen and the vanilla baseline.
//!
//! cargo run --release --example engine_speed -- [photon.gguf vanilla.gguf] [--threads N]
//!
//! Without files it builds random models of photon-tiny's and vanilla-tiny's shapes (F16).
use photon::model::testing::{random_model, RandomSpec};
use photon::quant::GgmlType;
use photon::{EngineOptions, Mode, Model, ModelKind, Session};
use std::time::Instant;

fn argmax(x: &[f32]) -> u32 {
    photon::model::eval::argmax(x) as u32
}

fn run(m: &Model, mode: Mode, threads: usize, prompt: &[u32], gen: usize) -> (f64, f64, usize) {
    let o = EngineOptions {
        memory_budget: 64 << 20,
        threads,
        mode,
    };
    let mut s = Session::new(m, &o).unwrap();
    let t = Instant::now();
    s.feed(prompt).unwrap();
    let prefill = prompt.len() as f64 / t.elapsed().as_secs_f64();
    let start = s.position();
    let mut toks = [0u32; 16];
    let t = Instant::now();
    while s.position() - start < gen {
        let n = s.pending_rows();
        for (r, tk) in toks[..n].iter_mut().enumerate() {
            *tk = argmax(s.logits(r));
        }
        s.accept(&toks[..n]).unwrap();
    }
    let decode = (s.position() - start) as f64 / t.elapsed().as_secs_f64();
    (prefill, decode, s.memory().arena_bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1;
    let mut files = vec![];
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--threads" {
            threads = args[i + 1].parse().unwrap();
            i += 2;
        } else {
            files.push(args[i].clone());
            i += 1;
        }
    }
    let models: Vec<Model> = if files.is_empty() {
        let base = RandomSpec {
            vocab: 4096,
            d: 256,
            heads: 4,
            ffn: 704,
            layers: [3, 3, 3, 3],
            w1: 4,
            context: 2048,
            mat_type: GgmlType::F16,
            vec_type: GgmlType::F32,
            scale: 0.05,
            ..RandomSpec::tiny_photon()
        };
        let van = RandomSpec {
            photon: false,
            layers: [12, 0, 0, 0],
            ..base.clone()
        };
        vec![
            Model::from_bytes(random_model(&base).unwrap()).unwrap(),
            Model::from_bytes(random_model(&van).unwrap()).unwrap(),
        ]
    } else {
        files.iter().map(|f| Model::open(f).unwrap()).collect()
    };
    let prompt: Vec<u32> = (0..512u32).map(|i| (i * 37 + 11) % 4000 + 7).collect();
    for m in &models {
        let modes: &[Mode] = if m.kind() == ModelKind::Photon {
            &[Mode::HierGen, Mode::RecGen]
        } else {
            &[Mode::HierGen]
        };
        for &mode in modes {
            let name = match (m.kind(), mode) {
                (ModelKind::Llama, _) => "vanilla",
                (_, Mode::HierGen) => "photon HierGen",
                _ => "photon RecGen",
            };
            let (p, d, a) = run(m, mode, threads, &prompt, 256);
            println!(
                "{name:15} threads {threads}: prefill {p:8.0} tok/s (512 tokens), decode {d:8.1} tok/s (256 tokens), arena {:.2} MiB, weights {:.2} MiB",
                a as f64 / (1 << 20) as f64,
                m.weight_bytes() as f64 / (1 << 20) as f64
            );
        }
    }
}
