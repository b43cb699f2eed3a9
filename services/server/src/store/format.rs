//! The store's format marker: a file `FORMAT` in the store directory that
//! names the layout of everything in it (which trees exist and what their
//! keys mean, how records are encoded, what a journal record holds).
//!
//! It is read before anything else in the directory is opened, so that a
//! store written by a newer sparkvc, whose journal or trees this one would
//! misread, is refused with nothing in it touched: not replayed, not
//! re-indexed, not rewritten. Stores from before the marker existed hold
//! format 1, the first layout, and get the marker when they next open.
//!
//! A release that changes the layout raises [`CURRENT`], teaches
//! [`Store::open`](super::Store::open) to upgrade the older formats it still
//! reads, and checks in a store of the format it replaces
//! (`tests/e2e/fixtures/`), which a test opens and serves.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The format this build writes, and the newest it reads.
pub const CURRENT: u32 = 1;

const FILE: &str = "FORMAT";
const PREFIX: &str = "sparkvc-store-format ";

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "the store in {dir} has format {found}, newer than this sparkvc reads (up to \
         {CURRENT}): a newer release wrote it. It was left untouched; run that release, or \
         restore a backup taken with this one"
    )]
    Newer { dir: PathBuf, found: u32 },
    #[error("{path} is not a store format marker ({reason}); refusing to guess the format")]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot {doing} {path}: {source}")]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The format of the store in `dir`: [`CURRENT`] for a directory that does
/// not exist yet, 1 for a store from before the marker.
pub fn read(dir: &Path) -> Result<u32, FormatError> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let populated = std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            return Ok(if populated { 1 } else { CURRENT });
        }
        Err(source) => {
            return Err(FormatError::Io {
                doing: "read",
                path,
                source,
            });
        }
    };
    let unreadable = |reason: &str| FormatError::Unreadable {
        path: path.clone(),
        reason: reason.into(),
    };
    let number = text
        .trim_end()
        .strip_prefix(PREFIX)
        .ok_or_else(|| unreadable("it does not start with \"sparkvc-store-format \""))?;
    match number.parse::<u32>() {
        Ok(0) | Err(_) => Err(unreadable("the format is not a positive whole number")),
        Ok(found) => Ok(found),
    }
}

/// Refuses a store whose format this build cannot read.
pub fn check(dir: &Path) -> Result<(), FormatError> {
    match read(dir)? {
        found if found > CURRENT => Err(FormatError::Newer {
            dir: dir.to_path_buf(),
            found,
        }),
        _ => Ok(()),
    }
}

/// Records that the store in `dir` (which exists) has the [`CURRENT`]
/// format: written to a temporary file, synced and renamed into place, so a
/// crash leaves the old marker or the new one, never half of one.
pub fn record(dir: &Path) -> Result<(), FormatError> {
    let path = dir.join(FILE);
    if read(dir)? == CURRENT && path.exists() {
        return Ok(());
    }
    let io = |doing: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FormatError::Io {
            doing,
            path,
            source,
        }
    };
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(format!("{PREFIX}{CURRENT}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_takes_the_current_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        assert_eq!(read(&store).unwrap(), CURRENT);
        check(&store).unwrap();
        std::fs::create_dir(&store).unwrap();
        record(&store).unwrap();
        assert_eq!(
            std::fs::read_to_string(store.join(FILE)).unwrap(),
            format!("sparkvc-store-format {CURRENT}\n")
        );
        assert_eq!(read(&store).unwrap(), CURRENT);
    }

    #[test]
    fn a_store_from_before_the_marker_is_format_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"sled").unwrap();
        assert_eq!(read(dir.path()).unwrap(), 1);
        check(dir.path()).unwrap();
    }

    #[test]
    fn a_newer_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "sparkvc-store-format 7\n").unwrap();
        let message = check(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("has format 7, newer than this sparkvc reads (up to 1)")
                && message.contains("left untouched"),
            "{message}"
        );
    }

    #[test]
    fn a_marker_that_is_not_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "",
            "format 1\n",
            "sparkvc-store-format x\n",
            "sparkvc-store-format 0\n",
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let err = check(dir.path()).unwrap_err();
            assert!(
                matches!(err, FormatError::Unreadable { .. }),
                "{text:?}: {err}"
            );
        }
    }
}
