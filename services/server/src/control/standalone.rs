//! What job templates and security configurations have in common: each is
//! made once under a client token, then only described, listed and deleted.
//! One copy of those four operations serves both.

use super::{ControlPlane, Idempotency, fingerprint, window};
use crate::error::{ApiError, ApiResult};
use crate::store::Standalone;
use prost::Message;
use prost_types::Timestamp;

/// A standalone resource as the API names it.
pub(super) trait Named: Standalone + Clone {
    /// The create operation, which scopes its client tokens.
    const CREATE: &'static str;
    /// The listing's name, which scopes its pagination tokens.
    const LISTING: &'static str;
    /// How error messages call it: "Job template".
    const NOUN: &'static str;
}

impl Named for sparkvc_proto::v1::JobTemplate {
    const CREATE: &'static str = "CreateJobTemplate";
    const LISTING: &'static str = "jobtemplates";
    const NOUN: &'static str = "Job template";
}

impl Named for sparkvc_proto::v1::SecurityConfiguration {
    const CREATE: &'static str = "CreateSecurityConfiguration";
    const LISTING: &'static str = "securityconfigurations";
    const NOUN: &'static str = "Security configuration";
}

pub(super) fn not_found<T: Named>(id: &str) -> ApiError {
    ApiError::not_found(format!("{} {id} doesn't exist.", T::NOUN))
}

/// A list request's window, as each standalone listing takes it.
pub(super) struct ListRequest<'a> {
    pub created_after: Option<&'a Timestamp>,
    pub created_before: Option<&'a Timestamp>,
    pub max_results: Option<i32>,
    pub next_token: &'a str,
}

impl ControlPlane {
    /// Stores `item`, made from `request`, unless the request's client token
    /// was used before: then the item that request made (or an error if it
    /// was a different request).
    pub(super) async fn create_standalone<T: Named, R: Message + Clone>(
        &self,
        request: &R,
        client_token: &str,
        clear_token: impl FnOnce(&mut R),
        item: T,
    ) -> ApiResult<T> {
        let token = Idempotency {
            operation: T::CREATE,
            scope: "",
            token: client_token,
            fingerprint: fingerprint(request, clear_token),
        };
        self.store
            .write(|txn| {
                if let Some(prior) = token.replayed(txn)? {
                    return txn
                        .standalone::<T>(&prior)?
                        .ok_or_else(|| not_found::<T>(&prior));
                }
                txn.put_standalone(&item);
                token.record(txn, item.id());
                Ok(item)
            })
            .await
    }

    pub(super) fn describe_standalone<T: Named>(&self, id: &str) -> ApiResult<T> {
        self.store
            .standalone::<T>(id)?
            .ok_or_else(|| not_found::<T>(id))
    }

    /// One page, newest first, and the token of the next one ("" if none).
    pub(super) fn list_standalone<T: Named>(
        &self,
        req: ListRequest<'_>,
    ) -> ApiResult<(Vec<T>, String)> {
        let window = window(
            T::LISTING,
            req.created_after,
            req.created_before,
            req.max_results,
            req.next_token,
        )?;
        let page = self.store.list_standalone::<T>(&window)?;
        let next = page
            .next
            .map(|c| c.to_token(T::LISTING))
            .unwrap_or_default();
        Ok((page.items, next))
    }

    /// Deleting one that does not exist is a ValidationException, as AWS
    /// answers it.
    pub(super) async fn delete_standalone<T: Named>(&self, id: &str) -> ApiResult<()> {
        self.store
            .write(|txn| {
                txn.standalone::<T>(id)?
                    .ok_or_else(|| not_found::<T>(id).into_validation())?;
                txn.delete_standalone::<T>(id);
                Ok(())
            })
            .await
    }
}
