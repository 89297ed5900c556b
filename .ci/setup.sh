#!/usr/bin/env bash
# Installs what building and testing wasmwhisk needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target, clang-19 + llvm-19 + wasi-libc (QuickJS's C code
# is compiled for wasm32-wasip2 with them), and later steps' servers.
# Idempotent: installs only what is missing.
set -euo pipefail

need_apt=()
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v llvm-ar-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
[ -f /usr/include/wasm32-wasi/stdlib.h ] || need_apt+=(wasi-libc)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# rust-toolchain.toml pins the toolchain and lists the target; make sure both are there.
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null 2>&1; then
    rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install "$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)"
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
fi
