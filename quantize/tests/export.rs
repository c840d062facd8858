//! The safetensors → GGUF conversion against training/export.py (fixture made by
//! fixtures/make_fixture.py), the SentencePiece reader against the shipped models' metadata,
//! and every way a training export can be wrong.
mod common;
use common::*;
use photon_quantize::export::{self, export_gguf, gguf_name, Arch, TrainConfig};
use photon_quantize::{spm, QError};
use photon_runtime::gguf::Gguf;
use photon_runtime::quant::GgmlType;
use photon_runtime::Model;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn expected(name: &str) -> serde_json::Value {
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    e[name].clone()
}

fn check_parity(name: &str) {
    let bytes = fixture_gguf(name);
    let g = Gguf::parse(&bytes).unwrap();
    let exp = expected(name);
    let meta: Vec<_> = g
        .metadata()
        .iter()
        .filter(|(k, _)| *k != "general.alignment")
        .collect();
    let em = exp["metadata"].as_array().unwrap();
    assert_eq!(meta.len(), em.len(), "{name}: number of metadata keys");
    for ((k, v), e) in meta.iter().zip(em) {
        let (t, et, val) = value_json(v);
        assert_eq!(*k, e[0].as_str().unwrap(), "{name}: key order");
        assert_eq!(t, e[1].as_str().unwrap(), "{name}: type of {k}");
        assert_eq!(et.as_deref(), e[2].as_str(), "{name}: element type of {k}");
        assert_eq!(val, e[3], "{name}: value of {k}");
    }
    let et = exp["tensors"].as_array().unwrap();
    assert_eq!(g.tensors().len(), et.len(), "{name}: number of tensors");
    for (t, e) in g.tensors().iter().zip(et) {
        assert_eq!(t.name, e[0].as_str().unwrap(), "{name}: tensor order");
        assert_eq!(t.ty.id() as u64, e[1].as_u64().unwrap(), "{}: type", t.name);
        let dims: Vec<u64> = e[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{}: dims", t.name);
        assert_eq!(fnv1a64(t.data), e[3].as_str().unwrap(), "{}: data", t.name);
    }
    // And it is a model the runtime loads.
    Model::from_bytes(bytes).unwrap();
}

#[test]
fn photon_export_matches_export_py() {
    check_parity("tiny-photon");
}

#[test]
fn llama_export_matches_export_py() {
    check_parity("tiny-llama");
}

/// Our SentencePiece reader + metadata writer reproduce every metadata key export.py wrote
/// into the shipped float models (tokenizer from models/tokenizer.model, real 4096 vocab).
#[test]
fn metadata_matches_shipped_models() {
    let sp = spm::parse(&std::fs::read(repo("models/tokenizer.model")).unwrap()).unwrap();
    assert_eq!(sp.pieces.len(), 4096);
    for (name, cfg) in [
        ("photon-tiny", "training/results/photon-tiny.config.json"),
        ("vanilla-tiny", "training/results/vanilla-tiny.config.json"),
    ] {
        let cfg = TrainConfig::parse(&std::fs::read_to_string(repo(cfg)).unwrap()).unwrap();
        let ours = export::export_metadata(&cfg, name, &sp).unwrap();
        let bytes = std::fs::read(repo(&format!("models/{name}-f16.gguf"))).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let theirs: Vec<_> = g
            .metadata()
            .iter()
            .filter(|(k, _)| *k != "general.alignment")
            .map(|(k, v)| (k.to_string(), v.to_owned_value()))
            .collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "{name}");
        }
        // The names and shapes the config implies are exactly the shipped file's tensors.
        let shapes = cfg.expected_shapes();
        assert_eq!(shapes.len(), g.tensors().len());
        for t in g.tensors() {
            let want: Vec<u64> = t.dims.iter().rev().copied().collect();
            assert_eq!(shapes[t.name], want, "{}", t.name);
        }
    }
}

#[test]
fn name_mapping() {
    let p = |n| gguf_name(Arch::Photon, n);
    assert_eq!(
        p("enc1.blocks.2.attn.o.weight").unwrap(),
        "enc1.blk.2.attn_output.weight"
    );
    assert_eq!(p("dec1.norm.weight").unwrap(), "dec1.output_norm.weight");
    assert_eq!(p("dec2_start").unwrap(), "dec2.start");
    assert_eq!(p("chunk2_norm.weight").unwrap(), "chunk2.norm.weight");
    assert_eq!(p("enc1.blocks.x.attn.o.weight"), None);
    assert_eq!(p("enc3.blocks.0.attn.o.weight"), None);
    assert_eq!(p("enc1.blocks.0.attn.z.weight"), None);
    assert_eq!(p("embd.weight"), None);
    let l = |n| gguf_name(Arch::Llama, n);
    assert_eq!(
        l("stack.blocks.11.ffn.down.weight").unwrap(),
        "blk.11.ffn_down.weight"
    );
    assert_eq!(l("stack.norm.weight").unwrap(), "output_norm.weight");
    assert_eq!(l("embd.weight").unwrap(), "token_embd.weight");
    assert_eq!(l("enc_embd.weight"), None);
    assert!(export::keep_f32("dec2.start") && export::keep_f32("chunk2.bias"));
    assert!(!export::keep_f32("output.weight"));
}

/// Rebuilds a safetensors file from `src`, letting `edit` change (name, dtype, shape, bytes).
fn rebuild(src: &[u8], edit: impl Fn(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let st = SafeTensors::deserialize(src).unwrap();
    let mut v: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    edit(&mut v);
    let views: Vec<(String, TensorView<'_>)> = v
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn inputs(name: &str) -> (Vec<u8>, TrainConfig, spm::SpModel) {
    let st = std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap();
    let cfg = TrainConfig::parse(
        &std::fs::read_to_string(fixture(&format!("{name}.config.json"))).unwrap(),
    )
    .unwrap();
    let sp = spm::parse(&std::fs::read(fixture("tiny.model")).unwrap()).unwrap();
    (st, cfg, sp)
}

fn input_err(r: Result<Vec<u8>, QError>) -> String {
    match r {
        Err(QError::Input(m)) => {
            assert!(!m.contains('\n'), "{m}");
            m
        }
        other => panic!("expected an input error, got {:?}", other.map(|b| b.len())),
    }
}

/// BF16 tensors convert like their f32 values (bf16 widens exactly), F32 like numpy's astype.
#[test]
fn bf16_input() {
    let (st, cfg, sp) = inputs("tiny-llama");
    // The F32 fixture truncated to bf16 values, once as F32 and once as BF16.
    let round = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| {
                let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                half::bf16::from_f32(x).to_f32()
            })
            .collect()
    };
    let as_f32 = rebuild(&st, |v| {
        for t in v.iter_mut() {
            t.3 = round(&t.3).iter().flat_map(|x| x.to_le_bytes()).collect();
        }
    });
    let as_bf16 = rebuild(&st, |v| {
        for t in v.iter_mut() {
            t.3 = round(&t.3)
                .iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_bits().to_le_bytes())
                .collect();
            t.1 = Dtype::BF16;
        }
    });
    let a = export_gguf(&as_f32, &cfg, "x", &sp).unwrap();
    let b = export_gguf(&as_bf16, &cfg, "x", &sp).unwrap();
    assert_eq!(a, b);
}

#[test]
fn unsupported_dtype() {
    let (st, cfg, sp) = inputs("tiny-llama");
    let bad = rebuild(&st, |v| {
        let t = v.iter_mut().find(|t| t.0 == "stack.norm.weight").unwrap();
        t.1 = Dtype::I32;
    });
    let m = input_err(export_gguf(&bad, &cfg, "x", &sp));
    assert!(m.contains("stack.norm.weight") && m.contains("I32"), "{m}");
}

#[test]
fn shape_disagrees_with_config() {
    let (st, cfg, sp) = inputs("tiny-llama");
    let bad = rebuild(&st, |v| {
        let t = v
            .iter_mut()
            .find(|t| t.0 == "stack.blocks.1.ffn.up.weight")
            .unwrap();
        t.2 = vec![64, 32];
    });
    let m = input_err(export_gguf(&bad, &cfg, "x", &sp));
    assert!(
        m.contains("stack.blocks.1.ffn.up.weight")
            && m.contains("[64, 32]")
            && m.contains("[32, 64]"),
        "{m}"
    );
    // A config that disagrees with the file: one layer fewer.
    let mut c1 = cfg.clone();
    c1.layers = vec![1];
    let m = input_err(export_gguf(&st, &c1, "x", &sp));
    assert!(m.contains("stack.blocks.1."), "{m}");
    // Vocabulary of the tokenizer vs config.
    let mut c2 = cfg.clone();
    c2.vocab_size = 4096;
    let m = input_err(export_gguf(&st, &c2, "x", &sp));
    assert!(m.contains("vocab"), "{m}");
}

#[test]
fn missing_and_unknown_tensors() {
    let (st, cfg, sp) = inputs("tiny-photon");
    let missing = rebuild(&st, |v| v.retain(|t| t.0 != "dec2_start"));
    let m = input_err(export_gguf(&missing, &cfg, "x", &sp));
    assert!(m.contains("dec2.start") && m.contains("missing"), "{m}");
    let unknown = rebuild(&st, |v| {
        v.push((
            "enc1.blocks.0.attn.rotary".into(),
            Dtype::F32,
            vec![4],
            vec![0; 16],
        ))
    });
    let m = input_err(export_gguf(&unknown, &cfg, "x", &sp));
    assert!(m.contains("enc1.blocks.0.attn.rotary"), "{m}");
    let extra_block = rebuild(&st, |v| {
        v.push((
            "enc1.blocks.1.attn_norm.weight".into(),
            Dtype::F32,
            vec![64],
            vec![0; 256],
        ))
    });
    let m = input_err(export_gguf(&extra_block, &cfg, "x", &sp));
    assert!(m.contains("enc1.blocks.1.attn_norm.weight"), "{m}");
}

#[test]
fn corrupt_safetensors() {
    let (st, cfg, sp) = inputs("tiny-photon");
    for bad in [
        &st[..100],
        &st[..st.len() - 1],
        b"not a safetensors file at all",
        &[][..],
    ] {
        let m = input_err(export_gguf(bad, &cfg, "x", &sp));
        assert!(m.contains("safetensors"), "{m}");
    }
}

#[test]
fn bad_configs() {
    let ok = std::fs::read_to_string(fixture("tiny-photon.config.json")).unwrap();
    let usage = |r: Result<TrainConfig, QError>| match r {
        Err(QError::Input(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = usage(TrainConfig::parse(&ok.replace("\"photon\"", "\"gpt2\"")));
    assert!(m.contains("unknown architecture 'gpt2'"), "{m}");
    let m = usage(TrainConfig::parse(&ok.replace("\"ffn\"", "\"ffn_dim\"")));
    assert!(m.contains("'ffn'"), "{m}");
    let m = usage(TrainConfig::parse("{not json"));
    assert!(m.contains("JSON"), "{m}");
    let v: serde_json::Value = serde_json::from_str(&ok).unwrap();
    let mut v2 = v.clone();
    v2["layers"] = serde_json::json!([1, 2, 1, 1]);
    let m = usage(TrainConfig::parse(&v2.to_string()));
    assert!(m.contains("equal depth"), "{m}");
    let mut v3 = v.clone();
    v3["d"] = serde_json::json!(-4);
    let m = usage(TrainConfig::parse(&v3.to_string()));
    assert!(m.contains("'d'"), "{m}");
}

#[test]
fn sentencepiece_reader() {
    let sp = spm::parse(&std::fs::read(repo("models/tokenizer.model")).unwrap()).unwrap();
    assert_eq!((sp.unk_id, sp.bos_id, sp.eos_id, sp.pad_id), (0, 1, 2, 3));
    assert!(sp.add_dummy_prefix);
    assert_eq!(sp.pieces[7].piece, "<0x00>");
    assert_eq!(sp.gguf_token_type(7), 6);
    assert_eq!(sp.gguf_token_type(4), 3);
    assert_eq!(sp.gguf_token_type(0), 2);
    assert_eq!(sp.piece_to_id("<|end|>"), 6);
    // Truncated or garbage files are errors, never panics.
    let bytes = std::fs::read(fixture("tiny.model")).unwrap();
    for n in [1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
        match spm::parse(&bytes[..n]) {
            Err(QError::Input(m)) => assert!(m.contains("SentencePiece"), "{m}"),
            Ok(_) => {} // a cut at a field boundary can still be a valid (smaller) model
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(spm::parse(&[]).is_err());
    assert!(spm::parse(b"GGUF\x03\0\0\0").is_err());
    let _ = GgmlType::F16;
}
