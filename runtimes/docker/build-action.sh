#!/usr/bin/env bash
# Builds a Rust action as a blackbox Docker image for wasmwhisk.
#
#   runtimes/docker/build-action.sh <cargo package> <image tag>
#
# 1. Builds the package's executable natively and statically (glibc,
#    +crt-static), with `--features native` if the package has that feature
#    (the `wasmwhisk_action::action!` examples do; a plain `fn main` binary
#    needs none).
# 2. Builds the image `FROM wasmwhisk/action-proxy:latest` + `/action/exec`
#    (building the proxy image first if it is missing).
#
# Prints two lines on stdout: the path of the native executable (its base64
# is also deployable as `native` kind code), then the image id. Progress goes
# to stderr.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 <cargo package> <image tag>" >&2
    exit 2
fi
PACKAGE=$1
TAG=$2

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
PROXY_IMAGE=wasmwhisk/action-proxy:latest
TARGET=x86_64-unknown-linux-gnu
CARGO=${CARGO:-cargo}

# `path+file:///abs/dir#name@0.1.0` → /abs/dir
PKGID=$("$CARGO" pkgid -p "$PACKAGE")
MANIFEST_DIR=${PKGID#path+file://}
MANIFEST_DIR=${MANIFEST_DIR%%#*}
FEATURES=()
if [ -f "$MANIFEST_DIR/Cargo.toml" ] && grep -Eq '^[[:space:]]*native[[:space:]]*=' "$MANIFEST_DIR/Cargo.toml"; then
    FEATURES=(--features native)
fi

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >&2
fi

# Same flags as build.sh, so the two share their dependencies' artifacts.
BUILD_LOG=$(mktemp "${TMPDIR:-/tmp}/build-action.XXXXXX")
CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/action-image.XXXXXX")
trap 'rm -rf "$BUILD_LOG" "$CONTEXT"' EXIT
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=symbols \
    "$CARGO" build --release -p "$PACKAGE" --bins "${FEATURES[@]}" --target "$TARGET" \
        --message-format=json-render-diagnostics >"$BUILD_LOG"

# The executables cargo reports (a bin target's artifact has a non-null one).
mapfile -t EXECUTABLES < <(grep -o '"executable":"[^"]*"' "$BUILD_LOG" | sed 's/^"executable":"\(.*\)"$/\1/' | sort -u)
if [ ${#EXECUTABLES[@]} -ne 1 ]; then
    echo "build-action.sh: expected one executable from package $PACKAGE, got ${#EXECUTABLES[@]}: ${EXECUTABLES[*]:-none}" >&2
    exit 1
fi
EXECUTABLE=${EXECUTABLES[0]}
if command -v file >/dev/null 2>&1 && ! file "$EXECUTABLE" | grep -Eq 'statically linked|static-pie linked'; then
    echo "build-action.sh: $EXECUTABLE is not statically linked: $(file -b "$EXECUTABLE")" >&2
    exit 1
fi

if ! docker image inspect "$PROXY_IMAGE" >/dev/null 2>&1; then
    echo "build-action.sh: $PROXY_IMAGE is missing; building it" >&2
    "$HERE/build.sh" >&2
fi

cp "$EXECUTABLE" "$CONTEXT/exec"
chmod 0755 "$CONTEXT/exec"
cat >"$CONTEXT/Dockerfile" <<DOCKERFILE
FROM $PROXY_IMAGE
LABEL wasmwhisk.action.package="$PACKAGE"
COPY exec /action/exec
DOCKERFILE

OLD_ID=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
NEW_ID=$(docker build --quiet --tag "$TAG" "$CONTEXT")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
echo "$EXECUTABLE"
echo "$NEW_ID"
