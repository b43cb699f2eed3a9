//! Per-virtual-cluster objects in the tenant's namespace, and the identity
//! objects of an execution role. Nothing here is cluster-scoped.
//!
//! - One `Role` per namespace, [`SPARK_ROLE_NAME`]: what spark-submit and the
//!   Spark driver need (pods, services, configmaps, persistentvolumeclaims; all
//!   verbs they use; `pods/log` get).
//! - One `RoleBinding` per (namespace, execution role), binding that role's
//!   `client` (spark-submit creates the driver) and `driver` (the driver
//!   creates executors) service accounts by name. Executors need no API
//!   access. Binding the group `system:serviceaccounts:<ns>` would grant every
//!   account in the namespace, so it is not done; a binding per role can be
//!   created idempotently, without a read-modify-write of a shared subject list.
//! - The three IRSA `ServiceAccount`s of an execution role.
//! - A `NetworkPolicy` that admits ingress to every pod of the namespace from
//!   pods of the same namespace only (plus any namespaces the operator lists).
//! - Optionally a `ResourceQuota` and a `LimitRange`, from [`TenancyConfig`].

use super::RenderError;
use super::names::{self, ServiceAccountNames};
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const SPARK_ROLE_NAME: &str = "sparkvc-spark";
pub const NETWORK_POLICY_NAME: &str = "sparkvc-same-namespace-only";
pub const RESOURCE_QUOTA_NAME: &str = "sparkvc";
pub const LIMIT_RANGE_NAME: &str = "sparkvc";

/// Operator settings for tenant namespaces (from the server configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenancyConfig {
    /// Namespaces (by name) whose pods may also reach the tenant's pods, for
    /// example the monitoring namespace.
    pub allow_ingress_from_namespaces: Vec<String>,
    /// `ResourceQuota` `spec.hard`, e.g. `{"requests.cpu": "100"}`.
    pub resource_quota: Option<BTreeMap<String, String>>,
    /// A `LimitRange` for containers.
    pub container_limits: Option<ContainerLimits>,
}

/// The `Container` item of a `LimitRange`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerLimits {
    pub default: BTreeMap<String, String>,
    pub default_request: BTreeMap<String, String>,
    pub max: BTreeMap<String, String>,
    pub min: BTreeMap<String, String>,
}

/// The per-virtual-cluster objects.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantObjects {
    pub role: Role,
    pub network_policy: NetworkPolicy,
    pub resource_quota: Option<ResourceQuota>,
    pub limit_range: Option<LimitRange>,
}

fn meta(name: &str, namespace: &str, virtual_cluster_id: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(names::virtual_cluster_labels(virtual_cluster_id)),
        ..ObjectMeta::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn quantities(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!map.is_empty()).then(|| {
        map.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

/// The objects sparkvc creates when a virtual cluster is created on `namespace`.
pub fn render_tenant(
    namespace: &str,
    virtual_cluster_id: &str,
    config: &TenancyConfig,
) -> Result<TenantObjects, RenderError> {
    let role = Role {
        metadata: meta(SPARK_ROLE_NAME, namespace, virtual_cluster_id),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(strings(&[""])),
                resources: Some(strings(&[
                    "pods",
                    "services",
                    "configmaps",
                    "persistentvolumeclaims",
                ])),
                verbs: strings(&[
                    "get",
                    "list",
                    "watch",
                    "create",
                    "delete",
                    "deletecollection",
                    "patch",
                    "update",
                ]),
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(strings(&[""])),
                resources: Some(strings(&["pods/log"])),
                verbs: strings(&["get"]),
                ..PolicyRule::default()
            },
        ]),
    };

    let mut peers = vec![NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    }];
    for other in &config.allow_ingress_from_namespaces {
        peers.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    other.clone(),
                )])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    let network_policy = NetworkPolicy {
        metadata: meta(NETWORK_POLICY_NAME, namespace, virtual_cluster_id),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(strings(&["Ingress"])),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(peers),
                ..NetworkPolicyIngressRule::default()
            }]),
            ..NetworkPolicySpec::default()
        }),
    };

    let check = |what: &str, map: &BTreeMap<String, String>| {
        map.iter().try_for_each(|(key, value)| {
            super::kube_syntax::check_quantity(&format!("{what} {key}"), value)
                .map_err(|e| RenderError::Internal(format!("tenancy configuration: {e}")))
        })
    };
    let resource_quota = match &config.resource_quota {
        Some(hard) => {
            check("resource_quota", hard)?;
            Some(ResourceQuota {
                metadata: meta(RESOURCE_QUOTA_NAME, namespace, virtual_cluster_id),
                spec: Some(ResourceQuotaSpec {
                    hard: quantities(hard),
                    ..ResourceQuotaSpec::default()
                }),
                ..ResourceQuota::default()
            })
        }
        None => None,
    };
    let limit_range = match &config.container_limits {
        Some(l) => {
            for (what, map) in [
                ("default", &l.default),
                ("default_request", &l.default_request),
                ("max", &l.max),
                ("min", &l.min),
            ] {
                check(&format!("container_limits.{what}"), map)?;
            }
            Some(LimitRange {
                metadata: meta(LIMIT_RANGE_NAME, namespace, virtual_cluster_id),
                spec: Some(LimitRangeSpec {
                    limits: vec![LimitRangeItem {
                        type_: "Container".into(),
                        default: quantities(&l.default),
                        default_request: quantities(&l.default_request),
                        max: quantities(&l.max),
                        min: quantities(&l.min),
                        ..LimitRangeItem::default()
                    }],
                }),
            })
        }
        None => None,
    };
    Ok(TenantObjects {
        role,
        network_policy,
        resource_quota,
        limit_range,
    })
}

/// The execution role's identity objects in `namespace`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleIdentity {
    /// client, driver, executor — in that order.
    pub service_accounts: Vec<ServiceAccount>,
    pub role_binding: RoleBinding,
}

pub fn render_role_identity(
    namespace: &str,
    virtual_cluster_id: &str,
    account_id: &str,
    execution_role_arn: &str,
) -> Result<RoleIdentity, RenderError> {
    let sas = ServiceAccountNames::new(account_id, execution_role_arn)?;
    let service_accounts = sas
        .all()
        .iter()
        .map(|name| {
            let mut metadata = meta(name, namespace, virtual_cluster_id);
            metadata.annotations = Some(BTreeMap::from([(
                names::ROLE_ARN_ANNOTATION.to_string(),
                execution_role_arn.to_string(),
            )]));
            ServiceAccount {
                metadata,
                ..ServiceAccount::default()
            }
        })
        .collect();
    let subject = |name: &str| Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        ..Subject::default()
    };
    let role_binding = RoleBinding {
        metadata: meta(
            &names::role_binding_name(account_id, execution_role_arn)?,
            namespace,
            virtual_cluster_id,
        ),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: SPARK_ROLE_NAME.into(),
        },
        subjects: Some(vec![subject(&sas.client), subject(&sas.driver)]),
    };
    Ok(RoleIdentity {
        service_accounts,
        role_binding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_network_policy() {
        let t = render_tenant("ns1", "vc1", &TenancyConfig::default()).unwrap();
        assert_eq!(t.role.metadata.namespace.as_deref(), Some("ns1"));
        let rules = t.role.rules.as_ref().unwrap();
        assert!(
            rules[0]
                .resources
                .as_ref()
                .unwrap()
                .contains(&"pods".to_string())
        );
        assert!(rules[0].verbs.contains(&"deletecollection".to_string()));
        assert_eq!(rules[1].resources.as_ref().unwrap(), &["pods/log"]);
        let spec = t.network_policy.spec.as_ref().unwrap();
        assert_eq!(spec.pod_selector, Some(LabelSelector::default()));
        let from = spec.ingress.as_ref().unwrap()[0].from.as_ref().unwrap();
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].pod_selector, Some(LabelSelector::default()));
        assert_eq!(from[0].namespace_selector, None, "same namespace only");
        assert!(t.resource_quota.is_none() && t.limit_range.is_none());
        let labels = t.role.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::VIRTUAL_CLUSTER_ID], "vc1");
    }

    #[test]
    fn optional_quota_limits_and_extra_namespaces() {
        let config = TenancyConfig {
            allow_ingress_from_namespaces: vec!["monitoring".into()],
            resource_quota: Some(BTreeMap::from([("requests.cpu".into(), "10".into())])),
            container_limits: Some(ContainerLimits {
                default: BTreeMap::from([("memory".into(), "1Gi".into())]),
                ..ContainerLimits::default()
            }),
        };
        let t = render_tenant("ns1", "vc1", &config).unwrap();
        let from = t.network_policy.spec.unwrap().ingress.unwrap()[0]
            .from
            .clone()
            .unwrap();
        assert_eq!(
            from[1]
                .namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "monitoring"
        );
        assert_eq!(
            t.resource_quota.unwrap().spec.unwrap().hard.unwrap()["requests.cpu"].0,
            "10"
        );
        let item = &t.limit_range.unwrap().spec.unwrap().limits[0];
        assert_eq!(item.type_, "Container");
        assert_eq!(item.default.as_ref().unwrap()["memory"].0, "1Gi");
        assert!(item.max.is_none());

        let bad = TenancyConfig {
            resource_quota: Some(BTreeMap::from([("pods".into(), "many".into())])),
            ..TenancyConfig::default()
        };
        assert!(matches!(
            render_tenant("ns1", "vc1", &bad),
            Err(RenderError::Internal(_))
        ));
    }

    #[test]
    fn role_identity_binds_client_and_driver_only() {
        let arn = "arn:aws:iam::123456789012:role/a";
        let id = render_role_identity("ns1", "vc1", "123456789012", arn).unwrap();
        let sa_names: Vec<_> = id
            .service_accounts
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            sa_names,
            [
                "emr-containers-sa-spark-client-123456789012-2p",
                "emr-containers-sa-spark-driver-123456789012-2p",
                "emr-containers-sa-spark-executor-123456789012-2p",
            ]
        );
        for sa in &id.service_accounts {
            assert_eq!(
                sa.metadata.annotations.as_ref().unwrap()[names::ROLE_ARN_ANNOTATION],
                arn
            );
        }
        let subjects: Vec<_> = id
            .role_binding
            .subjects
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(subjects, &sa_names[..2]);
        assert_eq!(id.role_binding.role_ref.name, SPARK_ROLE_NAME);
        assert_eq!(
            id.role_binding.metadata.name.as_deref(),
            Some("sparkvc-spark-123456789012-2p")
        );
    }
}
