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
#[cfg(test)]
mod sim_disk;

use crate::ids;
use crate::state::JobRunState;
use durability::Durability;
use keys::Cursor;
use prost::Message;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const DEFAULT_PAGE_SIZE: usize = 50;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A page of a listing, and where the next page starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Which part of a time-ordered tree to list.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub created_after_micros: Option<u64>,
    pub created_before_micros: Option<u64>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    /// A page stops before its stored items reach this many bytes (it
    /// always has at least one), so that a page of large records stays
    /// within what clients read; 0 means no limit.
    pub max_bytes: usize,
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
            let mut txn = Txn {
                store: self,
                writes: Vec::new(),
                count_changes: Vec::new(),
            };
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

    /// Newest first, within `prefix` and the window, keeping what `keep`
    /// accepts, until `window.limit` items are found.
    fn list<M: Message + Default>(
        &self,
        tree: TreeId,
        prefix: &[u8],
        window: &Window,
        keep: impl Fn(&M) -> bool,
    ) -> StoreResult<Page<M>> {
        let (low, mut high) = keys::time_window(
            prefix,
            window.created_after_micros,
            window.created_before_micros,
        );
        if let Some(cursor) = &window.cursor
            && cursor.after < high
        {
            high = cursor.after.clone();
        }
        let mut items = Vec::new();
        let mut last_key = None;
        let mut page_bytes = 0;
        if low < high {
            for entry in self.tree(tree).range(low..high).rev() {
                let (key, bytes) = entry?;
                let item: M = decode(&key, &bytes)?;
                if !keep(&item) {
                    continue;
                }
                page_bytes += bytes.len();
                let full = window.max_bytes > 0 && page_bytes > window.max_bytes;
                if items.len() == window.limit || (full && !items.is_empty()) {
                    // One more matching item exists: there is a next page.
                    return Ok(Page {
                        items,
                        next: last_key.map(|after| Cursor { after }),
                    });
                }
                items.push(item);
                last_key = Some(key.to_vec());
            }
        }
        Ok(Page { items, next: None })
    }

    pub fn list_virtual_clusters(
        &self,
        window: &Window,
        keep: impl Fn(&pb::VirtualCluster) -> bool,
    ) -> StoreResult<Page<pb::VirtualCluster>> {
        self.list(TreeId::VirtualClusters, b"", window, keep)
    }

    pub fn list_job_runs(
        &self,
        vc_id: &str,
        window: &Window,
        keep: impl Fn(&pb::JobRun) -> bool,
    ) -> StoreResult<Page<pb::JobRun>> {
        self.list(TreeId::JobRuns, &keys::job_run_prefix(vc_id), window, keep)
    }

    pub(crate) fn list_standalone<T: Standalone>(&self, window: &Window) -> StoreResult<Page<T>> {
        self.list(T::TREE, b"", window, |_| true)
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

/// The buffered changes of one [`Store::write`].
pub struct Txn<'a> {
    store: &'a Store,
    writes: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
    count_changes: Vec<(String, Option<JobRunState>, Option<JobRunState>)>,
}

impl Txn<'_> {
    /// The value of a key as this write sees it: its own buffered changes
    /// first, then earlier writes not yet on disk, then the tree.
    fn get_raw(&self, tree: TreeId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if let Some((_, _, value)) = self
            .writes
            .iter()
            .rev()
            .find(|(t, k, _)| *t == tree && k == key)
        {
            return Ok(value.clone());
        }
        if let Some(pending) = self.store.inner.durability.pending(tree as u8, key) {
            return Ok(pending);
        }
        Ok(self.store.tree(tree).get(key)?.map(|v| v.to_vec()))
    }

    fn get<M: Message + Default>(&self, tree: TreeId, key: &[u8]) -> StoreResult<Option<M>> {
        self.get_raw(tree, key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    fn put<M: Message>(&mut self, tree: TreeId, key: Vec<u8>, msg: &M) {
        self.writes.push((tree, key, Some(encode(msg))));
    }

    fn remove(&mut self, tree: TreeId, key: Vec<u8>) {
        self.writes.push((tree, key, None));
    }

    pub fn virtual_cluster(&self, id: &str) -> StoreResult<Option<pb::VirtualCluster>> {
        self.get(TreeId::VirtualClusters, id.as_bytes())
    }

    pub fn put_virtual_cluster(&mut self, vc: &pb::VirtualCluster) {
        self.put(TreeId::VirtualClusters, vc.id.clone().into_bytes(), vc);
    }

    /// The live virtual cluster that owns a namespace, if any.
    pub fn namespace_owner(
        &self,
        provider_id: &str,
        namespace: &str,
    ) -> StoreResult<Option<String>> {
        let key = keys::namespace(provider_id, namespace);
        Ok(self
            .get_raw(TreeId::VcNamespaces, &key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn claim_namespace(&mut self, provider_id: &str, namespace: &str, vc_id: &str) {
        self.writes.push((
            TreeId::VcNamespaces,
            keys::namespace(provider_id, namespace),
            Some(vc_id.as_bytes().to_vec()),
        ));
    }

    pub fn release_namespace(&mut self, provider_id: &str, namespace: &str) {
        self.remove(
            TreeId::VcNamespaces,
            keys::namespace(provider_id, namespace),
        );
    }

    pub fn job_run(&self, vc_id: &str, run_id: &str) -> StoreResult<Option<pb::JobRun>> {
        self.get(TreeId::JobRuns, &keys::job_run(vc_id, run_id))
    }

    /// Stores a job run and keeps the open-run index and queue counts in step.
    /// `previous` is the state it was stored with (None for a new run).
    pub fn put_job_run(&mut self, previous: Option<JobRunState>, run: &pb::JobRun) {
        let key = keys::job_run(&run.virtual_cluster_id, &run.id);
        let state = crate::state::state_of(run);
        self.put(TreeId::JobRuns, key.clone(), run);
        if state.is_terminal() {
            self.remove(TreeId::OpenJobRuns, key);
        } else {
            self.writes.push((
                TreeId::OpenJobRuns,
                key,
                Some(state.as_str().as_bytes().to_vec()),
            ));
        }
        self.count_changes
            .push((run.virtual_cluster_id.clone(), previous, Some(state)));
    }

    /// Sets a timer of `kind` for a run at `due_micros` (see [`Store::due`]).
    pub fn schedule(&mut self, kind: Timer, due_micros: u64, vc_id: &str, run_id: &str) {
        self.writes.push((
            kind.tree(),
            keys::timer(due_micros, vc_id, run_id),
            Some(Vec::new()),
        ));
    }

    /// Removes a timer that was acted on (its key from [`Due::key`]).
    pub fn unschedule(&mut self, kind: Timer, key: &[u8]) {
        self.remove(kind.tree(), key.to_vec());
    }

    /// The open (non-terminal) runs of one virtual cluster, as committed
    /// (on disk or pending).
    pub fn open_job_runs_of(&self, vc_id: &str) -> StoreResult<Vec<String>> {
        let prefix = keys::job_run_prefix(vc_id);
        let mut open = std::collections::BTreeSet::new();
        for entry in self
            .store
            .tree(TreeId::OpenJobRuns)
            .scan_prefix(&prefix)
            .keys()
        {
            open.insert(entry?.to_vec());
        }
        let pending = self
            .store
            .inner
            .durability
            .pending_with_prefix(TreeId::OpenJobRuns as u8, &prefix);
        for (key, value) in pending {
            if value.is_some() {
                open.insert(key);
            } else {
                open.remove(&key);
            }
        }
        Ok(open
            .iter()
            .filter_map(|key| keys::split_job_run(key).map(|(_, run)| run))
            .collect())
    }

    pub fn queue_counts(&self, vc_id: &str) -> QueueCounts {
        let mut counts = self.store.queue_counts(vc_id);
        for (vc, before, after) in &self.count_changes {
            if vc == vc_id {
                before.map(|s| counts.add(s, -1));
                after.map(|s| counts.add(s, 1));
            }
        }
        counts
    }

    pub(crate) fn standalone<T: Standalone>(&self, id: &str) -> StoreResult<Option<T>> {
        self.get(T::TREE, id.as_bytes())
    }

    pub(crate) fn put_standalone<T: Standalone>(&mut self, item: &T) {
        self.put(T::TREE, item.id().as_bytes().to_vec(), item);
    }

    pub(crate) fn delete_standalone<T: Standalone>(&mut self, id: &str) {
        self.remove(T::TREE, id.as_bytes().to_vec());
    }

    pub fn client_token(
        &self,
        operation: &str,
        scope: &str,
        token: &str,
    ) -> StoreResult<Option<ClientTokenRecord>> {
        self.get(
            TreeId::ClientTokens,
            &keys::client_token(operation, scope, token),
        )
    }

    pub fn put_client_token(
        &mut self,
        operation: &str,
        scope: &str,
        token: &str,
        record: &ClientTokenRecord,
    ) {
        self.put(
            TreeId::ClientTokens,
            keys::client_token(operation, scope, token),
            record,
        );
    }

    /// Hands the buffered changes to the journal; returns the sequence
    /// number to wait for. A write that changed nothing still waits for the
    /// writes before it: what it read may not be on disk yet.
    fn commit(self) -> StoreResult<u64> {
        let durability = &self.store.inner.durability;
        if self.writes.is_empty() {
            return Ok(durability.last_submitted());
        }
        let changes = self
            .writes
            .into_iter()
            .map(|(tree, key, value)| (tree as u8, key, value))
            .collect();
        let seq = durability.submit(changes)?;
        let mut counts = self
            .store
            .inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (vc, before, after) in self.count_changes {
            let entry = counts.entry(vc).or_default();
            if let Some(s) = before {
                entry.add(s, -1);
            }
            if let Some(s) = after {
                entry.add(s, 1);
            }
        }
        Ok(seq)
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
mod tests {
    use super::*;

    fn pending_run(vc: &str, id: &str) -> pb::JobRun {
        let mut run = pb::JobRun {
            id: id.into(),
            virtual_cluster_id: vc.into(),
            ..Default::default()
        };
        crate::state::initial(&mut run, prost_types::Timestamp::default());
        run
    }

    /// The changes `put_job_run` makes for a new run, as journal changes.
    fn new_run_changes(run: &pb::JobRun) -> Vec<journal::Change> {
        let key = keys::job_run(&run.virtual_cluster_id, &run.id);
        vec![
            (TreeId::JobRuns as u8, key.clone(), Some(encode(run))),
            (TreeId::OpenJobRuns as u8, key, Some(b"PENDING".to_vec())),
        ]
    }

    #[tokio::test]
    async fn open_replays_what_only_the_journal_holds() {
        // A store directory as a crash can leave it: two writes reached the
        // journal but not sled, and a third was torn mid-record.
        let dir = tempfile::tempdir().unwrap();
        drop(sled::open(dir.path()).unwrap());
        let journal = journal::Journal::open(&dir.path().join("journal")).unwrap();
        let mut segment = journal.create_segment(1).unwrap();
        let mut bytes = Vec::new();
        journal::encode(1, &new_run_changes(&pending_run("vc", "r1")), &mut bytes);
        journal::encode(2, &new_run_changes(&pending_run("vc", "r2")), &mut bytes);
        let mut torn = Vec::new();
        journal::encode(3, &new_run_changes(&pending_run("vc", "r3")), &mut torn);
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        segment.append_durably(&bytes).unwrap();
        drop(segment);

        let store = Store::open(dir.path()).unwrap();
        assert!(store.job_run("vc", "r1").unwrap().is_some());
        assert!(store.job_run("vc", "r2").unwrap().is_some());
        assert!(
            store.job_run("vc", "r3").unwrap().is_none(),
            "a torn record is not replayed"
        );
        assert_eq!(store.open_job_runs().unwrap().len(), 2);
        assert_eq!(store.queue_counts("vc").in_queue, 2);

        // Writes go on after the replayed ones, and survive a clean close,
        // which leaves no journal behind.
        store
            .write(|txn| -> StoreResult<()> {
                txn.put_job_run(None, &pending_run("vc", "r4"));
                Ok(())
            })
            .await
            .unwrap();
        store.close().unwrap();
        assert_eq!(journal.segments().unwrap(), []);
        let err = store
            .write(|txn| -> StoreResult<()> {
                txn.put_job_run(None, &pending_run("vc", "r5"));
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not flush the store to disk: the store is closed"
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.open_job_runs().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn full_segments_are_checkpointed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        let small = journal::Journal::with_segment_bytes(&journal_dir, 2048).unwrap();
        let store = Store::open_with_journal(dir.path(), small.clone()).unwrap();
        for i in 0..200 {
            store
                .write(|txn| -> StoreResult<()> {
                    txn.put_job_run(None, &pending_run("vc", &format!("r{i:03}")));
                    Ok(())
                })
                .await
                .unwrap();
        }
        // Each record is about 150 bytes: many segments were filled, and the
        // checkpoint thread deletes them once sled has flushed them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while small.segments().unwrap().len() > 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "full segments are kept"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        store.close().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.job_run_count(), 200);
        assert_eq!(store.queue_counts("vc").in_queue, 200);
    }

    #[tokio::test]
    async fn a_write_sees_earlier_writes_and_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writes = (0..50).map(|i| {
            let store = store.clone();
            async move {
                store
                    .write(|txn| -> StoreResult<()> {
                        txn.put_job_run(None, &pending_run("vc", &format!("r{i:02}")));
                        Ok(())
                    })
                    .await
            }
        });
        futures::future::try_join_all(writes).await.unwrap();
        let open = store
            .write(|txn| -> StoreResult<Vec<String>> {
                txn.put_job_run(None, &pending_run("vc", "zz"));
                txn.open_job_runs_of("vc")
            })
            .await
            .unwrap();
        assert_eq!(
            open.len(),
            50,
            "the runs committed before, not this write's own"
        );
        assert_eq!(store.queue_counts("vc").in_queue, 51);
    }

    #[tokio::test]
    async fn a_page_of_large_records_stops_at_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10u64 {
            let mut run = pending_run("vc", &ids::new_id(1_000_000 + i, ids::JOB_RUN_ID_LEN));
            run.name = "x".repeat(300 * 1024);
            store
                .write(|txn| -> StoreResult<()> {
                    txn.put_job_run(None, &run);
                    Ok(())
                })
                .await
                .unwrap();
        }
        let window = |cursor| Window {
            limit: 50,
            max_bytes: 1024 * 1024,
            cursor,
            ..Window::default()
        };
        let mut seen = 0;
        let mut cursor = None;
        loop {
            let page = store
                .list_job_runs("vc", &window(cursor), |_| true)
                .unwrap();
            assert!(
                (1..=3).contains(&page.items.len()),
                "{} items",
                page.items.len()
            );
            seen += page.items.len();
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, 10, "paging by bytes loses no run");
        // One record larger than the budget still comes, alone.
        let tiny = Window {
            limit: 50,
            max_bytes: 1,
            ..Window::default()
        };
        assert_eq!(
            store
                .list_job_runs("vc", &tiny, |_| true)
                .unwrap()
                .items
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn timers_come_due_in_time_order_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|txn| -> StoreResult<()> {
                txn.schedule(Timer::Cleanup, 2_000, "vc", "late");
                txn.schedule(Timer::Cleanup, 1_000, "vc", "early");
                txn.schedule(Timer::Retry, 500, "vc", "retried");
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(store.due(Timer::Cleanup, 999, 10).unwrap(), []);
        assert_eq!(store.next_due(Timer::Cleanup).unwrap(), Some(1_000));
        assert_eq!(store.next_due(Timer::Retry).unwrap(), Some(500));
        let due = store.due(Timer::Cleanup, 2_000, 10).unwrap();
        let runs: Vec<&str> = due.iter().map(|c| c.run_id.as_str()).collect();
        assert_eq!(runs, ["early", "late"]);
        let first = due[0].key.clone();
        store
            .write(|txn| -> StoreResult<()> {
                txn.unschedule(Timer::Cleanup, &first);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            store.due(Timer::Cleanup, u64::MAX - 1, 10).unwrap().len(),
            1
        );
        assert_eq!(
            store.due(Timer::Retry, 500, 10).unwrap()[0].run_id,
            "retried"
        );
    }
}
