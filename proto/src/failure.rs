//! Why a job run failed: the four values of `JobRun.failureReason`.
//!
//! The wire carries a string (the AWS model calls it an enum of strings), so
//! the server, the renderer and the CLI share this type instead of spelling
//! the strings out where each failure is decided.

use std::fmt;

/// The `failureReason` of a FAILED job run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// sparkvc itself went wrong (a missing driver, a refused object).
    InternalError,
    /// The job's own code or configuration failed.
    UserError,
    /// The request cannot be run as given (found after it was accepted).
    ValidationError,
    /// The cluster cannot take the run (access denied, pods never started).
    ClusterUnavailable,
}

impl FailureReason {
    pub const ALL: [FailureReason; 4] = [
        FailureReason::InternalError,
        FailureReason::UserError,
        FailureReason::ValidationError,
        FailureReason::ClusterUnavailable,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::InternalError => "INTERNAL_ERROR",
            FailureReason::UserError => "USER_ERROR",
            FailureReason::ValidationError => "VALIDATION_ERROR",
            FailureReason::ClusterUnavailable => "CLUSTER_UNAVAILABLE",
        }
    }

    /// The reason a wire string names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_wire_spelling() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(FailureReason::parse("user_error"), None);
        assert_eq!(FailureReason::parse(""), None);
    }
}
