//! What the executor keeps of a sparkvc pod.
//!
//! The pod watch caches every job-runner and driver until its run's clean-up:
//! two pods per running run, 40,000 at 20,000 runs. A `Pod` costs some 5 KB
//! in memory even with every field it does not need emptied, because its
//! spec, status and container statuses are large structs of `Option`s held
//! inline. [`ObservedPod`] holds only what the run state is read from, so the
//! cache costs a fraction of that.

use crate::render::names;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};
use kube::runtime::reflector::Lookup;
use kube::runtime::watcher;
use std::borrow::Cow;

/// A pod as the job-run state is read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedPod {
    pub name: String,
    pub namespace: String,
    /// sparkvc's labels on the pod (`None` where a label is missing).
    pub virtual_cluster_id: Option<String>,
    pub job_run_id: Option<String>,
    pub component: Option<String>,
    /// The run attempt the pod belongs to (1 when unlabelled).
    pub attempt: u32,
    /// The Spark application ID, which Spark sets on the driver.
    pub spark_app_selector: Option<String>,
    /// `status.phase`; `None` before the API server sets one.
    pub phase: Option<String>,
    /// `status.reason` (e.g. `Evicted`).
    pub reason: Option<String>,
    /// The message of a `PodScheduled=False` condition: the scheduler's
    /// reason the pod has no node. Empty when the condition gives none.
    pub unschedulable: Option<String>,
    pub containers: Vec<ObservedContainer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub name: String,
    pub state: ContainerNow,
}

/// A container's current state, as its status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerNow {
    /// The kubelet has not reported a state.
    Unknown,
    /// Not started; `image` is kept since a pull failure names it.
    Waiting {
        reason: Option<String>,
        image: String,
    },
    Running,
    Terminated {
        exit_code: i32,
        reason: Option<String>,
        /// The termination message (with `FallbackToLogsOnError`, the end
        /// of the log of a container that failed).
        message: Option<String>,
    },
}

impl ObservedPod {
    /// `status.phase`, `Pending` before the API server sets one.
    pub fn phase(&self) -> &str {
        self.phase.as_deref().unwrap_or("Pending")
    }
}

impl From<Pod> for ObservedPod {
    fn from(pod: Pod) -> Self {
        let meta = pod.metadata;
        let attempt = names::attempt_of_labels(meta.labels.as_ref());
        let mut labels = meta.labels.unwrap_or_default();
        let mut label = |key: &str| labels.remove(key);
        let (virtual_cluster_id, job_run_id, component, spark_app_selector) = (
            label(names::VIRTUAL_CLUSTER_ID),
            label(names::JOB_RUN_ID),
            label(names::COMPONENT),
            label(names::SPARK_APP_SELECTOR),
        );
        let status = pod.status.unwrap_or_default();
        let unschedulable = status
            .conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| c.message.unwrap_or_default());
        ObservedPod {
            name: meta.name.unwrap_or_default(),
            namespace: meta.namespace.unwrap_or_default(),
            virtual_cluster_id,
            job_run_id,
            component,
            attempt,
            spark_app_selector,
            phase: status.phase,
            reason: status.reason,
            unschedulable,
            containers: status
                .container_statuses
                .into_iter()
                .flatten()
                .map(ObservedContainer::from)
                .collect(),
        }
    }
}

impl From<ContainerStatus> for ObservedContainer {
    fn from(status: ContainerStatus) -> Self {
        let state = match status.state {
            Some(ContainerState {
                terminated: Some(t),
                ..
            }) => ContainerNow::Terminated {
                exit_code: t.exit_code,
                reason: t.reason,
                message: t.message,
            },
            Some(ContainerState {
                running: Some(_), ..
            }) => ContainerNow::Running,
            Some(ContainerState {
                waiting: Some(w), ..
            }) => ContainerNow::Waiting {
                reason: w.reason,
                image: status.image,
            },
            _ => ContainerNow::Unknown,
        };
        ObservedContainer {
            name: status.name,
            state,
        }
    }
}

/// A watch event of a pod, with the pod reduced to what is observed.
pub fn observed_event(event: watcher::Event<Pod>) -> watcher::Event<ObservedPod> {
    use watcher::Event::*;
    match event {
        Apply(pod) => Apply(pod.into()),
        Delete(pod) => Delete(pod.into()),
        Init => Init,
        InitApply(pod) => InitApply(pod.into()),
        InitDone => InitDone,
    }
}

/// Lets kube's reflector cache an [`ObservedPod`] as the pod it stands for.
impl Lookup for ObservedPod {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.namespace))
    }

    // Neither is read back: the cache keys pods by namespace and name.
    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_keeps_its_labels_phase_and_container_states() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "spark-r-2-driver", "namespace": "ns", "uid": "u-1",
                "labels": {
                    names::JOB_RUN_ID: "r", names::VIRTUAL_CLUSTER_ID: "vc",
                    names::COMPONENT: names::COMPONENT_DRIVER, names::ATTEMPT: "2",
                    names::SPARK_APP_SELECTOR: "spark-1", "team": "a",
                },
            },
            "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "spark"}]},
            "status": {
                "phase": "Pending", "reason": "Evicted",
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available"},
                ],
                "containerStatuses": [
                    {"name": "a", "image": "spark:9", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                    {"name": "b", "image": "fluentd", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 3, "reason": "Error", "message": "boom"}}},
                    {"name": "c", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {}}},
                    {"name": "d", "image": "x", "imageID": "", "ready": false, "restartCount": 0},
                ],
            },
        }))
        .unwrap();
        let observed = ObservedPod::from(pod);
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            observed,
            ObservedPod {
                name: "spark-r-2-driver".into(),
                namespace: "ns".into(),
                virtual_cluster_id: text("vc"),
                job_run_id: text("r"),
                component: text(names::COMPONENT_DRIVER),
                attempt: 2,
                spark_app_selector: text("spark-1"),
                phase: text("Pending"),
                reason: text("Evicted"),
                unschedulable: text("0/3 nodes are available"),
                containers: vec![
                    ObservedContainer {
                        name: "a".into(),
                        state: ContainerNow::Waiting {
                            reason: text("ImagePullBackOff"),
                            image: "spark:9".into()
                        },
                    },
                    ObservedContainer {
                        name: "b".into(),
                        state: ContainerNow::Terminated {
                            exit_code: 3,
                            reason: text("Error"),
                            message: text("boom")
                        },
                    },
                    ObservedContainer {
                        name: "c".into(),
                        state: ContainerNow::Running
                    },
                    ObservedContainer {
                        name: "d".into(),
                        state: ContainerNow::Unknown
                    },
                ],
            }
        );
    }

    #[test]
    fn a_bare_pod_is_pending_attempt_one() {
        let observed = ObservedPod::from(Pod::default());
        assert_eq!(observed.phase(), "Pending");
        assert_eq!(observed.attempt, 1);
        assert_eq!(observed.unschedulable, None);
    }

    #[test]
    fn the_cache_finds_an_observed_pod_by_namespace_and_name() {
        let (cache, mut writer) = kube::runtime::reflector::store::<ObservedPod>();
        let pod = ObservedPod {
            name: "p".into(),
            namespace: "ns".into(),
            ..ObservedPod::default()
        };
        writer.apply_watcher_event(&watcher::Event::Apply(pod.clone()));
        let key = |ns: &str| kube::runtime::reflector::ObjectRef::new("p").within(ns);
        assert_eq!(cache.get(&key("ns")).as_deref(), Some(&pod));
        assert!(cache.get(&key("other")).is_none());
        writer.apply_watcher_event(&watcher::Event::Delete(pod));
        assert!(cache.get(&key("ns")).is_none());
    }
}
