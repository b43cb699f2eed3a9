//! Group commit through the journal: every acknowledged write is on disk, yet
//! concurrent writers share one `fsync`, and sled sees only what is durable.
//!
//! A writer, holding the store's writer lock, hands its changes over with a
//! sequence number ([`Durability::submit`]) and waits ([`Durability::wait`]).
//! One thread, the flusher, takes every record waiting, appends them to the
//! journal in one write, syncs it once, applies their changes to sled with
//! plain (cheap) inserts, and releases their writers. Under load a single
//! sync covers many requests.
//!
//! Between submission and application a change lives in the *pending
//! overlay*, which later writers read through (so they see what earlier
//! writers decided) while plain reads go to sled and see only durable data.
//!
//! Checkpoints: when the current segment is full and a spare segment is
//! ready, the flusher starts writing the spare and hands the full one to a
//! second thread, the checkpointer, which flushes sled (after which sled
//! holds everything the segment recorded) and deletes it. The checkpointer
//! is also the only maker of spares: it writes one full of zeros ahead of
//! need. If none is ready when a segment fills, the flusher goes on
//! appending to the full one (which then grows past its nominal size) and
//! switches once a spare is there; it never makes a file itself. On open,
//! whatever segments remain are replayed into sled.
//!
//! What the two threads share, and why it cannot race:
//! - the spare slot, a mutex: the checkpointer fills it only when empty,
//!   the flusher only takes from it. A spare is made with `create_new` under
//!   a name no file has had, and its one handle moves with it into the
//!   segment, so no file is ever written through two handles;
//! - the segments: the flusher writes only the current one; the
//!   checkpointer deletes only those the flusher handed over, oldest first,
//!   after sled has flushed every record in them;
//! - the directory: renames (flusher) and removals (checkpointer) each sync
//!   it before they count; concurrent directory syncs are harmless;
//! - the sled database: the flusher applies, the checkpointer flushes, and
//!   sled allows both at once.
//!
//! `open` and `close` touch files only while neither thread runs.
//!
//! If the journal cannot be written the store stops taking writes (the
//! writers waiting are told, and nothing of theirs reaches sled): after a
//! failed `fsync` what is on disk is unknown, so guessing would risk
//! acknowledging lost writes. Reads go on, and [`Durability::failed`]
//! tells the server, which stops so that a restart replays the journal.

use super::journal::{self, Change, Journal, Segment, Spare};
use super::{StoreError, StoreResult};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// How soon the checkpointer tries again after failing to make a spare or
/// to checkpoint.
const RETRY: Duration = Duration::from_secs(1);

/// A full segment, handed from the flusher to the checkpointer.
#[derive(Debug)]
struct Closed {
    path: PathBuf,
    /// The sequence number of its last record.
    last_seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Flushed {
    /// Every record up to this sequence number is durable and applied.
    upto: u64,
    /// The journal failed: no later write will succeed.
    failed: Option<String>,
}

/// A submitted write waiting for the flusher.
#[derive(Debug)]
struct Pending {
    seq: u64,
    changes: Vec<Change>,
}

#[derive(Debug, Default)]
struct Queue {
    records: Vec<Pending>,
    stop: bool,
    failed: Option<String>,
}

/// Key → (sequence number of the write that set it, value or removal).
type Overlay = BTreeMap<(u8, Vec<u8>), (u64, Option<Vec<u8>>)>;

#[derive(Debug)]
pub struct Durability {
    trees: Vec<sled::Tree>,
    db: sled::Db,
    journal: Journal,
    /// The last sequence number handed out.
    last_seq: AtomicU64,
    queue: Mutex<Queue>,
    wake: Condvar,
    overlay: Mutex<Overlay>,
    /// The next segment, prepared by the checkpoint thread.
    spare: Mutex<Option<Spare>>,
    flushed: watch::Sender<Flushed>,
    /// Every record up to this sequence number is durable in sled itself
    /// (a checkpoint flushed it), so the journal need not hold it.
    checkpointed: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// While a backup runs: every record applied since it started (see
    /// `backup`), in order.
    tap: Mutex<Option<Vec<journal::Record>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Durability {
    /// Replays `journal` into `trees`, then starts the flusher and
    /// checkpoint threads. `trees[i]` is the tree that changes name `i`.
    pub fn open(db: sled::Db, trees: Vec<sled::Tree>, journal: Journal) -> StoreResult<Arc<Self>> {
        let records = journal.read_all()?;
        let replayed = records.len();
        let mut last_seq = 0;
        for record in records {
            apply(&trees, &record.changes)?;
            last_seq = record.seq;
        }
        if replayed > 0 {
            db.flush()?;
            tracing::info!(records = replayed, "replayed the store's journal");
        }
        // Sled now holds everything the old segments did.
        journal.delete_all()?;
        journal.remove_spares()?;
        let segment = journal.create_segment(last_seq + 1)?;

        let this = Arc::new(Self {
            trees,
            db,
            journal,
            last_seq: AtomicU64::new(last_seq),
            queue: Mutex::default(),
            wake: Condvar::new(),
            overlay: Mutex::default(),
            spare: Mutex::default(),
            flushed: watch::channel(Flushed {
                upto: last_seq,
                failed: None,
            })
            .0,
            checkpointed: AtomicU64::new(last_seq),
            threads: Mutex::default(),
            tap: Mutex::default(),
        });
        let (checkpoints, closed) = mpsc::channel::<Closed>();
        let checkpointer = {
            let this = Arc::clone(&this);
            std::thread::Builder::new()
                .name("sparkvc-store-checkpoint".into())
                .spawn(move || this.checkpoint_loop(&closed))
                .expect("spawn the store checkpoint thread")
        };
        let flusher = {
            let this = Arc::clone(&this);
            std::thread::Builder::new()
                .name("sparkvc-store-flush".into())
                .spawn(move || this.flush_loop(segment, &checkpoints))
                .expect("spawn the store flusher thread")
        };
        // The flusher first: stopping it drops the checkpoint channel,
        // which stops the checkpointer.
        lock(&this.threads).extend([flusher, checkpointer]);
        Ok(this)
    }

    /// A change submitted but not yet applied, if `key` has one: Some(None)
    /// for a pending removal.
    pub fn pending(&self, tree: u8, key: &[u8]) -> Option<Option<Vec<u8>>> {
        lock(&self.overlay)
            .get(&(tree, key.to_vec()))
            .map(|(_, value)| value.clone())
    }

    /// Pending changes to keys of `tree` that start with `prefix`.
    pub fn pending_with_prefix(&self, tree: u8, prefix: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        lock(&self.overlay)
            .range((tree, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == tree && k.starts_with(prefix))
            .map(|((_, k), (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// Queues a write's changes; returns its sequence number, to
    /// [`wait`](Self::wait) for. Callers hold the store's writer lock, so
    /// sequence numbers follow the order in which writes decided.
    pub fn submit(&self, changes: Vec<Change>) -> StoreResult<u64> {
        let mut queue = lock(&self.queue);
        if let Some(why) = &queue.failed {
            return Err(StoreError::Flush(why.clone()));
        }
        if queue.stop {
            return Err(StoreError::Flush("the store is closed".into()));
        }
        let seq = self.last_seq.load(Ordering::Acquire) + 1;
        {
            let mut overlay = lock(&self.overlay);
            for (tree, key, value) in &changes {
                overlay.insert((*tree, key.clone()), (seq, value.clone()));
            }
        }
        self.last_seq.store(seq, Ordering::Release);
        queue.records.push(Pending { seq, changes });
        drop(queue);
        self.wake.notify_one();
        Ok(seq)
    }

    /// Starts keeping every record applied from now on, for a backup; false
    /// if one is being kept already (one backup at a time).
    pub fn start_tap(&self) -> bool {
        let mut tap = lock(&self.tap);
        if tap.is_some() {
            return false;
        }
        *tap = Some(Vec::new());
        true
    }

    /// Stops keeping records and returns those kept since [`start_tap`](Self::start_tap).
    pub fn end_tap(&self) -> Vec<journal::Record> {
        lock(&self.tap).take().unwrap_or_default()
    }

    /// The last sequence number handed out: a write that read pending data
    /// but changed nothing waits for this before answering.
    pub fn last_submitted(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Waits until the write numbered `seq` (and every one before it) is on
    /// disk and applied.
    pub async fn wait(&self, seq: u64) -> StoreResult<()> {
        let mut rx = self.flushed.subscribe();
        let state = rx
            .wait_for(|f| f.upto >= seq || f.failed.is_some())
            .await
            .map_err(|_| StoreError::Flush("the store flusher stopped".into()))?;
        match (&state.failed, state.upto >= seq) {
            (_, true) => Ok(()),
            (Some(why), false) => Err(StoreError::Flush(why.clone())),
            (None, false) => unreachable!("wait_for returned early"),
        }
    }

    /// Resolves, with the reason, once the journal has failed and the store
    /// takes no more writes; never, while it works.
    pub async fn failed(&self) -> String {
        let mut rx = self.flushed.subscribe();
        let why = rx
            .wait_for(|f| f.failed.is_some())
            .await
            .map(|state| state.failed.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            Err(_) => std::future::pending().await,
        }
    }

    /// False once the journal has failed.
    pub fn writable(&self) -> bool {
        self.flushed.borrow().failed.is_none()
    }

    /// Every record up to this sequence number is on disk and applied, and
    /// its writer released.
    pub fn acknowledged(&self) -> u64 {
        self.flushed.borrow().upto
    }

    /// Every record up to this sequence number is durable in sled itself.
    #[cfg(test)]
    pub fn checkpointed(&self) -> u64 {
        self.checkpointed.load(Ordering::Acquire)
    }

    /// Whether a spare segment is ready for the flusher, for tests that
    /// want every full segment to be switched at once.
    #[cfg(test)]
    pub fn spare_ready(&self) -> bool {
        lock(&self.spare).is_some()
    }

    /// The sled database, for tests that change it behind the journal.
    #[cfg(test)]
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Tree `i`, for tests that look at what was applied.
    #[cfg(test)]
    pub fn tree(&self, i: usize) -> &sled::Tree {
        &self.trees[i]
    }

    /// Writes what is queued, stops the threads, flushes sled and removes
    /// the journal (everything in it is then in sled).
    pub fn close(&self) -> StoreResult<()> {
        lock(&self.queue).stop = true;
        self.wake.notify_one();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
        self.db.flush()?;
        // After a failure the journal may hold writes sled never got: keep
        // it for the next open to replay.
        if lock(&self.queue).failed.is_none() {
            self.journal.delete_all()?;
        }
        drop(lock(&self.spare).take());
        self.journal.remove_spares()?;
        Ok(())
    }

    fn flush_loop(&self, mut segment: Segment, checkpoints: &mpsc::Sender<Closed>) {
        let journal = &self.journal;
        let mut buf = Vec::with_capacity(1 << 20);
        // The current segment is past its size, waiting for a spare.
        let mut growing = false;
        loop {
            let batch = {
                let mut queue = lock(&self.queue);
                while queue.records.is_empty() && !queue.stop {
                    queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.records.is_empty() {
                    return;
                }
                std::mem::take(&mut queue.records)
            };
            buf.clear();
            for p in &batch {
                journal::encode(p.seq, &p.changes, &mut buf);
            }
            // Held from before the changes reach sled until they are kept:
            // a backup starts or ends between whole batches, never while
            // its copy could hold part of one and its records none of it.
            let mut tap = lock(&self.tap);
            let written = segment
                .append_durably(&buf)
                .map_err(|e| {
                    format!(
                        "cannot write the store's journal {}: {e}",
                        segment.path.display()
                    )
                })
                .and_then(|()| {
                    batch
                        .iter()
                        .try_for_each(|p| apply(&self.trees, &p.changes))
                        .map_err(|e| format!("cannot apply journaled changes to the store: {e}"))
                });
            if let Err(why) = written {
                self.fail(why);
                return;
            }
            let upto = batch.last().map_or(0, |p| p.seq);
            {
                let mut overlay = lock(&self.overlay);
                for p in &batch {
                    for (tree, key, _) in &p.changes {
                        let k = (*tree, key.clone());
                        // A later pending write to the same key stays.
                        if overlay.get(&k).is_some_and(|(seq, _)| *seq == p.seq) {
                            overlay.remove(&k);
                        }
                    }
                }
            }
            if let Some(kept) = tap.as_mut() {
                kept.extend(batch.iter().map(|p| journal::Record {
                    seq: p.seq,
                    changes: p.changes.clone(),
                }));
            }
            drop(tap);
            self.flushed.send_modify(|f| f.upto = f.upto.max(upto));
            if segment.len >= journal.segment_bytes() {
                // Only a spare the checkpointer made: the flusher never
                // prepares a file itself (see the module's notes).
                let Some(spare) = lock(&self.spare).take() else {
                    if !growing {
                        growing = true;
                        tracing::warn!(
                            segment = %segment.path.display(),
                            "no spare journal segment is ready yet; the current one grows until one is"
                        );
                    }
                    continue;
                };
                match journal.install_spare(spare, upto + 1) {
                    Ok(next) => {
                        growing = false;
                        let full = std::mem::replace(&mut segment, next);
                        let _ = checkpoints.send(Closed {
                            path: full.path,
                            last_seq: upto,
                        });
                    }
                    Err(err) => {
                        self.fail(err.to_string());
                        return;
                    }
                }
            }
        }
    }

    /// Stops taking writes and tells every waiting writer why.
    fn fail(&self, why: String) {
        tracing::error!(error = %why, "the store can no longer write; restart the server to recover from its journal");
        let mut queue = lock(&self.queue);
        queue.failed = Some(why.clone());
        queue.records.clear();
        drop(queue);
        lock(&self.overlay).clear();
        self.flushed.send_modify(|f| f.failed = Some(why));
    }

    /// Keeps a spare segment ready; flushes sled for each closed segment,
    /// then deletes it (and any before it that an earlier failure left).
    fn checkpoint_loop(&self, closed: &mpsc::Receiver<Closed>) {
        let (db, journal) = (&self.db, &self.journal);
        let mut waiting: Vec<Closed> = Vec::new();
        loop {
            let spare_ready = lock(&self.spare).is_some() || self.prepare_spare();
            // Sleep until the flusher hands over a segment (which also means
            // it took the spare), or until it is time to try again.
            let next = if spare_ready && waiting.is_empty() {
                closed
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                closed.recv_timeout(RETRY)
            };
            match next {
                Ok(segment) => waiting.push(segment),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            waiting.extend(closed.try_iter());
            if waiting.is_empty() {
                continue;
            }
            // Every record of a closed segment was applied before the
            // flusher handed it over, so it is at or below `applied`.
            let applied = self.acknowledged();
            debug_assert!(waiting.iter().all(|c| c.last_seq <= applied));
            let flushed = db.flush().map_err(|e| e.to_string());
            let done = flushed.and_then(|_| {
                self.checkpointed.fetch_max(applied, Ordering::AcqRel);
                let paths: Vec<PathBuf> = waiting.iter().map(|c| c.path.clone()).collect();
                journal.delete(&paths).map_err(|e| e.to_string())
            });
            match done {
                Ok(()) => waiting.clear(),
                // Kept, and tried again soon; replaying them is harmless.
                Err(err) => tracing::warn!(error = %err, "store checkpoint failed; will retry"),
            }
        }
    }

    /// Makes a spare segment for the flusher; false if that failed (the
    /// checkpointer tries again later, and the flusher keeps writing the
    /// segment it has meanwhile).
    fn prepare_spare(&self) -> bool {
        match self.journal.prepare_spare() {
            Ok(spare) => {
                let mut slot = lock(&self.spare);
                debug_assert!(slot.is_none(), "only the checkpointer fills the spare slot");
                *slot = Some(spare);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "preparing a journal segment failed; will retry");
                false
            }
        }
    }
}

/// Applies changes to sled, in order.
fn apply(trees: &[sled::Tree], changes: &[Change]) -> StoreResult<()> {
    for (tree, key, value) in changes {
        let tree = trees
            .get(usize::from(*tree))
            .ok_or_else(|| StoreError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: format!("the journal names tree {tree}, which this sparkvc does not have"),
            })?;
        match value {
            Some(v) => tree.insert(key.as_slice(), v.as_slice())?,
            None => tree.remove(key.as_slice())?,
        };
    }
    Ok(())
}
