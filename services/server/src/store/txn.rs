//! A write's view of the store: it reads through the changes buffered so
//! far (its own and those of earlier writers not yet on disk), buffers its
//! own, and keeps the per-virtual-cluster queue counts in step.

use super::{
    ClientTokenRecord, QueueCounts, Standalone, Store, StoreResult, Timer, TreeId, decode, encode,
    keys, state_index_key, stored_state,
};
use crate::state::JobRunState;
use prost::Message;
use sparkvc_proto::v1 as pb;
use std::collections::HashMap;

/// The buffered changes of one [`Store::write`].
pub struct Txn<'a> {
    store: &'a Store,
    writes: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
    /// Where in `writes` each key was last written, so that reading one's
    /// own writes costs the same however many there are.
    latest: HashMap<(TreeId, Vec<u8>), usize>,
    count_changes: Vec<(String, Option<JobRunState>, Option<JobRunState>)>,
}

impl<'a> Txn<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Self {
            store,
            writes: Vec::new(),
            latest: HashMap::new(),
            count_changes: Vec::new(),
        }
    }

    /// The value of a key as this write sees it: its own buffered changes
    /// first, then earlier writes not yet on disk, then the tree.
    fn get_raw(&self, tree: TreeId, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if let Some(&at) = self.latest.get(&(tree, key.to_vec())) {
            return Ok(self.writes[at].2.clone());
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

    fn push(&mut self, tree: TreeId, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.latest.insert((tree, key.clone()), self.writes.len());
        self.writes.push((tree, key, value));
    }

    fn put<M: Message>(&mut self, tree: TreeId, key: Vec<u8>, msg: &M) {
        self.push(tree, key, Some(encode(msg)));
    }

    fn remove(&mut self, tree: TreeId, key: Vec<u8>) {
        self.push(tree, key, None);
    }

    /// Stores a job run or virtual cluster (per `data`) under `key`, and
    /// moves its entry in the state index from the state it is stored with
    /// now (read here, so the index never depends on what a caller says)
    /// to `state`. All go into this write's one journal record, so a crash
    /// keeps all or none; they are applied in order, the new entry before
    /// the record and the old one removed after, so that a reader always
    /// finds the record under the state it has (see [`super::listing`]).
    fn put_with_state<M: Message>(
        &mut self,
        data: TreeId,
        index: TreeId,
        key: Vec<u8>,
        state: &str,
        record: &M,
    ) -> StoreResult<()> {
        let before = match self.get_raw(data, &key)? {
            Some(bytes) => Some(stored_state(data, &key, &bytes)?),
            None => None,
        };
        let moved = before.as_deref() != Some(state);
        if moved {
            self.push(index, state_index_key(data, &key, state), Some(Vec::new()));
        }
        self.put(data, key.clone(), record);
        if moved && let Some(before) = before {
            self.remove(index, state_index_key(data, &key, &before));
        }
        Ok(())
    }

    pub fn virtual_cluster(&self, id: &str) -> StoreResult<Option<pb::VirtualCluster>> {
        self.get(TreeId::VirtualClusters, id.as_bytes())
    }

    /// Stores a virtual cluster and keeps the state index in step.
    pub fn put_virtual_cluster(&mut self, vc: &pb::VirtualCluster) -> StoreResult<()> {
        self.put_with_state(
            TreeId::VirtualClusters,
            TreeId::VcByState,
            vc.id.clone().into_bytes(),
            &vc.state,
            vc,
        )
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
        self.push(
            TreeId::VcNamespaces,
            keys::namespace(provider_id, namespace),
            Some(vc_id.as_bytes().to_vec()),
        );
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

    /// Stores a job run and keeps the open-run index, the state index and
    /// the queue counts in step. `previous` is the state it was stored with
    /// (None for a new run), for the counts.
    pub fn put_job_run(
        &mut self,
        previous: Option<JobRunState>,
        run: &pb::JobRun,
    ) -> StoreResult<()> {
        let key = keys::job_run(&run.virtual_cluster_id, &run.id);
        let state = crate::state::state_of(run);
        self.put_with_state(
            TreeId::JobRuns,
            TreeId::JobRunsByState,
            key.clone(),
            &run.state,
            run,
        )?;
        if state.is_terminal() {
            self.remove(TreeId::OpenJobRuns, key);
        } else {
            self.push(
                TreeId::OpenJobRuns,
                key,
                Some(state.as_str().as_bytes().to_vec()),
            );
        }
        self.count_changes
            .push((run.virtual_cluster_id.clone(), previous, Some(state)));
        Ok(())
    }

    /// Sets a timer of `kind` for a run at `due_micros` (see [`Store::due`]).
    pub fn schedule(&mut self, kind: Timer, due_micros: u64, vc_id: &str, run_id: &str) {
        self.push(
            kind.tree(),
            keys::timer(due_micros, vc_id, run_id),
            Some(Vec::new()),
        );
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
    pub(super) fn commit(self) -> StoreResult<u64> {
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
