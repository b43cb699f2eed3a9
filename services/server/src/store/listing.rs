//! Listing: pages of a time-ordered tree, newest first, bounded by count
//! and by bytes, resumed from a cursor.
//!
//! A listing filtered by state walks the state index instead of every
//! record: the records of one state are one key range of it, in the order
//! of the records' own keys, so merging the ranges of the states asked for
//! gives the records the full walk would keep, in its order, reading only
//! those.
//!
//! Reads do not wait for writes being applied, so the order in which one
//! write's changes are applied matters: a record's new index entry goes in
//! before the record, and the old one goes out after (see
//! `Txn::put_with_state`). At every moment the index then holds the state
//! the record has, and perhaps the one it had too: a listing that races a
//! change finds the run under the state it reads (once: a run met in two
//! ranges comes up twice in a row and is taken once), as a walk would.

use super::keys::{self, Cursor};
use super::{Standalone, Store, StoreError, StoreResult, TreeId, decode};
use prost::Message;
use sparkvc_proto::v1 as pb;

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

/// Stored records, as (key, value), in the order a listing walks them.
type Entries<'a> = Box<dyn Iterator<Item = StoreResult<(sled::IVec, sled::IVec)>> + 'a>;

impl<T> Page<T> {
    fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

/// The first page of `entries` that `keep` accepts, within the window's
/// limits on items and bytes.
fn page<M: Message + Default>(
    entries: Entries<'_>,
    window: &Window,
    keep: impl Fn(&M) -> bool,
) -> StoreResult<Page<M>> {
    let mut items = Vec::new();
    let mut last_key = None;
    let mut page_bytes = 0;
    for entry in entries {
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
    Ok(Page { items, next: None })
}

impl Store {
    /// The key range, within `prefix`, that a window (with its cursor)
    /// covers; None if it is empty.
    fn bounds(prefix: &[u8], window: &Window) -> Option<(Vec<u8>, Vec<u8>)> {
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
        (low < high).then_some((low, high))
    }

    /// Newest first, within `prefix` and the window, keeping what `keep`
    /// accepts, until `window.limit` items are found: a walk of every
    /// record in the window.
    fn list<M: Message + Default>(
        &self,
        tree: TreeId,
        prefix: &[u8],
        window: &Window,
        keep: impl Fn(&M) -> bool,
    ) -> StoreResult<Page<M>> {
        let Some((low, high)) = Self::bounds(prefix, window) else {
            return Ok(Page::empty());
        };
        let entries = self
            .tree(tree)
            .range(low..high)
            .rev()
            .map(|entry| entry.map_err(StoreError::from));
        page(Box::new(entries), window, keep)
    }

    /// The same page as [`list`](Self::list) with a `keep` that accepts
    /// only records in one of `states`, from the state index `index`: one
    /// range of it per state, merged newest first, and only their records
    /// read. The page, its order and its cursor are those of the walk, so
    /// tokens pass between the two. `keep` is still applied to every
    /// record read (it must check the state too): a record changing state
    /// while it is listed is then judged by what was read, as the walk
    /// would.
    fn list_in_states<M: Message + Default>(
        &self,
        tree: TreeId,
        index: TreeId,
        prefix: &[u8],
        states: &[String],
        window: &Window,
        keep: impl Fn(&M) -> bool,
    ) -> StoreResult<Page<M>> {
        let Some((low, high)) = Self::bounds(prefix, window) else {
            return Ok(Page::empty());
        };
        // Both bounds lie in [prefix, prefix + "~"], so both start with it.
        let (Some(low), Some(high)) = (low.strip_prefix(prefix), high.strip_prefix(prefix)) else {
            return Ok(Page::empty());
        };
        let mut states: Vec<&str> = states
            .iter()
            .map(String::as_str)
            // No stored state has a '/': it would end the state in the key.
            .filter(|s| !s.contains('/'))
            .collect();
        states.sort_unstable();
        states.dedup();
        let mut ranges = Vec::with_capacity(states.len());
        for state in states {
            let start = keys::by_state(prefix, state, low);
            let end = keys::by_state(prefix, state, high);
            // The length of `<prefix><state>/`: what follows is the suffix
            // of the record's own key.
            let skip = start.len() - low.len();
            let mut walk = self.tree(index).range(start..end).rev();
            let head = walk.next().transpose()?.map(|(k, _)| k);
            ranges.push((skip, head, walk));
        }
        let records = self.tree(tree);
        let mut last = Vec::new();
        let entries = std::iter::from_fn(move || {
            loop {
                // The range whose next key has the greatest suffix.
                let (skip, head, walk) = ranges
                    .iter_mut()
                    .filter(|range| range.1.is_some())
                    .max_by(|a, b| {
                        let suffix_a = a.1.as_ref().map(|k| &k[a.0..]);
                        let suffix_b = b.1.as_ref().map(|k| &k[b.0..]);
                        suffix_a.cmp(&suffix_b)
                    })?;
                let index_key = head.take()?;
                match walk.next().transpose() {
                    Ok(next) => *head = next.map(|(k, _)| k),
                    Err(e) => return Some(Err(e.into())),
                }
                let mut key = prefix.to_vec();
                key.extend_from_slice(&index_key[*skip..]);
                if key == last {
                    // The same run under its old and its new state.
                    continue;
                }
                last.clone_from(&key);
                match records.get(&key) {
                    Ok(Some(bytes)) => return Some(Ok((sled::IVec::from(key), bytes))),
                    // Its record is not applied yet: a write under way.
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e.into())),
                }
            }
        });
        page(Box::new(entries), window, keep)
    }

    pub fn list_virtual_clusters(
        &self,
        window: &Window,
        keep: impl Fn(&pb::VirtualCluster) -> bool,
    ) -> StoreResult<Page<pb::VirtualCluster>> {
        self.list(TreeId::VirtualClusters, b"", window, keep)
    }

    /// As [`list_virtual_clusters`](Self::list_virtual_clusters) with a
    /// `keep` that accepts only `states` (which it must check too), from
    /// the state index.
    pub fn list_virtual_clusters_in_states(
        &self,
        states: &[String],
        window: &Window,
        keep: impl Fn(&pb::VirtualCluster) -> bool,
    ) -> StoreResult<Page<pb::VirtualCluster>> {
        self.list_in_states(
            TreeId::VirtualClusters,
            TreeId::VcByState,
            b"",
            states,
            window,
            keep,
        )
    }

    pub fn list_job_runs(
        &self,
        vc_id: &str,
        window: &Window,
        keep: impl Fn(&pb::JobRun) -> bool,
    ) -> StoreResult<Page<pb::JobRun>> {
        self.list(TreeId::JobRuns, &keys::job_run_prefix(vc_id), window, keep)
    }

    /// As [`list_job_runs`](Self::list_job_runs) with a `keep` that accepts
    /// only `states` (which it must check too), from the state index.
    pub fn list_job_runs_in_states(
        &self,
        vc_id: &str,
        states: &[String],
        window: &Window,
        keep: impl Fn(&pb::JobRun) -> bool,
    ) -> StoreResult<Page<pb::JobRun>> {
        self.list_in_states(
            TreeId::JobRuns,
            TreeId::JobRunsByState,
            &keys::job_run_prefix(vc_id),
            states,
            window,
            keep,
        )
    }

    pub(crate) fn list_standalone<T: Standalone>(&self, window: &Window) -> StoreResult<Page<T>> {
        self.list(T::TREE, b"", window, |_| true)
    }
}
