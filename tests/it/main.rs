//! The integration suite: one binary, real listeners on 127.0.0.1, real mocks.

mod support;

mod admin;
mod cli;
mod crossing;
mod egress;
mod failover;
mod inbound;
mod live;
mod live_file;
mod streaming;
mod telemetry;
mod tls;
