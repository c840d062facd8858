//! GGUF reader/writer tests: round trip, the Python `gguf` package's output, and one test per
//! kind of bad file.
use super::*;
use crate::quant::{f32_to_f16, quantize_row};
use crate::Error;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

// ---------------------------------------------------------------------------------------------
// A raw builder, to write files the writer refuses to produce.

#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.0.extend_from_slice(b"GGUF");
        r.u32(version).u64(n_tensors).u64(n_kv);
        r
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    /// A key/value entry with a u32 value.
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(ValueType::U32.id()).u32(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, align: usize) -> &mut Self {
        while self.0.len() % align != 0 {
            self.0.push(0);
        }
        self
    }
    fn done(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.0)
    }
}

/// A valid file with one F32 tensor of `n` elements and the given alignment key (or none).
fn one_tensor_file(align: Option<u32>, n: u64, offset: u64) -> Vec<u8> {
    let mut r = Raw::header(3, 1, u64::from(align.is_some()));
    if let Some(a) = align {
        r.kv_u32("general.alignment", a);
    }
    r.tensor("t", &[n], 0, offset);
    r.pad(align.unwrap_or(32).max(1) as usize);
    r.bytes(&vec![0u8; offset as usize + 4 * n as usize]);
    r.done()
}

fn format_err(bytes: &[u8]) -> String {
    match Gguf::parse(bytes) {
        Err(Error::Format(m)) => m,
        Err(e) => panic!("expected Error::Format, got {e:?}"),
        Ok(_) => panic!("expected Error::Format, file was accepted"),
    }
}

fn unsupported_err(bytes: &[u8]) -> String {
    match Gguf::parse(bytes) {
        Err(Error::Unsupported(m)) => m,
        Err(e) => panic!("expected Error::Unsupported, got {e:?}"),
        Ok(_) => panic!("expected Error::Unsupported, file was accepted"),
    }
}

fn assert_contains(msg: &str, needle: &str) {
    assert!(
        msg.contains(needle),
        "error {msg:?} should mention {needle:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Round trip.

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn sample_values() -> Vec<(&'static str, OwnedValue)> {
    use OwnedValue as O;
    vec![
        ("general.architecture", O::str("photon")),
        ("t.u8", O::U8(255)),
        ("t.i8", O::I8(-128)),
        ("t.u16", O::U16(65535)),
        ("t.i16", O::I16(-32768)),
        ("t.u32", O::U32(u32::MAX)),
        ("t.i32", O::I32(i32::MIN)),
        ("t.f32", O::F32(-1.5e-7)),
        ("t.bool", O::Bool(true)),
        ("t.false", O::Bool(false)),
        ("t.str", O::str("h\u{e9}llo \u{2581}w\u{f6}rld \u{1F680}")),
        ("t.empty_str", O::str("")),
        ("t.u64", O::U64(u64::MAX)),
        ("t.i64", O::I64(i64::MIN)),
        ("t.f64", O::F64(core::f64::consts::PI)),
        ("t.u8s", O::Array(ValueType::U8, vec![O::U8(1), O::U8(2)])),
        ("t.i8s", O::Array(ValueType::I8, vec![O::I8(-1)])),
        ("t.u16s", O::Array(ValueType::U16, vec![O::U16(7)])),
        ("t.i16s", O::Array(ValueType::I16, vec![O::I16(-7)])),
        ("t.u32s", O::u32_array(&[4, 4])),
        ("t.i32s", O::i32_array(&[1, -2, 3, 6])),
        ("t.f32s", O::f32_array(&[0.5, -1.25])),
        (
            "t.bools",
            O::Array(ValueType::Bool, vec![O::Bool(false), O::Bool(true)]),
        ),
        ("t.strs", O::str_array(&["<unk>", "\u{2581}the", ""])),
        ("t.u64s", O::Array(ValueType::U64, vec![O::U64(1 << 40)])),
        ("t.i64s", O::Array(ValueType::I64, vec![O::I64(-(1 << 40))])),
        ("t.f64s", O::Array(ValueType::F64, vec![O::F64(1e300)])),
        ("t.empty", O::Array(ValueType::U32, vec![])),
        (
            "t.nested",
            O::Array(
                ValueType::Array,
                vec![
                    O::u32_array(&[1, 2, 3]),
                    O::str_array(&["a"]),
                    O::Array(ValueType::Array, vec![O::f32_array(&[2.0])]),
                ],
            ),
        ),
    ]
}

fn sample_tensors() -> Vec<(&'static str, GgmlType, Vec<u64>, Vec<u8>)> {
    let x: Vec<f32> = (0..128)
        .map(|i| ((i * 37) % 101) as f32 / 8.0 - 6.0)
        .collect();
    let mut out = Vec::new();
    for (name, ty) in [
        ("w.f32", GgmlType::F32),
        ("w.f16", GgmlType::F16),
        ("w.bf16", GgmlType::BF16),
        ("w.q8_0", GgmlType::Q8_0),
        ("w.q4_0", GgmlType::Q4_0),
    ] {
        let mut data = Vec::new();
        quantize_row(ty, &x, &mut data).unwrap();
        out.push((name, ty, vec![64, 2], data));
    }
    out.push(("v.odd", GgmlType::F32, vec![3], f32_bytes(&[1.0, 2.0, 3.0])));
    out.push(("s.4d", GgmlType::F16, vec![1, 2, 1, 2], vec![7u8; 8]));
    out.push(("s.empty", GgmlType::F32, vec![0, 5], vec![]));
    out
}

fn sample_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    for (k, v) in sample_values() {
        w.add(k, v).unwrap();
    }
    for (name, ty, dims, data) in sample_tensors() {
        w.add_tensor(name, ty, &dims, data).unwrap();
    }
    w.to_bytes().unwrap()
}

/// Compares a borrowed value with the owned one it was written from.
fn same(v: &Value<'_>, o: &OwnedValue) -> bool {
    use OwnedValue as O;
    match (v, o) {
        (Value::U8(a), O::U8(b)) => a == b,
        (Value::I8(a), O::I8(b)) => a == b,
        (Value::U16(a), O::U16(b)) => a == b,
        (Value::I16(a), O::I16(b)) => a == b,
        (Value::U32(a), O::U32(b)) => a == b,
        (Value::I32(a), O::I32(b)) => a == b,
        (Value::F32(a), O::F32(b)) => a.to_bits() == b.to_bits(),
        (Value::Bool(a), O::Bool(b)) => a == b,
        (Value::Str(a), O::Str(b)) => a == b,
        (Value::U64(a), O::U64(b)) => a == b,
        (Value::I64(a), O::I64(b)) => a == b,
        (Value::F64(a), O::F64(b)) => a.to_bits() == b.to_bits(),
        (Value::Array(a), O::Array(t, items)) => {
            a.elem_type() == *t
                && a.len() == items.len()
                && a.iter().count() == items.len()
                && a.iter().zip(items).all(|(x, y)| same(&x, y))
                && (0..items.len()).all(|i| same(&a.get(i).unwrap(), &items[i]))
                && a.get(items.len()).is_none()
        }
        _ => false,
    }
}

#[test]
fn round_trip_every_value_type_and_tensor_type() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 64);
    assert_eq!(g.data_offset % 64, 0);
    let values = sample_values();
    // general.alignment first, then ours in order.
    assert_eq!(g.metadata().len(), values.len() + 1);
    assert_eq!(g.metadata()[0].0, "general.alignment");
    assert_eq!(g.metadata()[0].1, Value::U32(64));
    for ((k, v), (ok, ov)) in g.metadata()[1..].iter().zip(&values) {
        assert_eq!(k, ok);
        assert!(same(v, ov), "{k}: {v:?} != {ov:?}");
        assert!(same(g.get(k).unwrap(), ov));
        assert_eq!(v.value_type(), ov.value_type());
    }
    let tensors = sample_tensors();
    assert_eq!(g.tensors().len(), tensors.len());
    for (t, (name, ty, dims, data)) in g.tensors().iter().zip(&tensors) {
        assert_eq!(t.name, *name);
        assert_eq!(t.ty, *ty);
        assert_eq!(&t.dims, dims);
        assert_eq!(t.data, &data[..]);
        assert_eq!(t.offset % 64, 0, "{name} data not 64-aligned in the file");
        assert_eq!(t.n_elements(), dims.iter().product::<u64>());
        // Zero copy: the data is a window of the input.
        let start = t.data.as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(start as u64, t.offset);
        assert_eq!(g.tensor(name).unwrap(), t);
    }
    assert!(g.tensor("missing").is_none());
    // The last tensor's data is padded to 64 as ggml writes it.
    assert_eq!(bytes.len() % 64, 0);
}

#[test]
fn typed_getters() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.str("general.architecture").unwrap(), "photon");
    assert_eq!(g.u32("t.u8").unwrap(), 255);
    assert_eq!(g.u32("t.u32").unwrap(), u32::MAX);
    assert_eq!(g.u32("t.u16").unwrap(), 65535);
    assert_eq!(g.f32("t.f32").unwrap(), -1.5e-7);
    assert!(g.bool("t.bool").unwrap());
    assert_eq!(
        g.array("t.i32s").unwrap().to_i32_vec().unwrap(),
        [1, -2, 3, 6]
    );
    assert!(
        matches!(g.array("t.i32s").unwrap().to_u32_vec(), Err(Error::Model(m)) if m.contains("element 1 = I32(-2)"))
    );
    assert_eq!(g.array("t.u32s").unwrap().to_u32_vec().unwrap(), [4, 4]);
    assert_eq!(g.array("t.u8s").unwrap().to_u32_vec().unwrap(), [1, 2]);
    assert_eq!(g.array("t.u32s").unwrap().to_i32_vec().unwrap(), [4, 4]);
    assert_eq!(
        g.array("t.f32s").unwrap().to_f32_vec().unwrap(),
        [0.5, -1.25]
    );
    assert_eq!(
        g.array("t.strs").unwrap().to_str_vec().unwrap(),
        ["<unk>", "\u{2581}the", ""]
    );
    assert_eq!(
        g.array("t.u32s").unwrap().raw_bytes(),
        [4, 0, 0, 0, 4, 0, 0, 0]
    );
    let nested = g.array("t.nested").unwrap();
    assert_eq!(nested.elem_type(), ValueType::Array);
    let inner = nested.get(2).unwrap();
    let inner = inner.as_array().unwrap().get(0).unwrap();
    assert_eq!(inner.as_array().unwrap().to_f32_vec().unwrap(), [2.0]);
    // Getters reject nested arrays.
    assert!(matches!(nested.to_u32_vec(), Err(Error::Model(_))));
    assert!(matches!(nested.to_str_vec(), Err(Error::Model(_))));

    assert_eq!(Value::I8(-1).as_u64(), None);
    assert_eq!(Value::I64(5).as_u64(), Some(5));
    assert_eq!(Value::F32(5.0).as_u64(), None);
    assert_eq!(Value::Bool(true).as_u64(), None);

    let model = |r: Result<(), Error>, needle: &str| match r {
        Err(Error::Model(m)) => assert_contains(&m, needle),
        other => panic!("expected Error::Model, got {other:?}"),
    };
    model(g.u32("nope").map(drop), "'nope' is missing");
    model(g.u32("t.i8").map(drop), "'t.i8' = -128 does not fit in u32");
    model(g.u32("t.u64").map(drop), "'t.u64'");
    model(g.u32("t.f32").map(drop), "'t.f32' has type f32");
    model(
        g.f32("t.f64").map(drop),
        "'t.f64' has type f64, expected f32",
    );
    model(
        g.bool("t.u8").map(drop),
        "'t.u8' has type u8, expected bool",
    );
    model(
        g.str("t.u32s").map(drop),
        "'t.u32s' has type array, expected string",
    );
    model(
        g.array("t.str").map(drop),
        "'t.str' has type string, expected array",
    );
    model(
        g.array("t.f32s").unwrap().to_u32_vec().map(drop),
        "array of f32",
    );
    model(
        g.array("t.u32s").unwrap().to_f32_vec().map(drop),
        "array of u32",
    );
}

#[test]
fn writer_rejects_bad_input() {
    let mut w = GgufWriter::new();
    assert!(matches!(
        w.add("general.alignment", OwnedValue::U32(32)),
        Err(Error::Input(_))
    ));
    w.add("a", OwnedValue::U8(1)).unwrap();
    assert!(matches!(
        w.add("a", OwnedValue::U8(2)),
        Err(Error::Input(_))
    ));
    let mixed = OwnedValue::Array(ValueType::U32, vec![OwnedValue::U32(1), OwnedValue::I32(1)]);
    assert!(matches!(w.add("b", mixed), Err(Error::Input(_))));
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[4], vec![0; 15]),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        w.add_tensor("t", GgmlType::Q8_0, &[16, 2], vec![0; 34]),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[1, 1, 1, 1, 1], vec![0; 4]),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[u64::MAX, 2], vec![]),
        Err(Error::Input(_))
    ));
    w.add_tensor("t", GgmlType::Q8_0, &[32, 2], vec![0; 68])
        .unwrap();
    assert!(matches!(
        w.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]),
        Err(Error::Input(_))
    ));
    let g_bytes = w.to_bytes().unwrap();
    let g = Gguf::parse(&g_bytes).unwrap();
    assert_eq!(g.tensors().len(), 1);
    assert_eq!(g.get("b"), None);
}

#[cfg(feature = "std")]
#[test]
fn write_file_atomic_and_mmap() {
    let dir = std::env::temp_dir().join(std::format!("photon-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.gguf");
    let mut w = GgufWriter::new();
    w.add("k", OwnedValue::str("v")).unwrap();
    w.add_tensor("t", GgmlType::F32, &[2], f32_bytes(&[1.0, 2.0]))
        .unwrap();
    w.write_file_atomic(&path).unwrap();
    // Overwrite in place: the old mapping stays valid, the new file replaces it.
    let map = MappedFile::open(&path).unwrap();
    let g = Gguf::parse(map.bytes()).unwrap();
    assert_eq!(g.str("k").unwrap(), "v");
    assert_eq!(g.tensor("t").unwrap().data, &f32_bytes(&[1.0, 2.0])[..]);
    let mut buf = Vec::new();
    w.write_to(&mut buf).unwrap();
    assert_eq!(buf, map.bytes());
    // Only m.gguf is left, no temporary file.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("m.gguf")]);
    assert!(matches!(
        MappedFile::open(dir.join("absent.gguf")),
        Err(Error::Io(_))
    ));
    drop(map);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A file written by the Python `gguf` package (tests/fixtures/make_gguf_fixture.py).

#[test]
fn reads_python_gguf_fixture() {
    let bytes: &'static [u8] = include_bytes!("../../tests/fixtures/python-gguf.gguf");
    let g = Gguf::parse(bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 32, "no general.alignment key: default 32");
    assert!(g.get("general.alignment").is_none());
    assert_eq!(g.str("general.architecture").unwrap(), "photon-test");
    assert_eq!(g.get("test.u8"), Some(&Value::U8(200)));
    assert_eq!(g.get("test.i8"), Some(&Value::I8(-100)));
    assert_eq!(g.get("test.u16"), Some(&Value::U16(60000)));
    assert_eq!(g.get("test.i16"), Some(&Value::I16(-30000)));
    assert_eq!(g.get("test.u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(g.get("test.i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(g.get("test.f32"), Some(&Value::F32(0.15625)));
    assert_eq!(g.get("test.u64"), Some(&Value::U64((1 << 63) + 5)));
    assert_eq!(g.get("test.i64"), Some(&Value::I64(-(1 << 62))));
    assert_eq!(g.get("test.f64"), Some(&Value::F64(-1.0e300)));
    assert_eq!(g.get("test.bool"), Some(&Value::Bool(true)));
    assert_eq!(
        g.str("test.string").unwrap(),
        "h\u{e9}llo \u{2581}w\u{f6}rld \u{1F680}"
    );
    let u32s = g.array("test.u32s").unwrap();
    assert_eq!(u32s.elem_type(), ValueType::U32);
    assert_eq!(u32s.to_u32_vec().unwrap(), [1, 2, 3, 4_000_000_000]);
    let i32s = g.array("test.i32s").unwrap();
    assert_eq!(i32s.elem_type(), ValueType::I32);
    assert_eq!(i32s.to_i32_vec().unwrap(), [1, -2, 3, 6]);
    assert_eq!(
        g.array("test.f32s").unwrap().to_f32_vec().unwrap(),
        [0.5, -1.25, 3.0]
    );
    let bools: Vec<_> = g.array("test.bools").unwrap().iter().collect();
    assert_eq!(
        bools,
        [Value::Bool(true), Value::Bool(false), Value::Bool(true)]
    );
    assert_eq!(
        g.array("test.strings").unwrap().to_str_vec().unwrap(),
        ["<unk>", "\u{2581}the", "<0x0A>", ""]
    );
    let nested = g.array("test.nested").unwrap();
    assert_eq!((nested.elem_type(), nested.len()), (ValueType::Array, 3));
    let n0 = nested.get(0).unwrap();
    assert_eq!(n0.as_array().unwrap().to_i32_vec().unwrap(), [1, 2, 3]);
    let n1 = nested.get(1).unwrap();
    assert_eq!(n1.as_array().unwrap().to_i32_vec().unwrap(), [4]);
    let n2 = nested.get(2).unwrap();
    assert_eq!(n2.as_array().unwrap().to_str_vec().unwrap(), ["a", "b"]);
    assert_eq!(g.metadata().len(), 19);

    // Tensors: the source rows and Python's conversions of them.
    let names: Vec<_> = g.tensors().iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        ["src.f32", "src.f16", "src.q8_0", "src.q4_0", "src.bf16", "vec.f32"]
    );
    let src_t = g.tensor("src.f32").unwrap();
    assert_eq!(
        (src_t.ty, &src_t.dims[..]),
        (GgmlType::F32, &[64u64, 4][..])
    );
    let src: Vec<f32> = src_t
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let expect: Vec<f32> = (0..256)
        .map(|i| ((i * 37) % 101 - 50) as f32 / 8.0)
        .collect();
    assert_eq!(src, expect);
    for t in g.tensors() {
        assert_eq!(t.offset % 32, 0);
        assert_eq!(t.data.len() as u64, t.ty.bytes_for(t.n_elements()).unwrap());
    }
    let f16 = g.tensor("src.f16").unwrap();
    assert_eq!((f16.ty, &f16.dims[..]), (GgmlType::F16, &[64u64, 4][..]));
    let f16_expect: Vec<u8> = src
        .iter()
        .flat_map(|&x| f32_to_f16(x).to_le_bytes())
        .collect();
    assert_eq!(f16.data, &f16_expect[..]);
    // Python's quantizers are an independent check of ours: byte-identical blocks.
    for (name, ty) in [
        ("src.q8_0", GgmlType::Q8_0),
        ("src.q4_0", GgmlType::Q4_0),
        ("src.bf16", GgmlType::BF16),
    ] {
        let t = g.tensor(name).unwrap();
        assert_eq!((t.ty, &t.dims[..]), (ty, &[64u64, 4][..]), "{name}");
        let mut ours = Vec::new();
        quantize_row(ty, &src, &mut ours).unwrap();
        assert_eq!(
            t.data,
            &ours[..],
            "{name}: Python and Rust quantizers differ"
        );
    }
    let v = g.tensor("vec.f32").unwrap();
    assert_eq!((v.ty, &v.dims[..]), (GgmlType::F32, &[3u64][..]));
    assert_eq!(v.data, &f32_bytes(&[1.0, -2.0, 0.25])[..]);
}

// ---------------------------------------------------------------------------------------------
// Bad files: one test each.

#[test]
fn bad_magic() {
    let mut b = sample_file();
    b[0] = b'X';
    assert_contains(&format_err(&b), "bad magic");
    assert_contains(&format_err(b"GGML"), "bad magic");
    assert_contains(
        &format_err(b""),
        "truncated file: reading magic at offset 0",
    );
}

#[test]
fn unsupported_version() {
    let mut b = sample_file();
    for v in [0u32, 1, 4, 0xffff_ffff] {
        b[4..8].copy_from_slice(&v.to_le_bytes());
        assert_contains(&unsupported_err(&b), &alloc::format!("GGUF version {v}"));
    }
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_contains(&unsupported_err(&b), "big-endian");
    // Version 2 has the same layout as 3 (little endian): accepted.
    b[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(Gguf::parse(&b).unwrap().version, 2);
}

/// A small valid file whose last tensor ends exactly at the end of the file (no trailing
/// padding), so that every shorter prefix is missing something.
fn small_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add("s", OwnedValue::str("ab")).unwrap();
    w.add(
        "a",
        OwnedValue::Array(ValueType::Array, vec![OwnedValue::str_array(&["x"])]),
    )
    .unwrap();
    w.add("f", OwnedValue::F64(1.0)).unwrap();
    w.add_tensor("q", GgmlType::Q8_0, &[32], vec![1; 34])
        .unwrap();
    w.add_tensor("f", GgmlType::F32, &[16], vec![2; 64])
        .unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let b = small_file();
    Gguf::parse(&b).unwrap();
    for len in 0..b.len() {
        let e = format_err(&b[..len]);
        assert!(
            e.contains("remain") || e.contains("beyond the end of the file"),
            "cut at {len}: {e}"
        );
    }
    // What was being read and where, e.g. in the metadata:
    let e = format_err(&b[..100]);
    assert_contains(&e, "metadata entry 2 ('a') at offset 80");
    assert_contains(
        &e,
        "truncated file: reading array length at offset 97 needs 8 bytes, 3 remain",
    );
}

#[test]
fn tensor_data_beyond_end_of_file() {
    let b = one_tensor_file(None, 8, 0);
    Gguf::parse(&b).unwrap();
    // Claim more elements than there is data.
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[9], 0, 0).pad(32).bytes(&[0; 32]);
    assert_contains(&format_err(&r.done()), "beyond the end of the file");
    // An offset far past the end, and one that overflows when added to the data start.
    for off in [1 << 20, u64::MAX - 31] {
        let mut r = Raw::header(3, 1, 0);
        r.tensor("t", &[8], 0, off).pad(32).bytes(&[0; 32]);
        assert_contains(&format_err(&r.done()), "beyond the end of the file");
    }
}

#[test]
fn misaligned_tensor_offset() {
    assert!(Gguf::parse(&one_tensor_file(None, 1, 32)).is_ok());
    assert_contains(
        &format_err(&one_tensor_file(None, 1, 4)),
        "not a multiple of the alignment 32",
    );
    assert!(Gguf::parse(&one_tensor_file(Some(64), 1, 64)).is_ok());
    assert_contains(
        &format_err(&one_tensor_file(Some(64), 1, 32)),
        "not a multiple of the alignment 64",
    );
}

#[test]
fn overflowing_dims() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[1 << 32, 1 << 32], 0, 0).pad(32);
    assert_contains(&format_err(&r.done()), "overflow");
    // Element count fits, byte count does not.
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[1 << 31, 1 << 31, 8], 0, 0).pad(32);
    assert_contains(&format_err(&r.done()), "overflow");
    // Too many dims.
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[1, 1, 1, 1, 1], 0, 0).pad(32).bytes(&[0; 4]);
    assert_contains(&format_err(&r.done()), "5 dimensions");
    // Quantized rows must be whole blocks.
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[16, 2], 8, 0).pad(32).bytes(&[0; 68]);
    assert_contains(
        &format_err(&r.done()),
        "not a multiple of the Q8_0 block size",
    );
}

#[test]
fn unknown_tensor_type() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[256], 12, 0).pad(32).bytes(&[0; 1024]);
    let e = unsupported_err(&r.done());
    assert_contains(&e, "tensor type id 12 (Q4_K)");
    assert_contains(&e, "'t'");
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[1], 1000, 0).pad(32).bytes(&[0; 32]);
    assert_contains(&unsupported_err(&r.done()), "tensor type id 1000");
}

#[test]
fn absurd_tensor_count() {
    let b = Raw::header(3, 1 << 60, 0).done();
    assert_contains(
        &format_err(&b),
        "tensor count 1152921504606846976 is impossible",
    );
    let mut b = sample_file();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert_contains(&format_err(&b), "tensor count");
}

#[test]
fn absurd_key_count() {
    let mut b = sample_file();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert_contains(
        &format_err(&b),
        "metadata key/value count 1152921504606846976 is impossible",
    );
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_contains(&format_err(&b), "is impossible");
}

#[test]
fn absurd_string_length() {
    // A key of 2^40 bytes.
    let mut r = Raw::header(3, 0, 1);
    r.u64(1 << 40).bytes(b"abcdefgh");
    let e = format_err(&r.done());
    assert_contains(&e, "metadata key at offset 24 needs 1099511627776 bytes");
    // A string value of 2^40 bytes.
    let mut r = Raw::header(3, 0, 1);
    r.str("k")
        .u32(ValueType::String.id())
        .u64(1 << 40)
        .bytes(b"abc");
    assert_contains(&format_err(&r.done()), "needs 1099511627776 bytes");
    // A tensor name of 2^64 - 1 bytes.
    let mut r = Raw::header(3, 1, 0);
    r.u64(u64::MAX).bytes(&[0; 40]);
    assert_contains(&format_err(&r.done()), "tensor name");
    // An array of 2^60 elements.
    let mut r = Raw::header(3, 0, 1);
    r.str("k")
        .u32(ValueType::Array.id())
        .u32(ValueType::String.id())
        .u64(1 << 60)
        .bytes(&[0; 64]);
    assert_contains(
        &format_err(&r.done()),
        "claims 1152921504606846976 elements",
    );
}

#[test]
fn non_utf8_strings() {
    let bad = [b'a', 0xff, b'b'];
    let mut r = Raw::header(3, 0, 1);
    r.u64(3).bytes(&bad).u32(0).u8(0);
    assert_contains(
        &format_err(&r.done()),
        "metadata key (length 3 at offset 24) is not valid UTF-8",
    );
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(ValueType::String.id()).u64(3).bytes(&bad);
    assert_contains(&format_err(&r.done()), "not valid UTF-8");
    let mut r = Raw::header(3, 0, 1);
    r.str("k")
        .u32(ValueType::Array.id())
        .u32(ValueType::String.id())
        .u64(2)
        .str("ok")
        .u64(3)
        .bytes(&bad);
    assert_contains(&format_err(&r.done()), "not valid UTF-8");
    let mut r = Raw::header(3, 1, 0);
    r.u64(3)
        .bytes(&bad)
        .u32(1)
        .u64(1)
        .u32(0)
        .u64(0)
        .pad(32)
        .bytes(&[0; 4]);
    assert_contains(
        &format_err(&r.done()),
        "tensor name (length 3 at offset 24) is not valid UTF-8",
    );
}

#[test]
fn duplicate_tensor_names() {
    let mut r = Raw::header(3, 2, 0);
    r.tensor("w", &[8], 0, 0)
        .tensor("w", &[8], 0, 32)
        .pad(32)
        .bytes(&[0; 64]);
    assert_contains(&format_err(&r.done()), "duplicate tensor name 'w'");
}

#[test]
fn duplicate_keys() {
    let mut r = Raw::header(3, 0, 2);
    r.kv_u32("k", 1).kv_u32("k", 2);
    assert_contains(&format_err(&r.done()), "duplicate metadata key 'k'");
}

#[test]
fn alignment_zero() {
    assert_contains(
        &format_err(&one_tensor_file(Some(0), 1, 0)),
        "general.alignment = 0 is not a power of two",
    );
}

#[test]
fn alignment_not_power_of_two() {
    assert_contains(
        &format_err(&one_tensor_file(Some(3), 1, 0)),
        "general.alignment = 3 is not a power of two",
    );
    assert_contains(
        &format_err(&one_tensor_file(Some(96), 1, 0)),
        "not a power of two",
    );
}

#[test]
fn alignment_wrong_type() {
    for (ty, val) in [
        (ValueType::U64, &32u64.to_le_bytes()[..]),
        (ValueType::I32, &32i32.to_le_bytes()[..]),
        (ValueType::U8, &[32u8][..]),
    ] {
        let mut r = Raw::header(3, 0, 1);
        r.str("general.alignment").u32(ty.id()).bytes(val);
        let e = format_err(&r.done());
        assert_contains(
            &e,
            &alloc::format!("general.alignment has type {}, expected u32", ty.name()),
        );
    }
}

#[test]
fn alignment_any_power_of_two_is_read() {
    for a in [1u32, 2, 8, 32, 128, 4096] {
        let b = one_tensor_file(Some(a), 3, u64::from(a));
        let g = Gguf::parse(&b).unwrap();
        assert_eq!(g.alignment, u64::from(a));
        assert_eq!(g.data_offset % u64::from(a), 0);
        assert_eq!(g.tensor("t").unwrap().offset, g.data_offset + u64::from(a));
    }
    let g_bytes = one_tensor_file(None, 3, 0);
    assert_eq!(Gguf::parse(&g_bytes).unwrap().alignment, 32);
}

#[test]
fn unknown_value_type_and_bad_bool() {
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(13).u32(0);
    assert_contains(&format_err(&r.done()), "unknown value type id 13");
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(ValueType::Array.id()).u32(99).u64(0);
    assert_contains(&format_err(&r.done()), "unknown element type id 99");
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(ValueType::Bool.id()).u8(2);
    assert_contains(&format_err(&r.done()), "bool value 2");
    let mut r = Raw::header(3, 0, 1);
    r.str("k")
        .u32(ValueType::Array.id())
        .u32(ValueType::Bool.id())
        .u64(2)
        .u8(1)
        .u8(7);
    assert_contains(&format_err(&r.done()), "bool value 7");
}

#[test]
fn deeply_nested_arrays_are_rejected() {
    let nest = |depth: usize| {
        let mut r = Raw::header(3, 0, 1);
        r.str("k").u32(ValueType::Array.id());
        for _ in 1..depth {
            r.u32(ValueType::Array.id()).u64(1);
        }
        r.u32(ValueType::U8.id()).u64(1).u8(5);
        r.done()
    };
    let b = nest(MAX_ARRAY_DEPTH);
    let g = Gguf::parse(&b).unwrap();
    let mut v = *g.get("k").unwrap();
    for _ in 1..MAX_ARRAY_DEPTH {
        v = v.as_array().unwrap().get(0).unwrap();
    }
    assert_eq!(v.as_array().unwrap().get(0), Some(Value::U8(5)));
    let e = unsupported_err(&nest(MAX_ARRAY_DEPTH + 1));
    assert_contains(&e, "nested more than");
    // A million levels: rejected, no stack overflow.
    let e = unsupported_err(&nest(1_000_000));
    assert_contains(&e, "nested more than");
}

#[test]
fn error_messages_say_what_and_where() {
    let b = small_file();
    let g = Gguf::parse(&b).unwrap();
    let q = g.tensor("q").unwrap();
    let e = format_err(&b[..q.offset as usize + 10]);
    assert_contains(&e, "tensor 0 ('q'): data of 34 bytes");
    assert_eq!(
        Error::Format(e).to_string().split(':').next(),
        Some("malformed model file")
    );
}

/// Writes the round-trip sample to `$PHOTON_GGUF_DUMP` for the Python reader check
/// (`tests/fixtures/check_rust_gguf.py`):
/// `PHOTON_GGUF_DUMP=/tmp/rust.gguf cargo test -p photon-runtime dump_sample -- --ignored`.
#[cfg(feature = "std")]
#[test]
#[ignore]
fn dump_sample_for_python() {
    let path = std::env::var("PHOTON_GGUF_DUMP").expect("set PHOTON_GGUF_DUMP");
    let mut w = GgufWriter::new();
    for (k, v) in sample_values() {
        w.add(k, v).unwrap();
    }
    for (name, ty, dims, data) in sample_tensors() {
        w.add_tensor(name, ty, &dims, data).unwrap();
    }
    w.write_file_atomic(path).unwrap();
}
