#!/usr/bin/env bash
# Installs what building and testing wasmwhisk needs on a fresh Debian machine:
# the wasm32-wasip2 Rust target, clang-19 + llvm-19 + wasi-libc (QuickJS's C code
# is compiled for wasm32-wasip2 with them), nats-server, etcd and protoc (cluster
# mode), glibc's static libraries (the
# Docker action proxy is one static binary), and checks that a Docker engine
# answers (the Docker fallback's tests and benchmark use it; it cannot be
# installed from here).
# Idempotent: installs only what is missing.
set -euo pipefail

need_apt=()
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v llvm-ar-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
[ -f /usr/include/wasm32-wasi/stdlib.h ] || need_apt+=(wasi-libc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
# Cluster mode's servers, started by its tests on free loopback ports, and
# protoc for etcd-client's generated gRPC code.
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/timestamp.proto ] || need_apt+=(libprotobuf-dev)

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

if ! docker info >/dev/null 2>&1; then
    echo "setup: warning: no Docker engine answers (docker info failed); the Docker fallback's tests need one" >&2
fi
