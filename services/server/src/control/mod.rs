//! The control plane's operations: what each API call does to the store,
//! once the request has passed validation. Handlers in `api` only validate
//! and map; the rules about resources live here.

mod cluster_access;
mod job_runs;
mod job_templates;
mod security_configurations;
mod standalone;
mod tags;
mod virtual_clusters;

#[cfg(test)]
mod tests;

use crate::error::{ApiError, ApiResult};
use crate::ids::{ArnBuilder, Clock};
use crate::release::Catalogue;
use crate::store::keys::Cursor;
use crate::store::{ClientTokenRecord, Store, Txn, Window};
use prost::Message;
use prost_types::Timestamp;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;

pub use cluster_access::{ClusterAccess, NamespaceRefusal};

pub use crate::time::{micros_from_timestamp, timestamp_from_micros};

/// Who and where this control plane is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub arns: ArnBuilder,
}

/// What a control plane is made of.
#[derive(Debug)]
pub struct ControlPlaneParts {
    pub store: Store,
    pub catalogue: Catalogue,
    pub identity: Identity,
    /// The clusters job runs run on, for CreateVirtualCluster's checks.
    pub clusters: Arc<dyn ClusterAccess>,
    pub wake: Arc<Notify>,
}

#[derive(Debug)]
pub struct ControlPlane {
    store: Store,
    catalogue: Catalogue,
    identity: Identity,
    clusters: Arc<dyn ClusterAccess>,
    /// Wakes the executor when runs are accepted or cancelled.
    wake: Arc<Notify>,
    clock: Clock,
}

impl ControlPlane {
    pub fn new(parts: ControlPlaneParts) -> Self {
        let ControlPlaneParts {
            store,
            catalogue,
            identity,
            clusters,
            wake,
        } = parts;
        Self {
            store,
            catalogue,
            identity,
            clusters,
            wake,
            clock: Clock::default(),
        }
    }

    /// Reads `clock` instead of the system clock (tests move time by hand).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn arns(&self) -> &ArnBuilder {
        &self.identity.arns
    }
}

/// SHA-256 of a request with its client token blanked, so that a retry with
/// the same token is recognised as the same request.
fn fingerprint<M: Message + Clone>(request: &M, clear_token: impl FnOnce(&mut M)) -> Vec<u8> {
    let mut copy = request.clone();
    clear_token(&mut copy);
    Sha256::digest(copy.encode_to_vec()).to_vec()
}

/// An idempotent operation's client token, as seen inside a write.
struct Idempotency<'a> {
    operation: &'static str,
    scope: &'a str,
    token: &'a str,
    fingerprint: Vec<u8>,
}

impl Idempotency<'_> {
    /// The resource an earlier request with this token made, or an error if
    /// that request was a different one.
    fn replayed(&self, txn: &Txn<'_>) -> ApiResult<Option<String>> {
        match txn.client_token(self.operation, self.scope, self.token)? {
            None => Ok(None),
            Some(prior) if prior.fingerprint == self.fingerprint => Ok(Some(prior.resource_id)),
            Some(_) => Err(ApiError::validation(format!(
                "The client token {} was already used with a different {} request; use a new client token for a new request.",
                self.token, self.operation
            ))),
        }
    }

    fn record(&self, txn: &mut Txn<'_>, resource_id: &str) {
        let record = ClientTokenRecord {
            fingerprint: self.fingerprint.clone(),
            resource_id: resource_id.to_string(),
        };
        txn.put_client_token(self.operation, self.scope, self.token, &record);
    }
}

/// The part of a time-ordered listing a list request asks for.
fn window(
    listing: &str,
    created_after: Option<&Timestamp>,
    created_before: Option<&Timestamp>,
    max_results: Option<i32>,
    next_token: &str,
) -> ApiResult<Window> {
    let cursor = match next_token {
        "" => None,
        token => Some(Cursor::from_token(token, listing).ok_or_else(|| {
            ApiError::validation("The nextToken is not valid for this request: pass the nextToken of the previous page of the same listing.")
        })?),
    };
    crate::validate::timestamp("createdAfter", created_after)?;
    crate::validate::timestamp("createdBefore", created_before)?;
    Ok(Window {
        created_after_micros: created_after.map(micros_from_timestamp),
        created_before_micros: created_before.map(micros_from_timestamp),
        cursor,
        limit: crate::validate::page_size(max_results)?,
        max_bytes: crate::validate::PAGE_BYTES,
    })
}
