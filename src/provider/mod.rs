//! Provider kinds whose facts do not fit the OpenAI/Anthropic mould: one module per
//! family (Google's Gemini and Vertex AI here). A leaf: it imports nothing of the crate
//! but the warning limiter, so the policy compiler and the proxy both use it.

pub mod google;
