//! Prometheus metrics, served as text on `GET /metrics` of the metrics port
//! (by `http_endpoint`, to callers allowed `sparkvc:GetMetrics`).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `sparkvc_job_runs` | gauge | `virtual_cluster_id`, `state` | open (non-terminal) job runs, read from the store at scrape time |
//! | `sparkvc_job_runs_finished_total` | counter | `virtual_cluster_id`, `state` | runs that reached COMPLETED, FAILED or CANCELLED since start |
//! | `sparkvc_submit_latency_seconds` | histogram | | accepted (createdAt) → job-runner created (SUBMITTED stored) |
//! | `sparkvc_status_lag_seconds` | histogram | | the watch event showing a driver or job-runner pod terminal → the run's final state stored |
//! | `sparkvc_reconcile_passes_total` | counter | | executor passes over the open runs that completed |
//! | `sparkvc_reconcile_errors_total` | counter | `kind` | failed reconcile steps (`kubernetes`: retried later; `store`) |
//! | `sparkvc_kubernetes_request_duration_seconds` | histogram | `verb`, `resource` | the executor's Kubernetes API calls |
//! | `sparkvc_config_reloads_total` | counter | `what` (`identities`, `tls_certificate`), `result` (`ok`, `error`) | changed files loaded (or refused, the previous contents kept) since start |
//! | `sparkvc_store_writable` | gauge | | 1 while the store takes writes, 0 once its journal has failed (the server then stops; see `store/durability.rs`) |

use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub virtual_cluster_id: String,
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `identities` or `tls_certificate`.
    pub what: String,
    /// `ok` or `error`.
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
}

/// The server's metrics; cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    open_runs: Family<RunLabels, Gauge>,
    store_writable: Gauge,
    pub finished: Family<RunLabels, Counter>,
    pub submit_latency: Histogram,
    pub status_lag: Histogram,
    pub reconcile_passes: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub kube_requests: Family<RequestLabels, Histogram>,
    pub config_reloads: Family<ReloadLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// 1 ms to about 65 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sparkvc");
        let open_runs = Family::<RunLabels, Gauge>::default();
        registry.register(
            "job_runs",
            "Open (non-terminal) job runs",
            open_runs.clone(),
        );
        let store_writable = Gauge::default();
        registry.register(
            "store_writable",
            "1 while the store takes writes, 0 once its journal has failed",
            store_writable.clone(),
        );
        let finished = Family::<RunLabels, Counter>::default();
        registry.register(
            "job_runs_finished",
            "Job runs that reached a terminal state since the server started",
            finished.clone(),
        );
        let submit_latency = Histogram::new(latency_buckets());
        registry.register(
            "submit_latency_seconds",
            "From a job run's acceptance to its job-runner being created",
            submit_latency.clone(),
        );
        let status_lag = Histogram::new(latency_buckets());
        registry.register(
            "status_lag_seconds",
            "From the watch event of a terminal pod to the job run's final state being stored",
            status_lag.clone(),
        );
        let reconcile_passes = Counter::default();
        registry.register(
            "reconcile_passes",
            "Executor plans (passes over the open job runs) whose steps all completed",
            reconcile_passes.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile steps that failed, by kind",
            reconcile_errors.clone(),
        );
        let kube_requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "kubernetes_request_duration_seconds",
            "Kubernetes API requests made by the executor",
            kube_requests.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Changed configuration files loaded or refused",
            config_reloads.clone(),
        );
        Self {
            registry: Arc::new(registry),
            open_runs,
            store_writable,
            finished,
            submit_latency,
            status_lag,
            reconcile_passes,
            reconcile_errors,
            kube_requests,
            config_reloads,
        }
    }
}

impl Metrics {
    /// Counts what a look at a watched file did (`what`: `identities`,
    /// `tls_certificate`).
    pub fn config_reload(&self, what: &str, outcome: crate::reload::Outcome) {
        if let Some(result) = outcome.label() {
            self.config_reloads
                .get_or_create(&ReloadLabels {
                    what: what.into(),
                    result: result.into(),
                })
                .inc();
        }
    }

    /// Times one Kubernetes API call.
    pub async fn kube<T>(&self, verb: &str, resource: &str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        self.kube_requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource: resource.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        out
    }

    pub fn reconcile_error(&self, kind: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { kind: kind.into() })
            .inc();
    }

    pub fn run_finished(&self, vc_id: &str, state: &str) {
        self.finished
            .get_or_create(&RunLabels {
                virtual_cluster_id: vc_id.into(),
                state: state.into(),
            })
            .inc();
    }

    /// The text exposition, with the open-run and store gauges read from
    /// `store`.
    pub fn render(&self, store: &Store) -> String {
        self.store_writable.set(i64::from(store.writable()));
        let mut counts: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
        for (vc, _, state) in store.open_job_runs().unwrap_or_default() {
            *counts.entry((vc, state.as_str())).or_default() += 1;
        }
        // Rebuilt at each scrape: a (virtual cluster, state) with no open
        // runs has no series.
        self.open_runs.clear();
        for ((vc, state), n) in counts {
            self.open_runs
                .get_or_create(&RunLabels {
                    virtual_cluster_id: vc,
                    state: state.into(),
                })
                .set(n);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_every_metric_family() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let metrics = Metrics::default();
        metrics.run_finished("vc1", "COMPLETED");
        metrics.reconcile_error("kubernetes");
        metrics.submit_latency.observe(0.02);
        metrics.status_lag.observe(0.2);
        metrics.kube("create", "Job", async {}).await;
        let text = metrics.render(&store);
        for want in [
            "sparkvc_job_runs_finished_total{virtual_cluster_id=\"vc1\",state=\"COMPLETED\"} 1",
            "sparkvc_reconcile_errors_total{kind=\"kubernetes\"} 1",
            "sparkvc_submit_latency_seconds_count 1",
            "sparkvc_status_lag_seconds_count 1",
            "sparkvc_kubernetes_request_duration_seconds_count{verb=\"create\",resource=\"Job\"} 1",
            "sparkvc_store_writable 1",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
