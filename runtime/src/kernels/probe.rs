//! Read-bandwidth probe (std): how fast this machine streams memory on `threads` threads, so
//! that a kernel's or a model's achieved GB/s can be quoted as a share of what the memory
//! system delivers, measured in the same process. Used by `kernel_bench` and `photon-bench`.
use std::hint::black_box;
use std::time::Instant;
use std::vec::Vec;

/// Sum with 8 independent accumulators (so the probe is bound by memory, not by one add chain).
pub fn sum_u64(c: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = c.chunks_exact(8);
    for ch in &mut it {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a = a.wrapping_add(v);
        }
    }
    let tail = it.remainder().iter().fold(0u64, |a, &b| a.wrapping_add(b));
    acc.iter().fold(tail, |a, &b| a.wrapping_add(b))
}

/// A buffer of `bytes` bytes (rounded down to 8) filled with non-zero data, for [`probe`].
/// Use one well above the last-level cache (e.g. 512 MB) to measure DRAM bandwidth.
pub fn probe_buffer(bytes: usize) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..bytes / 8)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x
        })
        .collect()
}

/// GB/s (1e9 bytes a second) of summing `buf` split over `threads` scoped threads: the median
/// of `reps` timed passes after one untimed warm-up pass.
pub fn probe(buf: &[u64], threads: usize, reps: usize) -> f64 {
    let threads = threads.max(1);
    let mut t = Vec::new();
    for _ in 0..reps.max(1) + 1 {
        let start = Instant::now();
        let chunk = buf.len().div_ceil(threads).max(1);
        let s: u64 = std::thread::scope(|sc| {
            let hs: Vec<_> = buf
                .chunks(chunk)
                .map(|c| sc.spawn(move || sum_u64(c)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("probe thread"))
                .fold(0, u64::wrapping_add)
        });
        black_box(s);
        t.push(start.elapsed().as_secs_f64());
    }
    t.remove(0);
    t.sort_by(|a, b| a.total_cmp(b));
    (buf.len() * 8) as f64 / t[t.len() / 2] / 1e9
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_sums_and_measures() {
        let b = super::probe_buffer(1 << 16);
        assert_eq!(b.len(), 1 << 13);
        let direct = b.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        assert_eq!(super::sum_u64(&b), direct);
        let gbs = super::probe(&b, 2, 3);
        assert!(gbs.is_finite() && gbs > 0.0);
    }
}
