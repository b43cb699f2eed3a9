//! What the pods of a job run say about its state: a pure function from the
//! observed job-runner and driver pods to the next job-run state.
//!
//! - The driver pod decides: Running → RUNNING, Succeeded → COMPLETED,
//!   Failed → FAILED with the container's exit code and reason, and the
//!   error that ended it: from the container's termination message, or else
//!   from the end of the driver's log, which the caller reads when
//!   [`wants_driver_log`] says so (Spark logs its shutdown after a Python
//!   traceback, which pushes the error out of the kubelet's 2 KiB message).
//! - Before any driver exists, a failed job-runner pod (spark-submit itself
//!   failed: bad arguments, no permission to create the driver, ...) fails the
//!   run as USER_ERROR.
//! - A job-runner that succeeded without a driver is reported as missing, and
//!   the caller confirms with a direct read before failing the run.

use super::observed_pod::{ContainerNow, ObservedPod};
use crate::state::{JobRunState, Outcome, fit_details};
use sparkvc_proto::FailureReason;

/// What the caller should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Nothing new.
    Unchanged,
    /// Move the run to this state.
    Transition(JobRunState, ObservedOutcome),
    /// The job-runner finished but no driver was seen: read it directly.
    DriverMissing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedOutcome {
    pub details: String,
    pub failure_reason: Option<FailureReason>,
}

impl From<ObservedOutcome> for Outcome {
    fn from(o: ObservedOutcome) -> Self {
        Outcome {
            details: o.details,
            failure_reason: o.failure_reason,
        }
    }
}

/// Whether the caller should read the end of a driver's log before
/// [`observe`]: the driver failed and no container said why in its
/// termination message.
pub fn wants_driver_log(current: JobRunState, driver: &ObservedPod) -> bool {
    !current.is_terminal()
        && driver.phase() == "Failed"
        && driver
            .containers
            .iter()
            .find_map(|c| match &c.state {
                ContainerNow::Terminated {
                    exit_code,
                    reason,
                    message,
                } if *exit_code != 0 => Some((reason, message)),
                _ => None,
            })
            .is_some_and(|(reason, message)| {
                message.as_deref().and_then(telling_line).is_none()
                    && reason.as_deref() != Some("OOMKilled")
            })
}

/// The error a log ends with: Spark's own log lines (`yy/MM/dd HH:mm:ss
/// LEVEL …`) left out, the headline of a JVM stack trace or the line of a
/// Python traceback that names the exception (`ValueError: …`). None when
/// the log names no error.
pub fn error_in_log(log: &str) -> Option<&str> {
    static SPARK_LOG_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN) ")
            .expect("Spark log line regex")
    });
    static EXCEPTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*(Error|Exception|Exit|Interrupt|Failure)(: .*)?$")
            .expect("exception regex")
    });
    let lines = || {
        log.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !SPARK_LOG_LINE.is_match(l))
    };
    if let Some(line) = lines().find_map(|l| l.strip_prefix("Exception in thread ")) {
        return Some(
            line.strip_prefix('"')
                .and_then(|l| l.split_once("\" "))
                .map_or(line, |(_, rest)| rest),
        );
    }
    // A Python traceback's last line; the last one, since an exception
    // raised while handling another is the one that ended the program.
    lines().rfind(|l| EXCEPTION.is_match(l))
}

/// A sentence about the first container that terminated badly, with the
/// error from the end of its log when its termination message has none.
fn termination(pod: &ObservedPod, log: Option<&str>) -> String {
    for container in &pod.containers {
        let ContainerNow::Terminated {
            exit_code,
            reason,
            message,
        } = &container.state
        else {
            continue;
        };
        if *exit_code == 0 {
            continue;
        }
        let reason = reason.as_deref().unwrap_or("Error");
        let mut text = format!(
            "container {} exited with code {exit_code} ({reason})",
            container.name
        );
        if reason == "OOMKilled" {
            text.push_str(": it ran out of memory; raise its memory limit");
        }
        if let Some(message) = message
            .as_deref()
            .and_then(telling_line)
            .or_else(|| log.and_then(error_in_log))
        {
            text.push_str(": ");
            text.push_str(message);
        }
        return text;
    }
    for container in &pod.containers {
        if let ContainerNow::Waiting { reason, image } = &container.state {
            let reason = reason.as_deref().unwrap_or_default();
            if matches!(
                reason,
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"
            ) {
                return format!(
                    "container {} cannot start: {reason} for image {image}",
                    container.name
                );
            }
        }
    }
    match &pod.reason {
        Some(reason) => format!("pod {reason}"),
        None => "pod failed".into(),
    }
}

/// The line of a termination message that says what went wrong. With
/// `FallbackToLogsOnError` the message is the end of the container's log,
/// often a JVM stack trace: its headline (`Exception in thread "main" X: why`)
/// is what the user needs; otherwise the first error-looking line, otherwise
/// the last line.
fn telling_line(message: &str) -> Option<&str> {
    let lines = || message.lines().map(str::trim).filter(|l| !l.is_empty());
    if let Some(line) = lines().find_map(|l| l.strip_prefix("Exception in thread ")) {
        // `"main" org.example.Failure: why` → `org.example.Failure: why`
        let without_thread = line
            .strip_prefix('"')
            .and_then(|l| l.split_once("\" "))
            .map_or(line, |(_, rest)| rest);
        return Some(without_thread);
    }
    let is_frame = |l: &str| l.starts_with("at ") || l.starts_with("...");
    lines()
        .filter(|l| !is_frame(l))
        .find(|l| l.contains("Exception:") || l.contains("Error:"))
        .or_else(|| lines().next_back())
}

/// `driver_log`: the end of the driver's log, when [`wants_driver_log`]
/// asked for it and it could be read.
pub fn observe(
    current: JobRunState,
    runner: Option<&ObservedPod>,
    driver: Option<&ObservedPod>,
    driver_log: Option<&str>,
) -> Observation {
    use JobRunState::*;
    if current.is_terminal() {
        return Observation::Unchanged;
    }
    let to = |state, details: String, reason: Option<FailureReason>| {
        Observation::Transition(
            state,
            ObservedOutcome {
                details: fit_details(&details),
                failure_reason: reason,
            },
        )
    };
    if let Some(driver) = driver {
        return match (driver.phase(), current) {
            ("Running", Submitted | Pending) => {
                to(Running, "The Spark driver is running.".into(), None)
            }
            ("Succeeded", _) => to(Completed, "The Spark application completed.".into(), None),
            ("Failed", _) => to(
                Failed,
                format!(
                    "The Spark driver failed: {}.",
                    termination(driver, driver_log)
                ),
                Some(FailureReason::UserError),
            ),
            _ => Observation::Unchanged,
        };
    }
    match runner.map(ObservedPod::phase) {
        Some("Failed") => to(
            Failed,
            format!(
                "spark-submit failed before a Spark driver existed: {}.",
                termination(runner.expect("matched"), None)
            ),
            Some(FailureReason::UserError),
        ),
        Some("Succeeded") => Observation::DriverMissing,
        _ => Observation::Unchanged,
    }
}

/// Why a run's pods have not started, for a run that timed out: the
/// driver's state if it exists, else the job-runner's.
pub fn why_not_started(runner: Option<&ObservedPod>, driver: Option<&ObservedPod>) -> String {
    let (what, pod) = match (driver, runner) {
        (Some(driver), _) => ("the Spark driver", driver),
        (None, Some(runner)) => ("the job-runner", runner),
        (None, None) => return "no job-runner pod was created".into(),
    };
    if let Some(message) = &pod.unschedulable {
        let why = if message.is_empty() {
            "no reason given"
        } else {
            message
        };
        return format!("{what} pod cannot be scheduled: {why}");
    }
    let waiting = pod.containers.iter().find_map(|c| match &c.state {
        ContainerNow::Waiting { reason, .. } => Some(format!(
            "container {} is waiting: {}",
            c.name,
            reason.as_deref().unwrap_or("no reason given")
        )),
        _ => None,
    });
    match waiting {
        Some(text) => format!("{what} pod has not started: {text}"),
        None => format!("{what} pod is {}", pod.phase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A pod with `status`, as the watch hands it on.
    fn pod(status: serde_json::Value) -> ObservedPod {
        let pod: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap();
        pod.into()
    }

    #[test]
    fn the_driver_decides() {
        let running = pod(json!({"phase": "Running"}));
        assert!(matches!(
            observe(JobRunState::Submitted, None, Some(&running), None),
            Observation::Transition(JobRunState::Running, _)
        ));
        assert_eq!(
            observe(JobRunState::Running, None, Some(&running), None),
            Observation::Unchanged
        );
        let done = pod(json!({"phase": "Succeeded"}));
        assert!(matches!(
            observe(JobRunState::Running, None, Some(&done), None),
            Observation::Transition(JobRunState::Completed, _)
        ));
        assert_eq!(
            observe(JobRunState::Completed, None, Some(&done), None),
            Observation::Unchanged
        );
    }

    #[test]
    fn failures_say_what_happened() {
        let oom = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        }]}));
        let Observation::Transition(JobRunState::Failed, outcome) =
            observe(JobRunState::Running, None, Some(&oom), None)
        else {
            panic!("expected a failure")
        };
        assert_eq!(outcome.failure_reason, Some(FailureReason::UserError));
        assert!(
            outcome.details.contains("exited with code 137 (OOMKilled)"),
            "{}",
            outcome.details
        );
        assert!(outcome.details.contains("ran out of memory"));

        let runner = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "job-runner", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "Forbidden: cannot create pods"}}
        }]}));
        let Observation::Transition(JobRunState::Failed, outcome) =
            observe(JobRunState::Submitted, Some(&runner), None, None)
        else {
            panic!("expected a failure")
        };
        assert!(outcome.details.starts_with("spark-submit failed before a Spark driver existed: container job-runner exited with code 1 (Error): Forbidden"), "{}", outcome.details);
    }

    #[test]
    fn a_stack_trace_is_reduced_to_its_headline() {
        let log = "26/11/21 09:05:49 WARN Utils: Your hostname resolves to a loopback address\n\
            Exception in thread \"main\" org.apache.spark.SparkException: Driver memory must be a positive number\n\
            \tat org.apache.spark.deploy.SparkSubmitArguments.error(SparkSubmitArguments.scala:650)\n\
            \tat org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)\n";
        assert_eq!(
            telling_line(log),
            Some("org.apache.spark.SparkException: Driver memory must be a positive number")
        );
        let python =
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad input\n";
        assert_eq!(telling_line(python), Some("ValueError: bad input"));
        assert_eq!(telling_line("killed\n\n"), Some("killed"));
        assert_eq!(telling_line(" \n"), None);
    }

    /// What a real PySpark driver on the local real node logged: Spark's
    /// shutdown lines follow the traceback.
    #[test]
    fn a_failed_drivers_log_gives_its_error() {
        let python = "Traceback (most recent call last):\n\
            \x20 File \"/opt/spark/examples/src/main/python/pi.py\", line 34, in <module>\n\
            \x20   partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 2\n\
            \x20                ^^^^^^^^^^^^^^^^\n\
            ValueError: invalid literal for int() with base 10: 'many'\n\
            26/12/07 05:51:29 INFO SparkContext: SparkContext is stopping with exitCode 0.\n\
            26/12/07 05:51:30 WARN ExecutorPodsWatchSnapshotSource: Kubernetes client has been closed.\n\
            26/12/07 05:51:30 INFO ShutdownHookManager: Deleting directory /tmp/spark-0f4ea9ba\n";
        assert_eq!(
            error_in_log(python),
            Some("ValueError: invalid literal for int() with base 10: 'many'")
        );
        let chained = "ValueError: first\n\nDuring handling of the above exception, another exception occurred:\n\
            Traceback (most recent call last):\npyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] t\n";
        assert_eq!(
            error_in_log(chained),
            Some(
                "pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] t"
            )
        );
        let jvm = "26/12/07 05:51:29 ERROR SparkContext: Error initializing SparkContext.\n\
            Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat x.Y.main(Y.scala:3)\n";
        assert_eq!(
            error_in_log(jvm),
            Some("java.lang.IllegalStateException: boom")
        );
        let quiet = "26/12/07 05:51:30 INFO ShutdownHookManager: Shutdown hook called\nbye\n";
        assert_eq!(error_in_log(quiet), None);

        let failed = |message: Option<&str>, reason: &str| {
            pod(json!({"phase": "Failed", "containerStatuses": [{
                "name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": reason, "message": message}}
            }]}))
        };
        let driver = failed(None, "Error");
        assert!(wants_driver_log(JobRunState::Running, &driver));
        assert!(!wants_driver_log(JobRunState::Failed, &driver));
        assert!(!wants_driver_log(
            JobRunState::Running,
            &failed(Some("Exception in thread \"main\" x.Y: z"), "Error")
        ));
        assert!(!wants_driver_log(
            JobRunState::Running,
            &failed(None, "OOMKilled")
        ));
        let Observation::Transition(JobRunState::Failed, outcome) =
            observe(JobRunState::Running, None, Some(&driver), Some(python))
        else {
            panic!("expected a failure")
        };
        assert_eq!(
            outcome.details,
            "The Spark driver failed: container spark-kubernetes-driver exited with code 1 (Error): ValueError: invalid literal for int() with base 10: 'many'."
        );
    }

    #[test]
    fn a_run_that_did_not_start_says_why() {
        let unschedulable = pod(json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/4 nodes are available: 4 Insufficient cpu."
        }]}));
        assert_eq!(
            why_not_started(Some(&unschedulable), None),
            "the job-runner pod cannot be scheduled: 0/4 nodes are available: 4 Insufficient cpu."
        );
        let pulling = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}
        }]}));
        assert_eq!(
            why_not_started(Some(&unschedulable), Some(&pulling)),
            "the Spark driver pod has not started: container spark-kubernetes-driver is waiting: ImagePullBackOff"
        );
        assert_eq!(why_not_started(None, None), "no job-runner pod was created");
    }

    #[test]
    fn a_finished_runner_without_driver_is_confirmed_first() {
        let done = pod(json!({"phase": "Succeeded"}));
        assert_eq!(
            observe(JobRunState::Submitted, Some(&done), None, None),
            Observation::DriverMissing
        );
    }
}
