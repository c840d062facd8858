//! The engine against a naive dense re-implementation of the reference, on random-weight models:
//! incremental decoding, batched prefill, RecGen batches, conversations, the arena's bounds.
mod common;
use common::{max_abs_diff, Ref};
use photon::model::testing::{random_model, RandomSpec};
use photon::{EngineOptions, Error, Mode, Model, Session};

const TOL: f32 = 2e-4;

fn opts(mode: Mode) -> EngineOptions {
    EngineOptions {
        memory_budget: 16 << 20,
        threads: 1,
        mode,
    }
}

fn tokens(n: usize, vocab: u32, seed: u32) -> Vec<u32> {
    let mut s = seed.wrapping_mul(2654435761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s % vocab
        })
        .collect()
}

fn check(got: &[f32], want: &[f32], what: &str) -> f32 {
    let e = max_abs_diff(got, want);
    assert!(e < TOL, "{what}: max |Δ| {e}");
    e
}

#[test]
fn llama_incremental_matches_reference() {
    let bytes = random_model(&RandomSpec::tiny_llama()).unwrap();
    let r = Ref::new(&bytes);
    let m = Model::from_bytes(bytes).unwrap();
    let toks = tokens(40, 96, 3);
    let want = r.llama_logits(&toks);
    let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    s.feed(&toks[..13]).unwrap();
    check(s.logits(0), &want[12], "prefill");
    for i in 13..40 {
        s.accept(&[toks[i]]).unwrap();
        check(s.logits(0), &want[i], &format!("step {i}"));
    }
    assert_eq!(s.position(), 40);
}

fn photon_ref() -> (Ref, Model) {
    let bytes = random_model(&RandomSpec::tiny_photon()).unwrap();
    (Ref::new(&bytes), Model::from_bytes(bytes).unwrap())
}

#[test]
fn photon_hiergen_matches_reference() {
    let (r, m) = photon_ref();
    let toks = tokens(48, 96, 5);
    let (xh, _, _) = r.latents(&toks, None);
    let want = r.decode1(&xh, &toks);
    // Prompts of every length in one shot.
    for p in [0usize, 1, 3, 4, 5, 15, 16, 17, 21, 32, 37, 40, 47] {
        let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
        s.feed(&toks[..p]).unwrap();
        assert_eq!(s.pending_rows(), 1);
        check(s.logits(0), &want[p], &format!("prefill {p}"));
    }
    // Token by token.
    let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    s.feed(&toks[..2]).unwrap();
    for i in 2..48 {
        s.accept(&[toks[i]]).unwrap();
        if i + 1 < 48 {
            check(s.logits(0), &want[i + 1], &format!("step {i}"));
        }
    }
}

/// Drives a RecGen session teacher-forced from prompt `p` to the end of `toks`, comparing every
/// pending row with the reference's logits of its position.
fn recgen_run(s: &mut Session, want: &[Vec<f32>], toks: &[u32], p: usize, c1: usize) -> usize {
    let mut count = std::collections::HashMap::<usize, usize>::new();
    let mut steps = 0;
    loop {
        let n = s.pending_rows();
        assert!(n > 0);
        let mut acc = vec![];
        let mut done = false;
        for row in 0..n {
            let u = s.pending_unit(row);
            let k = *count
                .entry(u)
                .or_insert(if u == p / c1 { p % c1 } else { 0 });
            let pos = u * c1 + k;
            if pos >= toks.len() {
                done = true;
                break;
            }
            check(
                s.logits(row),
                &want[pos],
                &format!("recgen row {row} unit {u} pos {pos}"),
            );
            acc.push(toks[pos]);
            count.insert(u, k + 1);
        }
        if done {
            return steps;
        }
        s.accept(&acc).unwrap();
        steps += 1;
    }
}

#[test]
fn photon_recgen_matches_reference() {
    let (r, m) = photon_ref();
    let toks = tokens(48, 96, 7);
    for p in [5usize, 16, 21, 30] {
        let (xh, _, _) = r.latents(&toks, Some(p / 4));
        let want = r.decode1(&xh, &toks);
        let mut s = Session::new(&m, &opts(Mode::RecGen)).unwrap();
        s.feed(&toks[..p]).unwrap();
        let mc_end = (p / 16 + 1) * 16;
        assert_eq!(s.pending_rows(), (mc_end - p / 4 * 4) / 4);
        let steps = recgen_run(&mut s, &want, &toks, p, 4);
        assert!(steps > 0);
    }
}

#[test]
fn photon_mode_switch_and_conversation() {
    let (r, m) = photon_ref();
    let toks = tokens(64, 96, 11);
    let p = 21;
    // RecGen reply to the end of its second meta-context, then a new turn.
    let (xh, _, _) = r.latents(&toks[..48], Some(p / 4));
    let want = r.decode1(&xh, &toks[..48]);
    for mode in [Mode::RecGen, Mode::HierGen] {
        let mut s = Session::new(&m, &opts(Mode::RecGen)).unwrap();
        s.feed(&toks[..p]).unwrap();
        recgen_run(&mut s, &want, &toks[..48], p, 4);
        assert_eq!(s.position(), 48);
        s.set_mode(mode);
        s.feed(&toks[48..53]).unwrap();
        let mut fresh = Session::new(&m, &opts(mode)).unwrap();
        fresh.feed(&toks[..53]).unwrap();
        assert_eq!(s.pending_rows(), fresh.pending_rows());
        for row in 0..s.pending_rows() {
            check(s.logits(row), fresh.logits(row), "turn 2 == fresh prefill");
        }
    }
    // A reply cut inside a RecGen batch keeps the units in order up to the first unfinished one.
    let mut s = Session::new(&m, &opts(Mode::RecGen)).unwrap();
    s.feed(&toks[..p]).unwrap();
    // p = 21: units 5 (1 forced token), 6, 7 pending; two steps.
    let mut hist: Vec<u32> = toks[..p].to_vec();
    let mut units: Vec<Vec<u32>> = vec![vec![], vec![], vec![]];
    for step in 0..2 {
        let acc: Vec<u32> = (0..s.pending_rows())
            .map(|i| (step * 7 + i * 3) as u32 % 96)
            .collect();
        for (i, t) in acc.iter().enumerate() {
            units[i].push(*t);
        }
        s.accept(&acc).unwrap();
    }
    hist.extend(&units[0]); // unit 5 now has 3 of 4 tokens: unfinished, later units dropped
    s.feed(&toks[60..62]).unwrap();
    hist.extend(&toks[60..62]);
    let mut fresh = Session::new(&m, &opts(Mode::RecGen)).unwrap();
    fresh.feed(&hist).unwrap();
    assert_eq!(s.position(), hist.len());
    for row in 0..s.pending_rows() {
        check(s.logits(row), fresh.logits(row), "cut reply");
    }
}

#[test]
fn budget_too_small_is_a_clear_error() {
    let (_, m) = photon_ref();
    let min = m.min_memory();
    let e = Session::new(
        &m,
        &EngineOptions {
            memory_budget: min - 1,
            threads: 1,
            mode: Mode::HierGen,
        },
    )
    .unwrap_err();
    match e {
        Error::Memory(msg) => assert!(msg.contains(&min.to_string()), "{msg}"),
        e => panic!("{e}"),
    }
    Session::new(
        &m,
        &EngineOptions {
            memory_budget: min,
            threads: 1,
            mode: Mode::HierGen,
        },
    )
    .unwrap();
}

fn argmax(x: &[f32]) -> u32 {
    let mut b = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[b] {
            b = i;
        }
    }
    b as u32
}

/// Beyond the coarse cache: sink + sliding window, no error, no growth, finite logits.
#[test]
fn small_arena_slides_without_growth() {
    let spec = RandomSpec {
        context: 128,
        ..RandomSpec::tiny_llama()
    };
    let lm = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let spec = RandomSpec {
        context: 128,
        ..RandomSpec::tiny_photon()
    };
    let pm = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    for (m, mode) in [
        (&lm, Mode::HierGen),
        (&pm, Mode::HierGen),
        (&pm, Mode::RecGen),
    ] {
        let o = EngineOptions {
            memory_budget: m.min_memory(),
            threads: 1,
            mode,
        };
        let mut s = Session::new(m, &o).unwrap();
        let before = s.memory();
        s.feed(&tokens(70, 96, 1)).unwrap();
        while s.position() < 600 {
            let acc: Vec<u32> = (0..s.pending_rows()).map(|r| argmax(s.logits(r))).collect();
            for r in 0..s.pending_rows() {
                assert!(s.logits(r).iter().all(|v| v.is_finite()));
            }
            s.accept(&acc).unwrap();
        }
        let after = s.memory();
        assert_eq!(before.arena_bytes, after.arena_bytes);
        assert!(after.coarse_evicted > 0, "{after:?}");
        assert!(after.coarse_len <= after.coarse_capacity);
        // A new turn after sliding still works.
        s.feed(&tokens(9, 96, 2)).unwrap();
        assert!(s.logits(0).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn evaluator_matches_reference() {
    use photon::model::eval::{window_logits, Latents};
    let (r, m) = photon_ref();
    let bytes = random_model(&RandomSpec {
        w1: 0,
        ..RandomSpec::tiny_photon()
    })
    .unwrap();
    let (r0, m0) = (Ref::new(&bytes), Model::from_bytes(bytes).unwrap());
    let toks = tokens(64, 96, 13);
    for (r, m, lat) in [
        (&r0, &m0, Latents::Encoder),
        (&r0, &m0, Latents::Recursive { prompt: 22 }),
    ]
    .into_iter()
    .chain(
        [
            Latents::Encoder,
            Latents::Recursive { prompt: 21 },
            Latents::Recursive { prompt: 32 },
        ]
        .map(|lat| (&r, &m, lat)),
    ) {
        let u_p = match lat {
            Latents::Encoder => None,
            Latents::Recursive { prompt } => Some(prompt / 4),
        };
        let (xh, _, _) = r.latents(&toks, u_p);
        let want = r.decode1(&xh, &toks);
        let mut n = 0;
        window_logits(m, &toks, lat, |i, l| {
            check(l, &want[i], &format!("{lat:?} pos {i}"));
            n += 1;
        })
        .unwrap();
        let lo = match lat {
            Latents::Encoder => 1,
            Latents::Recursive { prompt } => prompt,
        };
        assert_eq!(n, 64 - lo);
    }
    let bytes = random_model(&RandomSpec::tiny_llama()).unwrap();
    let r = Ref::new(&bytes);
    let m = Model::from_bytes(bytes).unwrap();
    let want = r.llama_logits(&toks);
    let mut n = 0;
    window_logits(&m, &toks, Latents::Encoder, |i, l| {
        check(l, &want[i - 1], &format!("vanilla pos {i}"));
        n += 1;
    })
    .unwrap();
    assert_eq!(n, 63);
}

#[test]
fn recgen_reply_truncated_at_eos() {
    let (_, m) = photon_ref();
    let toks = tokens(64, 96, 17);
    let p = 18; // unit 4 has 2 forced tokens; units 4..8 pending
    let mut s = Session::new(&m, &opts(Mode::RecGen)).unwrap();
    s.feed(&toks[..p]).unwrap();
    let mut units: Vec<Vec<u32>> = vec![toks[16..18].to_vec(), vec![], vec![], vec![]];
    for _ in 0..4 {
        let n = s.pending_rows();
        let acc: Vec<u32> = (0..n).map(|r| argmax(s.logits(r))).collect();
        for (r, t) in acc.iter().enumerate() {
            let u = s.pending_unit(r) - 4;
            units[u].push(*t);
        }
        s.accept(&acc).unwrap();
    }
    // Units 4 (complete), 5, 6 (complete), 7 has 4 too: cut inside unit 6 after 1 token.
    let mut hist = toks[..16].to_vec();
    hist.extend(&units[0]);
    hist.extend(&units[1]);
    hist.push(units[2][0]);
    assert!(s.truncate(15).is_err());
    s.truncate(hist.len()).unwrap();
    assert_eq!(s.position(), hist.len());
    assert_eq!(s.pending_rows(), 0);
    s.feed(&toks[40..43]).unwrap();
    hist.extend(&toks[40..43]);
    let mut fresh = Session::new(&m, &opts(Mode::RecGen)).unwrap();
    fresh.feed(&hist).unwrap();
    assert_eq!(s.pending_rows(), fresh.pending_rows());
    for row in 0..s.pending_rows() {
        check(s.logits(row), fresh.logits(row), "after truncate");
    }
}

fn load_err(bytes: Vec<u8>) -> String {
    match Model::from_bytes(bytes) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn loading_rejects_bad_files_clearly() {
    use common::rewrite;
    use photon::gguf::OwnedValue;
    use photon::quant::GgmlType;
    let good = random_model(&RandomSpec::tiny_photon()).unwrap();
    let keep = |t: common::T| vec![t];
    let same = |_: &str, v: OwnedValue| Some(v);
    // Levels other than 2.
    let e = load_err(rewrite(
        &good,
        |k, v| {
            if k == "photon.levels" {
                Some(OwnedValue::U32(3))
            } else {
                Some(v)
            }
        },
        &[],
        keep,
    ));
    assert!(e.contains("photon.levels = 3"), "{e}");
    // Missing metadata.
    let e = load_err(rewrite(
        &good,
        |k, v| {
            if k == "photon.prefix_length" {
                None
            } else {
                Some(v)
            }
        },
        &[],
        keep,
    ));
    assert!(e.contains("photon.prefix_length"), "{e}");
    // D / C1 not a multiple of 32.
    let e = load_err(rewrite(
        &good,
        |k, v| {
            if k == "photon.chunk_sizes" {
                Some(OwnedValue::u32_array(&[8, 4]))
            } else {
                Some(v)
            }
        },
        &[],
        keep,
    ));
    assert!(e.contains("multiple of 32"), "{e}");
    // Missing tensor.
    let e = load_err(rewrite(&good, same, &[], |t| {
        if t.0 == "dec1.blk.1.ffn_up.weight" {
            vec![]
        } else {
            vec![t]
        }
    }));
    assert!(
        e.contains("dec1.blk.1.ffn_up.weight") && e.contains("missing"),
        "{e}"
    );
    // Transposed matrix.
    let e = load_err(rewrite(&good, same, &[], |mut t| {
        if t.0 == "enc1.blk.0.ffn_down.weight" {
            t.2.swap(0, 1);
        }
        vec![t]
    }));
    assert!(
        e.contains("enc1.blk.0.ffn_down.weight") && e.contains("expected"),
        "{e}"
    );
    // Extra block beyond block_count.
    let e = load_err(rewrite(&good, same, &[], |t| {
        let mut v = vec![t.clone()];
        if t.0 == "dec2.blk.0.attn_q.weight" {
            v.push(("dec2.blk.2.attn_q.weight".into(), t.1, t.2, t.3));
        }
        v
    }));
    assert!(e.contains("dec2.blk.2"), "{e}");
    // Grouped-query attention (llama).
    let ll = random_model(&RandomSpec::tiny_llama()).unwrap();
    let e = load_err(rewrite(
        &ll,
        |k, v| {
            if k == "llama.attention.head_count_kv" {
                Some(OwnedValue::U32(1))
            } else {
                Some(v)
            }
        },
        &[],
        keep,
    ));
    assert!(e.contains("grouped-query"), "{e}");
    // A mix of types loads and runs: Q8_0 / Q4_0 / F16 / BF16 matrices, F16 norms.
    for (mt, vt) in [
        (GgmlType::Q8_0, GgmlType::F16),
        (GgmlType::Q4_0, GgmlType::F32),
        (GgmlType::BF16, GgmlType::BF16),
        (GgmlType::F16, GgmlType::F16),
    ] {
        // Scale 0.05: random nets at larger scales amplify the activations' Q8 rounding.
        let spec = RandomSpec {
            mat_type: mt,
            vec_type: vt,
            scale: 0.05,
            ..RandomSpec::tiny_photon()
        };
        let bytes = random_model(&spec).unwrap();
        let r = Ref::new(&bytes);
        let m = Model::from_bytes(bytes).unwrap();
        let toks = tokens(32, 96, 23);
        let (xh, _, _) = r.latents(&toks, None);
        let want = r.decode1(&xh, &toks);
        let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
        s.feed(&toks[..25]).unwrap();
        let e = max_abs_diff(s.logits(0), &want[25]);
        // Float types: exact; quantized: activations are quantized to Q8 on the fly.
        let range = want[25].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let tol = match mt {
            GgmlType::Q8_0 | GgmlType::Q4_0 => 0.03 * range,
            _ => TOL,
        };
        assert!(e < tol, "{mt:?}/{vt:?}: max |Δ| {e} (logit range {range})");
    }
    // A llama file with the output tied to the embedding (llama.cpp may omit output.weight).
    let tied = rewrite(&ll, same, &[], |t| {
        if t.0 == "output.weight" {
            vec![]
        } else {
            vec![t]
        }
    });
    let m = Model::from_bytes(tied).unwrap();
    let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    s.feed(&[1, 2, 3]).unwrap();
    assert!(s.logits(0).iter().all(|v| v.is_finite()));
}

/// F1 with unbounded attention (the paper's W1 = ∞): its cache is linear and grows with F2's.
#[test]
fn photon_unbounded_f1_matches_reference() {
    let bytes = random_model(&RandomSpec {
        w1: 0,
        ..RandomSpec::tiny_photon()
    })
    .unwrap();
    let r = Ref::new(&bytes);
    let m = Model::from_bytes(bytes).unwrap();
    let toks = tokens(48, 96, 29);
    let (xh, _, _) = r.latents(&toks, None);
    let want = r.decode1(&xh, &toks);
    let mut s = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    s.feed(&toks[..7]).unwrap();
    for i in 7..47 {
        check(s.logits(0), &want[i], &format!("W1=0 step {i}"));
        s.accept(&[toks[i]]).unwrap();
    }
    let p = 22;
    let (xh, _, _) = r.latents(&toks, Some(p / 4));
    let want = r.decode1(&xh, &toks);
    let mut s = Session::new(&m, &opts(Mode::RecGen)).unwrap();
    s.feed(&toks[..p]).unwrap();
    recgen_run(&mut s, &want, &toks, p, 4);
}

/// Until the coarse cache is full a small arena gives exactly the roomy arena's logits; the
/// first eviction happens when one more position would not fit.
#[test]
fn coarse_cache_boundary() {
    let spec = RandomSpec {
        context: 256,
        ..RandomSpec::tiny_llama()
    };
    let m = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let cap = 40;
    let budget = m.budget_for_coarse(cap);
    let mut small = Session::new(
        &m,
        &EngineOptions {
            memory_budget: budget,
            threads: 1,
            mode: Mode::HierGen,
        },
    )
    .unwrap();
    assert_eq!(small.memory().coarse_capacity, cap);
    let mut big = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    let toks = tokens(120, 96, 31);
    for (i, &t) in toks.iter().enumerate() {
        small.feed(&[t]).unwrap();
        big.feed(&[t]).unwrap();
        let mem = small.memory();
        if i < cap {
            assert_eq!(mem.coarse_evicted, 0);
            assert_eq!(mem.coarse_len, i + 1);
            check(small.logits(0), big.logits(0), "before the boundary");
        } else {
            assert!(mem.coarse_evicted > 0 && mem.coarse_len <= cap);
            assert!(small.logits(0).iter().all(|v| v.is_finite()));
        }
    }
    // The same for PHOTON's F2 (one position per 16 tokens).
    let spec = RandomSpec {
        context: 256,
        ..RandomSpec::tiny_photon()
    };
    let m = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let budget = m.budget_for_coarse(9);
    let mut small = Session::new(
        &m,
        &EngineOptions {
            memory_budget: budget,
            threads: 1,
            mode: Mode::HierGen,
        },
    )
    .unwrap();
    let cap = small.memory().coarse_capacity;
    assert_eq!(cap, 9);
    let mut big = Session::new(&m, &opts(Mode::HierGen)).unwrap();
    let toks = tokens(16 * 14, 96, 37);
    for (i, &t) in toks.iter().enumerate() {
        small.feed(&[t]).unwrap();
        big.feed(&[t]).unwrap();
        if (i + 1) / 16 <= cap {
            check(small.logits(0), big.logits(0), "F2 before the boundary");
        }
    }
    assert!(small.memory().coarse_evicted > 0);
}

#[test]
fn fork_and_copy_continue_identically() {
    let (_, m) = photon_ref();
    let toks = tokens(40, 96, 41);
    for mode in [Mode::HierGen, Mode::RecGen] {
        let mut a = Session::new(&m, &opts(mode)).unwrap();
        a.feed(&toks[..19]).unwrap();
        let mut b = a.fork();
        let mut c = Session::new(&m, &opts(mode)).unwrap();
        c.copy_from(&a).unwrap();
        for _ in 0..9 {
            let acc: Vec<u32> = (0..a.pending_rows()).map(|r| argmax(a.logits(r))).collect();
            for s in [&mut a, &mut b, &mut c] {
                s.accept(&acc).unwrap();
            }
            for r in 0..a.pending_rows() {
                assert_eq!(a.logits(r), b.logits(r));
                assert_eq!(a.logits(r), c.logits(r));
            }
        }
    }
}

#[test]
fn saved_topk_round_trip_and_compare() {
    use photon::model::eval::{compare, compare_topk, read_topk, save_topk, Latents};
    use photon::quant::GgmlType;
    let spec = RandomSpec {
        scale: 0.05,
        ..RandomSpec::tiny_photon()
    };
    let f = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let q = Model::from_bytes(
        random_model(&RandomSpec {
            mat_type: GgmlType::Q8_0,
            ..spec
        })
        .unwrap(),
    )
    .unwrap();
    let stream = tokens(200, 96, 43);
    let mut buf = vec![];
    let n = save_topk(&f, &stream, 64, Latents::Encoder, 0, 1, 96, &mut buf).unwrap();
    assert_eq!(n, 3 * 63);
    let (v, saved) = read_topk(&buf).unwrap();
    assert_eq!((v, saved.len()), (96, n));
    // With the whole vocabulary saved, the top-k comparison equals the full one.
    let full = compare(&f, &q, &stream, 64, Latents::Encoder, 0, 1).unwrap();
    let topk = compare_topk(&q, &stream, 64, Latents::Encoder, 0, 1, &saved).unwrap();
    assert!(
        (full.kl_mean - topk.kl_mean).abs() < 1e-5,
        "{full:?} {topk:?}"
    );
    assert_eq!(full.top1, topk.top1);
    assert!((full.ppl_reference - topk.ppl_reference).abs() < 1e-3);
    // Against itself: KL 0, agreement 1.
    let same = compare_topk(&f, &stream, 64, Latents::Encoder, 0, 1, &saved).unwrap();
    assert!(same.kl_mean.abs() < 1e-5 && same.top1 == 1.0);
    let mut small = vec![];
    save_topk(&f, &stream, 64, Latents::Encoder, 0, 1, 32, &mut small).unwrap();
    let (_, s32) = read_topk(&small).unwrap();
    let t32 = compare_topk(&q, &stream, 64, Latents::Encoder, 0, 1, &s32).unwrap();
    println!(
        "Q8_0 vs F32: full KL {:.5}, top-32 KL {:.5}, top-1 {:.3}",
        full.kl_mean, t32.kl_mean, t32.top1
    );
    assert!(read_topk(&small[..small.len() - 1]).is_err());
}

/// N continuations of one prompt reading its coarse cache in place.
#[test]
fn shared_prefix_continuations() {
    let (_, pm) = photon_ref();
    let lm = Model::from_bytes(random_model(&RandomSpec::tiny_llama()).unwrap()).unwrap();
    let toks = tokens(70, 96, 47);
    for (m, mode) in [
        (&pm, Mode::HierGen),
        (&pm, Mode::RecGen),
        (&lm, Mode::HierGen),
    ] {
        let mut base = Session::new(m, &opts(mode)).unwrap();
        base.feed(&toks[..37]).unwrap();
        let sh = base.share().unwrap();
        assert!(sh.positions() > 0);
        let small = EngineOptions {
            memory_budget: m.min_memory() * 2,
            threads: 1,
            mode,
        };
        let mut kids: Vec<Session> = (0..3)
            .map(|_| Session::from_shared(m, &small, &sh).unwrap())
            .collect();
        assert!(kids[0].memory().arena_bytes < base.memory().arena_bytes);
        assert_eq!(kids[0].memory().shared_prefix_bytes, sh.bytes());
        for (k, kid) in kids.iter_mut().enumerate() {
            let mut twin = base.fork();
            // Each continuation takes its own path: a different forced turn, then greedy.
            let turn = tokens(5 + k, 96, 50 + k as u32);
            kid.feed(&turn).unwrap();
            twin.feed(&turn).unwrap();
            for _ in 0..40 {
                assert_eq!(kid.pending_rows(), twin.pending_rows());
                for r in 0..kid.pending_rows() {
                    check(kid.logits(r), twin.logits(r), "shared prefix vs own copy");
                }
                let acc: Vec<u32> = (0..kid.pending_rows())
                    .map(|r| argmax(twin.logits(r)))
                    .collect();
                kid.accept(&acc).unwrap();
                twin.accept(&acc).unwrap();
            }
        }
    }
}

/// Random interleavings of feed / accept / set_mode / truncate: after every feed the session
/// equals a fresh session fed the whole history (RecGen replies keep their units in order up to
/// the first unfinished one, or what truncate kept).
#[test]
fn random_operation_sequences_match_fresh_prefill() {
    let (_, m) = photon_ref();
    let c1 = 4;
    for seed in 1..13u64 {
        let mut rng = seed.wrapping_mul(0x9E3779B97F4A7C15);
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut mode = if next(2) == 0 {
            Mode::HierGen
        } else {
            Mode::RecGen
        };
        let mut s = Session::new(&m, &opts(mode)).unwrap();
        let mut hist: Vec<u32> = vec![1];
        s.feed(&hist).unwrap();
        let mut inflight: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        // History a sync would keep.
        let synced = |hist: &Vec<u32>, inflight: &std::collections::BTreeMap<usize, Vec<u32>>| {
            let mut h = hist.clone();
            let mut u = h.len() / c1;
            while let Some(t) = inflight.get(&u) {
                h.extend(t);
                if h.len() < (u + 1) * c1 {
                    break;
                }
                u += 1;
            }
            h
        };
        for _ in 0..60 {
            if hist.len() > 380 {
                break;
            }
            match next(10) {
                0..=2 => {
                    // feed a turn
                    hist = synced(&hist, &inflight);
                    inflight.clear();
                    let turn = tokens(1 + next(9) as usize, 96, next(1000) as u32);
                    s.feed(&turn).unwrap();
                    hist.extend(&turn);
                    assert_eq!(s.position(), hist.len(), "seed {seed}");
                    let mut fresh = Session::new(&m, &opts(mode)).unwrap();
                    fresh.feed(&hist).unwrap();
                    assert_eq!(s.pending_rows(), fresh.pending_rows(), "seed {seed}");
                    for r in 0..s.pending_rows() {
                        check(
                            s.logits(r),
                            fresh.logits(r),
                            &format!("seed {seed} after feed"),
                        );
                    }
                }
                3 => {
                    let new = if mode == Mode::HierGen {
                        Mode::RecGen
                    } else {
                        Mode::HierGen
                    };
                    if mode == Mode::RecGen {
                        hist = synced(&hist, &inflight);
                        inflight.clear();
                    }
                    mode = new;
                    s.set_mode(mode);
                    if mode == Mode::HierGen {
                        assert_eq!(s.position(), hist.len(), "seed {seed} after switch");
                    }
                }
                4 if mode == Mode::RecGen && !inflight.is_empty() => {
                    let full = synced(&hist, &inflight);
                    let lo = hist.len() / c1 * c1;
                    let len = lo + next((full.len() - lo + 1) as u64) as usize;
                    s.truncate(len).unwrap();
                    hist = full[..len].to_vec();
                    inflight.clear();
                    assert_eq!(s.position(), hist.len());
                    s.feed(&[]).unwrap();
                }
                _ => {
                    for _ in 0..1 + next(6) {
                        let n = s.pending_rows();
                        let acc: Vec<u32> = (0..n).map(|_| next(96) as u32).collect();
                        if mode == Mode::RecGen {
                            for (r, &t) in acc.iter().enumerate() {
                                inflight.entry(s.pending_unit(r)).or_default().push(t);
                            }
                        } else {
                            hist.extend(&acc);
                        }
                        s.accept(&acc).unwrap();
                    }
                }
            }
        }
    }
}

/// Half-precision caches: half the cache bytes, logits close to the f32 caches', every mode,
/// sliding and sharing included; the arena never exceeds the budget.
#[test]
fn f16_caches() {
    use photon::model::CacheType;
    // Scale 0.05: random nets at larger scales amplify rounding (RecGen's recursion most).
    let spec = RandomSpec {
        scale: 0.05,
        ..RandomSpec::tiny_photon()
    };
    let pm = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let spec = RandomSpec {
        scale: 0.05,
        ..RandomSpec::tiny_llama()
    };
    let lm = Model::from_bytes(random_model(&spec).unwrap()).unwrap();
    let toks = tokens(300, 96, 53);
    for (m, mode) in [
        (&pm, Mode::HierGen),
        (&pm, Mode::RecGen),
        (&lm, Mode::HierGen),
    ] {
        let o = opts(mode);
        let mut a = Session::new(m, &o).unwrap();
        let mut b = Session::new_with_cache(m, &o, CacheType::F16).unwrap();
        assert_eq!(
            b.memory().cache_bytes * 2,
            a.memory().cache_bytes,
            "{:?}",
            b.memory()
        );
        a.feed(&toks[..45]).unwrap();
        b.feed(&toks[..45]).unwrap();
        let mut worst = 0.0f32;
        for _ in 0..30 {
            assert_eq!(a.pending_rows(), b.pending_rows());
            for r in 0..a.pending_rows() {
                worst = worst.max(max_abs_diff(a.logits(r), b.logits(r)));
            }
            let acc: Vec<u32> = (0..a.pending_rows()).map(|r| argmax(a.logits(r))).collect();
            a.accept(&acc).unwrap();
            b.accept(&acc).unwrap();
        }
        println!("{mode:?} f16 vs f32 caches: max |Δ logit| {worst}");
        assert!(worst < 0.02, "{worst}");
        // Sliding through a minimum f16 arena.
        let min = m.min_memory_with(CacheType::F16);
        let o = EngineOptions {
            memory_budget: min,
            threads: 1,
            mode,
        };
        let mut s = Session::new_with_cache(m, &o, CacheType::F16).unwrap();
        assert!(s.memory().arena_bytes <= min);
        s.feed(&toks).unwrap();
        for _ in 0..100 {
            let acc: Vec<u32> = (0..s.pending_rows()).map(|r| argmax(s.logits(r))).collect();
            s.accept(&acc).unwrap();
        }
        assert!(s.memory().coarse_evicted > 0);
        assert!(s.logits(0).iter().all(|v| v.is_finite()));
        // Sharing an f16 prefix.
        let sh = b.share();
        if let Ok(sh) = sh {
            let mut kid = Session::from_shared(m, &opts(mode), &sh).unwrap();
            let mut twin = b.fork();
            kid.feed(&toks[200..205]).unwrap();
            twin.feed(&toks[200..205]).unwrap();
            for r in 0..kid.pending_rows() {
                assert_eq!(kid.logits(r), twin.logits(r));
            }
        }
    }
    // The arena never exceeds the budget.
    for m in [&pm, &lm] {
        for ty in [CacheType::F32, CacheType::F16] {
            for k in [1usize, 2, 3, 5, 8, 13] {
                let budget = m.min_memory_with(ty) * k;
                let o = EngineOptions {
                    memory_budget: budget,
                    threads: 1,
                    mode: Mode::HierGen,
                };
                let s = Session::new_with_cache(m, &o, ty).unwrap();
                assert!(
                    s.memory().arena_bytes <= budget,
                    "{ty:?} x{k}: {:?} > {budget}",
                    s.memory()
                );
            }
        }
    }
}

#[test]
fn max_useful_memory_spans_the_trained_range() {
    let (_, pm) = photon_ref();
    let lm = Model::from_bytes(random_model(&RandomSpec::tiny_llama()).unwrap()).unwrap();
    for (m, full) in [(&pm, 512 / 16), (&lm, 512)] {
        let o = EngineOptions {
            memory_budget: m.max_useful_memory(),
            threads: 1,
            mode: Mode::HierGen,
        };
        let s = Session::new(m, &o).unwrap();
        assert_eq!(s.memory().coarse_capacity, full);
        let b = m.budget_for_coarse(full);
        let o = EngineOptions {
            memory_budget: b,
            threads: 1,
            mode: Mode::HierGen,
        };
        assert_eq!(Session::new(m, &o).unwrap().memory().coarse_capacity, full);
    }
}

/// The benchmarks' hook: a vanilla session whose KV cache was filled with random entries
/// behaves like one at that position (appends after them, same arena, logits finite); PHOTON,
/// non-fresh sessions and oversized fills are errors, not panics.
#[test]
fn fill_kv_for_bench() {
    use photon::model::CacheType;
    let lm = Model::from_bytes(random_model(&RandomSpec::tiny_llama()).unwrap()).unwrap();
    for ty in [CacheType::F32, CacheType::F16] {
        let o = opts(Mode::HierGen);
        let mut s = Session::new_with_cache(&lm, &o, ty).unwrap();
        let arena = s.memory().arena_bytes;
        let cap = s.memory().coarse_capacity;
        assert!(s.fill_kv_for_bench(cap + 1, 1).is_err());
        s.fill_kv_for_bench(300, 7).unwrap();
        assert_eq!(s.position(), 300);
        assert_eq!(s.pending_rows(), 0);
        assert_eq!(s.memory().coarse_len, 300);
        s.feed(&[5]).unwrap();
        assert_eq!(s.memory().coarse_len, 301);
        for _ in 0..10 {
            assert!(s.logits(0).iter().all(|x| x.is_finite()));
            let t = argmax(s.logits(0));
            s.accept(&[t]).unwrap();
        }
        assert_eq!(s.position(), 311);
        assert_eq!(s.memory().arena_bytes, arena);
        // Not fresh any more.
        assert!(s.fill_kv_for_bench(10, 1).is_err());
        s.reset();
        s.fill_kv_for_bench(10, 1).unwrap();
    }
    let pm = Model::from_bytes(random_model(&RandomSpec::tiny_photon()).unwrap()).unwrap();
    let mut s = Session::new(&pm, &opts(Mode::HierGen)).unwrap();
    assert!(s.fill_kv_for_bench(16, 1).is_err());
}

/// A shared prefix longer than a continuation's own coarse cache: attention scores must have
/// room for the prefix's positions too (regression: the scores region ignored the prefix).
#[test]
fn long_shared_prefix_small_continuation() {
    let lm = Model::from_bytes(random_model(&RandomSpec::tiny_llama()).unwrap()).unwrap();
    let pm = Model::from_bytes(random_model(&RandomSpec::tiny_photon()).unwrap()).unwrap();
    let toks = tokens(300, 96, 61);
    for (m, mode) in [
        (&lm, Mode::HierGen),
        (&pm, Mode::HierGen),
        (&pm, Mode::RecGen),
    ] {
        let mut base = Session::new(m, &opts(mode)).unwrap();
        base.feed(&toks).unwrap();
        let sh = base.share().unwrap();
        let small = EngineOptions {
            memory_budget: m.min_memory(),
            threads: 1,
            mode,
        };
        let mut kid = Session::from_shared(m, &small, &sh).unwrap();
        assert!(sh.positions() > kid.memory().coarse_capacity);
        let mut twin = base.fork();
        // Fewer steps than the continuation's own cache holds (no sliding on either side).
        for _ in 0..30 {
            let acc: Vec<u32> = (0..kid.pending_rows())
                .map(|r| argmax(kid.logits(r)))
                .collect();
            for r in 0..kid.pending_rows() {
                check(kid.logits(r), twin.logits(r), "continuation");
            }
            kid.accept(&acc).unwrap();
            twin.accept(&acc).unwrap();
        }
    }
}
