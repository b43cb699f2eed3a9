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

use prost_types::Timestamp;
use sparkvc_proto::v1 as pb;

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
    pub failure_reason: String,
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
    if !outcome.failure_reason.is_empty() {
        run.failure_reason = outcome.failure_reason;
    }
    if next.is_terminal() {
        run.finished_at = Some(at);
    }
    run.state_history.push(pb::StateTransition {
        state: next.as_str().to_string(),
        at: Some(at),
        details: outcome.details,
    });
    true
}

/// The first entry of a new run's history.
pub fn initial(run: &mut pb::JobRun, at: Timestamp) {
    run.state = JobRunState::Pending.as_str().to_string();
    run.state_history = vec![pb::StateTransition {
        state: run.state.clone(),
        at: Some(at),
        details: String::new(),
    }];
}

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
}
