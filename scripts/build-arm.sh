#!/usr/bin/env bash
# Stripped release binaries of the chat example and photon-quantize for ARM Linux:
#
#   scripts/build-arm.sh            # build both targets
#   scripts/build-arm.sh --run      # also run the aarch64 chat under qemu, one-shot, on the
#                                   # default model (models/photon-tiny-q8_0.gguf, else -f16)
#
# Output: target/arm/<triple>/chat and target/arm/<triple>/photon-quantize, for
# aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf (sizes are printed). Needs the
# Debian cross compilers and qemu-user (installed here when missing and run as root) and the
# rustup targets (added when missing). Linkers and qemu runners: .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

run=0
[ "${1:-}" = "--run" ] && run=1

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v arm-linux-gnueabihf-gcc >/dev/null \
    || ! command -v qemu-aarch64 >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu \
            gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user >/dev/null
    else
        echo "build-arm: need gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and qemu-user" >&2
        exit 1
    fi
fi

declare -A prefix=([aarch64-unknown-linux-gnu]=aarch64-linux-gnu
                   [armv7-unknown-linux-gnueabihf]=arm-linux-gnueabihf)
installed=$(rustup target list --installed)
for t in "${!prefix[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    echo "==> $t"
    cargo build --release --quiet --target "$t" -p photon --example chat
    cargo build --release --quiet --target "$t" -p photon-quantize
    out="target/arm/$t"
    mkdir -p "$out"
    "${prefix[$t]}-strip" -o "$out/chat" "target/$t/release/examples/chat"
    "${prefix[$t]}-strip" -o "$out/photon-quantize" "target/$t/release/photon-quantize"
    ls -l "$out/chat" "$out/photon-quantize" | awk '{printf "%12d  %s\n", $5, $9}'
done

if [ "$run" = 1 ]; then
    echo "==> aarch64 chat under qemu (one-shot, default model)"
    qemu-aarch64 -L /usr/aarch64-linux-gnu target/arm/aarch64-unknown-linux-gnu/chat \
        --prompt "Good morrow, my lord. What news from the court?" --temp 0 --max-tokens 48
fi
