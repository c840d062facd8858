#!/usr/bin/env bash
# Decode speed of llama.cpp and photon on the same GGUF files, alternating, on an idle machine:
#   bash scripts/llama-cpp/compare-speed.sh LLAMA_BENCH MODEL.gguf [MODEL.gguf ...]
# LLAMA_BENCH is a llama-bench binary (scripts/llama-cpp/build-static.sh builds one). For each
# model and round: llama-bench tg128 then photon-bench tg128, both 2 threads, after DEPTH tokens
# of context (default 0; llama-bench -d, photon-bench --pg DEPTH,128, both with f16 KV caches);
# prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
llama_bench=${1:?usage: compare-speed.sh LLAMA_BENCH MODEL.gguf...}; shift
rounds=${ROUNDS:-3}
depth=${DEPTH:-0}
cargo build -q --release -p photon-tools --bin photon-bench
results=$(mktemp)
for r in $(seq "$rounds"); do
    for m in "$@"; do
        ll=$("$llama_bench" -m "$m" -p 0 -n 128 -d "$depth" -t 2 -r 1 -o csv 2>/dev/null \
            | python3 -c 'import csv,sys; print(list(csv.DictReader(sys.stdin))[-1]["avg_ts"])')
        ph=$(target/release/photon-bench -m "$m" $([ "$depth" = 0 ] && echo "-n 128" || echo "--pg $depth,128") -t 2 -r 1 --probe-mb 0 -o json 2>/dev/null \
            | python3 -c 'import json,sys; d=json.load(sys.stdin); runs=d["runs"] if isinstance(d,dict) else d; print(runs[0]["decode_tps"]["median"])')
        echo "round $r $(basename "$m") llama.cpp $ll photon $ph" | tee -a "$results"
    done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[2], []).append((float(f[4]), float(f[6])))
for m, v in rows.items():
    l = statistics.median(x for x, _ in v); p = statistics.median(y for _, y in v)
    print(f"{m}: llama.cpp {l:.1f} tok/s, photon {p:.1f} tok/s (median of {len(v)}), photon/llama.cpp {p/l:.2f}")
PY
