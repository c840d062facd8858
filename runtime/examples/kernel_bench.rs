//! Kernel benchmark: matrix × vector throughput as GB/s of weight bytes read, next to a
//! read-bandwidth probe in the same process, on 1 and 2 threads; plus decode-sized matmul
//! latency with the persistent pool vs rayon vs one thread.
//!
//! `cargo run --release -p photon-runtime --example kernel_bench -- [--reps N] [--mb MB]
//!  [--types f16,q8_0,q4_0] [--threads 1,2] [--prefetch 0,1024] [--hot] [--prefill] [--no-latency]
//!  [--no-big]`
//! `PHOTON_ISA=avx2|scalar` forces a lower kernel path.
use photon_runtime::kernels::{act_blocks, Kernels, Matrix, ParFor, Serial};
use photon_runtime::quant::{f32_to_f16, BlockQ8Act, GgmlType};
use std::hint::black_box;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Random weights of `ty` (valid small scales, random quants), filled fast.
fn weights(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let n = ty.bytes_for((rows * cols) as u64).unwrap() as usize;
    let mut data = vec![0u8; n];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for c in data.chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        c.copy_from_slice(&r[..c.len()]);
    }
    let scale = f32_to_f16(0.01).to_le_bytes();
    match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 => {
            for b in data.chunks_mut(ty.block_bytes()) {
                b[..2].copy_from_slice(&scale);
            }
        }
        GgmlType::F16 => {
            for e in data.chunks_mut(2) {
                // Small finite halves: sign and mantissa random, exponent fixed.
                let bits = (u16::from_le_bytes([e[0], e[1]]) & 0x83ff) | 0x2000;
                e.copy_from_slice(&bits.to_le_bytes());
            }
        }
        _ => {}
    }
    data
}

/// GB/s of summing `buf` on `threads` threads (median of `reps`): the runtime's probe.
fn probe(buf: &[u64], threads: usize, reps: usize) -> f64 {
    photon_runtime::kernels::probe::probe(buf, threads, reps)
}

struct Rayon;
// SAFETY: each index is spawned once, and `rayon::scope` returns when all spawns are done.
unsafe impl ParFor for Rayon {
    fn par_for(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        rayon::scope(|s| {
            for i in 1..n {
                s.spawn(move |_| f(i));
            }
            f(0);
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let reps: usize = arg("--reps").and_then(|v| v.parse().ok()).unwrap_or(7);
    let mb: usize = arg("--mb").and_then(|v| v.parse().ok()).unwrap_or(280);
    let types = arg("--types").unwrap_or("f16,q8_0,q4_0".into());
    let threads: Vec<usize> = arg("--threads")
        .unwrap_or("1,2".into())
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let k0 = Kernels::detect();
    println!(
        "isa {:?}, cores {}, reps {reps} (medians)",
        k0.isa(),
        k0.threads()
    );

    if !args.iter().any(|a| a == "--no-big") {
        // Every rep runs the probe and every matrix once, interleaved, so drifting machine
        // speed hits them alike; medians over reps, and the median of per-rep ratios.
        let hot = args.iter().any(|a| a == "--hot");
        let probe_buf: Vec<u64> = if hot {
            Vec::new()
        } else {
            (0..(512usize << 20) / 8).map(|i| i as u64).collect()
        };
        let pfs: Vec<usize> = arg("--prefetch")
            .unwrap_or("1024".into())
            .split(',')
            .map(|t| t.parse().unwrap())
            .collect();
        let cols = 16384;
        let mats: Vec<(GgmlType, usize, Vec<u8>)> = types
            .split(',')
            .map(|ty| {
                let ty = match ty {
                    "f16" => GgmlType::F16,
                    "bf16" => GgmlType::BF16,
                    "f32" => GgmlType::F32,
                    "q8_0" => GgmlType::Q8_0,
                    "q4_0" => GgmlType::Q4_0,
                    _ => panic!("unknown type {ty}"),
                };
                let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
                let rows = ((mb << 20) / row_bytes).div_ceil(64) * 64;
                (ty, rows, weights(ty, rows, cols))
            })
            .collect();
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut act = vec![
            BlockQ8Act {
                d: 0.0,
                sum: 0,
                qs: [0; 32]
            };
            act_blocks(cols, 1)
        ];
        let max_rows = mats.iter().map(|m| m.1).max().unwrap_or(0);
        let mut out = vec![0.0f32; max_rows];
        println!(
            "{:<6} {:>13} {:>7} {:>3} {:>5} {:>8} {:>8} {:>7} {:>8}",
            "type", "matrix", "MB", "thr", "pf", "GB/s", "probe", "ratio", "ms"
        );
        for &t in &threads {
            let k = k0.clone().with_threads(t);
            let nvar = mats.len() * pfs.len();
            let mut gbs = vec![Vec::new(); nvar];
            let mut ratio = vec![Vec::new(); nvar];
            let mut probes = Vec::new();
            for _ in 0..reps {
                // `--hot`: no probe between runs, so a small matrix stays in cache (compute
                // speed); each timing then averages 10 calls.
                let p = if hot { 1.0 } else { probe(&probe_buf, t, 1) };
                probes.push(p);
                for (mi, (ty, rows, data)) in mats.iter().enumerate() {
                    let w = Matrix::new(*ty, *rows, cols, data).unwrap();
                    for (pi, &pf) in pfs.iter().enumerate() {
                        let kk = k.clone().with_prefetch(pf);
                        kk.matmul(&w, &x, 1, &mut out[..*rows], &mut act); // warm
                        let inner = if hot { 10 } else { 1 };
                        let start = Instant::now();
                        for _ in 0..inner {
                            kk.matmul(&w, &x, 1, &mut out[..*rows], &mut act);
                            black_box(&out);
                        }
                        let g = (data.len() * inner) as f64 / start.elapsed().as_secs_f64() / 1e9;
                        gbs[mi * pfs.len() + pi].push(g);
                        ratio[mi * pfs.len() + pi].push(g / p);
                    }
                }
            }
            let pm = median(probes.clone());
            println!(
                "{:<6} {:>13} {:>7.1} {:>3} {:>5} {:>8.2} {:>8.2} {:>7} {:>8}",
                "probe", "sum 512 MB", 536.9, t, "-", pm, pm, "-", "-"
            );
            for (mi, (ty, rows, data)) in mats.iter().enumerate() {
                for (pi, &pf) in pfs.iter().enumerate() {
                    let v = gbs[mi * pfs.len() + pi].clone();
                    // Hot (compute-bound) runs report the best rep: preemption only slows.
                    let g = if hot {
                        v.iter().cloned().fold(0.0, f64::max)
                    } else {
                        median(v)
                    };
                    println!(
                        "{:<6} {:>13} {:>7.1} {:>3} {:>5} {:>8.2} {:>8.2} {:>6.0}% {:>8.2}",
                        ty.name(),
                        format!("{rows}x{cols}"),
                        data.len() as f64 / 1e6,
                        t,
                        pf,
                        g,
                        pm,
                        100.0 * median(ratio[mi * pfs.len() + pi].clone()),
                        data.len() as f64 / g / 1e6
                    );
                }
            }
        }
        drop(probe_buf);
    }

    if args.iter().any(|a| a == "--prefill") {
        // Many vectors: weights are reused across tiles of 16 vectors, so time per vector
        // falls as n_vec grows.
        println!(
            "\nprefill: 4096x4096 matrix × n_vec vectors, {} threads",
            k0.threads()
        );
        println!(
            "{:<6} {:>6} {:>12} {:>14}",
            "type", "n_vec", "ms/call", "µs/vector"
        );
        let (rows, cols) = (4096, 4096);
        for ty in [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
            let data = weights(ty, rows, cols);
            let w = Matrix::new(ty, rows, cols, &data).unwrap();
            for n_vec in [1, 4, 16, 64] {
                let x: Vec<f32> = (0..cols * n_vec).map(|i| (i % 13) as f32 - 6.0).collect();
                let mut act = vec![
                    BlockQ8Act {
                        d: 0.0,
                        sum: 0,
                        qs: [0; 32]
                    };
                    act_blocks(cols, n_vec)
                ];
                let mut out = vec![0.0f32; rows * n_vec];
                let mut v = Vec::new();
                for _ in 0..reps {
                    let start = Instant::now();
                    k0.matmul(&w, &x, n_vec, &mut out, &mut act);
                    v.push(start.elapsed().as_secs_f64());
                }
                let m = median(v);
                println!(
                    "{:<6} {:>6} {:>12.3} {:>14.2}",
                    ty.name(),
                    n_vec,
                    m * 1e3,
                    m * 1e6 / n_vec as f64
                );
            }
        }
    }

    if !args.iter().any(|a| a == "--no-latency") {
        // Decode-sized work: pool vs rayon vs one thread, µs per call (median of batches).
        println!("\ndecode-sized matmul latency, µs per call (Q8_0, n_vec as given)");
        println!(
            "{:<16} {:>5} {:>10} {:>10} {:>10}",
            "matrix", "n_vec", "1 thread", "pool(2)", "rayon(2)"
        );
        let k1 = k0.clone().with_threads(1);
        let kp = k0.clone().with_threads(2);
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (rows, cols, n_vec) in [
            (256, 704, 1),
            (704, 256, 1),
            (4096, 256, 1),
            (256, 4096, 4),
            (1024, 1024, 1),
            (8192, 8192, 1),
        ] {
            let data = weights(GgmlType::Q8_0, rows, cols);
            let w = Matrix::new(GgmlType::Q8_0, rows, cols, &data).unwrap();
            let x: Vec<f32> = (0..cols * n_vec).map(|i| (i % 13) as f32 - 6.0).collect();
            let mut act = vec![
                BlockQ8Act {
                    d: 0.0,
                    sum: 0,
                    qs: [0; 32]
                };
                act_blocks(cols, n_vec)
            ];
            let mut out = vec![0.0f32; rows * n_vec];
            let iters = (100_000_000 / data.len()).clamp(3, 20000);
            // Variants interleaved rep by rep, so machine drift hits them alike.
            let mut t = [Vec::new(), Vec::new(), Vec::new()];
            for _ in 0..reps {
                for (vi, tv) in t.iter_mut().enumerate() {
                    let start = Instant::now();
                    match vi {
                        0 => (0..iters).for_each(|_| {
                            k1.matmul_with(&w, &x, n_vec, &mut out, &mut act, &Serial)
                        }),
                        1 => (0..iters).for_each(|_| kp.matmul(&w, &x, n_vec, &mut out, &mut act)),
                        // The whole batch runs inside the rayon pool (the caller is a rayon
                        // worker), so each call is a `rayon::scope` with local spawns.
                        _ => rayon_pool.install(|| {
                            (0..iters).for_each(|_| {
                                kp.matmul_with(&w, &x, n_vec, &mut out, &mut act, &Rayon)
                            })
                        }),
                    }
                    tv.push(start.elapsed().as_secs_f64() / iters as f64 * 1e6);
                }
            }
            let [t1, tp, tr] = t.map(median);
            println!(
                "{:<16} {:>5} {:>10.2} {:>10.2} {:>10.2}",
                format!("{rows}x{cols}"),
                n_vec,
                t1,
                tp,
                tr
            );
        }
    }
}
