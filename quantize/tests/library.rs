//! The library: presets and overrides, conversion and its error statistics, the planned size,
//! the evaluation text's paragraphs, the gate's arithmetic.
mod common;
use common::*;
use photon_quantize::convert::{self, error_stats};
use photon_quantize::gate::{self, Quality, Thresholds};
use photon_quantize::plan::{self, parse_type, Override, Preset, Role, TensorDesc, Why};
use photon_quantize::QError;
use photon_runtime::gguf::Gguf;
use photon_runtime::model::eval::Agreement;
use photon_runtime::model::testing::RandomSpec;
use photon_runtime::quant::GgmlType;
use photon_runtime::Model;

fn desc(name: &str, dims: &[u64]) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        dims: dims.to_vec(),
        ty: GgmlType::F16,
    }
}

fn sample() -> Vec<TensorDesc> {
    vec![
        desc("token_embd.weight", &[64, 100]),
        desc("blk.0.attn_norm.weight", &[64]),
        desc("blk.0.attn_q.weight", &[64, 64]),
        desc("blk.0.ffn_down.weight", &[96, 64]),
        desc("blk.0.ffn_up.weight", &[64, 96]),
        desc("chunk2.bias", &[64]),
        desc("dec2.start", &[64]),
        desc("odd.weight", &[48, 8]),
        desc("output.weight", &[64, 100]),
    ]
}

#[test]
fn roles() {
    assert_eq!(Role::of("enc.token_embd.weight", &[32, 9]), Role::Embedding);
    assert_eq!(
        Role::of("dec1.token_embd.weight", &[32, 9]),
        Role::Embedding
    );
    assert_eq!(Role::of("output.weight", &[32, 9]), Role::Embedding);
    assert_eq!(Role::of("enc1.output_norm.weight", &[32]), Role::Vector);
    assert_eq!(Role::of("chunk2.norm.weight", &[32]), Role::Vector);
    assert_eq!(Role::of("dec2.start", &[32]), Role::Vector);
    assert_eq!(Role::of("dec2.conv.bias", &[32]), Role::Vector);
    assert_eq!(Role::of("dec2.conv.weight", &[32, 64]), Role::Matrix);
    assert_eq!(Role::of("anything", &[32, 1]), Role::Vector);
}

#[test]
fn presets() {
    let t = sample();
    let types = |p| -> Vec<GgmlType> {
        plan::plan(&t, p, &[])
            .unwrap()
            .iter()
            .map(|x| x.dst)
            .collect()
    };
    use GgmlType::*;
    assert_eq!(types(Preset::F32), vec![F32; 9]);
    assert_eq!(
        types(Preset::F16),
        vec![F16, F32, F16, F16, F16, F32, F32, F16, F16]
    );
    assert_eq!(
        types(Preset::Q8_0),
        vec![Q8_0, F32, Q8_0, Q8_0, Q8_0, F32, F32, F16, Q8_0]
    );
    assert_eq!(
        types(Preset::Q4_0),
        vec![Q8_0, F32, Q4_0, Q4_0, Q4_0, F32, F32, F16, Q8_0]
    );
    let p = plan::plan(&t, Preset::Q4_0, &[]).unwrap();
    assert_eq!(p[7].why, Why::Fallback);
    assert_eq!(p[2].why, Why::Preset);
    assert_eq!(
        Preset::ALL.map(|p| p.file_type()),
        [0, 1, 7, 2],
        "llama.cpp's LLAMA_FTYPE values"
    );
    assert_eq!(Preset::Q4_0.default_max_ppl_increase(), 6.0);
    assert_eq!(Preset::Q8_0.default_max_ppl_increase(), 1.0);
    assert_eq!(Preset::parse("Q4_0").unwrap(), Preset::Q4_0);
    assert!(matches!(Preset::parse("q4_k"), Err(QError::Usage(_))));
    assert_eq!(parse_type("Q8_0").unwrap(), Q8_0);
    assert!(matches!(parse_type("bf16"), Err(QError::Usage(_))));
}

#[test]
fn overrides() {
    let t = sample();
    let ov =
        |s: &[&str]| -> Vec<Override> { s.iter().map(|x| Override::parse(x).unwrap()).collect() };
    // First match wins; `*` crosses dots.
    let p = plan::plan(
        &t,
        Preset::Q4_0,
        &ov(&["*.ffn_down.*=q8_0", "blk.0.ffn_*=f16", "output.weight=F32"]),
    )
    .unwrap();
    assert_eq!(p[3].dst, GgmlType::Q8_0);
    assert_eq!(p[3].why, Why::Override(0));
    assert_eq!(p[4].dst, GgmlType::F16);
    assert_eq!(p[8].dst, GgmlType::F32);
    assert_eq!(p[2].dst, GgmlType::Q4_0);
    // Character classes and `?`.
    let p = plan::plan(&t, Preset::F16, &ov(&["blk.?.attn_[qk].weight=q4_0"])).unwrap();
    assert_eq!(p[2].dst, GgmlType::Q4_0);
    // Vectors may go F16, not to block types.
    let p = plan::plan(&t, Preset::F16, &ov(&["dec2.start=f16"])).unwrap();
    assert_eq!(p[6].dst, GgmlType::F16);
    let usage = |r: Result<_, QError>| match r {
        Err(QError::Usage(m)) => m,
        Ok(_) => panic!("accepted"),
        Err(e) => panic!("{e:?}"),
    };
    let m = usage(plan::plan(&t, Preset::F16, &ov(&["*norm.weight=q8_0"])));
    assert!(m.contains("blk.0.attn_norm.weight"), "{m}");
    let m = usage(plan::plan(&t, Preset::F16, &ov(&["odd.weight=q4_0"])));
    assert!(m.contains("48") && m.contains("odd.weight"), "{m}");
    let m = usage(plan::plan(&t, Preset::F16, &ov(&["blk.1.*=q8_0"])));
    assert!(m.contains("matches no tensor"), "{m}");
    // Parse errors.
    for (s, want) in [
        ("blk.*", "PATTERN=TYPE"),
        ("=q8_0", "empty pattern"),
        ("blk.[0.weight=q8_0", "invalid pattern"),
        ("blk.*=q5_k", "unknown tensor type 'q5_k'"),
    ] {
        let m = match Override::parse(s) {
            Err(QError::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert!(m.contains(want), "{s}: {m}");
    }
}

#[test]
fn error_statistics() {
    let s = error_stats(&[1.0, -1.0, 1.0, -1.0], &[1.5, -1.0, 1.0, -1.0]);
    assert!((s.rms - 1.0).abs() < 1e-12);
    assert!((s.rel_rmse - 0.25).abs() < 1e-12);
    assert!((s.max_abs - 0.5).abs() < 1e-12);
    assert_eq!(error_stats(&[0.0; 4], &[0.0; 4]).rel_rmse, 0.0);
    // Typical error levels of the block formats on Gaussian-like data.
    let x: Vec<f32> = (0..32 * 64)
        .map(|i| ((i as f32 * 0.7123).sin() * 1.3 + (i as f32 * 0.013).cos()) * 0.05)
        .collect();
    let dims = [32 * 8, 8];
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (_, s8) =
        convert::convert_tensor("t", &dims, GgmlType::F32, &bytes, GgmlType::Q8_0).unwrap();
    let (_, s4) =
        convert::convert_tensor("t", &dims, GgmlType::F32, &bytes, GgmlType::Q4_0).unwrap();
    let (_, s16) =
        convert::convert_tensor("t", &dims, GgmlType::F32, &bytes, GgmlType::F16).unwrap();
    let (same, s32) =
        convert::convert_tensor("t", &dims, GgmlType::F32, &bytes, GgmlType::F32).unwrap();
    assert_eq!(same, bytes);
    assert_eq!(s32.rel_rmse, 0.0);
    assert!(s16.rel_rmse < 1e-3, "{s16:?}");
    assert!(s8.rel_rmse > s16.rel_rmse && s8.rel_rmse < 0.02, "{s8:?}");
    assert!(s4.rel_rmse > s8.rel_rmse && s4.rel_rmse < 0.2, "{s4:?}");
    // Non-finite input, and values that do not fit F16.
    let mut bad = bytes.clone();
    bad[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = convert::convert_tensor("t", &dims, GgmlType::F32, &bad, GgmlType::Q8_0).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
    let mut big = bytes.clone();
    big[..4].copy_from_slice(&1e6f32.to_le_bytes());
    let e = convert::convert_tensor("t", &dims, GgmlType::F32, &big, GgmlType::F16).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
}

/// Every preset on both architectures: the output loads, has the planned size, the preset's
/// types, file type, quantization version, and all the input's other metadata.
#[test]
fn convert_every_preset() {
    for spec in [RandomSpec::tiny_photon(), RandomSpec::tiny_llama()] {
        let input = with_meta(
            &random_gguf(&spec),
            "general.file_type",
            photon_runtime::gguf::OwnedValue::U32(0),
        );
        let g = Gguf::parse(&input).unwrap();
        for preset in Preset::ALL {
            let plans = plan::plan(&convert::tensor_descs(&g), preset, &[]).unwrap();
            let meta = convert::output_metadata(&g, preset);
            let (w, stats) = convert::convert(&g, preset, &plans, &mut |_| {}).unwrap();
            let bytes = w.to_bytes().unwrap();
            assert_eq!(
                bytes.len() as u64,
                convert::planned_file_size(&meta, &plans)
            );
            let out = Gguf::parse(&bytes).unwrap();
            assert_eq!(out.u32("general.file_type").unwrap(), preset.file_type());
            assert_eq!(out.u32("general.quantization_version").unwrap(), 2);
            for (k, v) in g.metadata() {
                if *k != "general.file_type" {
                    assert_eq!(out.get(k), Some(v), "{k}");
                }
            }
            for (t, p) in out.tensors().iter().zip(&plans) {
                assert_eq!(t.name, p.name);
                assert_eq!(t.ty, p.dst);
                assert_eq!(t.ty, preset.type_for(Role::of(t.name, &t.dims)));
            }
            let worst = stats.iter().map(|s| s.rel_rmse).fold(0.0, f64::max);
            let bound = match preset {
                Preset::F32 => 0.0,
                Preset::F16 => 1e-3,
                Preset::Q8_0 => 0.01,
                Preset::Q4_0 => 0.2,
            };
            assert!(worst <= bound, "{preset:?}: {worst}");
            Model::from_bytes(bytes).unwrap();
        }
    }
}

#[test]
fn requantize_keeps_same_type_bytes() {
    // Q8_0 → Q8_0 copies blocks unchanged; Q8_0 → F32 widens exactly.
    let mut spec = RandomSpec::tiny_llama();
    spec.mat_type = GgmlType::Q8_0;
    let input = random_gguf(&spec);
    let g = Gguf::parse(&input).unwrap();
    let plans = plan::plan(&convert::tensor_descs(&g), Preset::Q8_0, &[]).unwrap();
    let (w, stats) = convert::convert(&g, Preset::Q8_0, &plans, &mut |_| {}).unwrap();
    let bytes = w.to_bytes().unwrap();
    let out = Gguf::parse(&bytes).unwrap();
    for (a, b) in g.tensors().iter().zip(out.tensors()) {
        assert_eq!(a.data, b.data, "{}", a.name);
    }
    assert!(stats.iter().all(|s| s.rel_rmse == 0.0));
    let plans = plan::plan(&convert::tensor_descs(&g), Preset::F32, &[]).unwrap();
    let (_, stats) = convert::convert(&g, Preset::F32, &plans, &mut |_| {}).unwrap();
    assert!(stats.iter().all(|s| s.rel_rmse == 0.0));
}

#[test]
fn paragraphs_like_prepare_py() {
    // Expected values from Python: [p.strip("\n") for p in re.split(r"\n(?:[ \t]*\n)+", t) if p.strip()]
    let cases: [(&str, &[&str]); 7] = [
        ("a\nb\n\nc", &["a\nb", "c"]),
        ("\n\na\n \t\n\n  b  \n", &["a", "  b  "]),
        ("a\n\n\n\n", &["a"]),
        ("a\n \nb\n\t\n\tc", &["a", "b", "\tc"]),
        ("one\ntwo", &["one\ntwo"]),
        ("x\n\n \n\n", &["x"]),
        ("", &[]),
    ];
    for (t, want) in cases {
        assert_eq!(gate::paragraphs(t), want.to_vec(), "{t:?}");
    }
}

#[test]
fn gate_thresholds() {
    let q = |r: f64, m: f64, kl: f64| Quality {
        windows: 1,
        window: 64,
        agreement: Agreement {
            positions: 63,
            kl_mean: kl,
            kl_max: kl,
            top1: 1.0,
            ppl_reference: r,
            ppl_model: m,
        },
    };
    let t = Thresholds {
        max_kl: None,
        max_ppl_increase: 1.0,
    };
    assert!(gate::check(&q(10.0, 10.09, 5.0), &t).is_ok());
    assert!((q(10.0, 10.09, 0.0).ppl_increase() - 0.9).abs() < 1e-9);
    let e = gate::check(&q(10.0, 10.11, 0.0), &t).unwrap_err();
    assert!(matches!(e, QError::Gate(_)) && e.to_string().contains("--max-ppl-increase"));
    assert_eq!(e.exit_code(), 3);
    let t = Thresholds {
        max_kl: Some(0.01),
        max_ppl_increase: 1.0,
    };
    let e = gate::check(&q(10.0, 9.0, 0.02), &t).unwrap_err();
    assert!(e.to_string().contains("--max-kl"), "{e}");
    assert!(gate::check(&q(10.0, f64::NAN, 0.0), &t).is_err());
}

/// The gate's window-by-window evaluation equals the runtime's evaluator over all windows.
#[test]
fn evaluate_matches_runtime_compare() {
    let float = fixture_gguf("tiny-photon");
    let reference = Model::from_bytes(float.clone()).unwrap();
    let g = Gguf::parse(&float).unwrap();
    let plans = plan::plan(&convert::tensor_descs(&g), Preset::Q4_0, &[]).unwrap();
    let (w, _) = convert::convert(&g, Preset::Q4_0, &plans, &mut |_| {}).unwrap();
    let model = Model::from_bytes(w.to_bytes().unwrap()).unwrap();
    let tok = photon_runtime::tokenizer::Tokenizer::from_gguf(&reference.gguf()).unwrap();
    let text = "the cat sat on the mat\n\na dog ran in the park\n\nthe ship sailed on the sea to the land far away\n\n".repeat(8);
    let stream = gate::tokenize(&tok, &text).unwrap();
    let window = gate::window_for(&reference, stream.len()).unwrap();
    assert_eq!(window, 64);
    let mut calls = 0;
    let q = gate::evaluate(&reference, &model, &stream, window, 0, 1, &mut || {
        calls += 1
    })
    .unwrap();
    let a = photon_runtime::model::eval::compare(
        &reference,
        &model,
        &stream,
        window,
        photon_runtime::model::eval::Latents::Encoder,
        0,
        1,
    )
    .unwrap();
    assert_eq!(calls, stream.len() / 64);
    assert_eq!(q.agreement.positions, a.positions);
    for (x, y) in [
        (q.agreement.kl_mean, a.kl_mean),
        (q.agreement.top1, a.top1),
        (q.agreement.ppl_reference, a.ppl_reference),
        (q.agreement.ppl_model, a.ppl_model),
        (q.agreement.kl_max, a.kl_max),
    ] {
        assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
    }
    assert!(q.agreement.kl_mean > 0.0);
    // Too short a text.
    let e = gate::window_for(&reference, 3).unwrap_err();
    assert!(e.to_string().contains("too few"), "{e}");
}

/// The evaluator runs both models on the given threads; results do not depend on them.
#[test]
fn compare_is_thread_count_independent() {
    let float = fixture_gguf("tiny-llama");
    let reference = Model::from_bytes(float.clone()).unwrap();
    let g = Gguf::parse(&float).unwrap();
    let plans = plan::plan(&convert::tensor_descs(&g), Preset::Q4_0, &[]).unwrap();
    let (w, _) = convert::convert(&g, Preset::Q4_0, &plans, &mut |_| {}).unwrap();
    let model = Model::from_bytes(w.to_bytes().unwrap()).unwrap();
    let stream: Vec<u32> = (0..256u32).map(|i| (i * 7 + 3) % 48).collect();
    let run = |threads| {
        photon_runtime::model::eval::compare(
            &reference,
            &model,
            &stream,
            64,
            photon_runtime::model::eval::Latents::Encoder,
            0,
            threads,
        )
        .unwrap()
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.positions, b.positions);
    for (x, y) in [
        (a.kl_mean, b.kl_mean),
        (a.ppl_reference, b.ppl_reference),
        (a.ppl_model, b.ppl_model),
        (a.top1, b.top1),
    ] {
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
    }
}
