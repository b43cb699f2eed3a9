//! One writer per cluster: a `coordination.k8s.io` Lease.
//!
//! With `[lease]` configured, the server holds the named Lease in every
//! cluster it drives, and its executor acts on a cluster (creates and deletes
//! pods, sets up namespaces) only while it holds that cluster's Lease. A
//! second instance started by mistake, an old pod still running during a
//! rollout, or one cut off from the API server waits instead, and reports
//! not ready (`/readyz`). It still serves the API and watches pods: neither
//! writes to the cluster.
//!
//! The rules are those of client-go's leader election:
//! - the holder renews every third of the lease duration, and counts itself
//!   the holder only until two thirds of the duration after the moment it
//!   *sent* its last successful renewal;
//! - a contender takes the Lease over only once it has seen the Lease record
//!   unchanged for a whole duration, timed by its own clock (never by the
//!   holder's timestamps, so clock skew between machines does not matter);
//! - every change is an update at the resourceVersion read, so of two
//!   instances racing for the Lease exactly one wins.
//!
//! Fencing: the holder stops acting (two thirds of a duration after its last
//! renewal) a third of a duration before anyone else may take over. A step
//! already under way when that moment comes (one API request) is the only
//! thing that can overlap; every object sparkvc creates has a deterministic
//! name, so even that cannot make a second job-runner.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which Lease to hold, and for how long a renewal counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub duration: Duration,
}

/// Whether this instance may act on each cluster now. Without a Lease
/// configured, it always may.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    /// None: no Lease configured. Otherwise, per cluster, the moment until
    /// which this instance holds it.
    held_until: Option<Arc<Mutex<HashMap<String, Instant>>>>,
}

impl Fence {
    /// A fence for instances that hold Leases.
    pub fn leased() -> Self {
        Self {
            held_until: Some(Arc::default()),
        }
    }

    fn lock(
        map: &Mutex<HashMap<String, Instant>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this instance may act on `cluster` now.
    pub fn holds(&self, cluster: &str) -> bool {
        match &self.held_until {
            None => true,
            Some(map) => Self::lock(map)
                .get(cluster)
                .is_some_and(|until| Instant::now() < *until),
        }
    }

    /// Whether it holds every one of `clusters` (what `/readyz` asks).
    pub fn holds_all<'a>(&self, mut clusters: impl Iterator<Item = &'a str>) -> bool {
        clusters.all(|c| self.holds(c))
    }

    /// Whether it holds any of `clusters`.
    pub fn holds_any<'a>(&self, mut clusters: impl Iterator<Item = &'a str>) -> bool {
        clusters.any(|c| self.holds(c))
    }

    fn set(&self, cluster: &str, until: Option<Instant>) {
        if let Some(map) = &self.held_until {
            let mut map = Self::lock(map);
            match until {
                Some(until) => map.insert(cluster.to_string(), until),
                None => map.remove(cluster),
            };
        }
    }
}

/// The Lease record as last seen, and when this instance first saw it so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: String,
    resource_version: String,
}

/// Keeps trying to hold the Lease on one cluster, for the life of the
/// task; then releases it if held, so that a successor need not wait.
pub struct Keeper {
    pub cluster: String,
    pub api: Api<Lease>,
    pub settings: LeaseSettings,
    pub identity: String,
    pub fence: Fence,
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldByOther(String),
}

impl Keeper {
    /// Runs until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut observed: Option<(Observed, Instant)> = None;
        // What the last attempt found, to log changes only.
        let mut was_holding: Option<bool> = None;
        loop {
            let sent = Instant::now();
            let wait = match self.attempt(&mut observed).await {
                Ok(Attempt::Held) => {
                    self.fence
                        .set(&self.cluster, Some(sent + self.settings.duration * 2 / 3));
                    if was_holding != Some(true) {
                        tracing::info!(cluster = %self.cluster, lease = %self.settings.name, identity = %self.identity, "holding the cluster's Lease: acting on it");
                    }
                    was_holding = Some(true);
                    self.settings.duration / 3
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    self.fence.set(&self.cluster, None);
                    match was_holding {
                        Some(true) => {
                            tracing::warn!(cluster = %self.cluster, %holder, "lost the cluster's Lease: no longer acting on it")
                        }
                        None => {
                            tracing::info!(cluster = %self.cluster, %holder, "another instance holds the cluster's Lease: waiting for it")
                        }
                        Some(false) => {}
                    }
                    was_holding = Some(false);
                    (self.settings.duration / 4).max(Duration::from_millis(500))
                }
                Err(err) => {
                    // The fence lapses by itself if renewals keep failing.
                    tracing::warn!(cluster = %self.cluster, error = %err, "reading or renewing the cluster's Lease failed; will retry");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if self.fence.holds(&self.cluster) {
            self.fence.set(&self.cluster, None);
            if let Err(err) = self.release().await {
                tracing::warn!(cluster = %self.cluster, error = %err, "releasing the cluster's Lease failed; a successor waits for it to expire");
            }
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let renewing = previous.and_then(|p| p.holder_identity.as_deref()) == Some(&self.identity);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if renewing {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                previous.and_then(|p| p.lease_transitions).unwrap_or(0)
                    + i32::from(!renewing && previous.is_some()),
            ),
            ..LeaseSpec::default()
        }
    }

    async fn attempt(
        &self,
        observed: &mut Option<(Observed, Instant)>,
    ) -> Result<Attempt, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    labels: Some(
                        [(
                            "app.kubernetes.io/managed-by".to_string(),
                            "sparkvc".to_string(),
                        )]
                        .into(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::HeldByOther("(another instance, just now)".into()))
                }
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != self.identity && !holder.is_empty() {
            // Time the record by this instance's clock: when did it last
            // change?
            let now = Observed {
                holder: holder.clone(),
                resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            };
            let since = match observed.take() {
                Some((seen, at)) if seen == now => at,
                _ => Instant::now(),
            };
            *observed = Some((now, since));
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.settings.duration, Duration::from_secs);
            if since.elapsed() < duration {
                return Ok(Attempt::HeldByOther(holder));
            }
            tracing::warn!(cluster = %self.cluster, %holder, "the cluster's Lease was not renewed for its whole duration: taking it over");
        }
        lease.spec = Some(self.spec(Some(&spec)));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Held),
            // Someone else changed it since it was read: they won.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::HeldByOther(holder)),
            Err(err) => Err(err),
        }
    }

    /// Gives the Lease up (holder cleared), if this instance still holds it.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .or_else(|err| match err {
                kube::Error::Api(status) if status.code == 409 => Ok(()),
                err => Err(err),
            })
    }
}

/// This instance's identity in Leases: its host name (a pod's name) and a
/// random suffix, so that a restarted process waits for its predecessor's
/// Lease to be released or to expire like any other contender.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "sparkvc".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_lease_the_fence_is_open() {
        let fence = Fence::default();
        assert!(fence.holds("any"));
        assert!(fence.holds_all(["a", "b"].into_iter()));
    }

    #[test]
    fn a_leased_fence_holds_until_its_moment() {
        let fence = Fence::leased();
        assert!(!fence.holds("local"));
        fence.set("local", Some(Instant::now() + Duration::from_secs(60)));
        assert!(fence.holds("local"));
        assert!(!fence.holds_all(["local", "other"].into_iter()));
        assert!(fence.holds_any(["local", "other"].into_iter()));
        fence.set("local", Some(Instant::now() - Duration::from_millis(1)));
        assert!(!fence.holds("local"), "a lapsed renewal fences by itself");
        fence.set("local", None);
        assert!(!fence.holds("local"));
    }
}
