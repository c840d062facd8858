//! The decode loop allocates nothing: feeding a next turn, HierGen and RecGen steps (PHOTON) and
//! vanilla steps run with a counting global allocator armed. Its own binary with
//! `harness = false`, so no other test thread can allocate while the counter is armed.
use photon::model::testing::{random_model, RandomSpec};
use photon::{EngineOptions, Mode, Model, Session};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static ARMED: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn argmax(x: &[f32]) -> u32 {
    let mut b = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[b] {
            b = i;
        }
    }
    b as u32
}

/// Runs `steps` decode steps (greedy) then feeds `turn`, with the counter armed.
fn run(s: &mut Session, steps: usize, turn: &[u32]) -> usize {
    let mut toks = [0u32; 16];
    COUNT.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    for _ in 0..steps {
        let n = s.pending_rows();
        for (r, t) in toks[..n].iter_mut().enumerate() {
            *t = argmax(s.logits(r));
        }
        s.accept(&toks[..n]).expect("accept");
    }
    s.feed(turn).expect("feed");
    for _ in 0..steps {
        let n = s.pending_rows();
        for (r, t) in toks[..n].iter_mut().enumerate() {
            *t = argmax(s.logits(r));
        }
        s.accept(&toks[..n]).expect("accept");
    }
    ARMED.store(false, Ordering::SeqCst);
    COUNT.load(Ordering::SeqCst)
}

/// Waits until every kernel worker thread has been on a CPU (its start-up allocation comes first
/// thing), then a little more; 5 s where /proc is not available.
fn wait_for_workers() {
    let t = std::time::Instant::now();
    while t.elapsed().as_secs() < 5 {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            std::thread::sleep(std::time::Duration::from_secs(5));
            return;
        };
        let mut waiting = 0;
        for e in dir.flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let ran = std::fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(1);
            if !comm.starts_with("alloc_free") && ran == 0 {
                waiting += 1;
            }
        }
        if waiting == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
}

fn main() {
    // The counter itself works.
    COUNT.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let v = std::hint::black_box(vec![1u8; 10]);
    ARMED.store(false, Ordering::SeqCst);
    drop(v);
    assert_eq!(
        COUNT.load(Ordering::SeqCst),
        1,
        "the counting allocator does not count"
    );
    let pm = Model::from_bytes(random_model(&RandomSpec::tiny_photon()).unwrap()).unwrap();
    let lm = Model::from_bytes(random_model(&RandomSpec::tiny_llama()).unwrap()).unwrap();
    let prompt: Vec<u32> = (0..37).map(|i| (i * 7 + 1) % 96).collect();
    let turn: Vec<u32> = (0..11).map(|i| (i * 5 + 2) % 96).collect();
    let mut failed = false;
    for (name, m, mode, budget) in [
        ("photon HierGen", &pm, Mode::HierGen, 8 << 20),
        ("photon RecGen", &pm, Mode::RecGen, 8 << 20),
        ("vanilla", &lm, Mode::HierGen, 8 << 20),
        (
            "photon HierGen, sliding coarse cache",
            &pm,
            Mode::HierGen,
            pm.min_memory(),
        ),
        (
            "photon RecGen, sliding coarse cache",
            &pm,
            Mode::RecGen,
            pm.min_memory(),
        ),
        (
            "vanilla, sliding cache",
            &lm,
            Mode::HierGen,
            lm.min_memory(),
        ),
    ] {
        let o = EngineOptions {
            memory_budget: budget,
            threads: 1,
            mode,
        };
        let mut s = Session::new(m, &o).unwrap();
        s.feed(&prompt).unwrap();
        let n = run(&mut s, 150, &turn);
        println!("{name}: {n} allocations in 300 decode steps and one fed turn");
        failed |= n != 0;
    }
    // Two threads (the kernels' persistent pool).
    for (name, m, mode) in [
        ("photon HierGen, 2 threads", &pm, Mode::HierGen),
        ("photon RecGen, 2 threads", &pm, Mode::RecGen),
        ("vanilla, 2 threads", &lm, Mode::HierGen),
    ] {
        let o = EngineOptions {
            memory_budget: 8 << 20,
            threads: 2,
            mode,
        };
        let mut s = Session::new(m, &o).unwrap();
        s.feed(&prompt).unwrap();
        // A new worker thread allocates once as it starts (std keeps its name for
        // stack-overflow reports): wait until it has started before arming; that is thread
        // creation (in `Session::new`), not the decode loop.
        wait_for_workers();
        let n = run(&mut s, 150, &turn);
        println!("{name}: {n} allocations in 300 decode steps and one fed turn");
        failed |= n != 0;
    }
    // Half-precision caches, minimum arena (sliding).
    for (name, m, mode) in [
        ("photon HierGen, f16 caches, sliding", &pm, Mode::HierGen),
        ("photon RecGen, f16 caches, sliding", &pm, Mode::RecGen),
        ("vanilla, f16 caches, sliding", &lm, Mode::HierGen),
    ] {
        let ty = photon::model::CacheType::F16;
        let o = EngineOptions {
            memory_budget: m.min_memory_with(ty),
            threads: 1,
            mode,
        };
        let mut s = Session::new_with_cache(m, &o, ty).unwrap();
        s.feed(&prompt).unwrap();
        let n = run(&mut s, 150, &turn);
        println!("{name}: {n} allocations in 300 decode steps and one fed turn");
        failed |= n != 0;
    }
    // Continuations reading a shared prompt prefix.
    for (name, m, mode) in [
        ("photon HierGen, shared prefix", &pm, Mode::HierGen),
        ("photon RecGen, shared prefix", &pm, Mode::RecGen),
        ("vanilla, shared prefix", &lm, Mode::HierGen),
    ] {
        let o = EngineOptions {
            memory_budget: 8 << 20,
            threads: 1,
            mode,
        };
        let mut base = Session::new(m, &o).unwrap();
        base.feed(&prompt).unwrap();
        let sh = base.share().unwrap();
        let mut s = Session::from_shared(m, &o, &sh).unwrap();
        let n = run(&mut s, 150, &turn);
        println!("{name}: {n} allocations in 300 decode steps and one fed turn");
        failed |= n != 0;
    }
    if failed {
        eprintln!("FAILED: the decode loop allocated");
        std::process::exit(1);
    }
    println!("alloc_free: ok");
}
