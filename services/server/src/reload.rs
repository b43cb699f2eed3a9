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

/// What the file system says about `files` without reading them: size,
/// modification and change times and inode of each (an atomic rename, as
/// Kubernetes does for a mounted ConfigMap, gives a new inode).
pub fn stamp(files: &[PathBuf]) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for file in files {
        match std::fs::metadata(file) {
            Ok(m) => {
                for n in [
                    m.len() as i64,
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.ino() as i64,
                ] {
                    out.extend(n.to_le_bytes());
                }
            }
            Err(err) => out.extend(format!("unreadable {}: {err}", file.display()).into_bytes()),
        }
        out.push(0);
    }
    out
}

/// How many looks in a row may trust an unchanged [`stamp`] before the
/// files are read and compared anyway (a rewrite of the same size within
/// one tick of the file system's clock keeps its stamp).
const LOOKS_BETWEEN_READS: u32 = 30;

/// The fingerprints last loaded and last refused, and the files' stamp at
/// the last look.
#[derive(Debug, Default)]
pub struct Seen {
    loaded: Vec<u8>,
    failed: Vec<u8>,
    stamp: Vec<u8>,
    looks_on_stamp: u32,
}

impl Seen {
    pub fn new(loaded: Vec<u8>) -> Self {
        Self {
            loaded,
            ..Self::default()
        }
    }

    /// Whether the files may be taken as unchanged without reading them:
    /// their stamp is the one seen at the last look, and that has not been
    /// trusted too many looks in a row. Records `stamp` for the next look.
    pub fn same_stamp(&mut self, stamp: Vec<u8>) -> bool {
        if stamp == self.stamp && self.looks_on_stamp < LOOKS_BETWEEN_READS {
            self.looks_on_stamp += 1;
            return true;
        }
        self.stamp = stamp;
        self.looks_on_stamp = 0;
        false
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
    fn an_unchanged_stamp_is_trusted_for_a_while_then_the_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("identities.toml");
        std::fs::write(&file, "a").unwrap();
        let files = [file.clone()];
        let mut seen = Seen::default();
        assert!(!seen.same_stamp(stamp(&files)), "the first look reads");
        for _ in 0..LOOKS_BETWEEN_READS {
            assert!(seen.same_stamp(stamp(&files)));
        }
        assert!(!seen.same_stamp(stamp(&files)), "then a read, to be sure");
        assert!(seen.same_stamp(stamp(&files)));
        // A new file in its place (as a ConfigMap update does it).
        let next = dir.path().join("next.toml");
        std::fs::write(&next, "a").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert!(!seen.same_stamp(stamp(&files)));
        std::fs::remove_file(&file).unwrap();
        assert!(
            !seen.same_stamp(stamp(&files)),
            "a missing file is a change"
        );
    }

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
