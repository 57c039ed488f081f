//! The file source: a policy file, usually a mounted ConfigMap. Invariant: the file's
//! directory is watched (not the file), and the watch starts before the first read, so
//! kubelet's atomic `..data` symlink swap and any edit after start-up are always seen.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Outcome, Reloader, SourceTask};

/// Why the file source could not start (a configuration error: exit 64).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The directory could not be watched.
    #[error("cannot watch {}: {source}", dir.display())]
    Watch {
        /// The watched directory.
        dir: PathBuf,
        /// Why.
        source: notify::Error,
    },
    /// The file could not be read at start.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy at start is invalid; every problem is listed.
    #[error("{}: invalid policy:\n  {}", path.display(), errors.join("\n  "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem with its field path.
        errors: Vec<String>,
    },
}

/// Whether a directory event may have changed what the policy path reads as. Opens,
/// reads and closes (inotify's access events) never do, and reacting to them would make
/// the source's own read of the file trigger the next read, for ever.
fn may_change_content(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_))
}

/// A policy file being watched, loaded once and ready to follow changes.
pub struct FileSource {
    path: PathBuf,
    _watcher: RecommendedWatcher,
    changes: mpsc::UnboundedReceiver<()>,
}

impl FileSource {
    /// Starts watching `path`'s directory, then loads the file through `reloader`.
    /// An unreadable or invalid file is an error, so bad config fails before any port
    /// is bound.
    pub fn open(path: &Path, reloader: &Reloader) -> Result<Self, FileError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let (tx, changes) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Any change in the directory may be the swap; reading decides.
            if event.is_ok_and(|event| may_change_content(&event.kind)) {
                let _ = tx.send(());
            }
        })
        .and_then(|mut watcher| {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            Ok(watcher)
        })
        .map_err(|source| FileError::Watch {
            dir: dir.clone(),
            source,
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: path.to_owned(),
            source,
        })?;
        if let Outcome::Invalid(errors) = reloader.offer(&text, &path.display().to_string()) {
            return Err(FileError::Invalid {
                path: path.to_owned(),
                errors,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            _watcher: watcher,
            changes,
        })
    }

    /// Follows changes until the returned task is dropped.
    pub fn spawn(self, reloader: Reloader) -> SourceTask {
        SourceTask::new(tokio::spawn(self.follow(reloader)))
    }

    async fn follow(mut self, reloader: Reloader) {
        let origin = self.path.display().to_string();
        while self.changes.recv().await.is_some() {
            // A swap is a burst of events: read once for all that are already queued.
            while self.changes.try_recv().is_ok() {}
            match tokio::fs::read_to_string(&self.path).await {
                Ok(text) => {
                    reloader.offer(&text, &origin);
                }
                Err(error) => {
                    tracing::warn!(%origin, %error, "cannot read the policy file; keeping the running policy");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use notify::{RecursiveMode, Watcher};

    use super::may_change_content;

    /// Real inotify events for a read of the file, then a sentinel file's creation:
    /// events are delivered in order, so once the sentinel's arrives every event of the
    /// read has been seen. The read must produce events and none may count as a change.
    #[test]
    fn reading_the_file_is_no_change_but_creating_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        let sentinel = dir.path().join("sentinel");
        std::fs::write(&policy, "routes: []\n").unwrap();
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).unwrap();
        watcher
            .watch(dir.path(), RecursiveMode::NonRecursive)
            .unwrap();

        std::fs::read_to_string(&policy).unwrap();
        std::fs::create_dir(&sentinel).unwrap();

        let mut before_sentinel = Vec::new();
        loop {
            let event = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
            if event.paths.contains(&sentinel) {
                assert!(may_change_content(&event.kind), "{event:?}");
                break;
            }
            before_sentinel.push(event);
        }
        assert!(
            !before_sentinel.is_empty(),
            "the read produced no events to filter"
        );
        for event in before_sentinel {
            assert!(!may_change_content(&event.kind), "{event:?}");
        }
    }
}
