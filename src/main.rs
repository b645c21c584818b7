//! The sylk-gateway binary: CLI + config -> gateway -> reactor.
fn main() {}
