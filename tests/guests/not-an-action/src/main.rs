//! A plain WASI command: it exports `wasi:cli/run`, not `init`/`run`.
fn main() {
    println!("I am not an action");
}
