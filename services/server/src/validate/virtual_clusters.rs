//! CreateVirtualCluster, UpdateVirtualCluster and ListVirtualClusters.

use super::rules::*;
use super::{next_token, states};
use crate::error::ApiResult;
use sparkvc_proto::v1 as pb;

pub const VIRTUAL_CLUSTER_STATES: &[&str] = &["RUNNING", "TERMINATING", "TERMINATED", "ARRESTED"];
const CONTAINER_PROVIDER_TYPES: &[&str] = &["EKS"];

pub fn create_virtual_cluster(req: &pb::CreateVirtualClusterRequest) -> ApiResult<()> {
    required("name", &req.name, RESOURCE_NAME)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    let provider = req
        .container_provider
        .as_ref()
        .ok_or_else(|| missing("containerProvider"))?;
    container_provider("containerProvider", provider)?;
    tags("tags", &req.tags)?;
    optional(
        "securityConfigurationId",
        &req.security_configuration_id,
        RESOURCE_ID,
    )?;
    if let Some(scheduler) = &req.scheduler_configuration {
        scheduler_configuration("schedulerConfiguration", scheduler)?;
    }
    Ok(())
}

pub(super) fn container_provider(field: &str, provider: &pb::ContainerProvider) -> ApiResult<()> {
    one_of(
        &format!("{field}.type"),
        &provider.r#type,
        CONTAINER_PROVIDER_TYPES,
        true,
    )?;
    required(&format!("{field}.id"), &provider.id, CLUSTER_ID)?;
    if let Some(eks) = provider.info.as_ref().and_then(|i| i.eks_info.as_ref()) {
        optional(
            &format!("{field}.info.eksInfo.namespace"),
            &eks.namespace,
            KUBERNETES_NAMESPACE,
        )?;
        optional(
            &format!("{field}.info.eksInfo.nodeLabel"),
            &eks.node_label,
            NODE_LABEL,
        )?;
    }
    Ok(())
}

/// The namespace a virtual cluster maps to. AWS requires it in practice even
/// though the model leaves it optional: without it there is nowhere to run.
pub fn namespace_of(provider: &pb::ContainerProvider) -> ApiResult<&str> {
    provider
        .info
        .as_ref()
        .and_then(|i| i.eks_info.as_ref())
        .map(|e| e.namespace.as_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("containerProvider.info.eksInfo.namespace"))
}

pub(super) fn scheduler_configuration(
    field: &str,
    s: &pb::SchedulerConfiguration,
) -> ApiResult<()> {
    if let Some(n) = s.max_in_queue_job_runs {
        in_range(&format!("{field}.maxInQueueJobRuns"), n.into(), 1, 1000)?;
    }
    if let Some(n) = s.max_concurrent_job_runs {
        in_range(&format!("{field}.maxConcurrentJobRuns"), n.into(), 1, 1000)?;
    }
    Ok(())
}

pub fn update_virtual_cluster(req: &pb::UpdateVirtualClusterRequest) -> ApiResult<()> {
    required("id", &req.id, RESOURCE_ID)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    if let Some(scheduler) = &req.scheduler_configuration {
        scheduler_configuration("schedulerConfiguration", scheduler)?;
    }
    Ok(())
}

pub fn list_virtual_clusters(req: &pb::ListVirtualClustersRequest) -> ApiResult<()> {
    optional(
        "containerProviderId",
        &req.container_provider_id,
        STRING_1024,
    )?;
    one_of(
        "containerProviderType",
        &req.container_provider_type,
        CONTAINER_PROVIDER_TYPES,
        false,
    )?;
    states("states", &req.states, VIRTUAL_CLUSTER_STATES)?;
    next_token(&req.next_token)
}
