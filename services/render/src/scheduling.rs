//! Where a cluster's job pods run: the operator's node selector and
//! tolerations (`[cluster.job_pods]` in the server configuration), put on
//! every pod of every run on that cluster — the job-runner, and through the
//! pod templates the driver and its executors.
//!
//! A platform team keeps Spark on its own node pool (tainted so nothing else
//! lands there) and off nodes meant for other work; the local cluster uses
//! it to send runs to its real node rather than to the kwok nodes.
//!
//! - The operator's node selector is set over the run's own
//!   (`jobsubmitter.node.selector.*`, the pod templates' `nodeSelector`).
//!   Spark adds `spark.kubernetes.[driver.|executor.]node.selector.*` after
//!   the template, so a run that names one of the operator's keys with
//!   another value is refused (USER_ERROR naming the setting) rather than
//!   silently moved off the operator's nodes. The same value is fine.
//! - The operator's tolerations are added to the pod's, once each.

use super::RenderError;
use super::kube_syntax::check_label;
use k8s_openapi::api::core::v1::{PodSpec, Toleration};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Operator settings for the pods of one cluster's job runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobPodScheduling {
    /// Labels a node must have, e.g. `{"spark" = "true"}`.
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    pub tolerations: Vec<TolerationConfig>,
}

/// A Kubernetes toleration as written in the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TolerationConfig {
    /// The taint key; empty with `Exists` tolerates every taint.
    pub key: Option<String>,
    /// `Equal` (the default) or `Exists`.
    pub operator: Option<String>,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; every effect if unset.
    pub effect: Option<String>,
    /// With `NoExecute`: how long the pod stays once the taint appears.
    pub toleration_seconds: Option<i64>,
}

impl TolerationConfig {
    fn to_kube(&self) -> Toleration {
        Toleration {
            key: self.key.clone(),
            operator: self.operator.clone(),
            value: self.value.clone(),
            effect: self.effect.clone(),
            toleration_seconds: self.toleration_seconds,
        }
    }
}

/// The Spark settings that add node selector labels after the pod template.
const SPARK_NODE_SELECTOR_PREFIXES: [&str; 3] = [
    "spark.kubernetes.node.selector.",
    "spark.kubernetes.driver.node.selector.",
    "spark.kubernetes.executor.node.selector.",
];

impl JobPodScheduling {
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.tolerations.is_empty()
    }

    /// Checks the settings as Kubernetes would; the message names the
    /// setting (`job_pods.node_selector`, `job_pods.tolerations[i]`) and the
    /// rule.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in &self.node_selector {
            check_label("job_pods.node_selector", key, value).map_err(|e| e.to_string())?;
        }
        for (i, t) in self.tolerations.iter().enumerate() {
            let at = format!("job_pods.tolerations[{i}]");
            let exists = match t.operator.as_deref() {
                None | Some("Equal") => false,
                Some("Exists") => true,
                Some(other) => {
                    return Err(format!("{at}.operator: {other:?} is not Equal or Exists"));
                }
            };
            if let Some(key) = t.key.as_deref()
                && !key.is_empty()
            {
                check_label(&format!("{at}.key"), key, "").map_err(|e| e.to_string())?;
            } else if !exists {
                return Err(format!(
                    "{at}.key: an empty key needs operator Exists (it then tolerates every taint)"
                ));
            }
            if exists && t.value.as_deref().is_some_and(|v| !v.is_empty()) {
                return Err(format!("{at}.value: must be empty with operator Exists"));
            }
            if let Some(value) = t.value.as_deref() {
                check_label(&format!("{at}.value"), "k", value).map_err(|e| e.to_string())?;
            }
            match t.effect.as_deref() {
                None | Some("NoSchedule" | "PreferNoSchedule" | "NoExecute") => {}
                Some(other) => {
                    return Err(format!(
                        "{at}.effect: {other:?} is not NoSchedule, PreferNoSchedule or NoExecute"
                    ));
                }
            }
            if t.toleration_seconds.is_some() && t.effect.as_deref() != Some("NoExecute") {
                return Err(format!(
                    "{at}.toleration_seconds: applies only to effect NoExecute"
                ));
            }
        }
        Ok(())
    }

    /// Puts the node selector and tolerations on a pod.
    pub fn apply(&self, spec: &mut PodSpec) {
        if !self.node_selector.is_empty() {
            spec.node_selector
                .get_or_insert_with(BTreeMap::new)
                .extend(self.node_selector.clone());
        }
        if !self.tolerations.is_empty() {
            let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
            for t in self.tolerations.iter().map(TolerationConfig::to_kube) {
                if !tolerations.contains(&t) {
                    tolerations.push(t);
                }
            }
        }
    }

    /// Refuses a run setting that would take its pods off the operator's
    /// nodes: a Spark node selector (`spark.kubernetes.[driver.|executor.]
    /// node.selector.<key>`) or `jobsubmitter.node.selector.<key>` that
    /// names one of the operator's keys with another value.
    pub fn check_run_setting(
        &self,
        field: &str,
        name: &str,
        value: &str,
    ) -> Result<(), RenderError> {
        let key = SPARK_NODE_SELECTOR_PREFIXES
            .iter()
            .chain(&["jobsubmitter.node.selector."])
            .find_map(|prefix| name.strip_prefix(prefix));
        match key.and_then(|key| self.node_selector.get(key).map(|want| (key, want))) {
            Some((key, want)) if want != value => Err(RenderError::user(
                field,
                format!(
                    "{field}: {name} conflicts with this cluster's placement of job pods on nodes labelled {key}={want}; leave it out"
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> JobPodScheduling {
        toml::from_str(
            r#"
node_selector = { "sparkvc.io/node" = "real" }
tolerations = [{ key = "sparkvc.io/real-node", operator = "Exists", effect = "NoSchedule" }]
"#,
        )
        .unwrap()
    }

    #[test]
    fn applies_over_the_pods_own_and_adds_each_toleration_once() {
        let scheduling = local();
        assert_eq!(scheduling.check(), Ok(()));
        let mut spec = PodSpec {
            node_selector: Some(BTreeMap::from([
                ("sparkvc.io/node".into(), "kwok".into()),
                ("zone".into(), "a".into()),
            ])),
            ..PodSpec::default()
        };
        scheduling.apply(&mut spec);
        scheduling.apply(&mut spec);
        assert_eq!(
            spec.node_selector.unwrap(),
            BTreeMap::from([
                ("sparkvc.io/node".into(), "real".into()),
                ("zone".into(), "a".into()),
            ])
        );
        let tolerations = spec.tolerations.unwrap();
        assert_eq!(tolerations.len(), 1);
        assert_eq!(tolerations[0].key.as_deref(), Some("sparkvc.io/real-node"));
        assert_eq!(tolerations[0].operator.as_deref(), Some("Exists"));

        let mut untouched = PodSpec::default();
        JobPodScheduling::default().apply(&mut untouched);
        assert_eq!(untouched, PodSpec::default());
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_rule() {
        let bad = |text: &str| {
            toml::from_str::<JobPodScheduling>(text)
                .unwrap()
                .check()
                .unwrap_err()
        };
        assert!(bad(r#"node_selector = { "a b" = "x" }"#).contains("job_pods.node_selector"));
        assert_eq!(
            bad(r#"tolerations = [{ key = "k", operator = "Maybe" }]"#),
            "job_pods.tolerations[0].operator: \"Maybe\" is not Equal or Exists"
        );
        assert!(
            bad(r#"tolerations = [{ operator = "Equal", value = "v" }]"#)
                .contains("needs operator Exists")
        );
        assert!(
            bad(r#"tolerations = [{ key = "k", operator = "Exists", value = "v" }]"#)
                .contains("must be empty")
        );
        assert!(bad(r#"tolerations = [{ key = "k", effect = "Never" }]"#).contains("effect"));
        assert!(
            bad(r#"tolerations = [{ key = "k", toleration_seconds = 5 }]"#).contains("NoExecute")
        );
        assert!(toml::from_str::<JobPodScheduling>(r#"tolerations = [{ kee = "k" }]"#).is_err());
        let all: JobPodScheduling =
            toml::from_str(r#"tolerations = [{ operator = "Exists" }]"#).unwrap();
        assert_eq!(all.check(), Ok(()));
    }

    #[test]
    fn a_run_may_not_move_its_pods_off_the_operators_nodes() {
        let scheduling = local();
        let field = "sparkSubmitParameters";
        for name in [
            "spark.kubernetes.node.selector.sparkvc.io/node",
            "spark.kubernetes.driver.node.selector.sparkvc.io/node",
            "spark.kubernetes.executor.node.selector.sparkvc.io/node",
            "jobsubmitter.node.selector.sparkvc.io/node",
        ] {
            let err = scheduling
                .check_run_setting(field, name, "kwok")
                .unwrap_err();
            assert!(err.to_string().contains("sparkvc.io/node=real"), "{err}");
            assert!(scheduling.check_run_setting(field, name, "real").is_ok());
        }
        assert!(
            scheduling
                .check_run_setting(field, "spark.kubernetes.node.selector.zone", "a")
                .is_ok()
        );
        assert!(
            scheduling
                .check_run_setting(field, "spark.executor.memory", "kwok")
                .is_ok()
        );
    }
}
