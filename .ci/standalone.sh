#!/usr/bin/env bash
# `make run`: starts wasmwhisk standalone, deploys the example actions, invokes
# each once, then keeps serving until Ctrl-C.
# Usage: .ci/standalone.sh [path/to/wasmwhisk]
# Environment: WASMWHISK_DATA_DIR (default ~/.local/share/wasmwhisk),
#              WASMWHISK_PORT (default 3233).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/release/wasmwhisk}
guests=${CARGO_TARGET_DIR:-target}/guests/wasm32-wasip2/release

step() { printf '\n\033[1m$ wasmwhisk %s\033[0m\n' "$*"; "$bin" "$@"; }

out=$(mktemp)
"$bin" standalone >"$out" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out"' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 300); do
    grep -q 'listening on' "$out" && break
    kill -0 $server 2>/dev/null || { cat "$out"; echo "wasmwhisk standalone did not start" >&2; exit 1; }
    sleep 0.1
done
cat "$out"

step action update hello-rust "$guests/hello_rust.wasm"
step action update stats-rust "$guests/stats_rust.wasm"
step action update hello-js examples/hello.js
step action update invoice-js examples/invoice.js
step action invoke hello-rust --result -p name World
step action invoke stats-rust --result -P examples/stats.params.json
step action invoke hello-js --result -p name World
step action invoke invoice-js --result -P examples/invoice.params.json
# The Docker fallback: the same Rust source as a native executable, in a
# container of the action proxy image (built locally: there is no registry).
if docker info >/dev/null 2>&1; then
    printf '\n\033[1m$ runtimes/docker/build-action.sh hello-rust wasmwhisk-example/hello-rust:latest\033[0m\n'
    native=$(runtimes/docker/build-action.sh hello-rust wasmwhisk-example/hello-rust:latest | head -n 1)
    step action update hello-native "$native" --native
    step action update hello-docker --docker wasmwhisk-example/hello-rust:latest
    step action invoke hello-native --result -p name Docker
    step action invoke hello-docker --result -p name Docker
else
    echo "(no Docker engine answers: skipping the Docker fallback's examples)"
fi
step action list
step activation list --limit 4

apihost=$(grep -m1 -o 'http://[^ ]*' "$out")
cat <<TOUR

wasmwhisk standalone is serving at $apihost (Ctrl-C stops it).
Try, in another shell (the CLI finds the server and key in the data directory):
  $bin action invoke hello-rust --blocking -p name you
  $bin activation list
  curl -s $apihost/metrics | grep wasmwhisk_activations
TOUR
wait $server
