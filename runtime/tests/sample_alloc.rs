//! The sampler allocates nothing per token: a counting global allocator watches 1000 samples.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use photon_runtime::sample::{Rng, Sampler, SamplerConfig};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCH.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCH.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn sampling_allocates_nothing() {
    const V: usize = 4096;
    // The counter works: a watched allocation is seen.
    WATCH.with(|w| w.set(true));
    let probe = std::hint::black_box(vec![1u8; 100]);
    WATCH.with(|w| w.set(false));
    drop(probe);
    assert!(ALLOCS.swap(0, Ordering::Relaxed) > 0);
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
        WATCH.with(|w| w.set(true));
        for _ in 0..1000 {
            for l in logits.iter_mut() {
                *l = (rng.next_f64() * 16.0 - 8.0) as f32;
            }
            let t = s.sample(&mut logits, &recent);
            assert!((t as usize) < V);
            recent.push(t);
        }
        WATCH.with(|w| w.set(false));
        assert_eq!(
            ALLOCS.load(Ordering::Relaxed),
            0,
            "allocations while sampling with {cfg:?}"
        );
    }
}
