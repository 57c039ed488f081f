//! Per-target circuit breaker (being built).
