//! libFuzzer entry for `checks/sse_parser.rs` (the body `cargo test` replays the corpus through).
#![no_main]

#[path = "../checks/mod.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sse_parser::run(data));
