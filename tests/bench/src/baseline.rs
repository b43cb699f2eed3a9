//! The baseline job-bench compares sparkvc with: a plain client that creates,
//! on the same API server and kwok nodes, exactly the objects sparkvc creates
//! for a run (the job-runner pod, then its ConfigMap owned by the pod),
//! copied from a run sparkvc made, as fast as it can.

use crate::Latencies;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// One run's objects as sparkvc sent them: what the API server adds
/// (status, UIDs, versions, the node) taken away.
#[derive(Clone)]
pub struct RunObjects {
    /// The run's ID, which its objects' names, labels and arguments carry.
    pub run: String,
    pub pod: Pod,
    pub config_map: ConfigMap,
}

impl RunObjects {
    /// The job-runner pod and ConfigMap sparkvc made for `run`, as read
    /// back from the API server.
    pub fn new(run: &str, pod: Pod, config_map: ConfigMap) -> Self {
        let mut pod = Pod {
            metadata: as_sent(pod.metadata),
            spec: pod.spec,
            status: None,
        };
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = None;
        }
        Self {
            run: run.to_string(),
            pod,
            config_map: ConfigMap {
                metadata: as_sent(config_map.metadata),
                ..config_map
            },
        }
    }

    /// Bytes of the two objects as JSON, to show the copies are the same size.
    pub fn bytes(&self) -> usize {
        serde_json::to_vec(&self.pod).map_or(0, |v| v.len())
            + serde_json::to_vec(&self.config_map).map_or(0, |v| v.len())
    }

    /// Copy `i`: the same objects with the run's ID replaced everywhere by
    /// a name of the same length, and sparkvc's `managed-by` label changed
    /// so that no sparkvc watch takes them up.
    fn copy(&self, i: usize) -> (Pod, ConfigMap) {
        let name = format!("b{i:0>width$}", width = self.run.len().saturating_sub(1));
        let renamed = |text: String| text.replace(&self.run, &name);
        let pod: Pod = serde_json::from_str(&renamed(
            serde_json::to_string(&self.pod).expect("pod as JSON"),
        ))
        .expect("renamed pod");
        let config_map: ConfigMap = serde_json::from_str(&renamed(
            serde_json::to_string(&self.config_map).expect("ConfigMap as JSON"),
        ))
        .expect("renamed ConfigMap");
        let (mut pod, mut config_map) = (pod, config_map);
        pod.metadata.namespace = None;
        config_map.metadata.namespace = None;
        relabel(&mut pod.metadata);
        relabel(&mut config_map.metadata);
        (pod, config_map)
    }
}

fn as_sent(meta: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        labels: meta.labels,
        annotations: meta.annotations,
        ..ObjectMeta::default()
    }
}

fn relabel(meta: &mut ObjectMeta) {
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert("app.kubernetes.io/managed-by".into(), "baseline".into());
}

/// What the plain client achieved at one concurrency.
pub struct BaselineFigures {
    pub concurrency: usize,
    pub pairs: usize,
    pub pods_per_s: f64,
    /// Pod create sent → ConfigMap created, per pair.
    pub pair: Latencies,
}

/// Creates `pairs` copies of `objects` in `namespace` (which must have the
/// pod's ServiceAccount), `concurrency` pairs at a time: pod, then its
/// ConfigMap owned by it, as sparkvc's executor does.
pub async fn plain_client(
    kube: &kube::Client,
    namespace: &str,
    objects: &RunObjects,
    first: usize,
    pairs: usize,
    concurrency: usize,
) -> BaselineFigures {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let maps: Api<ConfigMap> = Api::namespaced(kube.clone(), namespace);
    let started = Instant::now();
    let latencies: Vec<std::time::Duration> = futures::stream::iter(first..first + pairs)
        .map(|i| {
            let (pod, mut config_map) = objects.copy(i);
            let (pods, maps) = (pods.clone(), maps.clone());
            async move {
                let sent = Instant::now();
                let created = pods
                    .create(&PostParams::default(), &pod)
                    .await
                    .expect("create the baseline pod");
                config_map.metadata.owner_references = Some(vec![
                    serde_json::from_value(json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "name": created.metadata.name, "uid": created.metadata.uid
                    }))
                    .expect("owner reference"),
                ]);
                maps.create(&PostParams::default(), &config_map)
                    .await
                    .expect("create the baseline ConfigMap");
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    let mut pair = Latencies::new();
    for l in latencies {
        pair.record(l);
    }
    BaselineFigures {
        concurrency,
        pairs,
        pods_per_s: pairs as f64 / took.as_secs_f64(),
        pair,
    }
}

/// The ServiceAccount the copied pod runs as, in `namespace`.
pub async fn service_account_for(kube: &kube::Client, namespace: &str, objects: &RunObjects) {
    let Some(name) = objects
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
    else {
        return;
    };
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    Api::<ServiceAccount>::namespaced(kube.clone(), namespace)
        .create(&PostParams::default(), &account)
        .await
        .expect("the pod's ServiceAccount in the baseline namespace");
}
