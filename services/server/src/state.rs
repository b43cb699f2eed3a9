//! The job-run state machine.
//!
//! ```text
//!   PENDING ──► SUBMITTED ──► RUNNING ──► COMPLETED
//!      │            │            └──────► FAILED
//!      │            └───────────────────► FAILED
//!      ├──────────────────────────────► FAILED     (could not be submitted)
//!      ├──────────────────────────────► CANCELLED  (nothing was created yet)
//!      └─► CANCEL_PENDING ◄── SUBMITTED / RUNNING
//!               └──────────────────────► CANCELLED (its pods are gone)
//! ```
//!
//! Guarantees
//! - A terminal state (COMPLETED, FAILED, CANCELLED) is final: nothing moves a
//!   run out of it, so a restarted control plane never resubmits a finished run.
//! - Every transition is appended to the run's `stateHistory` with its time,
//!   and is durable in the store before any client can observe it.
//! - `finishedAt` is set exactly when a run enters a terminal state.
//!
//! Who drives each edge (every change goes through [`transition`] or
//! [`begin_attempt`], inside one store write):
//!
//! | edge | driven by |
//! |---|---|
//! | (new) → PENDING | `control/job_runs.rs`, StartJobRun |
//! | PENDING → CANCELLED | `control/job_runs.rs`, CancelJobRun (nothing created yet); `control/virtual_clusters.rs` for a virtual cluster on no configured cluster |
//! | PENDING, SUBMITTED, RUNNING → CANCEL_PENDING | `control/job_runs.rs`, CancelJobRun (not PENDING); `control/virtual_clusters.rs`, DeleteVirtualCluster (all three) |
//! | PENDING → SUBMITTED | `cluster/executor/submit.rs`, once the job-runner exists |
//! | PENDING → FAILED | `cluster/executor`, a run that can never be submitted (bad input, no log access) |
//! | SUBMITTED → RUNNING → COMPLETED / FAILED | `cluster/executor/watch.rs`, from the pods' status |
//! | SUBMITTED → FAILED | `cluster/executor`, the job-start timeout |
//! | SUBMITTED / RUNNING → SUBMITTED (next attempt) | `cluster/executor/submit.rs`, a retry's backoff passed |
//! | CANCEL_PENDING → CANCELLED | `cluster/executor`, once the run's pods are deleted |

/// The states of a virtual cluster: RUNNING until DeleteVirtualCluster,
/// then TERMINATING (the control plane writes it, with its open runs
/// CANCEL_PENDING) until the executor has taken everything down and writes
/// TERMINATED.
pub mod virtual_cluster {
    pub const RUNNING: &str = "RUNNING";
    pub const TERMINATING: &str = "TERMINATING";
    pub const TERMINATED: &str = "TERMINATED";
}

use prost_types::Timestamp;
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1 as pb;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobRunState {
    Pending,
    Submitted,
    Running,
    CancelPending,
    Completed,
    Failed,
    Cancelled,
}

impl JobRunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Submitted => "SUBMITTED",
            Self::Running => "RUNNING",
            Self::CancelPending => "CANCEL_PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => Self::Pending,
            "SUBMITTED" => Self::Submitted,
            "RUNNING" => Self::Running,
            "CANCEL_PENDING" => Self::CancelPending,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether the state machine above has an edge from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        use JobRunState::*;
        match self {
            Pending => matches!(next, Submitted | Failed | Cancelled | CancelPending),
            Submitted => matches!(next, Running | Failed | CancelPending | Completed),
            Running => matches!(next, Completed | Failed | CancelPending),
            CancelPending => matches!(next, Cancelled | Completed | Failed),
            Completed | Failed | Cancelled => false,
        }
    }
}

/// The state a stored run is in; an unreadable state counts as PENDING so
/// that the run is looked at again rather than forgotten.
pub fn state_of(run: &pb::JobRun) -> JobRunState {
    JobRunState::parse(&run.state).unwrap_or(JobRunState::Pending)
}

/// What to record with a transition.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub details: String,
    pub failure_reason: Option<FailureReason>,
}

/// Moves `run` to `next`, recording the transition. Returns false (and
/// changes nothing) if the state machine has no such edge.
pub fn transition(
    run: &mut pb::JobRun,
    next: JobRunState,
    outcome: Outcome,
    at: Timestamp,
) -> bool {
    let current = state_of(run);
    if !current.can_become(next) {
        return false;
    }
    run.state = next.as_str().to_string();
    if !outcome.details.is_empty() {
        run.state_details = outcome.details.clone();
    }
    if let Some(reason) = outcome.failure_reason {
        run.failure_reason = reason.as_str().to_string();
    }
    if next.is_terminal() {
        run.finished_at = Some(at);
        run.next_attempt_at = None;
    }
    run.state_history.push(pb::StateTransition {
        state: next.as_str().to_string(),
        at: Some(at),
        details: outcome.details,
    });
    true
}

/// The first entry of a new run's history; a run with a retry policy starts
/// on attempt 1.
pub fn initial(run: &mut pb::JobRun, at: Timestamp) {
    run.state = JobRunState::Pending.as_str().to_string();
    run.state_history = vec![pb::StateTransition {
        state: run.state.clone(),
        at: Some(at),
        details: String::new(),
    }];
    if run.retry_policy_configuration.is_some() {
        run.retry_policy_execution = Some(pb::RetryPolicyExecution {
            current_attempt_count: 1,
        });
    }
}

// Retries (`retryPolicyConfiguration.maxAttempts`)
//
// A run's driver may be tried up to maxAttempts times. When an attempt's
// driver fails, the run keeps its state (SUBMITTED or RUNNING), its attempt
// count goes up at once (so the failed attempt's pods are ignored from then
// on), `nextAttemptAt` says when the next one starts, and a history entry
// keeps the failed attempt's reason. When the next attempt's job-runner is
// created the run is SUBMITTED again. The last attempt's failure fails the run.

/// The first retry waits this long; each later one twice as long as the one
/// before, up to [`RETRY_BACKOFF_CAP`] (Kubernetes' pod failure backoff,
/// which EMR on EKS uses).
pub const RETRY_BACKOFF: Duration = Duration::from_secs(10);
pub const RETRY_BACKOFF_CAP: Duration = Duration::from_secs(6 * 60);

/// How long to wait after attempt `failed` (1-based) before the next one.
pub fn retry_backoff(failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    (RETRY_BACKOFF * (1u32 << doublings)).min(RETRY_BACKOFF_CAP)
}

/// The attempt a run is on (1 for a run without a retry policy).
pub fn attempt_of(run: &pb::JobRun) -> u32 {
    run.retry_policy_execution
        .and_then(|e| u32::try_from(e.current_attempt_count).ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// How many attempts the run may make in all.
pub fn max_attempts(run: &pb::JobRun) -> u32 {
    run.retry_policy_configuration
        .and_then(|c| u32::try_from(c.max_attempts).ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Whether the run waits for its next attempt to start.
pub fn awaits_attempt(run: &pb::JobRun) -> bool {
    run.next_attempt_at.is_some()
}

/// Records that attempt `failed` failed with `details` and that the next one
/// starts at `next_at`. Returns false (and changes nothing) unless the run is
/// SUBMITTED or RUNNING on that attempt, no retry is already scheduled, and
/// an attempt is left.
pub fn schedule_attempt(
    run: &mut pb::JobRun,
    failed: u32,
    details: &str,
    at: Timestamp,
    next_at: Timestamp,
) -> bool {
    let state = state_of(run);
    let max = max_attempts(run);
    if !matches!(state, JobRunState::Submitted | JobRunState::Running)
        || attempt_of(run) != failed
        || awaits_attempt(run)
        || failed >= max
    {
        return false;
    }
    let next = failed + 1;
    run.retry_policy_execution = Some(pb::RetryPolicyExecution {
        current_attempt_count: i32::try_from(next).unwrap_or(i32::MAX),
    });
    run.next_attempt_at = Some(next_at);
    let wait = next_at.seconds.saturating_sub(at.seconds).max(0);
    let text =
        format!("Attempt {failed} of {max} failed: {details} Attempt {next} starts in {wait} s.");
    run.state_details = fit_details(&text);
    run.state_history.push(pb::StateTransition {
        state: state.as_str().to_string(),
        at: Some(at),
        details: fit_details(&format!("Attempt {failed} of {max} failed: {details}")),
    });
    true
}

/// Starts the scheduled attempt: the run is SUBMITTED again. Returns false
/// (and changes nothing) if no attempt is scheduled or the run has moved on.
pub fn begin_attempt(run: &mut pb::JobRun, details: String, at: Timestamp) -> bool {
    let state = state_of(run);
    if !awaits_attempt(run) || !matches!(state, JobRunState::Submitted | JobRunState::Running) {
        return false;
    }
    run.next_attempt_at = None;
    run.state = JobRunState::Submitted.as_str().to_string();
    run.state_details = details.clone();
    run.state_history.push(pb::StateTransition {
        state: run.state.clone(),
        at: Some(at),
        details,
    });
    true
}

pub use sparkvc_proto::limits::{MAX_STATE_DETAILS, fit_details};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_final() {
        for terminal in [
            JobRunState::Completed,
            JobRunState::Failed,
            JobRunState::Cancelled,
        ] {
            for next in [
                JobRunState::Pending,
                JobRunState::Running,
                JobRunState::Cancelled,
            ] {
                assert!(!terminal.can_become(next));
            }
        }
    }

    #[test]
    fn transitions_are_recorded_with_time_and_finish() {
        let mut run = pb::JobRun::default();
        let t0 = Timestamp {
            seconds: 10,
            nanos: 0,
        };
        let t1 = Timestamp {
            seconds: 20,
            nanos: 0,
        };
        initial(&mut run, t0);
        assert!(transition(
            &mut run,
            JobRunState::Cancelled,
            Outcome {
                details: "Job run cancelled by user.".into(),
                ..Default::default()
            },
            t1
        ));
        assert_eq!(run.state, "CANCELLED");
        assert_eq!(run.finished_at, Some(t1));
        assert_eq!(
            run.state_history
                .iter()
                .map(|t| t.state.as_str())
                .collect::<Vec<_>>(),
            ["PENDING", "CANCELLED"]
        );
        assert!(!transition(
            &mut run,
            JobRunState::Running,
            Outcome::default(),
            t1
        ));
        assert_eq!(run.state_history.len(), 2);
    }

    fn ts(seconds: i64) -> Timestamp {
        Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn retry_backoff_doubles_from_10_s_up_to_6_minutes() {
        let secs: Vec<u64> = (1..=8).map(|n| retry_backoff(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 360, 360]);
        assert_eq!(retry_backoff(u32::MAX).as_secs(), 360);
    }

    #[test]
    fn a_failed_attempt_is_retried_while_attempts_are_left() {
        let mut run = pb::JobRun {
            retry_policy_configuration: Some(pb::RetryPolicyConfiguration { max_attempts: 2 }),
            ..Default::default()
        };
        initial(&mut run, ts(0));
        assert_eq!((attempt_of(&run), max_attempts(&run)), (1, 2));
        // Only a started run is retried.
        assert!(!schedule_attempt(&mut run, 1, "x", ts(1), ts(11)));
        assert!(transition(
            &mut run,
            JobRunState::Submitted,
            Outcome::default(),
            ts(1)
        ));
        assert!(transition(
            &mut run,
            JobRunState::Running,
            Outcome::default(),
            ts(2)
        ));
        // A stale attempt number changes nothing.
        assert!(!schedule_attempt(&mut run, 2, "x", ts(3), ts(13)));
        assert!(schedule_attempt(
            &mut run,
            1,
            "The Spark driver failed.",
            ts(3),
            ts(13)
        ));
        assert_eq!(attempt_of(&run), 2);
        assert_eq!(run.state, "RUNNING");
        assert_eq!(run.next_attempt_at, Some(ts(13)));
        assert_eq!(
            run.state_details,
            "Attempt 1 of 2 failed: The Spark driver failed. Attempt 2 starts in 10 s."
        );
        let last = run.state_history.last().unwrap();
        assert_eq!(
            (last.state.as_str(), last.details.as_str()),
            ("RUNNING", "Attempt 1 of 2 failed: The Spark driver failed.")
        );
        // Scheduled once only.
        assert!(!schedule_attempt(&mut run, 2, "x", ts(4), ts(14)));

        assert!(begin_attempt(
            &mut run,
            "Attempt 2 of 2: started.".into(),
            ts(13)
        ));
        assert_eq!(
            (run.state.as_str(), run.next_attempt_at),
            ("SUBMITTED", None)
        );
        assert!(!begin_attempt(&mut run, "again".into(), ts(14)));
        // The last attempt has no successor.
        assert!(transition(
            &mut run,
            JobRunState::Running,
            Outcome::default(),
            ts(15)
        ));
        assert!(!schedule_attempt(&mut run, 2, "x", ts(16), ts(26)));
        let states: Vec<&str> = run.state_history.iter().map(|t| t.state.as_str()).collect();
        assert_eq!(
            states,
            [
                "PENDING",
                "SUBMITTED",
                "RUNNING",
                "RUNNING",
                "SUBMITTED",
                "RUNNING"
            ]
        );
    }

    #[test]
    fn a_run_without_a_retry_policy_has_one_attempt() {
        let mut run = pb::JobRun::default();
        initial(&mut run, ts(0));
        assert_eq!(run.retry_policy_execution, None);
        assert_eq!((attempt_of(&run), max_attempts(&run)), (1, 1));
        assert!(transition(
            &mut run,
            JobRunState::Submitted,
            Outcome::default(),
            ts(1)
        ));
        assert!(!schedule_attempt(&mut run, 1, "x", ts(2), ts(12)));
    }

    #[test]
    fn cancelling_a_run_that_waits_for_its_next_attempt_clears_the_wait() {
        let mut run = pb::JobRun {
            retry_policy_configuration: Some(pb::RetryPolicyConfiguration { max_attempts: 3 }),
            ..Default::default()
        };
        initial(&mut run, ts(0));
        assert!(transition(
            &mut run,
            JobRunState::Submitted,
            Outcome::default(),
            ts(1)
        ));
        assert!(schedule_attempt(&mut run, 1, "x", ts(2), ts(12)));
        assert!(transition(
            &mut run,
            JobRunState::CancelPending,
            Outcome::default(),
            ts(3)
        ));
        assert!(!begin_attempt(&mut run, "late".into(), ts(12)));
        assert!(transition(
            &mut run,
            JobRunState::Cancelled,
            Outcome::default(),
            ts(4)
        ));
        assert_eq!(run.next_attempt_at, None);
    }

    #[test]
    fn details_are_cut_to_256_characters() {
        assert_eq!(fit_details("short"), "short");
        let cut = fit_details(&"é".repeat(300));
        assert_eq!(cut.chars().count(), MAX_STATE_DETAILS);
        assert!(cut.ends_with('…'));
    }
}
