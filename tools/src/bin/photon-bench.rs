//! photon-bench: prompt processing and generation speed, memory and bandwidth of PHOTON
//! (HierGen, RecGen) and vanilla models, in the spirit of llama-bench. See docs/results.md.
//!
//! ```text
//! photon-bench -m photon.gguf -m vanilla.gguf -p 512 -n 128 --pg 2048,128 --pg 128,2048 \
//!     -t 1,2 -r 3 --cache f16 -o md|csv|json
//! photon-bench -m photon.gguf -m vanilla.gguf --mq 2048,128 --parallel 1,4,16,64
//! photon-bench -m models/photon-tiny-f16.gguf --soak 1000000 --memory-mb 2
//! ```
//! Every (model, mode, threads, test) run of every repetition is its own child process (so
//! peak RSS is per run); repetitions are the outer loop, so PHOTON and vanilla runs alternate.
//! A read-bandwidth probe runs in this process once per repetition and thread count.
use clap::Parser;
use photon_runtime::kernels::probe;
use photon_runtime::model::{CacheType, Model, ModelKind};
use photon_runtime::{EngineOptions, Mode, Session};
use photon_tools::*;
use serde_json::{json, Value};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "photon-bench",
    version,
    about = "Speed, memory and bandwidth of PHOTON and vanilla models (llama-bench style)"
)]
struct Cli {
    /// Model files (PHOTON and/or vanilla GGUF); repeat the flag for several.
    #[arg(short = 'm', long = "model", required = true)]
    models: Vec<String>,
    /// PHOTON modes to run: hiergen, recgen (vanilla models ignore modes).
    #[arg(long, value_delimiter = ',', default_value = "hiergen,recgen")]
    modes: Vec<String>,
    /// Prompt processing tests: prefill N tokens (comma-separated).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',')]
    pp: Vec<usize>,
    /// Text generation tests: decode N tokens after a 1-token prompt (BOS).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',')]
    tg: Vec<usize>,
    /// Prompt + generation tests "P,N": prefill P tokens, then decode N (repeatable).
    #[arg(long = "pg")]
    pg: Vec<String>,
    /// Multi-query tests "P,N": one P-token prompt, then K continuations of N tokens each that
    /// share the prompt's coarse cache, for every K of --parallel (repeatable).
    #[arg(long = "mq")]
    mq: Vec<String>,
    /// Numbers of parallel continuations for --mq.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    parallel: Vec<usize>,
    /// Thread counts (comma-separated).
    #[arg(short = 't', long, value_delimiter = ',', default_value = "2")]
    threads: Vec<usize>,
    /// Repetitions of every run (medians and min–max are reported).
    #[arg(short = 'r', long, default_value_t = 3)]
    reps: usize,
    /// Cache element type, the same for every model: f16 or f32.
    #[arg(long, default_value = "f16")]
    cache: String,
    /// Output format: md, csv or json.
    #[arg(short = 'o', long, default_value = "md")]
    output: String,
    /// Vanilla prompts longer than this are not prefilled: the KV cache is filled with random
    /// entries instead (Session::fill_kv_for_bench) and decode runs over it; prefill
    /// speed is then not reported. 0 = always prefill.
    #[arg(long, default_value_t = 8192)]
    fill_above: usize,
    /// Size of the read-bandwidth probe's buffer (MB); 0 skips the probe.
    #[arg(long, default_value_t = 512)]
    probe_mb: usize,
    /// Arena budget in MiB (default: exactly what the test's context needs).
    #[arg(long)]
    memory_mb: Option<f64>,
    /// Soak: decode this many tokens with the first model / mode / thread count and a fixed
    /// arena, reporting RSS at every power of ten from 1000 on.
    #[arg(long)]
    soak: Option<usize>,
    /// Run everything in this process (no child per run; peak RSS is then cumulative).
    #[arg(long)]
    no_fork: bool,
    /// Print progress to stderr.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Internal: run one job and print its JSON line.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    Pp(usize),
    Tg(usize),
    Pg(usize, usize),
    Mq(usize, usize, usize),
}

impl Test {
    fn name(&self) -> String {
        match *self {
            Test::Pp(n) => format!("pp{n}"),
            Test::Tg(n) => format!("tg{n}"),
            Test::Pg(p, n) => format!("pp{p}+tg{n}"),
            Test::Mq(p, n, k) => format!("pp{p}+{k}x tg{n}"),
        }
    }
    fn prompt_gen(&self) -> (usize, usize) {
        match *self {
            Test::Pp(n) => (n, 0),
            Test::Tg(n) => (1, n),
            Test::Pg(p, n) | Test::Mq(p, n, _) => (p, n),
        }
    }
    fn encode(&self) -> String {
        match *self {
            Test::Pp(n) => format!("pp:{n}"),
            Test::Tg(n) => format!("tg:{n}"),
            Test::Pg(p, n) => format!("pg:{p}:{n}"),
            Test::Mq(p, n, k) => format!("mq:{p}:{n}:{k}"),
        }
    }
    fn decode(s: &str) -> Result<Test, String> {
        let v: Vec<&str> = s.split(':').collect();
        let n = |i: usize| -> Result<usize, String> {
            v.get(i)
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| format!("bad test '{s}'"))
        };
        match v[0] {
            "pp" => Ok(Test::Pp(n(1)?)),
            "tg" => Ok(Test::Tg(n(1)?)),
            "pg" => Ok(Test::Pg(n(1)?, n(2)?)),
            "mq" => Ok(Test::Mq(n(1)?, n(2)?, n(3)?)),
            _ => Err(format!("bad test '{s}'")),
        }
    }
}

fn pair(s: &str, flag: &str) -> Result<(usize, usize), String> {
    let v: Vec<&str> = s.split(',').collect();
    match v.as_slice() {
        [a, b] => match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) if a > 0 => Ok((a, b)),
            _ => Err(format!("{flag} wants P,N with P ≥ 1 (got '{s}')")),
        },
        _ => Err(format!("{flag} wants P,N (got '{s}')")),
    }
}

/// One job: a model, a mode, a thread count, a test.
#[derive(Debug, Clone)]
struct Job {
    model: usize,
    mode: Mode,
    threads: usize,
    test: Test,
}

fn budget_for(m: &Model, tokens: usize, cache: CacheType) -> usize {
    let positions = match m.kind() {
        ModelKind::Photon => tokens.div_ceil(m.config().meta_tokens()) + 2,
        ModelKind::Llama => tokens + 2,
    };
    m.budget_for_coarse_with(positions, cache)
}

fn greedy(s: &Session, toks: &mut [u32; 16]) -> usize {
    let n = s.pending_rows();
    for (r, t) in toks[..n].iter_mut().enumerate() {
        *t = photon_runtime::model::eval::argmax(s.logits(r)) as u32;
    }
    n
}

/// Runs one job in this process; returns its measurements as JSON.
fn run_job(
    path: &str,
    mode: Mode,
    threads: usize,
    test: Test,
    cache: CacheType,
    fill_above: usize,
    memory_mb: Option<f64>,
) -> Result<Value, String> {
    let m = Model::open(path).map_err(|e| format!("{path}: {e}"))?;
    let (p, n) = test.prompt_gen();
    let prompt = prompt_tokens(p, m.vocab_size(), 7);
    let opts = |tokens: usize| EngineOptions {
        memory_budget: memory_mb
            .map(|mb| (mb * (1 << 20) as f64) as usize)
            .unwrap_or_else(|| budget_for(&m, tokens, cache)),
        threads,
        mode,
    };
    let fill = m.kind() == ModelKind::Llama && fill_above > 0 && p > fill_above;
    let mut s = Session::new_with_cache(&m, &opts(p + n), cache).map_err(|e| e.to_string())?;
    let t = Instant::now();
    if fill {
        s.fill_kv_for_bench(p - 1, 11).map_err(|e| e.to_string())?;
        s.feed(&prompt[p - 1..]).map_err(|e| e.to_string())?;
    } else {
        s.feed(&prompt).map_err(|e| e.to_string())?;
    }
    let prefill_s = t.elapsed().as_secs_f64();
    let mut toks = [0u32; 16];
    let mut out = json!({
        "prefill_s": if fill { Value::Null } else { json!(prefill_s) },
        "prefill_tokens": p,
        "filled": fill,
    });
    if let Test::Mq(_, _, k) = test {
        let sh = s.share().map_err(|e| e.to_string())?;
        drop(s);
        let own = opts(n);
        let mut ss: Vec<Session> = (0..k)
            .map(|_| Session::from_shared(&m, &own, &sh))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let start = ss[0].position();
        let t = Instant::now();
        loop {
            let mut busy = false;
            for s in ss.iter_mut() {
                if s.position() - start < n {
                    busy = true;
                    let r = greedy(s, &mut toks);
                    s.accept(&toks[..r]).map_err(|e| e.to_string())?;
                }
            }
            if !busy {
                break;
            }
        }
        let decode_s = t.elapsed().as_secs_f64();
        let own_cache: usize = ss.iter().map(|s| s.memory().cache_bytes).sum();
        let own_arena: usize = ss.iter().map(|s| s.memory().arena_bytes).sum();
        let tokens: usize = ss.iter().map(|s| s.position() - start).sum();
        out["decode_s"] = json!(decode_s);
        out["decode_tokens"] = json!(tokens);
        out["shared_prefix_bytes"] = json!(sh.bytes());
        out["cache_bytes"] = json!(sh.bytes() + own_cache);
        out["own_cache_bytes_each"] = json!(own_cache / k.max(1));
        out["arena_bytes"] = json!(own_arena);
        out["coarse_len"] = json!(sh.positions() + ss[0].memory().coarse_len);
    } else {
        let start = s.position();
        let t = Instant::now();
        while s.position() - start < n {
            let r = greedy(&s, &mut toks);
            s.accept(&toks[..r]).map_err(|e| e.to_string())?;
        }
        let decode_s = t.elapsed().as_secs_f64();
        let mem = s.memory();
        out["decode_s"] = json!(decode_s);
        out["decode_tokens"] = json!(s.position() - start);
        out["shared_prefix_bytes"] = json!(0);
        out["cache_bytes"] = json!(mem.cache_bytes);
        out["arena_bytes"] = json!(mem.arena_bytes);
        out["coarse_len"] = json!(mem.coarse_len);
        out["coarse_capacity"] = json!(mem.coarse_capacity);
        out["coarse_evicted"] = json!(mem.coarse_evicted);
    }
    let (rss_now, hwm) = rss();
    out["rss_bytes"] = json!(rss_now);
    out["peak_rss_bytes"] = json!(hwm);
    Ok(out)
}

fn cache_of(s: &str) -> Result<CacheType, String> {
    parse_cache(s)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|x| x.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "loadavg": load.trim(),
        "isa": format!("{:?}", photon_runtime::kernels::Kernels::detect().isa()),
    })
}

fn soak(cli: &Cli) -> Result<String, String> {
    let path = &cli.models[0];
    let m = Model::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mode = parse_mode(&cli.modes[0])?;
    let cache = cache_of(&cli.cache)?;
    let total = cli.soak.unwrap_or(0);
    let budget = cli
        .memory_mb
        .map(|mb| (mb * (1 << 20) as f64) as usize)
        .unwrap_or_else(|| m.max_useful_memory_with(cache));
    let o = EngineOptions {
        memory_budget: budget,
        threads: cli.threads[0],
        mode,
    };
    let mut s = Session::new_with_cache(&m, &o, cache).map_err(|e| e.to_string())?;
    let prompt = prompt_tokens(16, m.vocab_size(), 3);
    s.feed(&prompt).map_err(|e| e.to_string())?;
    let start = s.position();
    let mut toks = [0u32; 16];
    let mut rows = Vec::new();
    let mut next = 1000usize;
    let t0 = Instant::now();
    let mut tseg = Instant::now();
    let mut last = 0usize;
    let mut first_hwm = 0u64;
    while s.position() - start < total {
        let r = greedy(&s, &mut toks);
        s.accept(&toks[..r]).map_err(|e| e.to_string())?;
        let done = s.position() - start;
        if done >= next || done >= total {
            let (now, hwm) = rss();
            if first_hwm == 0 {
                first_hwm = hwm;
            }
            let mem = s.memory();
            rows.push(vec![
                done.to_string(),
                format!("{:.0}", (done - last) as f64 / tseg.elapsed().as_secs_f64()),
                format!("{:.2}", now as f64 / (1 << 20) as f64),
                format!("{:.2}", hwm as f64 / (1 << 20) as f64),
                format!("{:+.2}%", (hwm as f64 / first_hwm as f64 - 1.0) * 100.0),
                format!("{:.3}", mem.arena_bytes as f64 / (1 << 20) as f64),
                mem.coarse_len.to_string(),
                mem.coarse_evicted.to_string(),
            ]);
            if cli.verbose {
                eprintln!("{}", rows.last().unwrap().join("  "));
            }
            last = done;
            tseg = Instant::now();
            while next <= done {
                next *= 10;
            }
        }
    }
    let h = [
        "tokens",
        "tok/s (segment)",
        "RSS MiB",
        "peak RSS MiB",
        "peak vs first",
        "arena MiB",
        "coarse len",
        "evicted",
    ];
    let title = format!(
        "soak: {path}, {}, {} thread(s), {:?} caches, arena budget {budget} B, {:.0} s\n\n",
        if m.kind() == ModelKind::Llama {
            "vanilla"
        } else {
            mode_name(mode)
        },
        cli.threads[0],
        cache,
        t0.elapsed().as_secs_f64()
    );
    Ok(match cli.output.as_str() {
        "csv" => csv(&h, &rows),
        "json" => {
            let v: Vec<Value> = rows
                .iter()
                .map(|r| {
                    Value::Object(
                        h.iter()
                            .zip(r)
                            .map(|(k, v)| (k.to_string(), json!(v)))
                            .collect(),
                    )
                })
                .collect();
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        _ => title + &markdown(&h, &rows),
    })
}

fn nan(s: String) -> String {
    if s.contains("NaN") || s.contains("inf") {
        "–".into()
    } else {
        s
    }
}

fn fmt_tps(s: &Stats) -> String {
    if s.median.is_nan() {
        "–".into()
    } else if s.median >= 100.0 {
        format!("{:.0}", s.median)
    } else {
        format!("{:.2}", s.median)
    }
}

fn fmt_spread(s: &Stats) -> String {
    if s.median.is_nan() {
        "–".into()
    } else {
        format!("{:.4}–{:.4}", s.min, s.max)
            .split('–')
            .map(|x| {
                let v: f64 = x.parse().unwrap_or(f64::NAN);
                if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .collect::<Vec<_>>()
            .join("–")
    }
}

fn run(cli: Cli) -> Result<String, String> {
    if cli.threads.is_empty() || cli.threads.contains(&0) {
        return Err("--threads must be ≥ 1".into());
    }
    if cli.reps == 0 {
        return Err("--reps must be ≥ 1".into());
    }
    let cache = cache_of(&cli.cache)?;
    let modes: Vec<Mode> = cli
        .modes
        .iter()
        .map(|s| parse_mode(s))
        .collect::<Result<_, _>>()?;
    if !matches!(cli.output.as_str(), "md" | "csv" | "json") {
        return Err(format!(
            "unknown output format '{}' (md, csv, json)",
            cli.output
        ));
    }
    if let Some(spec) = &cli.worker {
        // spec: model|mode|threads|test
        let v: Vec<&str> = spec.split('|').collect();
        if v.len() != 4 {
            return Err("bad worker spec".into());
        }
        let mode = parse_mode(v[1])?;
        let threads = v[2].parse().map_err(|_| "bad worker threads")?;
        let test = Test::decode(v[3])?;
        let r = run_job(
            v[0],
            mode,
            threads,
            test,
            cache,
            cli.fill_above,
            cli.memory_mb,
        )?;
        return Ok(r.to_string() + "\n");
    }
    if cli.soak.is_some() {
        return soak(&cli);
    }
    // Load every model once to validate and get its shape.
    let models: Vec<Model> = cli
        .models
        .iter()
        .map(|p| Model::open(p).map_err(|e| format!("{p}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut tests: Vec<Test> = Vec::new();
    tests.extend(cli.pp.iter().map(|&n| Test::Pp(n)));
    tests.extend(cli.tg.iter().map(|&n| Test::Tg(n)));
    for s in &cli.pg {
        let (p, n) = pair(s, "--pg")?;
        tests.push(Test::Pg(p, n));
    }
    for s in &cli.mq {
        let (p, n) = pair(s, "--mq")?;
        for &k in &cli.parallel {
            if k == 0 {
                return Err("--parallel values must be ≥ 1".into());
            }
            tests.push(Test::Mq(p, n, k));
        }
    }
    if tests.is_empty() {
        tests = vec![Test::Pp(512), Test::Tg(128)];
    }
    if tests.iter().any(|t| matches!(t, Test::Pp(0))) {
        return Err("-p values must be ≥ 1".into());
    }
    let mut jobs = Vec::new();
    for &test in &tests {
        for &threads in &cli.threads {
            for (mi, m) in models.iter().enumerate() {
                let ms: Vec<Mode> = if m.kind() == ModelKind::Photon {
                    modes.clone()
                } else {
                    vec![Mode::HierGen]
                };
                for mode in ms {
                    jobs.push(Job {
                        model: mi,
                        mode,
                        threads,
                        test,
                    });
                }
            }
        }
    }
    let start_machine = machine();
    let buf = if cli.probe_mb > 0 {
        probe::probe_buffer(cli.probe_mb << 20)
    } else {
        Vec::new()
    };
    let mut probes: Vec<Vec<f64>> = vec![Vec::new(); cli.threads.len()];
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); jobs.len()];
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for rep in 0..cli.reps {
        if !buf.is_empty() {
            for (i, &t) in cli.threads.iter().enumerate() {
                probes[i].push(probe::probe(&buf, t, 3));
            }
        }
        for (ji, j) in jobs.iter().enumerate() {
            let path = &cli.models[j.model];
            if cli.verbose {
                eprintln!(
                    "rep {} job {}/{}: {path} {} t{} {}",
                    rep + 1,
                    ji + 1,
                    jobs.len(),
                    mode_name(j.mode),
                    j.threads,
                    j.test.name()
                );
            }
            let r = if cli.no_fork {
                run_job(
                    path,
                    j.mode,
                    j.threads,
                    j.test,
                    cache,
                    cli.fill_above,
                    cli.memory_mb,
                )?
            } else {
                let mut c = Command::new(&exe);
                c.arg("-m")
                    .arg(path)
                    .arg("--cache")
                    .arg(&cli.cache)
                    .arg("--fill-above")
                    .arg(cli.fill_above.to_string())
                    .arg("--worker")
                    .arg(format!(
                        "{path}|{}|{}|{}",
                        mode_name(j.mode),
                        j.threads,
                        j.test.encode()
                    ));
                if let Some(mb) = cli.memory_mb {
                    c.arg("--memory-mb").arg(mb.to_string());
                }
                let o = c.output().map_err(|e| format!("running a worker: {e}"))?;
                if !o.status.success() {
                    return Err(String::from_utf8_lossy(&o.stderr)
                        .trim()
                        .trim_start_matches("photon-bench: error: ")
                        .to_string());
                }
                serde_json::from_slice(&o.stdout).map_err(|e| format!("worker output: {e}"))?
            };
            results[ji].push(r);
        }
    }
    drop(buf);
    let probe_med: Vec<f64> = probes.iter().map(|p| stats(p).median).collect();
    // Aggregate.
    let mut rows_json = Vec::new();
    for (ji, j) in jobs.iter().enumerate() {
        let m = &models[j.model];
        let rs = &results[ji];
        let f = |k: &str| -> Vec<f64> { rs.iter().filter_map(|r| r[k].as_f64()).collect() };
        let (p, n) = j.test.prompt_gen();
        // A tg test's 1-token prompt is no prefill measurement.
        let pre: Vec<f64> = rs
            .iter()
            .filter(|_| !matches!(j.test, Test::Tg(_)))
            .filter_map(|r| r["prefill_s"].as_f64().map(|s| p as f64 / s))
            .collect();
        let dec: Vec<f64> = rs
            .iter()
            .filter_map(|r| {
                let t = r["decode_tokens"].as_f64()?;
                let s = r["decode_s"].as_f64()?;
                (t > 0.0).then(|| t / s)
            })
            .collect();
        let pre = stats(&pre);
        let dec = stats(&dec);
        let last = rs.last().cloned().unwrap_or(Value::Null);
        let cache_bytes = last["cache_bytes"].as_f64().unwrap_or(0.0);
        let peak = stats(&f("peak_rss_bytes"));
        let photon = m.kind() == ModelKind::Photon;
        let k = match j.test {
            Test::Mq(_, _, k) => k,
            _ => 1,
        };
        // Bytes one generated token reads, at the middle of the decoded range.
        let wb = weight_bytes_per_token(m, j.mode);
        let cb = cache_bytes_per_token(m, j.mode, p + n / 2, cache);
        let pi = cli
            .threads
            .iter()
            .position(|&t| t == j.threads)
            .unwrap_or(0);
        let probe_gbs = probe_med.get(pi).copied().unwrap_or(f64::NAN);
        let gbs = if n > 0 {
            (wb + cb) * dec.median / 1e9
        } else {
            f64::NAN
        };
        let per_seq_cache = if k > 1 || matches!(j.test, Test::Mq(..)) {
            // Memory per sequence: the shared prefix once plus each continuation's own.
            cache_bytes / k as f64
        } else {
            cache_bytes
        };
        let tpm = dec.median / (per_seq_cache / (1u64 << 30) as f64);
        rows_json.push(json!({
            "model": cli.models[j.model],
            "kind": if photon { "photon" } else { "vanilla" },
            "mode": if photon { mode_name(j.mode) } else { "-" },
            "threads": j.threads,
            "test": j.test.name(),
            "n_prompt": p,
            "n_gen": n,
            "parallel": k,
            "reps": rs.len(),
            "cache_type": cli.cache,
            "weights_bytes": m.weight_bytes(),
            "prefill_tps": {"median": pre.median, "min": pre.min, "max": pre.max},
            "decode_tps": {"median": dec.median, "min": dec.min, "max": dec.max},
            "prefill_filled": last["filled"],
            "weight_bytes_per_token": wb,
            "cache_bytes_read_per_token": cb,
            "achieved_gbs": gbs,
            "probe_gbs": probe_gbs,
            "probe_share": gbs / probe_gbs,
            "cache_bytes": cache_bytes,
            "cache_bytes_per_sequence": per_seq_cache,
            "shared_prefix_bytes": last["shared_prefix_bytes"],
            "arena_bytes": last["arena_bytes"],
            "coarse_len": last["coarse_len"],
            "peak_rss_bytes": peak.median,
            "tpm_tps_per_gib": tpm,
        }));
    }
    let end_machine = machine();
    Ok(match cli.output.as_str() {
        "json" => {
            serde_json::to_string_pretty(&json!({
                "machine_start": start_machine,
                "machine_end": end_machine,
                "probe_gbs": cli.threads.iter().zip(&probe_med).map(|(t, p)| json!({"threads": t, "gbs": p})).collect::<Vec<_>>(),
                "runs": rows_json,
            }))
            .unwrap_or_default()
                + "\n"
        }
        fmt => {
            let h = [
                "model", "mode", "thr", "test", "pp t/s", "pp min–max", "tg t/s", "tg min–max",
                "W B/tok", "KV B/tok", "GB/s", "% probe", "cache/seq", "peak RSS", "TPM",
            ];
            let rows: Vec<Vec<String>> = rows_json
                .iter()
                .map(|r| {
                    let st = |k: &str| Stats {
                        median: r[k]["median"].as_f64().unwrap_or(f64::NAN),
                        min: r[k]["min"].as_f64().unwrap_or(f64::NAN),
                        max: r[k]["max"].as_f64().unwrap_or(f64::NAN),
                    };
                    let num = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
                    let name = std::path::Path::new(r["model"].as_str().unwrap_or(""))
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let filled = r["prefill_filled"].as_bool().unwrap_or(false);
                    let md = fmt == "md";
                    let hb = |b: f64| if md { human(b) } else { format!("{b:.0}") };
                    vec![
                        name,
                        r["mode"].as_str().unwrap_or("").to_string(),
                        r["threads"].to_string(),
                        r["test"].as_str().unwrap_or("").to_string(),
                        if filled { "filled".into() } else { fmt_tps(&st("prefill_tps")) },
                        fmt_spread(&st("prefill_tps")),
                        fmt_tps(&st("decode_tps")),
                        fmt_spread(&st("decode_tps")),
                        hb(num("weight_bytes_per_token")),
                        hb(num("cache_bytes_read_per_token")),
                        nan(format!("{:.2}", num("achieved_gbs"))),
                        nan(format!("{:.0}%", num("probe_share") * 100.0)),
                        hb(num("cache_bytes_per_sequence")),
                        hb(num("peak_rss_bytes")),
                        nan(format!("{:.0}", num("tpm_tps_per_gib"))),
                    ]
                })
                .collect();
            if fmt == "csv" {
                csv(&h, &rows)
            } else {
                let probe_line: Vec<String> = cli
                    .threads
                    .iter()
                    .zip(&probe_med)
                    .map(|(t, p)| format!("{p:.1} GB/s on {t} thread(s)"))
                    .collect();
                format!(
                    "{} ({} cores, {}), load {} → {}; probe {}; {:?} caches; {} reps (medians)\n\n{}",
                    start_machine["cpu"].as_str().unwrap_or(""),
                    start_machine["cores"],
                    start_machine["isa"].as_str().unwrap_or(""),
                    start_machine["loadavg"].as_str().unwrap_or(""),
                    end_machine["loadavg"].as_str().unwrap_or(""),
                    probe_line.join(", "),
                    cache,
                    cli.reps,
                    markdown(&h, &rows)
                )
            }
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    photon_tools::finish("photon-bench", run(cli))
}
