//! Tries to open a TCP connection: linking `std::net` makes the component
//! import `wasi:sockets`, which the host refuses at deploy time.
use wasmwhisk_action::{Value, json};

fn main(_params: Value) -> Value {
    match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => json!({ "connected": true }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

wasmwhisk_action::action!(main);
