//! A small persistent thread pool for `matmul` (std only).
//!
//! `n − 1` workers wait for a job; the calling thread runs task 0 itself. Waiting workers spin
//! for a while (decode issues matmuls back to back, microseconds apart) and then sleep on a
//! condition variable, so an idle pool costs nothing. Running a job allocates nothing.
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Incremented once per job; workers run a job when they see a new epoch.
    epoch: AtomicUsize,
    /// Workers that finished the current job.
    done: AtomicUsize,
    /// The current job (valid while a job runs).
    job: core::cell::UnsafeCell<Option<Job>>,
    shutdown: AtomicBool,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the submitting thread while no worker reads it (between
// epochs, under `submit`), and the closure it points at is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw job pointer is only dereferenced while the submitter waits.
unsafe impl Send for Shared {}

/// A persistent pool of `threads − 1` workers plus the calling thread.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    submit: Mutex<()>,
}

impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pool({} threads)", self.threads())
    }
}

impl Pool {
    /// A pool running jobs on `threads` threads (the caller included).
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            job: core::cell::UnsafeCell::new(None),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(alloc::format!("photon-mm-{i}"))
                    .spawn(move || worker(&s, i))
                    .expect("spawn kernel worker")
            })
            .collect();
        Pool {
            shared,
            workers,
            submit: Mutex::new(()),
        }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for `i < threads()`, one call per thread, and returns when all are done.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let n = self.workers.len();
        if n == 0 {
            f(0);
            return;
        }
        let _guard = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: lifetime erasure only; we wait below until every worker finished with `f`.
        let job: Job = unsafe { core::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: no worker reads `job` until the epoch below changes (they finished the last
        // job before `done` reached `n`), and `submit` excludes other submitters.
        unsafe { *s.job.get() = Some(job) };
        s.done.store(0, Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        // A worker announces itself in `sleepers` before its last look at `epoch` (both SeqCst),
        // so either it sees the new epoch or we see it and wake it.
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _l = s.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        f(0);
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < n {
            spins += 1;
            if spins < 1 << 16 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

fn worker(s: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        // Wait for a new epoch: spin, then sleep.
        let start = Instant::now();
        let mut k = 0u32;
        loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            if s.epoch.load(Ordering::Acquire) != seen {
                break;
            }
            k += 1;
            if k % 64 == 0 && start.elapsed() > SPIN {
                let g = s.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                if s.epoch.load(Ordering::SeqCst) == seen && !s.shutdown.load(Ordering::SeqCst) {
                    let _g = s
                        .wake
                        .wait_timeout(g, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
            } else {
                core::hint::spin_loop();
            }
        }
        seen = s.epoch.load(Ordering::Acquire);
        // SAFETY: the submitter set `job` before bumping the epoch and keeps the closure alive
        // until `done` counts this worker.
        if let Some(job) = unsafe { *s.job.get() } {
            // SAFETY: see above; the closure outlives this call.
            unsafe { (*job)(index) };
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _l = self.shared.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
