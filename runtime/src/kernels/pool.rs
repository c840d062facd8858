//! A small persistent thread pool for `matmul` (std only).
//!
//! `threads − 1` workers wait for a job; the calling thread takes part too. Tasks are claimed
//! from one atomic word (`epoch | n_tasks | next`), so when a worker is slow to wake (parked,
//! or its core busy with another process) the caller simply runs the remaining tasks itself,
//! as rayon's work stealing would: a job never waits on a task nobody has started. Waiting
//! workers spin for a while (decode issues matmuls microseconds apart) and then sleep on a
//! condition variable, so an idle pool costs nothing. Running a job allocates nothing.
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// `state` = epoch (32 bits) | n_tasks (16) | next task (16).
fn epoch(s: u64) -> u64 {
    s >> 32
}
fn n_tasks(s: u64) -> u64 {
    (s >> 16) & 0xffff
}
fn next(s: u64) -> u64 {
    s & 0xffff
}

struct Shared {
    state: AtomicU64,
    /// Points at the submitter's `Job` of the current epoch (valid while a task of that epoch
    /// is claimed and unfinished).
    job: AtomicPtr<Job<'static>>,
    /// Tasks of the current epoch finished.
    done: AtomicUsize,
    shutdown: AtomicBool,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

impl Shared {
    /// Claims and runs tasks of epoch `e` until none are left. Returns the number run.
    fn work(&self, e: u64) -> usize {
        let mut ran = 0;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if epoch(s) != e || next(s) >= n_tasks(s) {
                return ran;
            }
            if self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let job = self.job.load(Ordering::Acquire);
            // SAFETY: we hold an unfinished task of epoch `e`, so the submitter of `e` is still
            // waiting in `run` and the `Job` it published (stored before the epoch) is alive;
            // a later submitter cannot start before `done` counts our task.
            unsafe { (*job)(next(s) as usize) };
            self.done.fetch_add(1, Ordering::AcqRel);
            ran += 1;
        }
    }
}

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
            state: AtomicU64::new(0),
            job: AtomicPtr::new(core::ptr::null_mut()),
            done: AtomicUsize::new(0),
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
                    .spawn(move || worker(&s))
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

    /// Runs `f(i)` for every `i < n` (at most 65535) across the pool and the calling thread,
    /// and returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(n < 0x10000, "too many tasks");
        if self.workers.is_empty() || n <= 1 {
            (0..n).for_each(f);
            return;
        }
        let _guard = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: lifetime erasure only: workers dereference it only while holding a task of
        // this epoch, and we return only when every task is done.
        let job: Job<'static> = unsafe { core::mem::transmute::<Job<'_>, Job<'static>>(f) };
        s.job
            .store(&job as *const Job<'static> as *mut _, Ordering::Release);
        s.done.store(0, Ordering::Release);
        let e = epoch(s.state.load(Ordering::Relaxed)).wrapping_add(1) & 0xffff_ffff;
        s.state
            .store((e << 32) | ((n as u64) << 16), Ordering::SeqCst);
        // A worker announces itself in `sleepers` before its last look at `state` (both
        // SeqCst), so either it sees the new epoch or we see it and wake it.
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _l = s.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        s.work(e);
        // Only tasks already running elsewhere remain: wait for them.
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < n {
            spins += 1;
            if spins < 1 << 20 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = epoch(s.state.load(Ordering::Acquire));
    loop {
        // Wait for a new epoch: spin, then sleep.
        let start = Instant::now();
        let mut k = 0u32;
        let e = loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            let e = epoch(s.state.load(Ordering::Acquire));
            if e != seen {
                break e;
            }
            k = k.wrapping_add(1);
            if k % 64 == 0 && start.elapsed() > SPIN {
                let g = s.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                if epoch(s.state.load(Ordering::SeqCst)) == seen
                    && !s.shutdown.load(Ordering::SeqCst)
                {
                    let _g = s
                        .wake
                        .wait_timeout(g, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
            } else {
                core::hint::spin_loop();
            }
        };
        seen = e;
        s.work(e);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _l = self
                .shared
                .sleep_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
