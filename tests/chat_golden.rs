//! The chat example against the PyTorch reference: the two-turn greedy chat of
//! tests/fixtures/golden.json (training/golden.py, f32 reference on the F16 files) run through the
//! example binary under HierGen, RecGen and on the vanilla model. The printed replies must be
//! the reference's replies, up to the first step whose top-2 margin is below 1e-3 (a near tie may
//! flip between implementations; after it the histories differ). Skips loudly without the
//! trained models and the fixture.
mod chat_support;

use chat_support::*;
use photon::tokenizer::{TokenDecoder, Tokenizer};
use serde_json::Value as J;
use std::path::Path;
use std::time::Duration;

fn ids(j: &J) -> Vec<u32> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

fn decode(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = TokenDecoder::new();
    let mut s = String::new();
    for &t in ids {
        d.push(tok, t, &mut s).unwrap();
    }
    s
}

#[test]
fn chat_example_matches_the_reference_chat() {
    let root = Path::new(ROOT);
    let (p, v, g) = (
        root.join("models/photon-tiny-f16.gguf"),
        root.join("models/vanilla-tiny-f16.gguf"),
        root.join("tests/fixtures/golden.json"),
    );
    if !p.exists() || !v.exists() || !g.exists() {
        eprintln!(
            "SKIPPED: chat golden needs models/*-tiny-f16.gguf and tests/fixtures/golden.json"
        );
        return;
    }
    let j: J = serde_json::from_str(&std::fs::read_to_string(g).unwrap()).unwrap();
    let model = photon::Model::open(&p).unwrap();
    let tok = Tokenizer::from_gguf(&model.gguf()).unwrap();
    let end = tok.eot().unwrap();
    let stops = [tok.eos(), tok.eot(), tok.token_id("<|user|>")];
    for chat in j["chat"].as_array().unwrap() {
        let mode = chat["mode"].as_str().unwrap();
        let (file, flag) = match mode {
            "hiergen" => (&p, "hiergen"),
            "recgen" => (&p, "recgen"),
            _ => (&v, "hiergen"),
        };
        let turns = chat["turns"].as_array().unwrap();
        let mut input = String::new();
        for t in turns {
            input.push_str(t["user"].as_str().unwrap());
            input.push('\n');
        }
        let fs = file.display().to_string();
        let args = [
            "--model",
            &fs,
            "--mode",
            flag,
            "--temp",
            "0",
            "--repeat-penalty",
            "1",
            "--max-tokens",
            "64",
            "--quiet",
        ];
        let out = run(&args, input.as_bytes(), Duration::from_secs(600));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let got = text(&out.stdout);
        // The expected output, turn after turn, as far as it is reliable.
        let mut want = String::new();
        let mut exact = true;
        for (ti, t) in turns.iter().enumerate() {
            let reply = ids(&t["reply"]);
            let margins: Vec<f64> = t["margins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_f64().unwrap())
                .collect();
            // Reliable tokens: before the first near tie and before any token that ends our
            // reply (the reference only stops at <|end|>).
            let tie = margins
                .iter()
                .position(|&m| m < 1e-3)
                .unwrap_or(reply.len());
            let stop = reply
                .iter()
                .position(|&x| stops.contains(&Some(x)))
                .unwrap_or(reply.len());
            let ends_at_end = stop < reply.len() && reply[stop] == end && stop < tie;
            let cut = tie.min(stop);
            want.push_str(&decode(&tok, &reply[..cut]));
            if !(ends_at_end || (tie == reply.len() && stop == reply.len() && reply.len() == 64)) {
                eprintln!(
                    "chat {mode} turn {ti}: compared {cut} of {} tokens",
                    reply.len()
                );
                exact = false;
                break;
            }
            if !want.ends_with('\n') || cut == 0 {
                want.push('\n');
            }
        }
        if exact {
            assert_eq!(got, want, "chat {mode}");
        } else {
            assert!(
                got.starts_with(&want),
                "chat {mode}:\n got {got:?}\nwant {want:?}..."
            );
        }
        eprintln!("chat {mode}: {:?}", got);
    }
}
