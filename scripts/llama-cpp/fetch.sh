#!/usr/bin/env bash
# Fetches llama.cpp's sources (vendored in the PyPI sdist of llama-cpp-python), trimmed to what
# run-llama-cpp.sh builds, and the gguf package's wheel into .llcpp/ (git-ignored): small enough to
# carry to another machine (which needs cmake, a C++ compiler and numpy). Needs PyPI; the sdist's metadata step wants cmake and scikit-build-core.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
mkdir -p .llcpp && work=$(mktemp -d)
pip install -q cmake ninja scikit-build-core
pip download -q --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$version" -d "$work"
pip download -q --no-deps gguf==0.19.0 -d .llcpp
tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
tree=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
# Vocabulary test files, docs and the GPU backends are not built here.
rm -rf "$tree"/models/* "$tree"/docs "$tree"/benches
for b in cuda hip sycl vulkan metal opencl cann musa webgpu zdnn zendnn openvino hexagon virtgpu et; do
    rm -rf "$tree/ggml/src/ggml-$b"
done
tar cJf .llcpp/llama.cpp.tar.xz -C "$(dirname "$tree")" llama.cpp
rm -rf "$work"
ls -la .llcpp
