//! The integration suite: one binary, real listeners on 127.0.0.1, real mocks.
#![allow(
    clippy::unwrap_used,
    reason = "test support as much as tests: a failed unwrap is a failed test"
)]

mod support;

mod adapt;
mod admin;
mod bedrock;
mod cli;
mod count_tokens;
mod crossing;
mod demo;
mod egress;
mod failover;
mod fleet;
mod fuzz_corpus;
mod gemini;
mod inbound;
mod live;
mod live_file;
mod logs;
mod responses;
mod responses_crossed;
mod status;
mod streaming;
mod telemetry;
mod timing;
mod tls;
