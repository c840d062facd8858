//! Shared helpers of the quantizer's tests.
#![allow(dead_code)]
use photon_quantize::{export, spm};
use photon_runtime::gguf::{Gguf, GgufWriter, OwnedValue, Value, ValueType};
use photon_runtime::model::testing::{random_model, RandomSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_photon-quantize");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn repo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// A fresh empty directory under the target dir.
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The fixture export converted by the library (float GGUF bytes, as export.py writes it).
pub fn fixture_gguf(name: &str) -> Vec<u8> {
    let st = std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap();
    let cfg = std::fs::read_to_string(fixture(&format!("{name}.config.json"))).unwrap();
    let cfg = export::TrainConfig::parse(&cfg).unwrap();
    let sp = spm::parse(&std::fs::read(fixture("tiny.model")).unwrap()).unwrap();
    export::export_gguf(&st, &cfg, name, &sp).unwrap()
}

/// A random model file (runtime's test generator) with a few metadata extras.
pub fn random_gguf(spec: &RandomSpec) -> Vec<u8> {
    random_model(spec).unwrap()
}

/// Copies `bytes` (a GGUF) with metadata key `key` replaced (or added) by `v`.
pub fn with_meta(bytes: &[u8], key: &str, v: OwnedValue) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    let mut done = false;
    for (k, val) in g.metadata() {
        if *k == "general.alignment" {
            continue;
        }
        if *k == key {
            w.add(k, v.clone()).unwrap();
            done = true;
        } else {
            w.add(k, val.to_owned_value()).unwrap();
        }
    }
    if !done {
        w.add(key, v).unwrap();
    }
    for t in g.tensors() {
        w.add_tensor(t.name, t.ty, &t.dims, t.data.to_vec())
            .unwrap();
    }
    w.to_bytes().unwrap()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code, printing the process's output when it differs.
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// An error message is one line and never a panic.
pub fn one_line_error(o: &Output) -> String {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "panic: {e}");
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no error message");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("photon-quantize: ") || l.starts_with("error: ")),
        "{e}"
    );
    e
}

/// Files in `dir` (names).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A metadata value as JSON, in make_fixture.py's representation `[type, elem type, value]`.
pub fn value_json(v: &Value<'_>) -> (String, Option<String>, serde_json::Value) {
    fn scalar(v: &Value<'_>) -> serde_json::Value {
        match v {
            Value::F32(x) => serde_json::json!(*x as f64),
            Value::F64(x) => serde_json::json!(*x),
            Value::Bool(b) => serde_json::json!(*b),
            Value::Str(s) => serde_json::json!(s),
            other => {
                if let Some(u) = other.as_u64() {
                    serde_json::json!(u)
                } else {
                    serde_json::json!(other.as_i64().unwrap())
                }
            }
        }
    }
    fn tname(t: ValueType) -> String {
        match t {
            ValueType::U8 => "UINT8",
            ValueType::I8 => "INT8",
            ValueType::U16 => "UINT16",
            ValueType::I16 => "INT16",
            ValueType::U32 => "UINT32",
            ValueType::I32 => "INT32",
            ValueType::F32 => "FLOAT32",
            ValueType::Bool => "BOOL",
            ValueType::String => "STRING",
            ValueType::Array => "ARRAY",
            ValueType::U64 => "UINT64",
            ValueType::I64 => "INT64",
            ValueType::F64 => "FLOAT64",
        }
        .to_string()
    }
    match v {
        Value::Array(a) => (
            "ARRAY".into(),
            Some(tname(a.elem_type())),
            serde_json::Value::Array(a.iter().map(|x| scalar(&x)).collect()),
        ),
        other => (tname(other.value_type()), None, scalar(other)),
    }
}

pub fn fnv1a64(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h = (h ^ x as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub fn tiny_photon() -> RandomSpec {
    RandomSpec::tiny_photon()
}
