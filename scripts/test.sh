#!/usr/bin/env bash
# The project's test command (README): native tests, lint, formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
