//! Group commit: every acknowledged write is on disk, yet concurrent writers
//! share one `fsync`.
//!
//! A writer applies its change to sled (in memory), takes a sequence number
//! and waits until a flush that started after it took that number has
//! finished. One thread does the flushing: it waits for requests, notes the
//! highest sequence number so far, flushes once, and releases every writer up
//! to that number. Under load a single flush covers many requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Flushed {
    /// Every write with a sequence number up to this one is durable.
    upto: u64,
    /// The last flush failed; writers waiting for it are told so.
    error: Option<String>,
}

#[derive(Debug)]
pub struct GroupCommit {
    requested: AtomicU64,
    pending: Mutex<bool>,
    wake: Condvar,
    flushed: watch::Sender<Flushed>,
    stop: AtomicBool,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub fn start(db: sled::Db) -> Arc<Self> {
        let this = Arc::new(Self {
            requested: AtomicU64::new(0),
            pending: Mutex::new(false),
            wake: Condvar::new(),
            flushed: watch::channel(Flushed::default()).0,
            stop: AtomicBool::new(false),
        });
        let flusher = Arc::clone(&this);
        std::thread::Builder::new()
            .name("sparkvc-store-flush".into())
            .spawn(move || flusher.run(&db))
            .expect("spawn the store flusher thread");
        this
    }

    fn run(&self, db: &sled::Db) {
        loop {
            {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                while !*pending && !self.stop.load(Ordering::Acquire) {
                    pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
                if self.stop.load(Ordering::Acquire) && !*pending {
                    return;
                }
                *pending = false;
            }
            // Everything numbered up to `target` was applied before it was
            // numbered, so this flush covers it.
            let target = self.requested.load(Ordering::Acquire);
            match db.flush() {
                Ok(_) => {
                    self.flushed.send_modify(|f| {
                        f.upto = f.upto.max(target);
                        f.error = None;
                    });
                }
                Err(err) => {
                    tracing::error!(error = %err, "store flush failed");
                    self.flushed
                        .send_modify(|f| f.error = Some(err.to_string()));
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }

    /// Waits until every write this task has applied so far is on disk.
    pub async fn wait_durable(&self) -> Result<(), String> {
        let mut rx = self.flushed.subscribe();
        let seq = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            *pending = true;
        }
        self.wake.notify_one();
        let state = rx
            .wait_for(|f| f.upto >= seq || f.error.is_some())
            .await
            .map_err(|_| "the store flusher stopped".to_string())?;
        match (&state.error, state.upto >= seq) {
            (_, true) => Ok(()),
            (Some(err), false) => Err(err.clone()),
            (None, false) => unreachable!("wait_for returned early"),
        }
    }

    /// Stops the flusher thread after one last flush.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending = true;
        self.wake.notify_one();
    }
}
