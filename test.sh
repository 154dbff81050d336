#!/usr/bin/env bash
# Run every test of trent. Release mode on purpose: the same compiled dependencies serve
# `cargo run --release` and the tests, which halves a cold build on a small machine.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trent-target}"
cargo test --release --workspace "$@"
