//! Fuzzes `Gguf::parse`: it must never panic or read out of bounds, and whatever it accepts
//! must survive a write/read round trip through `GgufWriter` unchanged.
//!
//! `cargo +nightly fuzz run gguf_reader -- -max_total_time=60` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use photon_runtime::gguf::{Gguf, GgufWriter, Value};

fn touch(v: &Value<'_>) -> usize {
    let _ = (v.value_type(), v.as_u64(), v.as_i64(), v.as_str());
    match v {
        Value::Array(a) => {
            let _ = (a.to_u32_vec(), a.to_i32_vec(), a.to_f32_vec(), a.to_str_vec());
            let n = a.iter().map(|e| touch(&e)).sum::<usize>();
            assert_eq!(a.iter().count(), a.len());
            assert!(a.get(a.len()).is_none());
            if let Some(last) = a.len().checked_sub(1) {
                assert!(a.get(last).is_some());
            }
            n + a.len()
        }
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    let mut w = GgufWriter::new();
    for (k, v) in g.metadata() {
        touch(v);
        assert!(g.get(k).is_some());
        let _ = (g.u32(k), g.f32(k), g.bool(k), g.str(k), g.array(k));
        if *k != "general.alignment" {
            w.add(k, v.to_owned_value()).expect("accepted metadata must be writable");
        }
    }
    for t in g.tensors() {
        assert_eq!(t.data.len() as u64, t.ty.bytes_for(t.n_elements()).unwrap());
        assert_eq!(t.offset % g.alignment, g.data_offset % g.alignment);
        assert!(t.offset + t.data.len() as u64 <= data.len() as u64);
        assert_eq!(g.tensor(t.name).map(|x| x.name), Some(t.name));
        w.add_tensor(t.name, t.ty, &t.dims, t.data.to_vec())
            .expect("accepted tensors must be writable");
    }
    let bytes = w.to_bytes().expect("writable");
    let g2 = Gguf::parse(&bytes).expect("our own output must parse");
    assert_eq!(g2.alignment, 64);
    let skip_align = |m: &[(&str, Value<'_>)]| {
        m.iter()
            .filter(|(k, _)| *k != "general.alignment")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(skip_align(g.metadata()), skip_align(g2.metadata()));
    assert_eq!(g.tensors().len(), g2.tensors().len());
    for (a, b) in g.tensors().iter().zip(g2.tensors()) {
        assert_eq!((a.name, a.ty, &a.dims, a.data), (b.name, b.ty, &b.dims, b.data));
    }
});
