#!/usr/bin/env bash
# The project's test command (see README): installs what the tests need when it is missing
# (cross compilers, qemu, rustup targets), then runs, in order:
#   formatting, clippy, native tests, the gguf-Python check of photon-quantize's output, bare-metal builds of the core, aarch64 tests under qemu
#   (dotprod and non-dotprod CPUs), armv7 build, and the aarch64 chat binary under qemu.
# A cross step whose tools cannot be installed prints a loud SKIPPED line instead of failing.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
passed=0
skipped=0
step() { # step NAME COMMAND...
    local name=$1; shift
    echo "==> $name"
    if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name"; failed=$((failed + 1)); fi
}
skip() { echo "SKIPPED: $1"; skipped=$((skipped + 1)); }

have_cross=1
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null \
    || ! command -v arm-linux-gnueabihf-gcc >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross \
            libc6-dev-armhf-cross qemu-user >/dev/null) || have_cross=0
    else
        have_cross=0
    fi
fi
targets="aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7em-none-eabihf aarch64-unknown-none"
have_targets=1
installed=$(rustup target list --installed 2>/dev/null)
for t in $targets; do
    if ! grep -qx "$t" <<<"$installed"; then rustup target add "$t" >/dev/null 2>&1 || have_targets=0; fi
done

step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "native tests" cargo test --workspace --quiet

# The gguf Python package (PyPI) reads what photon-quantize writes, and its own quantizers give the
# same bytes (optional: needs numpy + gguf, installed with pip when missing; skipped loudly otherwise).
gguf_check() {
    local tmp; tmp=$(mktemp -d) || return 1
    cargo run -q --release -p photon-quantize -- models/vanilla-tiny-f16.gguf "$tmp/v-q4_0.gguf" --preset q4_0 -q \
        && python3 scripts/check_gguf_python.py models/vanilla-tiny-f16.gguf "$tmp/v-q4_0.gguf" \
        && python3 scripts/check_gguf_python.py models/photon-tiny-f16.gguf models/photon-tiny-q8_0.gguf \
            models/photon-tiny-q4_0.gguf \
        && python3 scripts/check_gguf_python.py models/vanilla-tiny-f16.gguf models/vanilla-tiny-q8_0.gguf \
            models/vanilla-tiny-q4_0.gguf
    local rc=$?; rm -rf "$tmp"; return $rc
}
if python3 -c "import gguf, numpy" 2>/dev/null \
    || timeout 300 pip install -q numpy==2.4.6 gguf==0.19.0 >/dev/null 2>&1; then
    step "gguf (Python) reads photon-quantize output" gguf_check
else
    skip "gguf Python check (pip could not install numpy + gguf)"
fi

if [ "$have_targets" = 1 ]; then
    step "no_std build thumbv7em-none-eabihf" \
        cargo build -q -p photon-runtime --no-default-features --target thumbv7em-none-eabihf
    step "no_std build aarch64-unknown-none" \
        cargo build -q -p photon-runtime --no-default-features --target aarch64-unknown-none
else
    skip "bare-metal builds (rustup targets unavailable)"
fi

if [ "$have_cross" = 1 ] && [ "$have_targets" = 1 ]; then
    step "aarch64 runtime tests under qemu (default CPU: dotprod)" \
        cargo test -q -p photon-runtime --target aarch64-unknown-linux-gnu
    step "aarch64 runtime tests under qemu (cortex-a53: no dotprod)" \
        env QEMU_CPU=cortex-a53 cargo test -q -p photon-runtime --target aarch64-unknown-linux-gnu
    # Engine and parity under qemu (~50x slower than native): the long randomized engine test and
    # the 9 × 128-step greedy continuations run natively only; the non-dotprod CPU runs the
    # quantized comparison (the only integer-kernel path that differs).
    step "aarch64 engine and parity tests under qemu (default CPU: dotprod)" \
        cargo test -q -p photon --target aarch64-unknown-linux-gnu --test engine --test parity --test alloc_free -- --skip random_operation --skip greedy_continuations
    step "aarch64 quantized parity under qemu (cortex-a53: no dotprod)" \
        env QEMU_CPU=cortex-a53 cargo test -q -p photon --target aarch64-unknown-linux-gnu --test parity quantized_against_float
    step "armv7 build" cargo build -q --workspace --target armv7-unknown-linux-gnueabihf
    if [ -f models/photon-tiny-q8_0.gguf ] || [ -f models/photon-tiny-f16.gguf ]; then
        step "ARM chat binaries; aarch64 chat under qemu, one-shot, default model" \
            bash scripts/build-arm.sh --run
    else
        skip "aarch64 chat under qemu (no default model in models/)"
    fi
else
    skip "aarch64/armv7 cross steps (cross compilers, qemu or targets unavailable)"
fi

echo
echo "steps: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
