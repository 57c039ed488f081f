//! How a subcommand says its configuration is wrong, so `main` exits 64 for it whichever
//! subcommand it was. Invariant: only a problem the operator fixes in flags, files or
//! variables is [`BadConfig`]; a failure at run time (a port taken, a peer down) is not.

/// `EX_USAGE` of sysexits(3): bad flags, a bad policy or other bad configuration, found
/// before anything was started.
pub const BAD_CONFIG: u8 = 64;

/// A configuration error; `main` prints it and exits [`BAD_CONFIG`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadConfig(Box<dyn std::error::Error + Send + Sync>);

impl BadConfig {
    /// Marks `err` as the operator's configuration to fix.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

/// True when `err`, or an error it wraps, is a [`BadConfig`].
pub fn is_bad_config(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<BadConfig>())
}

/// `EX_UNAVAILABLE` of sysexits(3): the sidecar a client subcommand (`status`) asked did
/// not answer, so scripts can tell "nothing there" from "it answered badly".
pub const UNAVAILABLE: u8 = 69;

/// No sidecar answered; `main` prints it and exits [`UNAVAILABLE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

impl Unavailable {
    /// Says which address did not answer and why.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// True when `err`, or an error it wraps, is an [`Unavailable`].
pub fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Unavailable>())
}
