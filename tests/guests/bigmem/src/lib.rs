//! A 300 MiB zeroed static: the component's memory must start that large,
//! so it cannot even be instantiated under a smaller limit.
use wasmwhisk_action::{Value, json};

const SIZE: usize = 300 << 20;
static BIG: [u8; SIZE] = [0; SIZE];

fn main(params: Value) -> Value {
    let i = params["i"].as_u64().unwrap_or(0) as usize % SIZE;
    json!({ "byte": std::hint::black_box(&BIG)[i] })
}

wasmwhisk_action::action!(main);
