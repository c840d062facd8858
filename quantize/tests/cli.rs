//! The binary end to end: options, exit codes, dry run, presets, overrides, atomic output,
//! refusals, bad inputs, the quality gate and Ctrl-C.
mod common;
use common::*;
use photon_runtime::gguf::{Gguf, OwnedValue};
use photon_runtime::model::testing::RandomSpec;
use photon_runtime::quant::GgmlType;
use photon_runtime::Model;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn help_explains_every_option_and_exit_code() {
    let o = run(&["--help"]);
    expect_code(&o, 0);
    let h = stdout(&o);
    for opt in [
        "--preset",
        "--tensor-type",
        "--dry-run",
        "--force",
        "--config",
        "--tokenizer",
        "--name",
        "--eval-text",
        "--eval-windows",
        "--max-ppl-increase",
        "--max-kl",
        "--keep-failed",
        "--threads",
        "--quiet",
        "Exit codes",
        "130",
        "q4_0",
        "general.file_type",
    ] {
        assert!(h.contains(opt), "--help lacks {opt}:\n{h}");
    }
    // No arguments, unknown option, bad number: usage errors.
    expect_code(&run(&[]), 2);
    expect_code(&run(&["a.gguf", "b.gguf", "--bogus"]), 2);
    expect_code(&run(&["a.gguf", "b.gguf", "--eval-windows", "x"]), 2);
}

#[test]
fn dry_run_writes_nothing_and_predicts_the_size() {
    let d = tmpdir("dry");
    let input = write(&d, "in.gguf", &random_gguf(&RandomSpec::tiny_photon()));
    let out = s(&d.join("out.gguf"));
    let o = run(&[&input, &out, "--preset", "q4_0", "--dry-run"]);
    expect_code(&o, 0);
    assert_eq!(files(&d), vec!["in.gguf"]);
    let text = stdout(&o);
    assert!(
        text.contains("enc1.blk.0.attn_q.weight") && text.contains("Q4_0"),
        "{text}"
    );
    assert!(text.contains("nothing written"));
    let total: u64 = text
        .lines()
        .find(|l| l.starts_with("total:"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|x| x.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    // Without an output too.
    expect_code(&run(&[&input, "--preset", "q8_0", "--dry-run"]), 0);
    assert_eq!(files(&d), vec!["in.gguf"]);
    expect_code(&run(&[&input, &out, "--preset", "q4_0", "-q"]), 0);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), total);
}

#[test]
fn every_preset_both_architectures() {
    let d = tmpdir("presets");
    for (arch, spec) in [
        ("photon", RandomSpec::tiny_photon()),
        ("llama", RandomSpec::tiny_llama()),
    ] {
        let input = write(&d, &format!("{arch}.gguf"), &random_gguf(&spec));
        for (preset, ft, mat) in [
            ("f32", 0, GgmlType::F32),
            ("f16", 1, GgmlType::F16),
            ("q8_0", 7, GgmlType::Q8_0),
            ("q4_0", 2, GgmlType::Q4_0),
        ] {
            let out = s(&d.join(format!("{arch}-{preset}.gguf")));
            let o = run(&[&input, &out, "--preset", preset]);
            expect_code(&o, 0);
            assert!(stdout(&o).contains("rel RMSE"), "{}", stdout(&o));
            let bytes = std::fs::read(&out).unwrap();
            let g = Gguf::parse(&bytes).unwrap();
            assert_eq!(g.u32("general.file_type").unwrap(), ft);
            assert_eq!(g.u32("general.quantization_version").unwrap(), 2);
            let name = if arch == "photon" {
                "enc1.blk.1.ffn_up.weight"
            } else {
                "blk.2.ffn_up.weight"
            };
            assert_eq!(g.tensor(name).unwrap().ty, mat, "{arch} {preset}");
            let norm = if arch == "photon" {
                "dec1.output_norm.weight"
            } else {
                "output_norm.weight"
            };
            assert_eq!(g.tensor(norm).unwrap().ty, GgmlType::F32);
            let emb = g.tensor("output.weight").unwrap().ty;
            assert_eq!(
                emb,
                if preset == "q4_0" {
                    GgmlType::Q8_0
                } else {
                    mat
                }
            );
            Model::from_bytes(bytes).unwrap();
        }
    }
}

#[test]
fn overrides_and_their_errors() {
    let d = tmpdir("overrides");
    let input = write(&d, "in.gguf", &random_gguf(&RandomSpec::tiny_llama()));
    let out = s(&d.join("out.gguf"));
    let o = run(&[
        &input,
        &out,
        "--preset",
        "q4_0",
        "--tensor-type",
        "*.ffn_down.weight=q8_0",
        "--tensor-type",
        "blk.[01].attn_?.weight=f16",
        "--tensor-type",
        "output.weight=q4_0",
    ]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("override '*.ffn_down.weight=q8_0'"));
    let bytes = std::fs::read(&out).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(
        g.tensor("blk.2.ffn_down.weight").unwrap().ty,
        GgmlType::Q8_0
    );
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::F16);
    assert_eq!(g.tensor("blk.1.attn_v.weight").unwrap().ty, GgmlType::F16);
    assert_eq!(g.tensor("blk.2.attn_v.weight").unwrap().ty, GgmlType::Q4_0);
    assert_eq!(
        g.tensor("blk.0.attn_output.weight").unwrap().ty,
        GgmlType::Q4_0
    );
    assert_eq!(g.tensor("output.weight").unwrap().ty, GgmlType::Q4_0);
    std::fs::remove_file(&out).unwrap();
    for (tt, want) in [
        ("blk.[0.weight=q8_0", "invalid pattern"),
        ("blk.*=q3_k", "unknown tensor type"),
        ("blk.*", "PATTERN=TYPE"),
        ("layers.*=q8_0", "matches no tensor"),
        ("*_norm.weight=q8_0", "stay F32"),
    ] {
        let o = run(&[&input, &out, "--tensor-type", tt]);
        expect_code(&o, 2);
        let e = one_line_error(&o);
        assert!(e.contains(want), "{tt}: {e}");
        assert_eq!(files(&d), vec!["in.gguf"], "{tt}");
    }
    let o = run(&[&input, &out, "--preset", "q5_k"]);
    expect_code(&o, 2);
    assert!(one_line_error(&o).contains("unknown preset"));
}

/// Rows that are not whole blocks: presets fall back to F16, an explicit block type is refused.
#[test]
fn rows_not_multiple_of_32() {
    let d = tmpdir("fallback");
    let spec = RandomSpec {
        d: 80,
        heads: 1,
        ffn: 48,
        ..RandomSpec::tiny_llama()
    };
    let input = write(&d, "in.gguf", &random_gguf(&spec));
    let out = s(&d.join("out.gguf"));
    let o = run(&[&input, &out, "--preset", "q4_0"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("fallback"), "{}", stdout(&o));
    let bytes = std::fs::read(&out).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::F16);
    assert_eq!(g.tensor("token_embd.weight").unwrap().ty, GgmlType::F16);
    Model::from_bytes(bytes).unwrap();
    std::fs::remove_file(&out).unwrap();
    let o = run(&[&input, &out, "--tensor-type", "blk.0.attn_q.weight=q8_0"]);
    expect_code(&o, 2);
    assert!(one_line_error(&o).contains("not a multiple"));
    assert!(!Path::new(&out).exists());
}

#[test]
fn never_overwrites_the_input() {
    let d = tmpdir("overwrite");
    let bytes = random_gguf(&RandomSpec::tiny_llama());
    let input = write(&d, "in.gguf", &bytes);
    let o = run(&[&input, &input, "--force"]);
    expect_code(&o, 2);
    assert!(one_line_error(&o).contains("refusing to overwrite the input"));
    // Through another spelling, a symlink and a hard link.
    let other = s(&d.join(".").join("in.gguf"));
    std::os::unix::fs::symlink(&input, d.join("link.gguf")).unwrap();
    std::fs::hard_link(&input, d.join("hard.gguf")).unwrap();
    for out in [other, s(&d.join("link.gguf")), s(&d.join("hard.gguf"))] {
        let o = run(&[&input, &out, "--force", "--preset", "q4_0"]);
        expect_code(&o, 2);
        assert!(one_line_error(&o).contains("refusing"), "{out}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), bytes);
    // An existing output needs --force.
    let out = write(&d, "out.gguf", b"keep me");
    let o = run(&[&input, &out]);
    expect_code(&o, 2);
    assert!(one_line_error(&o).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    expect_code(&run(&[&input, &out, "--force", "-q"]), 0);
    Model::open(&out).unwrap();
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let d = tmpdir("badin");
    let good = random_gguf(&RandomSpec::tiny_photon());
    let out = s(&d.join("out.gguf"));
    let cases: Vec<(String, &str)> = vec![
        (s(&d.join("missing.gguf")), "does not exist"),
        (
            write(&d, "trunc.gguf", &good[..good.len() / 2]),
            "beyond the end of the file",
        ),
        (write(&d, "head.gguf", &good[..20]), "malformed"),
        (
            write(&d, "garbage.gguf", b"this is not a model file at all"),
            "malformed",
        ),
        (write(&d, "empty.gguf", b""), "malformed"),
        (
            write(
                &d,
                "arch.gguf",
                &with_meta(&good, "general.architecture", OwnedValue::str("gpt2")),
            ),
            "architecture",
        ),
        (
            write(
                &d,
                "shape.gguf",
                &with_meta(&good, "photon.feed_forward_length", OwnedValue::U32(64)),
            ),
            "has ggml dims [128, 96], expected [128, 64]",
        ),
        (
            write(&d, "st.safetensors", b"\x08\0\0\0\0\0\0\0{\"a\":1}"),
            "config",
        ),
        (s(&d), "directory"),
    ];
    for (input, want) in cases {
        let o = run(&[&input, &out, "--preset", "q8_0"]);
        expect_code(&o, 1);
        let e = one_line_error(&o);
        assert!(e.contains(want), "{input}: {e}");
        assert!(!Path::new(&out).exists(), "{input}");
    }
}

#[test]
fn safetensors_input() {
    let d = tmpdir("stin");
    // Beside each other under the training run's names: no flags needed.
    for f in ["tiny-photon.safetensors", "tiny-photon.config.json"] {
        std::fs::copy(fixture(f), d.join(f)).unwrap();
    }
    std::fs::copy(fixture("tiny.model"), d.join("tokenizer.model")).unwrap();
    let out = s(&d.join("out.gguf"));
    let o = run(&[
        &s(&d.join("tiny-photon.safetensors")),
        &out,
        "--preset",
        "f16",
        "-q",
    ]);
    expect_code(&o, 0);
    // f16 of a float export is the export itself, file for file (but the quantization version).
    let ours = Gguf::parse(&std::fs::read(&out).unwrap())
        .unwrap()
        .tensors()
        .iter()
        .map(|t| (t.name.to_string(), t.data.to_vec()))
        .collect::<Vec<_>>();
    let lib = fixture_gguf("tiny-photon");
    let lib = Gguf::parse(&lib)
        .unwrap()
        .tensors()
        .iter()
        .map(|t| (t.name.to_string(), t.data.to_vec()))
        .collect::<Vec<_>>();
    assert_eq!(ours, lib);
    // Explicit paths, and a q4_0 with a name.
    let out2 = s(&d.join("out2.gguf"));
    let o = run(&[
        &s(&fixture("tiny-llama.safetensors")),
        &out2,
        "--config",
        &s(&fixture("tiny-llama.config.json")),
        "--tokenizer",
        &s(&fixture("tiny.model")),
        "--name",
        "my-llama",
        "--preset",
        "q4_0",
    ]);
    expect_code(&o, 0);
    let b = std::fs::read(&out2).unwrap();
    assert_eq!(
        Gguf::parse(&b).unwrap().str("general.name").unwrap(),
        "my-llama"
    );
    // Missing config / tokenizer, wrong config, corrupt tokenizer.
    let st = s(&fixture("tiny-llama.safetensors"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--config".into(), s(&d.join("nope.json"))],
            "does not exist",
        ),
        (
            vec![
                "--config".into(),
                s(&fixture("tiny-llama.config.json")),
                "--tokenizer".into(),
                s(&d.join("nope.model")),
            ],
            "tokenizer",
        ),
        (
            vec![
                "--config".into(),
                s(&fixture("tiny-photon.config.json")),
                "--tokenizer".into(),
                s(&fixture("tiny.model")),
            ],
            "not a tensor of the photon architecture",
        ),
        (
            vec![
                "--config".into(),
                s(&fixture("tiny-llama.config.json")),
                "--tokenizer".into(),
                s(&fixture("tiny-llama.config.json")),
            ],
            "SentencePiece",
        ),
    ];
    let out3 = s(&d.join("out3.gguf"));
    for (extra, want) in cases {
        let mut args = vec![st.clone(), out3.clone()];
        args.extend(extra);
        let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
        let o = run(&a);
        expect_code(&o, 1);
        let e = one_line_error(&o);
        assert!(e.contains(want), "{want}: {e}");
        assert!(!Path::new(&out3).exists());
    }
}

#[test]
fn unwritable_output_leaves_nothing() {
    let d = tmpdir("unwritable");
    let input = write(&d, "in.gguf", &random_gguf(&RandomSpec::tiny_llama()));
    let file = write(&d, "afile", b"x");
    for out in [
        s(&d.join("no/such/dir/out.gguf")),
        format!("{file}/out.gguf"),
    ] {
        let o = run(&[&input, &out]);
        expect_code(&o, 1);
        assert!(one_line_error(&o).contains("out.gguf"));
    }
    let o = run(&[&input, &s(&d)]);
    expect_code(&o, 2);
    assert_eq!(files(&d), vec!["afile", "in.gguf"]);
}

fn eval_text() -> String {
    "the cat sat on the mat\n\na dog ran in the park and the cat ran after the dog\n\nwe went to the sea\n\n"
        .repeat(6)
}

#[test]
fn quality_gate() {
    let d = tmpdir("gate");
    let input = write(&d, "in.gguf", &fixture_gguf("tiny-photon"));
    let text = write(&d, "text.txt", eval_text().as_bytes());
    let out = s(&d.join("out.gguf"));
    // Passes with a generous threshold and reports the numbers.
    let o = run(&[
        &input,
        &out,
        "--preset",
        "q4_0",
        "--eval-text",
        &text,
        "--max-ppl-increase",
        "400",
    ]);
    expect_code(&o, 0);
    let so = stdout(&o);
    assert!(
        so.contains("quality: PPL float") && so.contains("top-1") && so.contains("KL"),
        "{so}"
    );
    assert!(Path::new(&out).exists());
    std::fs::remove_file(&out).unwrap();
    // Fails: exit 3, and no output (nor temporary file) is left.
    let o = run(&[
        &input,
        &out,
        "--preset",
        "q4_0",
        "--eval-text",
        &text,
        "--max-kl",
        "0",
        "--max-ppl-increase",
        "400",
    ]);
    expect_code(&o, 3);
    assert!(one_line_error(&o).contains("--max-kl"));
    assert_eq!(files(&d), vec!["in.gguf", "text.txt"]);
    // --keep-failed keeps it, still exit 3.
    let o = run(&[
        &input,
        &out,
        "--preset",
        "q4_0",
        "--eval-text",
        &text,
        "--max-kl",
        "0",
        "--keep-failed",
    ]);
    expect_code(&o, 3);
    assert!(Path::new(&out).exists());
    std::fs::remove_file(&out).unwrap();
    // --eval-windows limits the windows.
    let o = run(&[
        &input,
        &out,
        "--preset",
        "q8_0",
        "--eval-text",
        &text,
        "--eval-windows",
        "1",
        "--max-ppl-increase",
        "100",
    ]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("quality: 1 windows x 64 tokens"),
        "{}",
        stdout(&o)
    );
    std::fs::remove_file(&out).unwrap();
    // Missing or too short evaluation text; bad thresholds.
    let o = run(&[&input, &out, "--eval-text", &s(&d.join("nope.txt"))]);
    expect_code(&o, 1);
    assert!(one_line_error(&o).contains("does not exist"));
    let short = write(&d, "short.txt", b"a");
    let o = run(&[&input, &out, "--eval-text", &short]);
    expect_code(&o, 1);
    assert!(one_line_error(&o).contains("too few"));
    let o = run(&[&input, &out, "--eval-text", &text, "--max-kl", "-1"]);
    expect_code(&o, 2);
    std::fs::remove_file(&short).unwrap();
    assert_eq!(files(&d), vec!["in.gguf", "text.txt"]);
}

/// The shipped float model through the default q8_0 gate (+1%): one window of English text.
#[test]
fn shipped_model_q8_0_passes_default_gate() {
    let d = tmpdir("shipped");
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let text = write(&d, "text.txt", readme.repeat(3).as_bytes());
    let out = s(&d.join("p.gguf"));
    let o = run(&[
        &s(&repo("models/photon-tiny-f16.gguf")),
        &out,
        "--eval-text",
        &text,
        "--eval-windows",
        "1",
        "-q",
    ]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("quality: 1 windows x 2048 tokens"),
        "{}",
        stdout(&o)
    );
    let m = Model::open(&out).unwrap();
    assert_eq!(m.gguf().u32("general.file_type").unwrap(), 7);
}

#[test]
fn ctrl_c_removes_the_temporary_file() {
    let d = tmpdir("sigint");
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let text = write(&d, "text.txt", readme.repeat(40).as_bytes());
    let out = d.join("p.gguf");
    let mut child = std::process::Command::new(BIN)
        .args([
            &s(&repo("models/photon-tiny-f16.gguf")),
            &s(&out),
            "--eval-text",
            &text,
            "--threads",
            "1",
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the temporary file (written before the evaluation starts).
    let t0 = std::time::Instant::now();
    while !files(&d).iter().any(|f| f.ends_with(".tmp")) {
        assert!(t0.elapsed().as_secs() < 60, "no temporary file appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"));
    assert_eq!(files(&d), vec!["text.txt"]);
}
