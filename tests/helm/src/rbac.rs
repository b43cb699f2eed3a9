//! The RBAC the chart renders, typed: its grants one by one, the same RBAC
//! with one grant taken out, and applying it to a cluster. Used by the
//! least-privilege test and by `chart-identity`, which lets the e2e suites
//! run sparkvc as the chart's ServiceAccount.

use crate::documents;
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The field manager of what the tests apply.
const FIELD_MANAGER: &str = "sparkvc-tests";

/// One permission a role of the chart grants. Names of the release's own
/// objects (roles, the Lease) read `<fullname>` for the release's
/// "<release>-sparkvc", so that one permission names the same grant in every
/// rendering.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// `ClusterRole/<name>` or `Role/<name>`.
    pub role: String,
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub resource_names: Vec<String>,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{group} {} {}", self.resource, self.verb)?;
        if !self.resource_names.is_empty() {
            write!(f, " (names {})", self.resource_names.join(","))?;
        }
        Ok(())
    }
}

/// The RBAC objects of one rendering, typed.
#[derive(Clone)]
pub struct Rbac {
    service_account: ServiceAccount,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
}

impl Rbac {
    pub fn from_rendering(yaml: &str) -> Result<Self> {
        fn of_kind<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> Result<Vec<T>> {
            docs.iter()
                .filter(|d| d["kind"] == kind)
                .map(|d| serde_json::from_value(d.clone()).with_context(|| format!("a {kind}")))
                .collect()
        }
        let docs = documents(yaml)?;
        let mut accounts: Vec<ServiceAccount> = of_kind(&docs, "ServiceAccount")?;
        let service_account = accounts
            .pop()
            .context("the rendering has no ServiceAccount")?;
        Ok(Self {
            service_account,
            cluster_roles: of_kind(&docs, "ClusterRole")?,
            cluster_role_bindings: of_kind(&docs, "ClusterRoleBinding")?,
            roles: of_kind(&docs, "Role")?,
            role_bindings: of_kind(&docs, "RoleBinding")?,
        })
    }

    /// The release's "<release>-sparkvc" (the ServiceAccount is named so).
    pub fn fullname(&self) -> String {
        self.service_account
            .metadata
            .name
            .clone()
            .unwrap_or_default()
    }

    /// `name` with this release's fullname written `<fullname>`.
    fn general(&self, name: &str) -> String {
        name.replacen(&self.fullname(), "<fullname>", 1)
    }

    fn role_key(&self, kind: &str, meta: &kube::api::ObjectMeta) -> String {
        format!("{kind}/{}", self.general(&name_of(meta)))
    }

    /// Every (role, group, resource, verb) granted, in rendering order.
    pub fn permissions(&self) -> Vec<Permission> {
        let roles = self
            .cluster_roles
            .iter()
            .map(|r| (self.role_key("ClusterRole", &r.metadata), &r.rules))
            .chain(
                self.roles
                    .iter()
                    .map(|r| (self.role_key("Role", &r.metadata), &r.rules)),
            );
        let mut out = Vec::new();
        for (role, rules) in roles {
            for rule in rules.iter().flatten() {
                for group in rule.api_groups.iter().flatten() {
                    for resource in rule.resources.iter().flatten() {
                        for verb in &rule.verbs {
                            out.push(Permission {
                                role: role.clone(),
                                group: group.clone(),
                                resource: resource.clone(),
                                verb: verb.clone(),
                                resource_names: self.names_of(rule),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// A rule's resource names, general.
    fn names_of(&self, rule: &PolicyRule) -> Vec<String> {
        rule.resource_names
            .iter()
            .flatten()
            .map(|n| self.general(n))
            .collect()
    }

    /// This RBAC with `permission` taken out of its role.
    pub fn without(&self, permission: &Permission) -> Self {
        let mut rbac = self.clone();
        let names_of = |rule: &PolicyRule| self.names_of(rule);
        let strip =
            |kind: &str, meta: &kube::api::ObjectMeta, rules: &mut Option<Vec<PolicyRule>>| {
                if self.role_key(kind, meta) == permission.role {
                    *rules = rules.take().map(|r| rules_without(r, permission, names_of));
                }
            };
        for role in &mut rbac.cluster_roles {
            strip("ClusterRole", &role.metadata, &mut role.rules);
        }
        for role in &mut rbac.roles {
            strip("Role", &role.metadata, &mut role.rules);
        }
        rbac
    }

    /// Creates or updates every object (server-side apply), with `labels`
    /// added.
    pub async fn apply(&self, kube: &kube::Client, labels: &[(&str, &str)]) -> Result<()> {
        let sa = self.service_account.clone();
        apply_one::<ServiceAccount>(kube, sa, labels).await?;
        for role in &self.cluster_roles {
            apply_one(kube, role.clone(), labels).await?;
        }
        for binding in &self.cluster_role_bindings {
            apply_one(kube, binding.clone(), labels).await?;
        }
        for role in &self.roles {
            apply_one(kube, role.clone(), labels).await?;
        }
        for binding in &self.role_bindings {
            apply_one(kube, binding.clone(), labels).await?;
        }
        Ok(())
    }

    /// Deletes the cluster-wide objects (the namespaced ones go with their
    /// namespaces).
    pub async fn delete_cluster_scoped(&self, kube: &kube::Client) {
        let dp = DeleteParams::background();
        for role in &self.cluster_roles {
            let _ = Api::<ClusterRole>::all(kube.clone())
                .delete(&name_of(&role.metadata), &dp)
                .await;
        }
        for binding in &self.cluster_role_bindings {
            let _ = Api::<ClusterRoleBinding>::all(kube.clone())
                .delete(&name_of(&binding.metadata), &dp)
                .await;
        }
    }
}

fn name_of(meta: &kube::api::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// Server-side apply of one object, in its own namespace if it has one.
async fn apply_one<K>(kube: &kube::Client, mut object: K, labels: &[(&str, &str)]) -> Result<()>
where
    K: kube::Resource + Clone + fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let meta = object.meta_mut();
    let name = meta.name.clone().unwrap_or_default();
    let entries = meta.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in labels {
        entries.insert(key.to_string(), value.to_string());
    }
    // Dynamic, so that one function serves namespaced and cluster objects.
    let resource = ApiResource::erase::<K>(&K::DynamicType::default());
    let api: Api<DynamicObject> = match &object.meta().namespace {
        Some(ns) => Api::namespaced_with(kube.clone(), ns, &resource),
        None => Api::all_with(kube.clone(), &resource),
    };
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {} {name}", K::kind(&K::DynamicType::default())))?;
    Ok(())
}

/// `rules` with one (group, resource, verb) taken out: the rule that grants
/// it is split into the rule for its other resources and the rule for that
/// resource's other verbs.
fn rules_without(
    rules: Vec<PolicyRule>,
    p: &Permission,
    names_of: impl Fn(&PolicyRule) -> Vec<String>,
) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for rule in rules {
        let grants = rule.api_groups.iter().flatten().any(|g| *g == p.group)
            && rule.resources.iter().flatten().any(|r| *r == p.resource)
            && rule.verbs.contains(&p.verb)
            && names_of(&rule) == p.resource_names;
        if !grants {
            out.push(rule);
            continue;
        }
        assert_eq!(
            rule.api_groups.as_ref().map(Vec::len),
            Some(1),
            "a rule of one API group"
        );
        let others: Vec<String> = rule
            .resources
            .iter()
            .flatten()
            .filter(|r| **r != p.resource)
            .cloned()
            .collect();
        if !others.is_empty() {
            out.push(PolicyRule {
                resources: Some(others),
                ..rule.clone()
            });
        }
        let verbs: Vec<String> = rule
            .verbs
            .iter()
            .filter(|v| **v != p.verb)
            .cloned()
            .collect();
        if !verbs.is_empty() {
            out.push(PolicyRule {
                resources: Some(vec![p.resource.clone()]),
                verbs,
                ..rule
            });
        }
    }
    out
}
