//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the same
//! check the fuzzer runs (`fuzz/checks/`), on stable, so a regression of any input the
//! fuzzers ever found interesting fails CI without a nightly toolchain.

use std::path::Path;

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

/// Runs `check` on every file of the target's corpus; a panic names the file.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "{target}: a corpus of at least three seeds"
    );
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            panic!("{} fails its check: {panic:?}", file.display());
        }
    }
}

#[test]
fn sse_parser() {
    replay("sse_parser", checks::sse_parser::run);
}

#[test]
fn stream_translators() {
    replay("stream_translators", checks::stream_translators::run);
}

#[test]
fn responses_stream() {
    replay("responses_stream", checks::responses_stream::run);
}

#[test]
fn converters() {
    replay("converters", checks::converters::run);
}

#[test]
fn inbound() {
    replay("inbound", checks::inbound::run);
}

#[test]
fn policy() {
    replay("policy", checks::policy::run);
}

#[test]
fn vendor_streams() {
    replay("vendor_streams", checks::vendor_streams::run);
}
