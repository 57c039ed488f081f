//! The fuzz targets' bodies: each `run` takes the fuzzer's bytes and panics on a broken
//! invariant. Shared by `fuzz/fuzz_targets/*.rs` (libFuzzer, nightly) and the stable
//! `cargo test` that replays `fuzz/corpus/` (tests/it/fuzz_corpus.rs), so the committed
//! corpora check exactly what the fuzzers check.

pub mod converters;
pub mod inbound;
pub mod policy;
pub mod responses_stream;
pub mod sse_parser;
pub mod stream_translators;
pub mod vendor_streams;
