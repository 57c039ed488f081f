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
