//! The queue discipline: which open job runs the executor acts on in a pass.
//!
//! A virtual cluster runs at most `maxConcurrentJobRuns` job runs at once
//! (AWS's default is 1,000). A run holds a slot from the moment its
//! job-runner is created (SUBMITTED) until it ends, so that RUNNING can never
//! exceed the limit; CANCEL_PENDING runs keep theirs until their pods are
//! deleted. PENDING runs take the free slots in submission order (job run IDs
//! sort by creation time), and the rest stay PENDING.

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

/// One open run, as the store's open-run index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    pub vc_id: String,
    pub run_id: String,
    pub state: JobRunState,
}

/// The steps for `open` (in index order: grouped by virtual cluster, oldest
/// run first), given each virtual cluster's concurrency limit. Start checks
/// are included only when `check_starts` is set.
pub fn plan(
    open: &[OpenRun],
    mut max_concurrent: impl FnMut(&str) -> usize,
    check_starts: bool,
) -> Vec<(usize, Step)> {
    let mut steps = Vec::new();
    let mut start = 0;
    while start < open.len() {
        let vc = &open[start].vc_id;
        let end = start + open[start..].iter().take_while(|r| &r.vc_id == vc).count();
        let group = &open[start..end];
        let holding = group
            .iter()
            .filter(|r| {
                matches!(
                    r.state,
                    JobRunState::Submitted | JobRunState::Running | JobRunState::CancelPending
                )
            })
            .count();
        let mut free = max_concurrent(vc).saturating_sub(holding);
        for (i, run) in group.iter().enumerate() {
            let step = match run.state {
                JobRunState::Pending if free > 0 => {
                    free -= 1;
                    Some(Step::Submit)
                }
                JobRunState::CancelPending => Some(Step::Cancel),
                JobRunState::Submitted if check_starts => Some(Step::CheckStart),
                _ => None,
            };
            if let Some(step) = step {
                steps.push((start + i, step));
            }
        }
        start = end;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobRunState::*;

    fn runs(list: &[(&str, &str, JobRunState)]) -> Vec<OpenRun> {
        list.iter()
            .map(|(vc, run, state)| OpenRun {
                vc_id: vc.to_string(),
                run_id: run.to_string(),
                state: *state,
            })
            .collect()
    }

    fn submitted(open: &[OpenRun], steps: &[(usize, Step)]) -> Vec<String> {
        steps
            .iter()
            .filter(|(_, s)| *s == Step::Submit)
            .map(|(i, _)| open[*i].run_id.clone())
            .collect()
    }

    #[test]
    fn pending_runs_take_free_slots_oldest_first() {
        let open = runs(&[
            ("a", "1", Running),
            ("a", "2", Submitted),
            ("a", "3", Pending),
            ("a", "4", Pending),
            ("a", "5", Pending),
            ("b", "6", Pending),
        ]);
        let limit = |vc: &str| if vc == "a" { 3 } else { 1 };
        let steps = plan(&open, limit, false);
        assert_eq!(submitted(&open, &steps), ["3", "6"]);
    }

    #[test]
    fn cancellations_hold_their_slot_and_are_always_acted_on() {
        let open = runs(&[("a", "1", CancelPending), ("a", "2", Pending)]);
        let steps = plan(&open, |_| 1, false);
        assert_eq!(steps, [(0, Step::Cancel)]);
    }

    #[test]
    fn a_full_virtual_cluster_submits_nothing_and_start_checks_are_optional() {
        let open = runs(&[("a", "1", Submitted), ("a", "2", Pending)]);
        assert_eq!(plan(&open, |_| 1, false), []);
        assert_eq!(plan(&open, |_| 1, true), [(0, Step::CheckStart)]);
        // A limit lowered below what runs already: nothing new starts.
        let open = runs(&[
            ("a", "1", Running),
            ("a", "2", Running),
            ("a", "3", Pending),
        ]);
        assert_eq!(plan(&open, |_| 1, false), []);
    }
}
