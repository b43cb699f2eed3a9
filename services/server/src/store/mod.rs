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
//! | `job_runs_by_state`       | vcId/STATE/jobRunId          | empty: every run, under its stored state |
//! | `vc_by_state`             | STATE/vcId                   | empty: every virtual cluster, under its stored state |
//! | `meta`                    | name                         | what the store's format holds (see below) |
//!
//! The two `*_by_state` trees serve listings with a `states` filter without
//! walking the whole history (see [`listing`]). They are exact: every write
//! that stores a run or a virtual cluster moves its index entry in the same
//! journal record ([`Txn::put_job_run`], [`Txn::put_virtual_cluster`]), so a
//! crash applies both or neither. A store written before they existed has
//! no `meta` key `state_indexes`: open builds them from a full scan, then
//! sets that key, and until it has, no listing runs.
//!
//! Beside the trees, `journal/` holds the records of recent writes until
//! sled has flushed them (see [`journal`]), and `FORMAT` names the layout of
//! it all (see [`format`]).
//!
//! Values are prost messages behind a one-byte schema version.
//!
//! Writes go through [`Store::write`]: one writer at a time reads what it
//! needs (seeing earlier writers' changes even before they are on disk),
//! decides, and buffers its changes; they go to disk as one journal record,
//! so atomically, and the call returns only once they are there and applied
//! to the trees (see [`durability`] and [`journal`]). Reads never wait for
//! writers and see only what is on disk.

pub mod backup;
mod durability;
#[cfg(test)]
mod durability_tests;
mod files;
pub mod format;
#[cfg(test)]
mod index_tests;
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
    /// The store's format is not one this build reads (see [`format`]).
    #[error(transparent)]
    Format(#[from] format::FormatError),
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
    JobRunsByState,
    VcByState,
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

/// Journal records name trees by their place here: new trees go last.
const TREE_NAMES: [&str; 11] = [
    "virtual_clusters",
    "vc_namespaces",
    "job_runs",
    "open_job_runs",
    "job_templates",
    "security_configurations",
    "client_tokens",
    "cleanups",
    "retries",
    "job_runs_by_state",
    "vc_by_state",
];

/// Written directly to sled (not journaled), at open only.
const META_TREE: &str = "meta";
/// Its value says the `*_by_state` trees were built, in this layout.
const STATE_INDEXES: &[u8] = b"state_indexes";
const STATE_INDEXES_VERSION: &[u8] = b"1";

/// How many of a virtual cluster's runs are queued and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// PENDING or SUBMITTED.
    pub in_queue: i64,
    /// RUNNING.
    pub running: i64,
    /// PENDING: waiting for a slot.
    pub pending: i64,
    /// SUBMITTED.
    pub submitted: i64,
    /// CANCEL_PENDING: holding a slot until its pods are deleted.
    pub cancel_pending: i64,
}

impl QueueCounts {
    fn add(&mut self, state: JobRunState, sign: i64) {
        match state {
            JobRunState::Pending => {
                self.in_queue += sign;
                self.pending += sign;
            }
            JobRunState::Submitted => {
                self.in_queue += sign;
                self.submitted += sign;
            }
            JobRunState::Running => self.running += sign,
            JobRunState::CancelPending => self.cancel_pending += sign,
            _ => {}
        }
    }

    /// Runs that hold one of the `maxConcurrentJobRuns` slots (see
    /// `cluster::queue`).
    pub fn holding(&self) -> i64 {
        self.submitted + self.running + self.cancel_pending
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
    /// Opens (or creates) the store in `path`. A store of a newer format is
    /// refused before anything in the directory is opened or changed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        format::check(path)?;
        let store = Self::open_with_journal(path, journal::Journal::open(&path.join("journal"))?)?;
        format::record(path)?;
        Ok(store)
    }

    fn open_with_journal(path: &Path, journal: journal::Journal) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        Self::open_on(db, journal)
    }

    fn open_on(db: sled::Db, journal: journal::Journal) -> StoreResult<Self> {
        let trees = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = db.open_tree(META_TREE)?;
        let durability = Durability::open(db.clone(), trees.clone(), journal)?;
        let store = Self {
            inner: Arc::new(Inner {
                trees,
                writer: Mutex::new(()),
                counts: Mutex::default(),
                durability,
            }),
        };
        store.rebuild_counts()?;
        store.build_state_indexes(&db, &meta)?;
        Ok(store)
    }

    /// Builds the `*_by_state` trees from the records, once: a store written
    /// before they existed has none. Runs after the journal is replayed and
    /// before any write or read (open has not returned). A crash half-way
    /// leaves the marker unset, so the next open starts again from empty.
    fn build_state_indexes(&self, db: &sled::Db, meta: &sled::Tree) -> StoreResult<()> {
        if meta.get(STATE_INDEXES)?.as_deref() == Some(STATE_INDEXES_VERSION) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        for (data, index) in [
            (TreeId::JobRuns, TreeId::JobRunsByState),
            (TreeId::VirtualClusters, TreeId::VcByState),
        ] {
            self.tree(index).clear()?;
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in self.tree(data).iter() {
                let (key, bytes) = entry?;
                let state = stored_state(data, &key, &bytes)?;
                batch.insert(state_index_key(data, &key, &state), sled::IVec::default());
                in_batch += 1;
                if in_batch == 10_000 {
                    self.tree(index).apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            self.tree(index).apply_batch(batch)?;
        }
        db.flush()?;
        meta.insert(STATE_INDEXES, STATE_INDEXES_VERSION)?;
        db.flush()?;
        tracing::info!(
            job_runs = self.tree(TreeId::JobRunsByState).len(),
            virtual_clusters = self.tree(TreeId::VcByState).len(),
            seconds = started.elapsed().as_secs_f64(),
            "built the store's state indexes"
        );
        Ok(())
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

    /// The queue counts of every virtual cluster that has had open runs
    /// since the store opened (most have none left).
    pub fn all_queue_counts(&self) -> Vec<(String, QueueCounts)> {
        let counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(vc, c)| (vc.clone(), *c)).collect()
    }

    /// The IDs of virtual cluster `vc_id`'s runs stored in `state`, oldest
    /// first, from the state index: reads only those runs' index keys.
    pub fn job_run_ids_in_state(
        &self,
        vc_id: &str,
        state: JobRunState,
    ) -> impl Iterator<Item = StoreResult<String>> + '_ {
        let prefix = keys::by_state(&keys::job_run_prefix(vc_id), state.as_str(), b"");
        let skip = prefix.len();
        self.tree(TreeId::JobRunsByState)
            .scan_prefix(prefix)
            .keys()
            .map(move |key| Ok(String::from_utf8_lossy(&key?[skip..]).into_owned()))
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

/// The `*_by_state` key of the record stored under `key` in `data` (job
/// runs or virtual clusters) when its state is `state`.
fn state_index_key(data: TreeId, key: &[u8], state: &str) -> Vec<u8> {
    let split = match data {
        TreeId::JobRuns => key.iter().position(|b| *b == b'/').map_or(0, |i| i + 1),
        _ => 0,
    };
    let (prefix, suffix) = key.split_at(split);
    keys::by_state(prefix, state, suffix)
}

/// The state of a stored job run or virtual cluster (per `data`).
fn stored_state(data: TreeId, key: &[u8], bytes: &[u8]) -> StoreResult<String> {
    Ok(match data {
        TreeId::JobRuns => decode::<pb::JobRun>(key, bytes)?.state,
        _ => decode::<pb::VirtualCluster>(key, bytes)?.state,
    })
}

/// The creation time of a record, from its time-ordered ID.
pub fn created_micros(id: &str) -> Option<u64> {
    ids::micros_of(id)
}

#[cfg(test)]
impl Store {
    /// Whether each state index holds exactly the entries that a walk of
    /// its records derives; for a store with no write under way.
    pub(crate) fn check_state_indexes(&self) -> Result<(), String> {
        use std::collections::BTreeSet;
        for (data, index) in [
            (TreeId::JobRuns, TreeId::JobRunsByState),
            (TreeId::VirtualClusters, TreeId::VcByState),
        ] {
            let mut derived = BTreeSet::new();
            for entry in self.tree(data).iter() {
                let (key, bytes) = entry.map_err(|e| e.to_string())?;
                let state = stored_state(data, &key, &bytes).map_err(|e| e.to_string())?;
                derived.insert(state_index_key(data, &key, &state));
            }
            let mut indexed = BTreeSet::new();
            for key in self.tree(index).iter().keys() {
                indexed.insert(key.map_err(|e| e.to_string())?.to_vec());
            }
            let show = |keys: Vec<&Vec<u8>>| -> Vec<String> {
                keys.iter()
                    .take(3)
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect()
            };
            if derived != indexed {
                return Err(format!(
                    "{index:?}: {} entries missing (e.g. {:?}), {} extra (e.g. {:?})",
                    derived.difference(&indexed).count(),
                    show(derived.difference(&indexed).collect()),
                    indexed.difference(&derived).count(),
                    show(indexed.difference(&derived).collect()),
                ));
            }
        }
        Ok(())
    }

    /// Makes this a store as written before the state indexes existed.
    pub(crate) fn forget_state_indexes(&self) {
        for index in [TreeId::JobRunsByState, TreeId::VcByState] {
            self.tree(index).clear().expect("clear an index");
        }
        let meta = self
            .inner
            .durability
            .db()
            .open_tree(META_TREE)
            .expect("the meta tree");
        meta.remove(STATE_INDEXES).expect("remove the marker");
    }
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
