//! Greets `name` (default `stranger`), like OpenWhisk's hello world.
use wasmwhisk_action::{Value, json};

fn main(params: Value) -> Value {
    let name = params["name"].as_str().unwrap_or("stranger");
    json!({ "greeting": format!("Hello, {name}!") })
}

wasmwhisk_action::action!(main);
