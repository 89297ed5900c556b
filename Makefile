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

test: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test

bench: build
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench sandbox
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench pool
	$${CARGO_TARGET_DIR:-target}/release/wasmwhisk bench api
