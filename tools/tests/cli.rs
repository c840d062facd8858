//! The three tools end to end on tiny generated models: files load with the requested config,
//! output formats parse, the perplexity CLI agrees with the library evaluator, bad input gives
//! a one-line error and a non-zero exit (never a panic).
use photon_runtime::model::eval::{self, Latents};
use photon_runtime::model::{Model, ModelKind};
use photon_runtime::quant::GgmlType;
use photon_runtime::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const GEN: &str = env!("CARGO_BIN_EXE_photon-gen-model");
const BENCH: &str = env!("CARGO_BIN_EXE_photon-bench");
const PPL: &str = env!("CARGO_BIN_EXE_photon-perplexity");

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("photon-tools-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("spawn")
}

fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(
        o.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A failure: exit code 1, exactly one line on stderr naming the tool, no panic.
fn fails(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{bin} {args:?} succeeded");
    assert!(!err.contains("panicked"), "{bin} {args:?} panicked: {err}");
    if o.status.code() == Some(1) {
        assert_eq!(err.trim_end().lines().count(), 1, "{bin} {args:?}: {err}");
        assert!(err.contains("error"), "{err}");
    } else {
        // clap's usage errors (exit 2) print a short usage block.
        assert_eq!(o.status.code(), Some(2), "{err}");
    }
    err
}

/// The test pair (PHOTON and vanilla, Q8_0), generated once per test binary.
fn models() -> &'static (PathBuf, PathBuf) {
    static M: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    M.get_or_init(|| {
        let d = tmp();
        let p = d.join("p.gguf");
        let v = d.join("v.gguf");
        for (arch, f) in [("photon", &p), ("vanilla", &v)] {
            ok(
                GEN,
                &[
                    "--preset",
                    "test",
                    "--arch",
                    arch,
                    "--type",
                    "q8_0",
                    "--context",
                    "1024",
                    "-o",
                    f.to_str().unwrap(),
                ],
            );
        }
        (p, v)
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn gen_model_writes_the_requested_config() {
    let d = tmp();
    for (arch, ty, gty) in [
        ("photon", "q4_0", GgmlType::Q4_0),
        ("vanilla", "f16", GgmlType::F16),
        ("photon", "f32", GgmlType::F32),
    ] {
        let f = d.join(format!("g-{arch}-{ty}.gguf"));
        let out = ok(
            GEN,
            &[
                "--preset",
                "test",
                "--arch",
                arch,
                "--type",
                ty,
                "--ffn",
                "160",
                "--layers",
                "2",
                "--vocab",
                "300",
                "--context",
                "2048",
                "-o",
                s(&f),
            ],
        );
        assert!(out.contains("wrote"), "{out}");
        let m = Model::open(&f).unwrap();
        let c = m.config();
        assert_eq!(
            (c.d, c.ffn, c.heads, c.vocab, c.context),
            (128, 160, 2, 300, 2048)
        );
        if arch == "photon" {
            assert_eq!(m.kind(), ModelKind::Photon);
            assert_eq!(c.layers, [2, 2, 2, 2]);
            assert_eq!((c.c1, c.c2, c.r, c.w1), (4, 4, 2, 4));
        } else {
            assert_eq!(m.kind(), ModelKind::Llama);
            assert_eq!(c.layers[0], 8);
        }
        for t in m.gguf().tensors() {
            let want = if t.dims.len() == 2 {
                gty
            } else {
                GgmlType::F32
            };
            assert_eq!(t.ty, want, "{}", t.name);
        }
        let tok = Tokenizer::from_gguf(&m.gguf()).unwrap();
        assert_eq!(tok.vocab_size(), 300);
        assert_eq!(
            (tok.bos(), tok.eos(), tok.unk()),
            (Some(1), Some(2), Some(0))
        );
        let mut ids = Vec::new();
        tok.encode("héllo, wörld", &mut ids).unwrap();
        assert!(!ids.is_empty() && ids.iter().all(|&i| i < 300));
        assert!(!d.join(format!("g-{arch}-{ty}.gguf.tmp")).exists());
    }
    // The presets list.
    assert!(ok(GEN, &["--list", "-o", "x"]).contains("photon-600m"));
}

#[test]
fn bench_json_csv_markdown() {
    let (p, v) = models();
    let base = [
        "-m",
        s(p),
        "-m",
        s(v),
        "-p",
        "32",
        "-n",
        "16",
        "--pg",
        "48,16",
        "--probe-mb",
        "4",
        "--fill-above",
        "40",
    ];
    let j: serde_json::Value = serde_json::from_str(&ok(
        BENCH,
        &[&base[..], &["-o", "json", "-r", "2"]].concat(),
    ))
    .unwrap();
    let runs = j["runs"].as_array().unwrap();
    // 3 tests × (photon hiergen, recgen, vanilla).
    assert_eq!(runs.len(), 9);
    for r in runs {
        assert_eq!(r["reps"], 2);
        assert!(r["cache_bytes"].as_f64().unwrap() > 0.0);
        assert!(r["peak_rss_bytes"].as_f64().unwrap() > 0.0);
        assert!(r["weight_bytes_per_token"].as_f64().unwrap() > 0.0);
        if r["n_gen"].as_u64().unwrap() > 0 {
            let d = r["decode_tps"]["median"].as_f64().unwrap();
            assert!(d > 0.0, "{r}");
            assert!(r["tpm_tps_per_gib"].as_f64().unwrap() > 0.0);
            assert!(r["achieved_gbs"].as_f64().unwrap() > 0.0);
        }
        // The vanilla pp48 run decoded over a filled cache (prompt above --fill-above).
        let filled = r["kind"] == "vanilla" && r["n_prompt"] == 48;
        assert_eq!(r["prefill_filled"].as_bool().unwrap(), filled, "{r}");
    }
    assert!(j["probe_gbs"][0]["gbs"].as_f64().unwrap() > 0.0);
    assert!(j["machine_start"]["cores"].as_u64().unwrap() >= 1);

    let c = ok(BENCH, &[&base[..], &["-o", "csv", "-r", "1"]].concat());
    let lines: Vec<&str> = c.lines().collect();
    assert_eq!(lines.len(), 10);
    let cols = lines[0].split(',').count();
    assert!(lines[0].starts_with("model,mode,thr,test,pp t/s"));
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), cols, "{l}");
    }

    let md = ok(BENCH, &[&base[..], &["-r", "1"]].concat());
    assert!(md.contains("| model | mode | thr | test |"), "{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| p ")).count(), 6);
}

#[test]
fn bench_multi_query_and_soak() {
    let (p, v) = models();
    let j: serde_json::Value = serde_json::from_str(&ok(
        BENCH,
        &[
            "-m",
            s(p),
            "-m",
            s(v),
            "--mq",
            "64,8",
            "--parallel",
            "1,3",
            "-r",
            "1",
            "--probe-mb",
            "0",
            "-o",
            "json",
            "--no-fork",
        ],
    ))
    .unwrap();
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for r in runs {
        let k = r["parallel"].as_u64().unwrap();
        assert!(r["shared_prefix_bytes"].as_u64().unwrap() > 0);
        assert!(r["decode_tps"]["median"].as_f64().unwrap() > 0.0);
        // Memory per sequence: the prefix is held once.
        let per = r["cache_bytes_per_sequence"].as_f64().unwrap();
        assert!((per * k as f64 - r["cache_bytes"].as_f64().unwrap()).abs() < 1.0);
    }
    let soak = ok(
        BENCH,
        &[
            "-m",
            s(p),
            "--soak",
            "2500",
            "--modes",
            "recgen",
            "-t",
            "1",
            "-o",
            "csv",
        ],
    );
    let lines: Vec<&str> = soak.lines().collect();
    assert_eq!(lines.len(), 3, "{soak}"); // header, 1000, 2500
    assert!(lines[2].starts_with("2500,"));
}

fn text_file() -> PathBuf {
    let f = tmp().join("t.txt");
    let mut t = String::new();
    for i in 0..60 {
        t += &format!("Line {i}: the quick brown fox — {} jumps.\n", i * 37 % 101);
    }
    std::fs::write(&f, t).unwrap();
    f
}

#[test]
fn perplexity_agrees_with_the_library() {
    let (p, v) = models();
    let txt = text_file();
    for (path, mode, latents) in [
        (p, "hiergen", Latents::Encoder),
        (p, "recgen", Latents::Recursive { prompt: 32 }),
        (v, "hiergen", Latents::Encoder),
    ] {
        let out = ok(
            PPL,
            &[
                "-m",
                s(path),
                "--text",
                s(&txt),
                "--mode",
                mode,
                "--prompt",
                "32",
                "--window",
                "256",
                "-o",
                "json",
            ],
        );
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        let m = Model::open(path).unwrap();
        let tok = Tokenizer::from_gguf(&m.gguf()).unwrap();
        let mut ids = vec![tok.bos().unwrap()];
        tok.encode(&std::fs::read_to_string(&txt).unwrap(), &mut ids)
            .unwrap();
        assert_eq!(j["tokens_in_file"].as_u64().unwrap() as usize, ids.len());
        let want = eval::perplexity(&m, &ids, 256, latents, 0, 1).unwrap();
        assert_eq!(j["scored"].as_u64().unwrap() as usize, want.tokens);
        let got = j["ppl"].as_f64().unwrap();
        assert!(
            (got - want.ppl).abs() <= 1e-9 * want.ppl,
            "{got} vs {}",
            want.ppl
        );
    }
    // Saved logits, then KL / top-1 against them and against the model itself: identical.
    let saved = tmp().join("ref.phtk");
    let t = ok(
        PPL,
        &[
            "-m",
            s(p),
            "--text",
            s(&txt),
            "--window",
            "256",
            "--save-logits",
            s(&saved),
        ],
    );
    assert!(
        t.contains("perplexity") && t.contains("saved top-32"),
        "{t}"
    );
    let j: serde_json::Value = serde_json::from_str(&ok(
        PPL,
        &[
            "-m",
            s(p),
            "--text",
            s(&txt),
            "--window",
            "256",
            "--reference-logits",
            s(&saved),
            "--reference-model",
            s(p),
            "-o",
            "json",
        ],
    ))
    .unwrap();
    for k in ["reference_logits", "reference_model"] {
        assert_eq!(j[k]["top1"].as_f64().unwrap(), 1.0, "{j}");
        assert!(j[k]["kl_mean"].as_f64().unwrap().abs() < 1e-4, "{j}");
    }
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let (p, v) = models();
    let d = tmp();
    let junk = d.join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let txt = text_file();
    let missing = d.join("missing.gguf");
    fails(BENCH, &["-m", s(&missing)]);
    fails(BENCH, &["-m", s(&junk)]);
    fails(BENCH, &["-m", s(p), "--pg", "12"]);
    fails(BENCH, &["-m", s(p), "--pg", "a,b"]);
    fails(BENCH, &["-m", s(p), "--cache", "q4"]);
    fails(BENCH, &["-m", s(p), "--modes", "fast"]);
    fails(BENCH, &["-m", s(p), "-o", "xml"]);
    fails(BENCH, &["-m", s(p), "-t", "0"]);
    fails(BENCH, &["-m", s(p), "-r", "0"]);
    fails(
        BENCH,
        &[
            "-m",
            s(v),
            "--memory-mb",
            "0.01",
            "-n",
            "4",
            "--probe-mb",
            "0",
        ],
    );
    fails(BENCH, &["-p", "3"]); // no model: clap usage error
    fails(GEN, &["-o", s(&d.join("x.gguf")), "--type", "q5_k"]);
    fails(GEN, &["-o", s(&d.join("x.gguf")), "--preset", "huge"]);
    fails(
        GEN,
        &[
            "-o",
            s(&d.join("x.gguf")),
            "--preset",
            "test",
            "--vocab",
            "100",
        ],
    );
    fails(
        GEN,
        &["-o", s(&d.join("x.gguf")), "--preset", "test", "--d", "96"],
    );
    fails(GEN, &["-o", "/nonexistent-dir/x.gguf", "--preset", "test"]);
    fails(PPL, &["-m", s(&missing), "--text", s(&txt)]);
    fails(PPL, &["-m", s(&junk), "--text", s(&txt)]);
    fails(PPL, &["-m", s(p), "--text", s(&missing)]);
    fails(PPL, &["-m", s(p)]);
    fails(PPL, &["-m", s(p), "--text", s(&txt), "--window", "100"]);
    fails(PPL, &["-m", s(p), "--text", s(&txt), "--window", "100000"]);
    fails(
        PPL,
        &[
            "-m",
            s(p),
            "--text",
            s(&txt),
            "--mode",
            "recgen",
            "--prompt",
            "3",
        ],
    );
    fails(
        PPL,
        &[
            "-m",
            s(p),
            "--text",
            s(&txt),
            "--reference-logits",
            s(&junk),
        ],
    );
    fails(
        PPL,
        &["-m", s(p), "--text", s(&txt), "--reference-model", s(v)],
    );
    let odd = d.join("odd.bin");
    std::fs::write(&odd, [1u8, 2, 3]).unwrap();
    fails(PPL, &["-m", s(p), "--tokens", s(&odd)]);
    let big = d.join("big.bin");
    std::fs::write(&big, [0xffu8; 64]).unwrap();
    fails(PPL, &["-m", s(p), "--tokens", s(&big)]);
}
