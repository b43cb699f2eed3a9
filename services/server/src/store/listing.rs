//! Listing: pages of a time-ordered tree, newest first, bounded by count
//! and by bytes, resumed from a cursor.

use super::keys::{self, Cursor};
use super::{Standalone, Store, StoreResult, TreeId, decode};
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

impl Store {
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
}
