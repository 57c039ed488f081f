//! What the [`MockServer`](super::MockServer) handle and the control API ask the
//! listener task to do. A leaf of its own, so the request handler (which sends these) and
//! the listener task (which obeys them) need not import each other.

use std::io;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// A change of the listener's state, applied in the order sent.
pub(crate) enum Command {
    /// Close the listener and cut every connection but `keep`; come back at `until`.
    Down {
        keep: Option<u64>,
        until: Option<Instant>,
        ack: Option<oneshot::Sender<()>>,
    },
    /// Listen again on the same address.
    Up {
        ack: oneshot::Sender<io::Result<()>>,
    },
}
