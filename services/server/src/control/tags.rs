//! Tags on virtual clusters and job runs, the resources AWS lets you tag
//! after creation.

use super::ControlPlane;
use crate::error::{ApiError, ApiResult};
use crate::ids::Taggable;
use crate::store::Txn;
use crate::validate;
use std::collections::BTreeMap;

type Tags = BTreeMap<String, String>;

fn not_found(arn: &str) -> ApiError {
    ApiError::not_found(format!("Resource {arn} doesn't exist."))
}

impl ControlPlane {
    fn taggable(&self, arn: &str) -> ApiResult<Taggable> {
        self.arns()
            .parse_taggable(arn)
            .ok_or_else(|| not_found(arn))
    }

    /// Applies `edit` to the resource's tags inside one write.
    async fn edit_tags(
        &self,
        arn: &str,
        edit: impl FnOnce(&mut Tags) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let target = self.taggable(arn)?;
        self.store
            .write(|txn: &mut Txn<'_>| match &target {
                Taggable::VirtualCluster(id) => {
                    let mut vc = txn.virtual_cluster(id)?.ok_or_else(|| not_found(arn))?;
                    edit(&mut vc.tags)?;
                    txn.put_virtual_cluster(&vc)?;
                    Ok(())
                }
                Taggable::JobRun(vc_id, id) => {
                    let mut run = txn.job_run(vc_id, id)?.ok_or_else(|| not_found(arn))?;
                    edit(&mut run.tags)?;
                    let state = crate::state::state_of(&run);
                    txn.put_job_run(Some(state), &run)?;
                    Ok(())
                }
            })
            .await
    }

    pub async fn tag_resource(&self, arn: &str, tags: Tags) -> ApiResult<()> {
        self.edit_tags(arn, |existing| {
            existing.extend(tags);
            // The 50-tag limit applies to the resource, not just the request.
            validate::tag_map(existing)
        })
        .await
    }

    pub async fn untag_resource(&self, arn: &str, keys: &[String]) -> ApiResult<()> {
        self.edit_tags(arn, |existing| {
            keys.iter().for_each(|k| {
                existing.remove(k);
            });
            Ok(())
        })
        .await
    }

    pub fn list_tags_for_resource(&self, arn: &str) -> ApiResult<Tags> {
        let tags = match self.taggable(arn)? {
            Taggable::VirtualCluster(id) => self.store.virtual_cluster(&id)?.map(|vc| vc.tags),
            Taggable::JobRun(vc_id, id) => self.store.job_run(&vc_id, &id)?.map(|run| run.tags),
        };
        tags.ok_or_else(|| not_found(arn))
    }
}
