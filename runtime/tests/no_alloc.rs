//! The per-token work allocates nothing: a counting global allocator watches 1000 samples per
//! sampler configuration, and the streaming decoder over a long text.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use photon_runtime::sample::{Rng, Sampler, SamplerConfig};
use photon_runtime::tokenizer::{TokenDecoder, Tokenizer, TokenizerVocab};

struct Counting;
thread_local! {
    /// Counting is per thread, so tests running in parallel do not see each other.
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if WATCH.with(Cell::get) {
        ALLOCS.with(|a| a.set(a.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    ALLOCS.with(|a| a.set(0));
    WATCH.with(|w| w.set(true));
    let r = f();
    WATCH.with(|w| w.set(false));
    (ALLOCS.with(Cell::get), r)
}

#[test]
fn counter_sees_allocations() {
    let (n, v) = count(|| std::hint::black_box(vec![1u8; 100]));
    assert!(n > 0);
    drop(v);
}

#[test]
fn sampling_allocates_nothing() {
    const V: usize = 4096;
    let configs = [
        SamplerConfig::default(),
        SamplerConfig::greedy(),
        SamplerConfig {
            top_k: 0,
            ..SamplerConfig::default()
        },
        SamplerConfig {
            top_k: 0,
            min_p: 0.0,
            ..SamplerConfig::default()
        },
        SamplerConfig::unrestricted(3),
    ];
    let mut rng = Rng::new(1);
    let mut logits = vec![0.0f32; V];
    let mut recent: Vec<u32> = Vec::with_capacity(1000 * configs.len());
    for cfg in configs {
        let mut s = Sampler::new(cfg, V).unwrap();
        let (n, ()) = count(|| {
            for _ in 0..1000 {
                for l in logits.iter_mut() {
                    *l = (rng.next_f64() * 16.0 - 8.0) as f32;
                }
                let t = s.sample(&mut logits, &recent);
                assert!((t as usize) < V);
                recent.push(t);
            }
        });
        assert_eq!(n, 0, "allocations while sampling with {cfg:?}");
    }
}

#[test]
fn streaming_decode_allocates_nothing() {
    let v = common::json::Json::parse(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer_vocab.json"
        ))
        .unwrap(),
    );
    let vocab = TokenizerVocab {
        tokens: v
            .get("tokens")
            .arr()
            .iter()
            .map(|t| t.str().to_string())
            .collect(),
        scores: v
            .get("scores")
            .arr()
            .iter()
            .map(|s| s.f64() as f32)
            .collect(),
        token_types: v
            .get("token_types")
            .arr()
            .iter()
            .map(|t| t.i64() as i32)
            .collect(),
        bos_id: v.get("bos_id").opt_u32(),
        eos_id: v.get("eos_id").opt_u32(),
        unk_id: v.get("unk_id").opt_u32(),
        pad_id: v.get("pad_id").opt_u32(),
        eot_id: v.get("eot_id").opt_u32(),
        add_space_prefix: v.get("add_space_prefix").bool(),
        add_bos: v.get("add_bos").bool(),
    };
    let tok = Tokenizer::new(vocab).unwrap();
    let text =
        "ROMEO.\nBut soft, what light — “through” yonder window breaks? 日本 😀 é\n".repeat(20);
    let mut ids = Vec::new();
    tok.encode(&text, &mut ids).unwrap();
    let mut out = String::with_capacity(text.len() + 16);
    let mut d = TokenDecoder::new();
    let (n, ()) = count(|| {
        for &id in &ids {
            d.push(&tok, id, &mut out).unwrap();
        }
        d.finish(&mut out);
    });
    assert_eq!(n, 0);
    assert_eq!(out, text);
}
