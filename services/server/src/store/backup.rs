//! Online backups of the store, and restores into an empty directory.
//!
//! A backup is taken while the store serves and writers go on. It copies
//! every tree, and meanwhile keeps every journal record the store applies
//! (`Durability::start_tap`). The copy alone is *fuzzy*: writes that land
//! while it runs may show in some keys and not in others. But a record holds
//! the whole new value of each key it changes, so replaying the kept records
//! in order over the copy brings every key to its value at the moment the
//! backup ended: the restored store is the store as it was at one instant,
//! with every write acknowledged before that instant and none half-applied.
//!
//! A backup file is a header line, `sparkvc-backup <store format>\n`, then
//! journal records (the journal's own encoding, each with its checksum):
//! the copy in records numbered 0, the kept records under their own
//! numbers, and last an empty record numbered `u64::MAX` that marks a
//! complete file. A file cut short anywhere, even between records, lacks it
//! and is refused.

use super::journal::{self, Change, Record};
use super::{META_TREE, STATE_INDEXES, STATE_INDEXES_VERSION, Store, TREE_NAMES, format};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &str = "sparkvc-backup ";
/// The number of the record that ends a complete backup.
const END: u64 = u64::MAX;
/// The copy goes out in records of about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;
/// No record of a sound backup comes near this; a larger length is damage,
/// not something to allocate.
const MAX_RECORD_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup is already running; one at a time")]
    Busy,
    #[error(transparent)]
    Store(#[from] super::StoreError),
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error("cannot write the backup: {0}")]
    Write(std::io::Error),
    #[error("cannot read the backup: {0}")]
    Read(std::io::Error),
    #[error("this is not a sparkvc backup: {0}")]
    NotABackup(String),
    #[error("the backup is damaged at byte {offset}: {reason}")]
    Damaged { offset: u64, reason: String },
    #[error(
        "the backup was taken from a store of format {found}, newer than this sparkvc reads \
         (up to {}); restore it with the release that took it",
        format::CURRENT
    )]
    Newer { found: u32 },
    #[error(
        "{0} is not empty: a restore goes into an empty (or new) data directory, never over a store"
    )]
    NotEmpty(PathBuf),
    #[error("cannot restore into {path}: {source}")]
    Target {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a backup or a restore moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Keys in the copy.
    pub copied: u64,
    /// Writes replayed over the copy.
    pub replayed: u64,
    /// Bytes of the backup file.
    pub bytes: u64,
}

/// Counts what goes through a writer.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.inner.write_all(bytes).map_err(BackupError::Write)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// Ends the store's record keeping however the backup ends.
struct Tap<'a>(&'a Store);

impl Tap<'_> {
    /// The records applied since the backup started.
    fn finish(self) -> Vec<Record> {
        let kept = self.0.inner.durability.end_tap();
        std::mem::forget(self);
        kept
    }
}

impl Drop for Tap<'_> {
    fn drop(&mut self) {
        self.0.inner.durability.end_tap();
    }
}

impl Store {
    /// Writes a consistent backup of the store, as of the moment it ends, to
    /// `out`, while the store goes on serving. Blocking: run it on a thread
    /// of its own.
    pub fn backup(&self, out: impl Write) -> Result<Summary, BackupError> {
        let durability = &self.inner.durability;
        if !durability.start_tap() {
            return Err(BackupError::Busy);
        }
        let tap = Tap(self);
        let mut out = Counting {
            inner: out,
            bytes: 0,
        };
        let mut summary = Summary::default();
        out.put(format!("{MAGIC}{}\n", format::CURRENT).as_bytes())?;
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
        let mut changes: Vec<Change> = Vec::new();
        let mut chunk_bytes = 0;
        let mut flush =
            |changes: &mut Vec<Change>, out: &mut Counting<_>| -> Result<(), BackupError> {
                if changes.is_empty() {
                    return Ok(());
                }
                buf.clear();
                journal::encode(0, changes, &mut buf);
                changes.clear();
                out.put(&buf)
            };
        for (id, tree) in self.inner.trees.iter().enumerate() {
            let id = u8::try_from(id).expect("fewer than 256 trees");
            for entry in tree.iter() {
                let (key, value) = entry.map_err(super::StoreError::from)?;
                chunk_bytes += key.len() + value.len();
                changes.push((id, key.to_vec(), Some(value.to_vec())));
                summary.copied += 1;
                if chunk_bytes >= CHUNK_BYTES {
                    flush(&mut changes, &mut out)?;
                    chunk_bytes = 0;
                }
            }
        }
        flush(&mut changes, &mut out)?;
        let kept = tap.finish();
        for record in &kept {
            buf.clear();
            journal::encode(record.seq, &record.changes, &mut buf);
            out.put(&buf)?;
        }
        summary.replayed = kept.len() as u64;
        buf.clear();
        journal::encode(END, &[], &mut buf);
        out.put(&buf)?;
        out.inner.flush().map_err(BackupError::Write)?;
        summary.bytes = out.bytes;
        Ok(summary)
    }
}

/// Restores a backup into `dir`, which must not exist or be empty; the
/// server then opens `dir` as its store (`<data-dir>/store`). Nothing is
/// left in `dir` but a complete store: a damaged or cut-short backup fails
/// with `dir` removed again.
pub fn restore(input: impl Read, dir: &Path) -> Result<Summary, BackupError> {
    let target = |source| BackupError::Target {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(target(e)),
    }
    std::fs::create_dir_all(dir).map_err(target)?;
    let restored = restore_into(BufReader::with_capacity(1 << 20, input), dir);
    if restored.is_err() {
        // Leave no partial store behind to be mistaken for a good one.
        let _ = std::fs::remove_dir_all(dir);
    }
    restored
}

fn restore_into(mut input: impl BufRead, dir: &Path) -> Result<Summary, BackupError> {
    let mut header = Vec::new();
    (&mut input)
        .take(64)
        .read_until(b'\n', &mut header)
        .map_err(BackupError::Read)?;
    let header = String::from_utf8_lossy(&header);
    let found: u32 = header
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            BackupError::NotABackup(format!(
                "it does not start with \"{MAGIC}<format>\": {:?}",
                header.chars().take(40).collect::<String>()
            ))
        })?;
    if found > format::CURRENT {
        return Err(BackupError::Newer { found });
    }

    let db = sled::Config::new()
        .path(dir)
        .open()
        .map_err(super::StoreError::from)?;
    let trees = TREE_NAMES
        .iter()
        .map(|n| db.open_tree(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(super::StoreError::from)?;
    let mut summary = Summary {
        bytes: header.len() as u64,
        ..Summary::default()
    };
    let mut ended = false;
    while let Some(record) = next_record(&mut input, &mut summary.bytes)? {
        if ended {
            return Err(BackupError::Damaged {
                offset: summary.bytes,
                reason: "records after the end of the backup".into(),
            });
        }
        match record.seq {
            END => ended = true,
            0 => summary.copied += record.changes.len() as u64,
            _ => summary.replayed += 1,
        }
        for (tree, key, value) in &record.changes {
            let tree = trees
                .get(usize::from(*tree))
                .ok_or_else(|| BackupError::Damaged {
                    offset: summary.bytes,
                    reason: format!("a record names tree {tree}, which this sparkvc does not have"),
                })?;
            match value {
                Some(v) => tree.insert(key.as_slice(), v.as_slice()),
                None => tree.remove(key.as_slice()),
            }
            .map_err(super::StoreError::from)?;
        }
    }
    if !ended {
        return Err(BackupError::Damaged {
            offset: summary.bytes,
            reason: "it ends before its end record: the backup was cut short".into(),
        });
    }
    // The state indexes came with the trees (every write keeps them), so
    // the store need not rebuild them when it opens.
    db.open_tree(META_TREE)
        .and_then(|meta| meta.insert(STATE_INDEXES, STATE_INDEXES_VERSION))
        .map_err(super::StoreError::from)?;
    db.flush().map_err(super::StoreError::from)?;
    drop(trees);
    drop(db);
    format::record(dir)?;
    Ok(summary)
}

/// The next record of a backup, or None at a clean end of input.
fn next_record(input: &mut impl BufRead, at: &mut u64) -> Result<Option<Record>, BackupError> {
    let damaged = |offset: u64, reason: &str| BackupError::Damaged {
        offset,
        reason: reason.into(),
    };
    if input.fill_buf().map_err(BackupError::Read)?.is_empty() {
        return Ok(None);
    }
    let mut bytes = vec![0; 8];
    input
        .read_exact(&mut bytes)
        .map_err(|_| damaged(*at, "a record header is cut short"))?;
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(damaged(*at, "a record claims an impossible length"));
    }
    bytes.resize(8 + len, 0);
    input
        .read_exact(&mut bytes[8..])
        .map_err(|_| damaged(*at, "a record is cut short"))?;
    let (mut records, used, problem) = journal::decode(&bytes);
    if let Some(reason) = problem {
        return Err(damaged(*at, &reason));
    }
    match (records.pop(), used == bytes.len()) {
        (Some(record), true) if records.is_empty() => {
            *at += bytes.len() as u64;
            Ok(Some(record))
        }
        _ => Err(damaged(*at, "not a single whole record")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{self, JobRunState, Outcome};
    use crate::store::StoreResult;
    use sparkvc_proto::v1 as pb;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn run(n: u64) -> pb::JobRun {
        let mut run = pb::JobRun {
            id: format!("r{n:06}"),
            virtual_cluster_id: "vc".into(),
            ..Default::default()
        };
        state::initial(&mut run, prost_types::Timestamp::default());
        run
    }

    /// Write `n`: run n is new, and run n-1 moves to SUBMITTED, in one
    /// record: a backup that held half of it would break the state index.
    async fn write(store: &Store, n: u64) {
        store
            .write(|txn| -> StoreResult<()> {
                txn.put_job_run(None, &run(n))?;
                if n > 0 {
                    let mut previous = run(n - 1);
                    state::transition(
                        &mut previous,
                        JobRunState::Submitted,
                        Outcome::default(),
                        prost_types::Timestamp::default(),
                    );
                    txn.put_job_run(Some(JobRunState::Pending), &previous)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    fn backup_bytes(store: &Store) -> Vec<u8> {
        let mut out = Vec::new();
        store.backup(&mut out).unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_under_writes_restores_one_instant_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live")).unwrap();
        for n in 0..2_000 {
            write(&store, n).await;
        }
        // Writes go on, one after another, while the backup runs.
        let acknowledged = Arc::new(AtomicU64::new(2_000));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 2_000;
                while !stop.load(Ordering::Relaxed) {
                    write(&store, n).await;
                    n += 1;
                    acknowledged.store(n, Ordering::Release);
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let before = acknowledged.load(Ordering::Acquire);
        let (bytes, summary) = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let summary = store.backup(&mut out).unwrap();
                (out, summary)
            })
            .await
            .unwrap()
        };
        let after = acknowledged.load(Ordering::Acquire);
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        assert!(
            summary.replayed > 0,
            "no write landed during the backup: {summary:?}"
        );
        assert_eq!(summary.bytes, bytes.len() as u64);

        let restored_dir = dir.path().join("restored");
        let restored = restore(bytes.as_slice(), &restored_dir).unwrap();
        assert_eq!(
            (restored.copied, restored.replayed),
            (summary.copied, summary.replayed)
        );
        let restored = Store::open(&restored_dir).unwrap();
        // Every write acknowledged before the backup began is there, none
        // after it ended, and they are a prefix: writes n < count, whole.
        let count = restored.job_run_count() as u64;
        assert!(
            before <= count && count <= after + 1,
            "{before} <= {count} <= {after}+1"
        );
        for n in 0..count {
            let r = restored
                .job_run("vc", &format!("r{n:06}"))
                .unwrap()
                .expect("a run");
            let want = if n + 1 == count {
                "PENDING"
            } else {
                "SUBMITTED"
            };
            assert_eq!(r.state, want, "run {n} of {count}");
        }
        restored.check_state_indexes().unwrap();
    }

    #[tokio::test]
    async fn a_damaged_or_cut_backup_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live")).unwrap();
        for n in 0..50 {
            write(&store, n).await;
        }
        let good = backup_bytes(&store);
        let target = dir.path().join("restored");
        let refused = |bytes: &[u8]| {
            let err = restore(bytes, &target).unwrap_err();
            assert!(
                !target.exists(),
                "a partial store was left behind after: {err}"
            );
            err.to_string()
        };
        // Cut short between records: the end record is missing.
        let end_record = {
            let mut b = Vec::new();
            journal::encode(END, &[], &mut b);
            b.len()
        };
        let message = refused(&good[..good.len() - end_record]);
        assert!(message.contains("cut short"), "{message}");
        // Cut inside a record.
        let message = refused(&good[..good.len() / 2]);
        assert!(message.contains("damaged"), "{message}");
        // A flipped byte.
        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let message = refused(&flipped);
        assert!(message.contains("damaged"), "{message}");
        // Not a backup, or from a newer release.
        let message = refused(b"hello\n");
        assert!(message.contains("not a sparkvc backup"), "{message}");
        let mut newer = b"sparkvc-backup 9\n".to_vec();
        newer.extend_from_slice(&good[good.iter().position(|b| *b == b'\n').unwrap() + 1..]);
        let message = refused(&newer);
        assert!(message.contains("format 9, newer"), "{message}");

        // Never over an existing store.
        let message = restore(good.as_slice(), &dir.path().join("live"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("is not empty"), "{message}");

        // The good one restores.
        let summary = restore(good.as_slice(), &target).unwrap();
        assert_eq!(summary.bytes, good.len() as u64);
        assert_eq!(Store::open(&target).unwrap().job_run_count(), 50);
    }

    #[tokio::test]
    async fn one_backup_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.inner.durability.start_tap());
        let err = store.backup(Vec::new()).unwrap_err();
        assert!(matches!(err, BackupError::Busy), "{err}");
        store.inner.durability.end_tap();
        store.backup(Vec::new()).unwrap();
    }
}
