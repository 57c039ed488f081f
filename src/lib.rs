//! switchyard: a failover sidecar for LLM calls.
//!
//! The binary in `main.rs` is a thin CLI over these modules; tests and the demo drive the
//! same entry points in-process.
#![forbid(unsafe_code)]

pub mod breaker;
pub mod inject;
pub mod mock;
pub mod policy;
pub mod sse;
pub mod translate;
