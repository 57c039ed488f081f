//! libFuzzer entry for `checks/vendor_streams.rs` (the body `cargo test` replays the corpus through).
#![no_main]

#[path = "../checks/mod.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::vendor_streams::run(data));
