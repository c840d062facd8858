//! Decode and prefill speed of the engine: PHOTON HierGen, RecGen and the vanilla baseline.
//!
//! cargo run --release --example engine_speed -- [photon.gguf vanilla.gguf] [--threads N]
//!     [--quant q8_0|q4_0] [--f16-cache]
//!
//! Without files it builds random models of photon-tiny's and vanilla-tiny's shapes (F16).
//! `--quant` converts every 2-D tensor in memory first (a stand-in for photon-quantize).
use photon::model::testing::{random_model, RandomSpec};
use photon::quant::GgmlType;
use photon::{EngineOptions, Mode, Model, ModelKind, Session};
use std::time::Instant;

fn argmax(x: &[f32]) -> u32 {
    photon::model::eval::argmax(x) as u32
}

fn requantize(bytes: &[u8], ty: GgmlType) -> Vec<u8> {
    use photon::gguf::{Gguf, GgufWriter, OwnedValue, Value};
    fn own(v: &Value) -> OwnedValue {
        match v {
            Value::U8(x) => OwnedValue::U8(*x),
            Value::I8(x) => OwnedValue::I8(*x),
            Value::U16(x) => OwnedValue::U16(*x),
            Value::I16(x) => OwnedValue::I16(*x),
            Value::U32(x) => OwnedValue::U32(*x),
            Value::I32(x) => OwnedValue::I32(*x),
            Value::F32(x) => OwnedValue::F32(*x),
            Value::Bool(x) => OwnedValue::Bool(*x),
            Value::Str(s) => OwnedValue::Str(s.to_string()),
            Value::U64(x) => OwnedValue::U64(*x),
            Value::I64(x) => OwnedValue::I64(*x),
            Value::F64(x) => OwnedValue::F64(*x),
            Value::Array(a) => {
                OwnedValue::Array(a.elem_type(), a.iter().map(|x| own(&x)).collect())
            }
        }
    }
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in g.metadata() {
        if *k != "general.alignment" {
            w.add(k, own(v)).unwrap();
        }
    }
    for t in g.tensors() {
        let mut x = vec![0.0f32; t.n_elements() as usize];
        photon::quant::dequantize_row(t.ty, t.data, &mut x).unwrap();
        let nty = if t.dims.len() == 2 { ty } else { GgmlType::F32 };
        let mut out = vec![];
        photon::quant::quantize_row(nty, &x, &mut out).unwrap();
        w.add_tensor(t.name, nty, &t.dims, out).unwrap();
    }
    w.to_bytes().unwrap()
}

fn run(
    m: &Model,
    mode: Mode,
    threads: usize,
    prompt: &[u32],
    gen: usize,
    f16: bool,
) -> (f64, f64, usize) {
    let o = EngineOptions {
        memory_budget: 64 << 20,
        threads,
        mode,
    };
    let ty = if f16 {
        photon::model::CacheType::F16
    } else {
        photon::model::CacheType::F32
    };
    let mut s = Session::new_with_cache(m, &o, ty).unwrap();
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
    let mut quant = None;
    let mut f16 = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--threads" {
            threads = args[i + 1].parse().unwrap();
            i += 2;
        } else if args[i] == "--quant" {
            quant = Some(if args[i + 1] == "q4_0" {
                GgmlType::Q4_0
            } else {
                GgmlType::Q8_0
            });
            i += 2;
        } else if args[i] == "--f16-cache" {
            f16 = true;
            i += 1;
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
        files
            .iter()
            .map(|f| match quant {
                Some(ty) => Model::from_bytes(requantize(&std::fs::read(f).unwrap(), ty)).unwrap(),
                None => Model::open(f).unwrap(),
            })
            .collect()
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
            let (p, d, a) = run(m, mode, threads, &prompt, 256, f16);
            println!(
                "{name:15} threads {threads}: prefill {p:8.0} tok/s (512 tokens), decode {d:8.1} tok/s (256 tokens), arena {:.2} MiB, weights {:.2} MiB",
                a as f64 / (1 << 20) as f64,
                m.weight_bytes() as f64 / (1 << 20) as f64
            );
        }
    }
}
