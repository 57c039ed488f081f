//! Amazon Web Services pieces Bedrock needs: SigV4 signing (`sigv4`), credentials from the
//! standard environment kept fresh off the request path (`credentials`), and the
//! environment snapshot they are read from. A leaf but for the warning limiter: the
//! policy compiler and the request path use it, it uses neither.

pub mod credentials;
pub mod sigv4;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub use credentials::{Credentials, HttpSend, Lookup, Source};
pub use sigv4::Keys;

/// The environment variables credentials are read from, taken once: the process's at
/// start-up, or a map in tests (the environment is process-wide and tests run in
/// parallel, so they never write it).
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The process environment's `AWS_*` variables.
    pub fn from_process() -> Env {
        Env(std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect())
    }

    /// An environment of exactly these variables.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// A variable, when set and not empty (as the SDKs treat an empty one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The process's one credential chain: built from the environment the first time a
/// policy needs it, then shared by every Bedrock provider and kept across reloads.
#[derive(Debug, Default)]
pub struct Chain {
    env: Env,
    credentials: OnceLock<Arc<Credentials>>,
}

impl Chain {
    /// A chain over this environment; nothing is read or fetched until it is used.
    pub fn new(env: Env) -> Chain {
        Chain {
            env,
            credentials: OnceLock::new(),
        }
    }

    /// The chain's credentials, started on first use with `send` for its fetches.
    pub fn credentials(&self, send: impl FnOnce() -> HttpSend) -> Arc<Credentials> {
        Arc::clone(
            self.credentials
                .get_or_init(|| Credentials::start(Source::from_env(&self.env), send())),
        )
    }
}
