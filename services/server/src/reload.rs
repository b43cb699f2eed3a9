//! Settings read from files that are read again when the files change:
//! the TLS certificate and the identity store. A change is noticed by
//! comparing the files' bytes with those last loaded (every
//! [`POLL_INTERVAL`], or at once on SIGHUP for the identity store); a
//! change that fails to load is reported once and what was loaded before
//! stays in force, so a half-written file never takes the server down or
//! locks everyone out.

use std::path::PathBuf;
use std::time::Duration;

/// How often watched files are compared with what was loaded.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What one look at the files did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The files are as last loaded (or as last failed).
    Unchanged,
    /// They changed and the new contents are now in force.
    Reloaded,
    /// They changed and the new contents were refused; the old stay.
    Failed,
}

impl Outcome {
    /// The `result` label of `sparkvc_config_reloads_total`, if counted.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Outcome::Unchanged => None,
            Outcome::Reloaded => Some("ok"),
            Outcome::Failed => Some("error"),
        }
    }
}

/// The bytes of `files`, with a separator between them; a file that cannot
/// be read contributes its error, so that it counts as a change.
pub fn fingerprint(files: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => out.extend(bytes),
            Err(err) => out.extend(format!("unreadable {}: {err}", file.display()).into_bytes()),
        }
        out.push(0);
    }
    out
}

/// The fingerprints last loaded and last refused.
#[derive(Debug, Default)]
pub struct Seen {
    loaded: Vec<u8>,
    failed: Vec<u8>,
}

impl Seen {
    pub fn new(loaded: Vec<u8>) -> Self {
        Self {
            loaded,
            failed: Vec::new(),
        }
    }

    /// Whether `fingerprint` is neither what is loaded nor what last failed.
    pub fn is_new(&self, fingerprint: &[u8]) -> bool {
        self.loaded != fingerprint && self.failed != fingerprint
    }

    pub fn loaded(&mut self, fingerprint: Vec<u8>) {
        self.loaded = fingerprint;
        self.failed.clear();
    }

    pub fn failed(&mut self, fingerprint: Vec<u8>) {
        self.failed = fingerprint;
    }
}

/// Calls `look` every [`POLL_INTERVAL`] (with `false`) and, when
/// `on_sighup`, on every SIGHUP (with `true`: load even if unchanged), on a
/// blocking thread, until the task is aborted.
pub fn watch<F>(on_sighup: bool, look: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(bool) + Send + Sync + 'static,
{
    let look = std::sync::Arc::new(look);
    tokio::spawn(async move {
        let mut hangup = if on_sighup {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
        } else {
            None
        };
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
            };
            let look = look.clone();
            let _ = tokio::task::spawn_blocking(move || look(forced)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_change_is_not_retried_until_the_files_change_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "one").unwrap();
        let files = vec![file.clone()];
        let mut seen = Seen::new(fingerprint(&files));
        assert!(!seen.is_new(&fingerprint(&files)));
        std::fs::write(&file, "broken").unwrap();
        assert!(seen.is_new(&fingerprint(&files)));
        seen.failed(fingerprint(&files));
        assert!(!seen.is_new(&fingerprint(&files)));
        std::fs::remove_file(&file).unwrap();
        assert!(
            seen.is_new(&fingerprint(&files)),
            "a vanished file is a change"
        );
        std::fs::write(&file, "two").unwrap();
        seen.loaded(fingerprint(&files));
        assert!(!seen.is_new(&fingerprint(&files)));
    }
}
