# The two commands of the README:
#   make run    build wasmwhisk and run the example actions
#   make test   run the whole test suite (installs what it needs first)
.PHONY: setup build run test lint bench

CARGO ?= cargo

setup:
	@bash .ci/setup.sh

build: setup
	$(CARGO) build --release

run: build
	@bash .ci/standalone.sh

# The native crates of the Docker fallback (the action proxy, the native test
# action, the SDK's native mode) are linted and unit-tested too.
NATIVE_CRATES = -p wasmwhisk-action-proxy -p native-misbehave -p wasmwhisk-action

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p wasmwhisk --no-default-features --all-targets -- -D warnings
	$(CARGO) clippy $(NATIVE_CRATES) --all-targets -- -D warnings
	$(CARGO) test $(NATIVE_CRATES)
	$(CARGO) test

bench: build
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench sandbox
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench pool
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench api
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench docker
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench cluster

# The Docker runtime image wasmwhisk/action-proxy:latest (runtimes/docker/README.md).
.PHONY: docker-image
docker-image:
	@bash runtimes/docker/build.sh
