//! switchyard: a failover sidecar for LLM calls.
//!
//! The binary in `main.rs` is a thin CLI over these modules; tests and the demo drive the
//! same entry points in-process.
#![forbid(unsafe_code)]
// No catch-all arm over the crate's enums (a new protocol, provider or outcome must be
// handled wherever one is matched, not fall into another's arm); the few matches over
// other crates' non_exhaustive enums say why they allow it. Test code may use `other =>
// panic!(..)`.
#![cfg_attr(not(test), deny(clippy::wildcard_enum_match_arm))]

pub mod admin;
pub mod app;
pub mod aws;
pub mod body;
pub mod breaker;
pub mod budget;
pub mod classify;
pub mod demo;
pub mod drill;
pub mod error;
pub mod event_kind;
pub mod eventstream;
pub mod exit;
pub mod fleet;
pub mod hedge;
pub mod inject;
pub mod limits;
pub mod log_limit;
pub mod metrics;
pub mod mock;
pub mod operation;
pub mod policy;
pub mod probe;
pub mod provider;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod shared;
pub mod source;
pub mod sse;
pub mod status;
pub mod target;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod wire;
