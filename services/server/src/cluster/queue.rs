//! The queue discipline: which open job runs the executor may start.
//!
//! A virtual cluster runs at most `maxConcurrentJobRuns` job runs at once
//! (AWS's default is 1,000). A run holds a slot from the moment its
//! job-runner is created (SUBMITTED) until it ends, so that RUNNING can never
//! exceed the limit; CANCEL_PENDING runs keep theirs until their pods are
//! deleted. PENDING runs take the free slots in submission order (job run IDs
//! sort by creation time, and the store's state index keeps them in that
//! order), and the rest stay PENDING.

use crate::state::JobRunState;

/// maxConcurrentJobRuns when a virtual cluster sets none.
pub const DEFAULT_MAX_CONCURRENT: usize = 1000;

/// What to do with one open run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create its job-runner (PENDING with a free slot).
    Submit,
    /// Delete its pods and finish the cancellation.
    Cancel,
    /// See whether it has started in time (SUBMITTED).
    CheckStart,
}

/// One open run, as the executor plans a step for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    pub vc_id: String,
    pub run_id: String,
    pub state: JobRunState,
}

/// How many PENDING runs of a virtual cluster may start now: its limit
/// less the runs holding a slot (SUBMITTED, RUNNING, CANCEL_PENDING, and
/// those being submitted). A limit lowered below what already runs starts
/// nothing until enough have ended.
pub fn free_slots(max_concurrent: usize, holding: usize) -> usize {
    max_concurrent.saturating_sub(holding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_are_the_limit_less_the_runs_holding_one() {
        assert_eq!(free_slots(3, 1), 2);
        assert_eq!(free_slots(1, 1), 0);
        // A limit lowered below what runs already: nothing new starts.
        assert_eq!(free_slots(1, 2), 0);
    }
}
