//! Parity with the PyTorch reference on the committed models (tests/fixtures/golden.json,
//! written by training/golden.py in f32 on CPU from the same F16 GGUF files):
//! teacher-forced log-softmax within 1e-4 per position, PHOTON intermediates, greedy HierGen /
//! RecGen / vanilla continuations identical up to the first step where the reference's top-2
//! margin is below 1e-3, and the two-turn chat under every mode. Then Q8_0 / Q4_0 copies made in
//! memory against the float run (top-1 agreement and KL, enforced bounds).
#![allow(clippy::needless_range_loop)]
use photon::gguf::{Gguf, GgufWriter, OwnedValue, Value};
use photon::model::eval::{self, Latents};
use photon::quant::{dequantize_row, quantize_row, GgmlType};
use photon::{EngineOptions, Mode, Model, Session};
use serde_json::Value as J;
use std::path::{Path, PathBuf};

const LP_TOL: f32 = 1e-4;
const MARGIN: f64 = 1e-3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed models and fixtures, or `None` (loud SKIPPED) where they are not present.
fn fixtures() -> Option<(Model, Model, J)> {
    let r = root();
    let (p, v, g) = (
        r.join("models/photon-tiny-f16.gguf"),
        r.join("models/vanilla-tiny-f16.gguf"),
        r.join("tests/fixtures/golden.json"),
    );
    if !p.exists() || !v.exists() || !g.exists() {
        eprintln!("SKIPPED: parity needs models/*-tiny-f16.gguf and tests/fixtures/golden.json");
        return None;
    }
    let j: J = serde_json::from_str(&std::fs::read_to_string(g).unwrap()).unwrap();
    Some((Model::open(p).unwrap(), Model::open(v).unwrap(), j))
}

fn opts(mode: Mode) -> EngineOptions {
    EngineOptions {
        memory_budget: 32 << 20,
        threads: 1,
        mode,
    }
}

fn ids(j: &J) -> Vec<u32> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

fn floats(j: &J) -> Vec<f32> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn log_softmax(x: &[f32]) -> Vec<f32> {
    let mut o = vec![0.0; x.len()];
    eval::log_softmax(x, &mut o);
    o
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn teacher_forced_logprobs() {
    let Some((pm, vm, j)) = fixtures() else {
        return;
    };
    let tf = &j["teacher_forced"];
    let input = ids(&tf["input_ids"]);
    let v = pm.vocab_size();
    for (name, m) in [("photon-tiny", &pm), ("vanilla-tiny", &vm)] {
        let want = read_f32(
            &root()
                .join("tests/fixtures")
                .join(tf[name]["file"].as_str().unwrap()),
        );
        let rows = want.len() / v;
        assert_eq!(rows, input.len());
        let row = |i: usize| &want[i * v..(i + 1) * v];
        let photon = name == "photon-tiny";
        let mut worst = 0.0f32;
        // Batched evaluator.
        eval::window_logits(m, &input, Latents::Encoder, |i, l| {
            let r = if photon { i } else { i - 1 };
            let e = max_diff(&log_softmax(l), row(r));
            assert!(e < LP_TOL, "{name} evaluator row {r}: max |Δ| {e}");
            worst = worst.max(e);
        })
        .unwrap();
        // Incremental session, token by token (row 0 of PHOTON: from s^(2) alone).
        let mut s = Session::new(m, &opts(Mode::HierGen)).unwrap();
        let mut worst_inc = 0.0f32;
        if photon {
            s.feed(&[]).unwrap();
            for i in 0..rows {
                let e = max_diff(&log_softmax(s.logits(0)), row(i));
                assert!(e < LP_TOL, "{name} session row {i}: max |Δ| {e}");
                worst_inc = worst_inc.max(e);
                s.accept(&[input[i]]).unwrap();
            }
        } else {
            for i in 0..rows {
                s.feed(&input[i..i + 1]).unwrap();
                let e = max_diff(&log_softmax(s.logits(0)), row(i));
                assert!(e < LP_TOL, "{name} session row {i}: max |Δ| {e}");
                worst_inc = worst_inc.max(e);
            }
        }
        println!("{name}: teacher-forced log-softmax max |Δ| evaluator {worst:.2e}, session {worst_inc:.2e} over {rows} positions");
    }
}

#[test]
fn photon_intermediates() {
    let Some((pm, _, j)) = fixtures() else { return };
    let input = ids(&j["teacher_forced"]["input_ids"]);
    let d = pm.config().d;
    let inter = &j["photon_intermediates"];
    let mut worst = 0.0f32;
    let mut cmp = |got: &[f32], key: &str, want: &J, what: &str| {
        for (k, v) in want.as_object().unwrap() {
            let i: usize = k.parse().unwrap();
            let e = max_diff(&got[i * d..(i + 1) * d], &floats(v));
            assert!(e < LP_TOL, "{what} {key}[{i}]: max |Δ| {e}");
            worst = worst.max(e);
        }
    };
    let l = eval::latents(&pm, &input, Latents::Encoder).unwrap();
    cmp(&l.x1, "x1", &inter["x1"], "teacher forced");
    cmp(&l.x2, "x2", &inter["x2"], "teacher forced");
    cmp(&l.xhat, "xhat1", &inter["xhat1"], "teacher forced");
    let rg = &inter["recgen_prompt37"];
    let l = eval::latents(&pm, &input, Latents::Recursive { prompt: 37 }).unwrap();
    cmp(&l.xhat, "xhat1", &rg["xhat1"], "recgen P=37");
    cmp(&l.x2, "x2", &rg["x2"], "recgen P=37");
    println!("intermediates X1, X2, x̂1 (HierGen and RecGen P=37): max |Δ| {worst:.2e}");
}

fn argmax(x: &[f32]) -> u32 {
    eval::argmax(x) as u32
}

/// Greedy reply of at most `max_new` tokens after what the session has been fed, stopping after
/// `stop`. RecGen: units decoded in batches; the reply is the tokens in unit order, and the
/// session is truncated to exactly the prompt + reply.
fn greedy(s: &mut Session, max_new: usize, stop: Option<u32>, c1: usize) -> Vec<u32> {
    let mut out = vec![];
    if s.mode() == Mode::HierGen || s.model().kind() == photon::ModelKind::Llama {
        loop {
            let t = argmax(s.logits(0));
            out.push(t);
            s.accept(&[t]).unwrap();
            if out.len() == max_new || Some(t) == stop {
                return out;
            }
        }
    }
    let p = s.position();
    let first = p / c1;
    let mut units: Vec<Vec<u32>> = vec![];
    loop {
        let n = s.pending_rows();
        let toks: Vec<u32> = (0..n).map(|r| argmax(s.logits(r))).collect();
        for (r, &t) in toks.iter().enumerate() {
            let u = s.pending_unit(r) - first;
            if units.len() <= u {
                units.resize(u + 1, vec![]);
            }
            units[u].push(t);
        }
        s.accept(&toks).unwrap();
        // Tokens in order: complete units, then the first unfinished one.
        let mut seq = vec![];
        for (k, u) in units.iter().enumerate() {
            seq.extend(u);
            let need = if k == 0 { c1 - p % c1 } else { c1 };
            if u.len() < need {
                break;
            }
        }
        let end = stop
            .and_then(|st| seq.iter().position(|&t| t == st).map(|i| i + 1))
            .or(if seq.len() >= max_new {
                Some(max_new)
            } else {
                None
            });
        if let Some(e) = end {
            let e = e.min(max_new);
            out.extend(&seq[..e]);
            s.truncate(p + e).unwrap();
            return out;
        }
    }
}

/// Steps identical before the first step whose reference margin is below 1e-3 (or all).
fn matched(got: &[u32], want: &[u32], margins: &[f64]) -> (usize, usize, bool) {
    let cut = margins
        .iter()
        .position(|&m| m < MARGIN)
        .unwrap_or(want.len());
    let same = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    (same, cut, same >= cut.min(want.len()))
}

#[test]
fn greedy_continuations() {
    let Some((pm, vm, j)) = fixtures() else {
        return;
    };
    let c1 = pm.config().c1;
    for c in j["continuations"].as_array().unwrap() {
        let mode = c["mode"].as_str().unwrap();
        let prompt = ids(&c["prompt"]);
        let want = ids(&c["tokens"]);
        let margins: Vec<f64> = c["margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (m, md) = match mode {
            "hiergen" => (&pm, Mode::HierGen),
            "recgen" => (&pm, Mode::RecGen),
            _ => (&vm, Mode::HierGen),
        };
        let mut s = Session::new(m, &opts(md)).unwrap();
        s.feed(&prompt).unwrap();
        let got = greedy(&mut s, want.len(), None, c1);
        let (same, cut, ok) = matched(&got, &want, &margins);
        println!(
            "{mode:8} prompt {:2}: {same}/{} tokens identical, first low-margin step {cut}",
            prompt.len(),
            want.len()
        );
        assert!(
            ok,
            "{mode} prompt {}: diverged at step {same} (cut {cut})\n got {got:?}\nwant {want:?}",
            prompt.len()
        );
    }
}

#[test]
fn two_turn_chat() {
    let Some((pm, vm, j)) = fixtures() else {
        return;
    };
    let c1 = pm.config().c1;
    const END: u32 = 6;
    for chat in j["chat"].as_array().unwrap() {
        let mode = chat["mode"].as_str().unwrap();
        let (m, md) = match mode {
            "hiergen" => (&pm, Mode::HierGen),
            "recgen" => (&pm, Mode::RecGen),
            _ => (&vm, Mode::HierGen),
        };
        let mut s = Session::new(m, &opts(md)).unwrap();
        let mut fed = 0usize;
        for (ti, turn) in chat["turns"].as_array().unwrap().iter().enumerate() {
            let prompt = ids(&turn["prompt"]);
            let want = ids(&turn["reply"]);
            let margins: Vec<f64> = turn["margins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(s.position(), fed, "history length before turn {ti}");
            s.feed(&prompt[fed..]).unwrap();
            let got = greedy(&mut s, 64, Some(END), c1);
            let (same, cut, ok) = matched(&got, &want, &margins);
            println!(
                "chat {mode:8} turn {ti}: {same}/{} reply tokens identical (cut {cut})",
                want.len()
            );
            assert!(
                ok,
                "chat {mode} turn {ti} diverged at {same}\n got {got:?}\nwant {want:?}"
            );
            if got != want {
                return; // a low-margin tie flipped: the next turn's prompt is not ours
            }
            fed = prompt.len() + got.len();
            assert_eq!(s.position(), fed);
        }
    }
}

/// A copy of `bytes` with every 2-D tensor (matrices and embeddings) converted to `ty`.
fn requantize(bytes: &[u8], ty: GgmlType) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in g.metadata() {
        if *k == "general.alignment" {
            continue;
        }
        w.add(k, owned(v)).unwrap();
    }
    for t in g.tensors() {
        let n = t.n_elements() as usize;
        let mut f = vec![0.0f32; n];
        dequantize_row(t.ty, t.data, &mut f).unwrap();
        let (nty, data) = if t.dims.len() == 2 && t.dims[0] % 32 == 0 {
            let mut out = vec![];
            quantize_row(ty, &f, &mut out).unwrap();
            (ty, out)
        } else {
            let mut out = vec![];
            quantize_row(GgmlType::F32, &f, &mut out).unwrap();
            (GgmlType::F32, out)
        };
        w.add_tensor(t.name, nty, &t.dims, data).unwrap();
    }
    w.to_bytes().unwrap()
}

fn owned(v: &Value) -> OwnedValue {
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
        Value::Array(a) => OwnedValue::Array(a.elem_type(), a.iter().map(|x| owned(&x)).collect()),
    }
}

/// Validation tokens for the quantized comparisons: the fixture's input plus, when present, the
/// committed validation split.
#[test]
fn quantized_against_float() {
    let Some((_, _, j)) = fixtures() else { return };
    let input = ids(&j["teacher_forced"]["input_ids"]);
    // (type, min top-1, max mean KL). Measured on this input (every 2-D tensor quantized, the
    // embeddings and LM head included): photon-tiny Q8_0 top-1 0.992 KL 0.0002, Q4_0 0.882 /
    // 0.020; vanilla-tiny Q8_0 0.961 / 0.0005, Q4_0 0.835 / 0.039 (4 × 2048 validation
    // tokens: 0.985 / 0.0002, 0.881 / 0.020, 0.983 / 0.0004, 0.853 / 0.039).
    let bounds = [(GgmlType::Q8_0, 0.93, 0.005), (GgmlType::Q4_0, 0.75, 0.08)];
    for name in ["photon-tiny", "vanilla-tiny"] {
        let bytes = std::fs::read(root().join(format!("models/{name}-f16.gguf"))).unwrap();
        let float = Model::from_bytes(bytes.clone()).unwrap();
        for (ty, top1, kl) in bounds {
            let q = Model::from_bytes(requantize(&bytes, ty)).unwrap();
            let a = eval::compare(&float, &q, &input, input.len(), Latents::Encoder, 0, 1).unwrap();
            println!(
                "{name} {}: top-1 {:.3}, KL mean {:.4} max {:.4}, ppl {:.2} vs float {:.2} ({} positions)",
                ty.name(),
                a.top1,
                a.kl_mean,
                a.kl_max,
                a.ppl_model,
                a.ppl_reference,
                a.positions
            );
            assert!(
                a.top1 >= top1 && a.kl_mean <= kl,
                "{name} {}: {a:?}",
                ty.name()
            );
        }
    }
}
