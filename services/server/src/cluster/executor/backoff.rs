//! Backing off a cluster whose API server fails. Without it, every pass
//! would send every open run's request to an API server that is away: with
//! thousands of queued runs, a flood of doomed requests every few seconds,
//! just when the API server comes back and needs room.
//!
//! After a step fails for a passing reason, the cluster's steps wait 1 s;
//! each further failure doubles the wait, up to 30 s; one success ends it.
//! Times are the executor's clock (`ids::Clock::now`), so tests move them.

use std::collections::HashMap;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct ClusterBackoff {
    /// cluster → (failures in a row, no steps before).
    failing: HashMap<String, (u32, Duration)>,
}

impl ClusterBackoff {
    /// Whether steps on `cluster` should wait.
    pub fn waiting(&self, cluster: &str, now: Duration) -> bool {
        self.failing
            .get(cluster)
            .is_some_and(|&(_, until)| now < until)
    }

    /// A step on `cluster` failed for a passing reason. Failures of steps
    /// that were already in flight when the wait began do not lengthen it.
    pub fn failed(&mut self, cluster: &str, now: Duration) {
        let entry = self.failing.entry(cluster.to_string()).or_insert((0, now));
        if now < entry.1 {
            return;
        }
        entry.0 = entry.0.saturating_add(1);
        let doublings = (entry.0 - 1).min(16);
        entry.1 = now + (FIRST * (1u32 << doublings)).min(CAP);
    }

    /// A step on `cluster` succeeded: its API server answers.
    pub fn succeeded(&mut self, cluster: &str) {
        self.failing.remove(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_a_success_ends_them() {
        let mut backoff = ClusterBackoff::default();
        let t0 = Duration::from_secs(1_000_000);
        assert!(!backoff.waiting("a", t0));
        let mut now = t0;
        let mut waits = vec![];
        for _ in 0..8 {
            backoff.failed("a", now);
            let mut wait = 0;
            while backoff.waiting("a", now + Duration::from_secs(wait)) {
                wait += 1;
            }
            waits.push(wait);
            now += Duration::from_secs(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Other clusters are not held back.
        assert!(!backoff.waiting("b", now));
        backoff.succeeded("a");
        assert!(!backoff.waiting("a", now));
    }

    #[test]
    fn failures_during_a_wait_do_not_lengthen_it() {
        let mut backoff = ClusterBackoff::default();
        let t0 = Duration::from_secs(1_000_000);
        backoff.failed("a", t0);
        for _ in 0..100 {
            backoff.failed("a", t0 + Duration::from_millis(10));
        }
        assert!(!backoff.waiting("a", t0 + Duration::from_secs(1)));
    }
}
