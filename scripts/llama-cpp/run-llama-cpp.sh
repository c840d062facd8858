#!/usr/bin/env bash
# Side-by-side check with llama.cpp (never in CI): builds llama.cpp's tools from the sources that the
# PyPI sdist `llama-cpp-python` vendors, then makes llama.cpp-written files from our vanilla model
# and records what llama.cpp computes on them, for tests/llama_cpp.rs and docs/format.md.
#
#   bash scripts/llama-cpp/fetch.sh            # once, where PyPI is reachable: .llcpp/llama.cpp.tar.xz
#   bash scripts/llama-cpp/run-llama-cpp.sh OUT_DIR
#
# Writes to OUT_DIR: llama.cpp-quantized files (Q8_0, Q4_0 --pure) of the shipped vanilla-tiny and
# of its 2-block cut (.llcpp/vanilla-2l-f16.gguf, made by make_tiny_llama.py), llama-tokenize ids
# and greedy continuations (text) for the prompts in scripts/llama-cpp/prompts.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: run-llama-cpp.sh OUT_DIR}
mkdir -p "$out"
logs=$(mktemp -d)
trap 'tail -c 8000 "$logs"/*.log >"$out/logs.txt" 2>/dev/null' ERR
src=.llcpp
jobs=$(nproc)

if [ ! -f "$src/vanilla-2l-f16.gguf" ]; then # the gguf package travels as a wheel (pure Python)
    mkdir -p /tmp/gguf-py && python3 -m zipfile -e "$src"/gguf-*.whl /tmp/gguf-py
    PYTHONPATH=/tmp/gguf-py python3 scripts/llama-cpp/make_tiny_llama.py models/vanilla-tiny-f16.gguf \
        "$src/vanilla-2l-f16.gguf" --blocks 2
fi
build=/tmp/llama.cpp
if [ ! -x "$build/build/bin/llama-quantize" ]; then
    rm -rf "$build" && mkdir -p /tmp && tar xJf "$src/llama.cpp.tar.xz" -C /tmp
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$build" -B "$build/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$logs/cmake.log" 2>&1
    cmake --build "$build/build" -j "$jobs" --target llama-quantize llama-tokenize llama-completion \
        >>"$logs/cmake.log" 2>&1
fi
bin=$build/build/bin

quantize() { # SRC DST TYPE [flags]
    local s=$1 d=$2 t=$3; shift 3
    "$bin/llama-quantize" "$@" "$s" "$d" "$t" >>"$logs/quantize.log" 2>&1
}
quantize models/vanilla-tiny-f16.gguf "$out/vanilla-tiny-q8_0.llama-cpp.gguf" Q8_0
quantize models/vanilla-tiny-f16.gguf "$out/vanilla-tiny-q4_0.llama-cpp.gguf" Q4_0 --pure
quantize models/vanilla-tiny-f16.gguf /tmp/vanilla-tiny-q4_0-default.gguf Q4_0
quantize "$src/vanilla-2l-f16.gguf" "$out/vanilla-2l-q8_0.llama-cpp.gguf" Q8_0
quantize "$src/vanilla-2l-f16.gguf" "$out/vanilla-2l-q4_0.llama-cpp.gguf" Q4_0 --pure


{
    while IFS= read -r p; do
        printf '%s\t' "$p"
        "$bin/llama-tokenize" -m models/vanilla-tiny-f16.gguf -p "$p" --ids --log-disable 2>/dev/null | tail -n 1
    done <scripts/llama-cpp/prompts.txt
} >"$out/tokenize.tsv"

complete() { # MODEL NAME
    local m=$1 name=$2 i=0
    while IFS= read -r p; do
        i=$((i + 1))
        "$bin/llama-completion" -m "$m" -p "$p" -n 64 --temp 0 --top-k 1 --repeat-penalty 1.0 -s 1 \
            -c 512 -t 8 -ctk f32 -ctv f32 -no-cnv --no-display-prompt --no-warmup \
            >"$logs/tmp.txt" 2>>"$logs/completion.log" </dev/null || echo "(failed)" >"$logs/tmp.txt"
        python3 -c 'import json,sys; print(json.dumps({"model": sys.argv[1], "prompt": sys.argv[2], "text": open(sys.argv[3], encoding="utf-8", errors="replace").read()}))' \
            "$name" "$p" "$logs/tmp.txt"
    done <scripts/llama-cpp/prompts.txt
}
{
    complete models/vanilla-tiny-f16.gguf vanilla-tiny-f16
    complete "$out/vanilla-tiny-q8_0.llama-cpp.gguf" vanilla-tiny-q8_0.llama-cpp
    complete "$out/vanilla-tiny-q4_0.llama-cpp.gguf" vanilla-tiny-q4_0.llama-cpp
    complete "$src/vanilla-2l-f16.gguf" vanilla-2l-f16
    complete "$out/vanilla-2l-q8_0.llama-cpp.gguf" vanilla-2l-q8_0.llama-cpp
    complete "$out/vanilla-2l-q4_0.llama-cpp.gguf" vanilla-2l-q4_0.llama-cpp
} >"$out/completions.jsonl"
# One log back: the build's tail, every tensor type llama-quantize chose, llama.cpp's last words.
{ tail -n 20 "$logs/cmake.log"; grep -E "converting to|size = |type" "$logs/quantize.log" | tail -n 200
  tail -c 4000 "$logs/completion.log"; } >"$out/logs.txt"
echo "done"; ls -la "$out"
