//! The embedded store: sled trees for each record kind plus the indexes that
//! listing and the reconciler need.
//!
//! | tree                      | key                          | value                          |
//! |---------------------------|------------------------------|--------------------------------|
//! | `virtual_clusters`        | vcId                         | VirtualCluster                 |
//! | `vc_namespaces`           | providerId/namespace         | vcId (live clusters only)      |
//! | `job_runs`                | vcId/jobRunId                | JobRun                         |
//! | `open_job_runs`           | vcId/jobRunId                | state (non-terminal runs only) |
//! | `job_templates`           | templateId                   | JobTemplate                    |
//! | `security_configurations` | securityConfigurationId      | SecurityConfiguration          |
//! | `client_tokens`           | operation/scope/clientToken  | ClientTokenRecord              |
//! | `cleanups`                | dueMicros(16 hex)/vcId/jobRunId | empty: a finished run's Kubernetes objects to delete then |
//! | `retries`                 | dueMicros(16 hex)/vcId/jobRunId | empty: a run's next attempt to start then |
//!
//! Beside the trees, `journal/` holds the records of recent writes until
//! sled has flushed them (see [`journal`]).
//!
//! Values are prost messages behind a one-byte schema version.
//!
//! Writes go through [`Store::write`]: one writer at a time reads what it
//! needs (seeing earlier writers' changes even before they are on disk),
//! decides, and buffers its changes; they go to disk as one journal record,
//! so atomically, and the call returns only once they are there and applied
//! to the trees (see [`durability`] and [`journal`]). Reads never wait for
//! writers and see only what is on disk.

mod durability;
#[cfg(test)]
mod durability_tests;
mod files;
mod journal;
pub mod keys;
mod listing;
#[cfg(test)]
mod sim_disk;
mod txn;

use crate::ids;
use crate::state::JobRunState;
use durability::Durability;
pub use listing::{Page, Window};
use prost::Message;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
pub use txn::Txn;

const SCHEMA_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed to read or write.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A committed write could not be made durable.
    #[error("could not flush the store to disk: {0}")]
    Flush(String),
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// A record could not be decoded.
    #[error("record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A change recorded when an idempotent request first succeeds.
#[derive(Clone, PartialEq, Message)]
pub struct ClientTokenRecord {
    /// SHA-256 of the request, with the token itself left out.
    #[prost(bytes = "vec", tag = "1")]
    pub fingerprint: Vec<u8>,
    /// What the request created.
    #[prost(string, tag = "2")]
    pub resource_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TreeId {
    VirtualClusters = 0,
    VcNamespaces,
    JobRuns,
    OpenJobRuns,
    JobTemplates,
    SecurityConfigurations,
    ClientTokens,
    Cleanups,
    Retries,
}

/// A resource stored under its ID alone, in a tree of its own, with no
/// index: job templates and security configurations.
pub(crate) trait Standalone: Message + Default {
    const TREE: TreeId;
    fn id(&self) -> &str;
}

impl Standalone for pb::JobTemplate {
    const TREE: TreeId = TreeId::JobTemplates;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Standalone for pb::SecurityConfiguration {
    const TREE: TreeId = TreeId::SecurityConfigurations;
    fn id(&self) -> &str {
        &self.id
    }
}

const TREE_NAMES: [&str; 9] = [
    "virtual_clusters",
    "vc_namespaces",
    "job_runs",
    "open_job_runs",
    "job_templates",
    "security_configurations",
    "client_tokens",
    "cleanups",
    "retries",
];

/// How many of a virtual cluster's runs are queued and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// PENDING or SUBMITTED.
    pub in_queue: i64,
    /// RUNNING.
    pub running: i64,
}

impl QueueCounts {
    fn add(&mut self, state: JobRunState, sign: i64) {
        match state {
            JobRunState::Pending | JobRunState::Submitted => self.in_queue += sign,
            JobRunState::Running => self.running += sign,
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    trees: Vec<sled::Tree>,
    writer: Mutex<()>,
    counts: Mutex<BTreeMap<String, QueueCounts>>,
    durability: Arc<Durability>,
}

fn encode<M: Message>(msg: &M) -> Vec<u8> {
    let mut buf = Vec::with_capacity(msg.encoded_len() + 1);
    buf.push(SCHEMA_VERSION);
    msg.encode(&mut buf).expect("a Vec grows as needed");
    buf
}

fn decode<M: Message + Default>(key: &[u8], bytes: &[u8]) -> StoreResult<M> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    match bytes.split_first() {
        Some((&SCHEMA_VERSION, body)) => M::decode(body).map_err(|e| corrupt(e.to_string())),
        Some((v, _)) => Err(corrupt(format!(
            "schema version {v} is newer than this sparkvc understands"
        ))),
        None => Err(corrupt("empty record".into())),
    }
}

/// Work the executor must do for one job run at a stored time. Kept in the
/// store so that a restart forgets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Delete a finished run's Kubernetes objects (its TTL passed).
    Cleanup,
    /// Start the next attempt of a run whose driver failed.
    Retry,
}

impl Timer {
    fn tree(self) -> TreeId {
        match self {
            Timer::Cleanup => TreeId::Cleanups,
            Timer::Retry => TreeId::Retries,
        }
    }
}

/// A timer that has come due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub key: Vec<u8>,
    pub vc_id: String,
    pub run_id: String,
}

impl Store {
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_journal(path, journal::Journal::open(&path.join("journal"))?)
    }

    fn open_with_journal(path: &Path, journal: journal::Journal) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        let trees = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let durability = Durability::open(db, trees.clone(), journal)?;
        let store = Self {
            inner: Arc::new(Inner {
                trees,
                writer: Mutex::new(()),
                counts: Mutex::default(),
                durability,
            }),
        };
        store.rebuild_counts()?;
        Ok(store)
    }

    fn tree(&self, id: TreeId) -> &sled::Tree {
        &self.inner.trees[id as usize]
    }

    fn rebuild_counts(&self) -> StoreResult<()> {
        let mut counts = BTreeMap::<String, QueueCounts>::new();
        for entry in self.tree(TreeId::OpenJobRuns).iter() {
            let (key, state) = entry?;
            let (vc, _) = keys::split_job_run(&key).unwrap_or_default();
            let state = JobRunState::parse(&String::from_utf8_lossy(&state))
                .unwrap_or(JobRunState::Pending);
            counts.entry(vc).or_default().add(state, 1);
        }
        *self.inner.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
        Ok(())
    }

    /// Runs `change` as the only writer, commits what it buffered atomically,
    /// and returns once that is on disk. If `change` fails nothing is written.
    pub async fn write<T, E>(
        &self,
        change: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let (result, seq) = {
            let _only_writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let mut txn = Txn::new(self);
            let result = change(&mut txn)?;
            (result, txn.commit()?)
        };
        self.inner.durability.wait(seq).await?;
        Ok(result)
    }

    // --- reads ---------------------------------------------------------------

    fn get<M: Message + Default>(&self, tree: TreeId, key: &[u8]) -> StoreResult<Option<M>> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    pub fn virtual_cluster(&self, id: &str) -> StoreResult<Option<pb::VirtualCluster>> {
        self.get(TreeId::VirtualClusters, id.as_bytes())
    }

    pub fn job_run(&self, vc_id: &str, run_id: &str) -> StoreResult<Option<pb::JobRun>> {
        self.get(TreeId::JobRuns, &keys::job_run(vc_id, run_id))
    }

    pub(crate) fn standalone<T: Standalone>(&self, id: &str) -> StoreResult<Option<T>> {
        self.get(T::TREE, id.as_bytes())
    }

    pub fn queue_counts(&self, vc_id: &str) -> QueueCounts {
        let counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(vc_id).copied().unwrap_or_default()
    }

    /// Every non-terminal job run, as (virtual cluster ID, job run ID, state).
    pub fn open_job_runs(&self) -> StoreResult<Vec<(String, String, JobRunState)>> {
        let mut out = Vec::new();
        for entry in self.tree(TreeId::OpenJobRuns).iter() {
            let (key, state) = entry?;
            if let Some((vc, run)) = keys::split_job_run(&key) {
                let state = JobRunState::parse(&String::from_utf8_lossy(&state))
                    .unwrap_or(JobRunState::Pending);
                out.push((vc, run, state));
            }
        }
        Ok(out)
    }

    /// Timers of `kind` due at or before `now_micros`, the earliest first,
    /// at most `limit`.
    pub fn due(&self, kind: Timer, now_micros: u64, limit: usize) -> StoreResult<Vec<Due>> {
        let end = keys::timer_bound(now_micros);
        let mut out = Vec::new();
        for entry in self.tree(kind.tree()).range(..end).keys().take(limit) {
            let key = entry?;
            if let Some((_, vc_id, run_id)) = keys::split_timer(&key) {
                out.push(Due {
                    key: key.to_vec(),
                    vc_id,
                    run_id,
                });
            }
        }
        Ok(out)
    }

    /// When the earliest timer of `kind` is due, if there is one.
    pub fn next_due(&self, kind: Timer) -> StoreResult<Option<u64>> {
        Ok(self
            .tree(kind.tree())
            .first()?
            .and_then(|(key, _)| keys::split_timer(&key))
            .map(|(due, _, _)| due))
    }

    /// Virtual clusters in a given state, oldest first.
    /// The IDs of virtual cluster `vc_id`'s open (non-terminal) job runs.
    pub fn open_job_runs_in(&self, vc_id: &str) -> StoreResult<Vec<String>> {
        let prefix = keys::job_run_prefix(vc_id);
        let mut out = Vec::new();
        for key in self.tree(TreeId::OpenJobRuns).scan_prefix(&prefix).keys() {
            if let Some((_, run)) = keys::split_job_run(&key?) {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// The virtual clusters that hold a namespace (RUNNING or TERMINATING),
    /// from the namespace index: as many reads as live virtual clusters,
    /// however long the history of terminated ones.
    pub fn live_virtual_clusters(&self) -> StoreResult<Vec<pb::VirtualCluster>> {
        let mut out = Vec::new();
        for entry in self.tree(TreeId::VcNamespaces).iter() {
            let (_, id) = entry?;
            if let Some(vc) = self.virtual_cluster(&String::from_utf8_lossy(&id))? {
                out.push(vc);
            }
        }
        Ok(out)
    }

    /// False once the store has stopped taking writes.
    pub fn writable(&self) -> bool {
        self.inner.durability.writable()
    }

    /// Resolves, with the reason, if the store stops taking writes (its
    /// journal could not be written); a restart recovers from the journal.
    pub async fn failed(&self) -> String {
        self.inner.durability.failed().await
    }

    /// Finishes the writes under way, flushes sled and stops the
    /// background threads. Later writes fail.
    pub fn close(&self) -> StoreResult<()> {
        self.inner.durability.close()
    }

    /// Number of stored job runs (all states), for diagnostics and benchmarks.
    pub fn job_run_count(&self) -> usize {
        self.tree(TreeId::JobRuns).len()
    }
}

/// The creation time of a record, from its time-ordered ID.
pub fn created_micros(id: &str) -> Option<u64> {
    ids::micros_of(id)
}

/// Stores for tests elsewhere in the server.
#[cfg(test)]
pub(crate) mod testing {
    use super::sim_disk::{Fault, OpKind, SimDisk, SimFiles};
    use super::{Store, journal::Journal};
    use std::path::Path;
    use std::sync::Arc;

    /// A store in `dir` whose journal is on a simulated disk that fails
    /// the first append with EIO: for what the server does when its store
    /// stops taking writes.
    pub fn store_whose_journal_fails(dir: &Path) -> Store {
        let disk = SimDisk::new();
        disk.fail_at(0, Fault::Errno(5), |op| {
            op.on_thread("sparkvc-store-flush") && op.kind == OpKind::Write
        });
        let files = Arc::new(SimFiles(disk));
        let journal = Journal::on_files(&dir.join("journal"), 4096, files).expect("a journal");
        Store::open_with_journal(dir, journal).expect("open the store")
    }
}

#[cfg(test)]
mod tests;
