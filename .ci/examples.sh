#!/usr/bin/env bash
# Runs every example action once with `wasmwhisk run` and shows its result.
# Usage: .ci/examples.sh path/to/wasmwhisk
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/release/wasmwhisk}
guests=${CARGO_TARGET_DIR:-target}/guests/wasm32-wasip2/release

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$bin" run "$guests/hello_rust.wasm" -p name World
step "$bin" run "$guests/stats_rust.wasm" -P examples/stats.params.json
step "$bin" run examples/hello.js -p name World
step "$bin" run examples/invoice.js -P examples/invoice.params.json
