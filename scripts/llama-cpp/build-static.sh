#!/usr/bin/env bash
# Builds static x86-64 llama-bench and llama-completion (AVX2 + AVX-512 VNNI, no OpenMP) from
# .llcpp/llama.cpp.tar.xz on a bigger machine, for speed comparisons on the 2-core development
# machine (whose glibc may be older: hence static). Usage: build-static.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: build-static.sh OUT_DIR}
mkdir -p "$out" /tmp/llama-static
tar xJf .llcpp/llama.cpp.tar.xz -C /tmp/llama-static
src=/tmp/llama-static/llama.cpp
cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
    -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=OFF -DGGML_OPENMP=OFF -DGGML_BACKEND_DL=OFF \
    -DGGML_CPU_ALL_VARIANTS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DCMAKE_EXE_LINKER_FLAGS="-static" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
cmake --build "$src/build" -j "$(nproc)" --target llama-bench llama-completion >>"$out/build.log" 2>&1 \
    || { tail -40 "$out/build.log"; exit 1; }
cp "$src/build/bin/llama-bench" "$src/build/bin/llama-completion" "$out/"
strip "$out/llama-bench" "$out/llama-completion"
file "$out/llama-bench" || true
ls -la "$out"
