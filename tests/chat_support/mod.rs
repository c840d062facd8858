//! Shared by the chat example's end-to-end tests: building the example, random-weight models with
//! the real tokenizer vocabulary and chat template, and running the binary as a process.
#![allow(dead_code)]
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use photon::gguf::{Gguf, GgufWriter, OwnedValue};
use photon::model::testing::{random_model, RandomSpec};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The chat example's binary, built once per test process with `cargo build --example chat` in
/// the same profile (and target) as this test, so a plain `cargo test` works on a clean checkout.
pub fn chat_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<this test>  or  target/<triple>/<profile>/deps/<this test>
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in target/<profile>/deps")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(ROOT)
            .args(["build", "--quiet", "--example", "chat"]);
        match profile.as_str() {
            // `cargo test` builds the libraries with the test profile: reuse them.
            "debug" => {
                cmd.args(["--profile", "test"]);
            }
            "release" => {
                cmd.arg("--release");
            }
            p => {
                cmd.args(["--profile", p]);
            }
        }
        let above = profile_dir.parent().expect("target dir");
        let triple = above.file_name().unwrap().to_str().unwrap();
        if triple.contains('-')
            && above
                .parent()
                .is_some_and(|t| t.join("CACHEDIR.TAG").exists())
        {
            cmd.args(["--target", triple]);
        }
        let target_dir = if triple.contains('-') {
            above.parent().unwrap()
        } else {
            above
        };
        cmd.env("CARGO_TARGET_DIR", target_dir);
        let st = cmd.status().expect("run cargo build --example chat");
        assert!(st.success(), "cargo build --example chat failed");
        let bin = profile_dir
            .join("examples")
            .join(format!("chat{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} not built", bin.display());
        bin
    })
}

/// The tokenizer vocabulary fixture (the project's real 4096-piece SentencePiece vocabulary).
fn vocab() -> serde_json::Value {
    let p = Path::new(ROOT).join("runtime/tests/fixtures/tokenizer_vocab.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A random-weight PHOTON (or LLaMA) file with the fixture's tokenizer; with `template` the
/// project's chat strings (training/export.py). With `zero_head` the LM head is all zeros: every
/// logit is 0, so greedy always picks id 0 and `--top-k K` samples uniformly among ids 0..K
/// (control tokens, the stop tokens among them, then the byte tokens <0x00>...): replies that end
/// often and print control characters. Written once per name under the target's tmp dir.
pub fn model(name: &str, photon: bool, template: bool, zero_head: bool) -> PathBuf {
    let base = if photon {
        RandomSpec::tiny_photon()
    } else {
        RandomSpec::tiny_llama()
    };
    model_spec(name, base, template, zero_head)
}

/// [`model`] with another shape (the vocabulary is always the fixture's).
pub fn model_spec(name: &str, base: RandomSpec, template: bool, zero_head: bool) -> PathBuf {
    // Integration tests get a tmp dir in target/; the example's unit tests use the system's.
    let dir = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("photon-chat-test-{name}.gguf"));
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() {
        return path;
    }
    let v = vocab();
    let tokens: Vec<String> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let scores: Vec<f32> = v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap() as f32)
        .collect();
    let types: Vec<i32> = v["token_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap() as i32)
        .collect();
    let spec = RandomSpec {
        vocab: tokens.len(),
        context: if base.context == RandomSpec::tiny_photon().context {
            512
        } else {
            base.context
        },
        ..base
    };
    let bytes = random_model(&spec).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, val) in g.metadata() {
        if *k != "general.alignment" {
            w.add(k, val.to_owned_value()).unwrap();
        }
    }
    let id = |k: &str| OwnedValue::U32(v[k].as_u64().unwrap() as u32);
    w.add("tokenizer.ggml.model", OwnedValue::str("llama"))
        .unwrap();
    w.add("tokenizer.ggml.tokens", OwnedValue::str_array(&tokens))
        .unwrap();
    w.add("tokenizer.ggml.scores", OwnedValue::f32_array(&scores))
        .unwrap();
    w.add("tokenizer.ggml.token_type", OwnedValue::i32_array(&types))
        .unwrap();
    w.add("tokenizer.ggml.bos_token_id", id("bos_id")).unwrap();
    w.add("tokenizer.ggml.eos_token_id", id("eos_id")).unwrap();
    w.add("tokenizer.ggml.unknown_token_id", id("unk_id"))
        .unwrap();
    w.add("tokenizer.ggml.padding_token_id", id("pad_id"))
        .unwrap();
    w.add("tokenizer.ggml.eot_token_id", id("eot_id")).unwrap();
    w.add("tokenizer.ggml.add_bos_token", OwnedValue::Bool(true))
        .unwrap();
    w.add("tokenizer.ggml.add_eos_token", OwnedValue::Bool(false))
        .unwrap();
    w.add("tokenizer.ggml.add_space_prefix", OwnedValue::Bool(true))
        .unwrap();
    if template {
        for (k, s) in [
            ("user_prefix", "<|user|>"),
            ("user_suffix", "<|end|>"),
            ("assistant_prefix", "<|assistant|>"),
            ("assistant_suffix", "<|end|>"),
        ] {
            w.add(&format!("photon.chat.{k}"), OwnedValue::str(s))
                .unwrap();
        }
    }
    for t in g.tensors() {
        let mut data = t.data.to_vec();
        if zero_head && t.name == "output.weight" {
            data.fill(0);
        }
        w.add_tensor(t.name, t.ty, &t.dims, data).unwrap();
    }
    let tmp = dir.join(format!("chat-{name}.gguf.tmp{}", std::process::id()));
    std::fs::write(&tmp, w.to_bytes().unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// The default test model: random PHOTON with the chat template.
pub fn photon_model() -> PathBuf {
    model("photon", true, true, false)
}

/// A PHOTON whose replies end within a few tokens (see [`model`]'s `zero_head`).
pub fn chatty_model() -> PathBuf {
    model("photon-zero-head", true, true, true)
}

/// Runs the chat binary with `args`, `stdin` piped in whole then closed; fails the test after
/// `limit` instead of hanging.
pub fn run(args: &[&str], stdin: &[u8], limit: Duration) -> Output {
    let mut child = Command::new(chat_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = wait_output(child, limit);
    let _ = writer.join();
    out
}

/// Waits for a child with a deadline (killed and the test failed past it).
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A stream read on a thread, its bytes collected so a test can wait for a marker.
pub struct Watch {
    rx: mpsc::Receiver<Vec<u8>>,
    pub seen: Vec<u8>,
}

impl Watch {
    pub fn new(mut r: impl Read + Send + 'static) -> Watch {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            loop {
                match r.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(b[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Watch {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until `marker` occurs `count` times in everything read so far.
    pub fn wait_for(&mut self, marker: &str, count: usize, limit: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            if occurrences(&self.seen, marker.as_bytes()) >= count {
                return true;
            }
            let left = limit.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend_from_slice(&b),
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return occurrences(&self.seen, marker.as_bytes()) >= count
                }
            }
        }
    }

    /// Waits until at least `n` bytes have been read.
    pub fn wait_bytes(&mut self, n: usize, limit: Duration) -> bool {
        let t0 = Instant::now();
        while self.seen.len() < n {
            let left = limit.saturating_sub(t0.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend_from_slice(&b),
                Err(_) => return false,
            }
        }
        true
    }

    /// Everything still buffered, waiting up to `limit` for the stream to end.
    pub fn drain(&mut self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            let left = limit.saturating_sub(t0.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend_from_slice(&b),
                Err(_) => return,
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

pub fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Sends SIGINT (Ctrl-C) to a process with the system's `kill`.
pub fn sigint(pid: u32) {
    let st = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -INT {pid} failed");
}

pub fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}
