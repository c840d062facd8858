//! `matmul` (every type, 1..=17 vectors, pool of 2 threads) allocates nothing.
use photon_runtime::kernels::{act_blocks, Kernels, Matrix};
use photon_runtime::quant::{quantize_row, BlockQ8Act, GgmlType};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn matmul_does_not_allocate() {
    let k = Kernels::detect().with_threads(2);
    let (rows, cols, max_vec) = (260, 512, 17);
    let x: Vec<f32> = (0..cols * max_vec).map(|i| (i % 17) as f32 - 8.0).collect();
    let mut act = vec![
        BlockQ8Act {
            d: 0.0,
            sum: 0,
            qs: [0; 32]
        };
        act_blocks(cols, max_vec)
    ];
    let mut out = vec![0.0f32; rows * max_vec];
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
    ] {
        let mut data = Vec::new();
        for _ in 0..rows {
            quantize_row(ty, &x[..cols], &mut data).unwrap();
        }
        let w = Matrix::new(ty, rows, cols, &data).unwrap();
        k.matmul(&w, &x, 1, &mut out, &mut act); // warm-up
        COUNTING.store(true, Ordering::SeqCst);
        for n_vec in 1..=max_vec {
            k.matmul(&w, &x, n_vec, &mut out, &mut act);
        }
        COUNTING.store(false, Ordering::SeqCst);
        assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "{} allocated", ty.name());
    }
}
