#!/usr/bin/env bash
# Builds the runtime image wasmwhisk/action-proxy:latest (FROM scratch, one
# static binary: the action proxy) and prints its image id on stdout.
#
#   runtimes/docker/build.sh        (or: make docker-image)
#
# Needs Docker and the host's Rust toolchain; nothing is downloaded but crates.
# Idempotent: when nothing changed, cargo and docker both hit their caches and
# the id printed is the same. Progress goes to stderr.
set -euo pipefail

cd "$(dirname "$0")/../.."
IMAGE=wasmwhisk/action-proxy:latest
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CARGO=${CARGO:-cargo}

# The static target is the host target; only a toolchain without its std (an
# unusual install) needs it added.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >&2
fi

# glibc, linked statically: the binary runs in an empty image. The explicit
# --target keeps these artifacts apart from the host build's (other flags).
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=symbols \
    "$CARGO" build --release -p wasmwhisk-action-proxy --target "$TARGET" >&2

BINARY="$TARGET_DIR/$TARGET/release/action-proxy"
if ! file "$BINARY" 2>/dev/null | grep -Eq 'statically linked|static-pie linked'; then
    if command -v file >/dev/null 2>&1; then
        echo "build.sh: $BINARY is not statically linked: $(file -b "$BINARY")" >&2
        exit 1
    fi
fi

CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/action-proxy-image.XXXXXX")
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/rootfs/action" "$CONTEXT/rootfs/tmp"
chmod 0755 "$CONTEXT/rootfs/action"
chmod 1777 "$CONTEXT/rootfs/tmp"
cp "$BINARY" "$CONTEXT/action-proxy"
cp runtimes/docker/Dockerfile "$CONTEXT/Dockerfile"

# A rebuild leaves the previous image untagged: remove it (unless a container
# or a blackbox image still uses it).
OLD_ID=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
NEW_ID=$(docker build --quiet --tag "$IMAGE" "$CONTEXT")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
echo "$NEW_ID"
