//! `start-job-run --wait`: poll DescribeJobRun until the run reaches a
//! terminal state, reporting progress on stderr.
//!
//! stderr gets one line per state seen, `job run <id>: <STATE> after <t>s`
//! (plus ` - <stateDetails>` when the server gives details). When stderr is a
//! terminal, a spinner line with the elapsed time is redrawn in between.
//! stdout gets only the final DescribeJobRun response.

use crate::error::CliError;
use sparkvc_proto::v1::{DescribeJobRunRequest, DescribeJobRunResponse, JobRun};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// States after which a job run never changes again.
pub const TERMINAL_STATES: [&str; 3] = ["COMPLETED", "FAILED", "CANCELLED"];

pub fn is_terminal(state: &str) -> bool {
    TERMINAL_STATES.contains(&state)
}

/// The line printed when a job run is first seen in a state.
pub fn state_line(run: &JobRun, elapsed: Duration) -> String {
    let mut line = format!(
        "job run {}: {} after {:.1}s",
        run.id,
        run.state,
        elapsed.as_secs_f64()
    );
    if !run.state_details.is_empty() {
        line.push_str(" - ");
        line.push_str(&crate::error::one_line(&run.state_details));
    }
    line
}

/// The error for a run that ended FAILED or CANCELLED; `None` if COMPLETED.
pub fn outcome(run: &JobRun) -> Option<CliError> {
    if run.state == "COMPLETED" {
        return None;
    }
    let mut message = format!("Job run {} ended in state {}", run.id, run.state);
    if !run.failure_reason.is_empty() {
        message.push_str(&format!(" (failureReason: {})", run.failure_reason));
    }
    if !run.state_details.is_empty() {
        message.push_str(": ");
        message.push_str(&crate::error::one_line(&run.state_details));
    }
    Some(CliError::JobRunUnsuccessful(message))
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Progress reporting on stderr.
struct Progress {
    started: Instant,
    tty: bool,
    last_state: Option<String>,
    ticks: usize,
    spinner_shown: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_state: None,
            ticks: 0,
            spinner_shown: false,
        }
    }

    fn observe(&mut self, run: &JobRun) {
        if self.last_state.as_deref() == Some(run.state.as_str()) {
            return;
        }
        self.clear_spinner();
        eprintln!("{}", state_line(run, self.started.elapsed()));
        self.last_state = Some(run.state.clone());
    }

    fn tick(&mut self) {
        if !self.tty {
            return;
        }
        let state = self.last_state.as_deref().unwrap_or("?");
        let spinner = SPINNER[self.ticks % SPINNER.len()];
        self.ticks += 1;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{spinner} {state} ({:.0}s elapsed)",
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
        self.spinner_shown = true;
    }

    fn clear_spinner(&mut self) {
        if self.spinner_shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.spinner_shown = false;
        }
    }
}

/// Polls until the job run is in a terminal state and returns the last
/// DescribeJobRun response.
pub async fn until_done(
    client: &mut crate::client::Client,
    url: &str,
    request: DescribeJobRunRequest,
    poll_interval: Duration,
) -> Result<DescribeJobRunResponse, CliError> {
    let mut progress = Progress::new();
    // With a spinner, redraw it several times per poll.
    let tick = if progress.tty {
        poll_interval.min(Duration::from_millis(250))
    } else {
        poll_interval
    };
    loop {
        let response = client
            .describe_job_run(request.clone())
            .await
            .map_err(|status| CliError::from_status("DescribeJobRun", url, &status))?
            .into_inner();
        let run = response.job_run.clone().unwrap_or_default();
        progress.observe(&run);
        if is_terminal(&run.state) {
            progress.clear_spinner();
            return Ok(response);
        }
        let next_poll = Instant::now() + poll_interval;
        while Instant::now() < next_poll {
            progress.tick();
            tokio::time::sleep(tick.min(next_poll.saturating_duration_since(Instant::now()))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &str, reason: &str, details: &str) -> JobRun {
        JobRun {
            id: "jr1".into(),
            state: state.into(),
            failure_reason: reason.into(),
            state_details: details.into(),
            ..Default::default()
        }
    }

    #[test]
    fn terminal_states() {
        assert!(is_terminal("COMPLETED") && is_terminal("FAILED") && is_terminal("CANCELLED"));
        assert!(!is_terminal("RUNNING") && !is_terminal("CANCEL_PENDING"));
    }

    #[test]
    fn state_lines_show_state_time_and_details() {
        assert_eq!(
            state_line(&run("RUNNING", "", ""), Duration::from_millis(2_340)),
            "job run jr1: RUNNING after 2.3s"
        );
        assert_eq!(
            state_line(&run("PENDING", "", "queued\nbehind 2"), Duration::ZERO),
            "job run jr1: PENDING after 0.0s - queued behind 2"
        );
    }

    #[test]
    fn outcomes_carry_the_failure_reason_and_details() {
        assert!(outcome(&run("COMPLETED", "", "")).is_none());
        let err = outcome(&run("FAILED", "USER_ERROR", "driver exited with code 1")).unwrap();
        assert_eq!(
            err.to_string(),
            "Job run jr1 ended in state FAILED (failureReason: USER_ERROR): driver exited with code 1"
        );
        assert_eq!(err.exit_code(), 1);
        let err = outcome(&run("CANCELLED", "", "")).unwrap();
        assert_eq!(err.to_string(), "Job run jr1 ended in state CANCELLED");
    }
}
