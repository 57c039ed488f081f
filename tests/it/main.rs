//! The integration suite: one binary, real listeners on 127.0.0.1, real mocks.

mod support;

mod admin;
mod failover;
mod inbound;
mod streaming;
mod telemetry;
