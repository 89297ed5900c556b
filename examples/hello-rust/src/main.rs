//! The action of `lib.rs` as a native executable (OpenWhisk's `native`
//! convention), for the Docker action proxy; built with `--features native`.
//! `action!` provides the C `main` on non-wasm targets.
#![cfg_attr(not(test), no_main)]

#[path = "lib.rs"]
mod action;
