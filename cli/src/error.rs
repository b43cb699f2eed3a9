//! The CLI's error type: one line of text for stderr and an exit code, chosen
//! to match the aws CLI's conventions.

use sparkvc_proto::ERROR_TYPE_METADATA;
use tonic::{Code, Status};

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of `start-job-run --wait` when the run ends FAILED or CANCELLED.
pub const EXIT_JOB_RUN_UNSUCCESSFUL: u8 = 1;
/// Exit code of a usage or parameter parse error (aws CLI: 252).
pub const EXIT_USAGE: u8 = 252;
/// Exit code of an error returned by the service (aws CLI: 254).
pub const EXIT_SERVICE: u8 = 254;
/// Exit code of a connection failure or any other error (aws CLI: 255).
pub const EXIT_OTHER: u8 = 255;

/// Everything that can make a `sparkvc` command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag (or `--cli-input-json`) value could not be read or parsed.
    #[error("Error parsing parameter '{flag}': {message}")]
    Param {
        /// The flag as typed on the command line, e.g. `--job-driver`.
        flag: String,
        /// What is wrong with the value.
        message: String,
    },

    /// Required members were given neither as flags nor in `--cli-input-json`.
    #[error("the following arguments are required: {}", .0.join(", "))]
    MissingArguments(Vec<String>),

    /// Any other misuse of the command line (bad `--endpoint-url`, ...).
    #[error("{0}")]
    Usage(String),

    /// The server answered the call with an error.
    #[error("An error occurred ({error_type}) when calling the {operation} operation: {message}")]
    Service {
        /// The operation name, e.g. `StartJobRun`.
        operation: &'static str,
        /// The AWS error name, e.g. `ValidationException`.
        error_type: String,
        /// The AWS error message.
        message: String,
    },

    /// The server could not be reached.
    #[error(
        "Could not connect to the endpoint URL: {url}: is the sparkvc server running? ({cause})"
    )]
    Connect {
        /// The endpoint URL that was tried.
        url: String,
        /// The underlying transport error.
        cause: String,
    },

    /// `start-job-run --wait` saw the job run end FAILED or CANCELLED.
    #[error("{0}")]
    JobRunUnsuccessful(String),

    /// A defect of the CLI itself (e.g. its built-in API description does
    /// not decode).
    #[error("{0}")]
    Internal(String),
}

impl CliError {
    /// Shorthand for a [`CliError::Param`].
    pub fn param(flag: &str, message: impl Into<String>) -> Self {
        Self::Param {
            flag: flag.to_string(),
            message: message.into(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Param { .. } | Self::MissingArguments(_) | Self::Usage(_) => EXIT_USAGE,
            Self::Service { .. } => EXIT_SERVICE,
            Self::Connect { .. } | Self::Internal(_) => EXIT_OTHER,
            Self::JobRunUnsuccessful(_) => EXIT_JOB_RUN_UNSUCCESSFUL,
        }
    }

    /// Maps a failed gRPC call to an error.
    ///
    /// The AWS error name comes from the `x-amzn-errortype` metadata entry. A
    /// status without it is either a transport failure (`UNAVAILABLE`, shown
    /// as a connection error) or comes from something other than the sparkvc
    /// service; its name is then derived from the gRPC code.
    pub fn from_status(operation: &'static str, url: &str, status: &Status) -> Self {
        let error_type = status
            .metadata()
            .get(ERROR_TYPE_METADATA)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(str::to_string);
        let message = one_line(status.message());
        match error_type {
            Some(error_type) => Self::Service {
                operation,
                error_type,
                message,
            },
            // A status that carries the error it was made from failed in
            // transport (a TLS alert after the handshake, a reset stream),
            // whatever its code: the innermost error says what happened.
            None if status.code() == Code::Unavailable
                || std::error::Error::source(status).is_some() =>
            {
                Self::Connect {
                    url: url.to_string(),
                    cause: std::error::Error::source(status)
                        .map(innermost)
                        .unwrap_or(message),
                }
            }
            None => Self::Service {
                operation,
                error_type: error_type_for_code(status.code()).to_string(),
                message,
            },
        }
    }
}

/// The last error of a `source()` chain, on one line.
pub(crate) fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    one_line(&current.to_string())
}

/// The AWS error name the server would use for a gRPC code.
fn error_type_for_code(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            "ValidationException"
        }
        Code::NotFound => "ResourceNotFoundException",
        Code::Internal => "InternalServerException",
        Code::ResourceExhausted => "ThrottlingException",
        Code::Unimplemented => "UnknownOperationException",
        Code::DeadlineExceeded => "RequestTimeout",
        _ => "InternalFailure",
    }
}

/// Joins the lines of a message so that every error is one line on stderr.
pub fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn status_with_type(code: Code, message: &str, error_type: &str) -> Status {
        let mut status = Status::new(code, message);
        status.metadata_mut().insert(
            ERROR_TYPE_METADATA,
            MetadataValue::try_from(error_type).unwrap(),
        );
        status
    }

    #[test]
    fn service_errors_read_like_the_aws_cli() {
        let status = status_with_type(
            Code::InvalidArgument,
            "releaseLabel is required",
            "ValidationException",
        );
        let err = CliError::from_status("StartJobRun", "http://x", &status);
        assert_eq!(
            err.to_string(),
            "An error occurred (ValidationException) when calling the StartJobRun operation: \
             releaseLabel is required"
        );
        assert_eq!(err.exit_code(), EXIT_SERVICE);
    }

    #[test]
    fn statuses_without_an_error_type_are_named_from_their_code() {
        let err = CliError::from_status(
            "DescribeJobRun",
            "http://x",
            &Status::not_found("no such\njob run"),
        );
        assert_eq!(
            err.to_string(),
            "An error occurred (ResourceNotFoundException) when calling the DescribeJobRun \
             operation: no such job run"
        );
    }

    #[test]
    fn unavailable_without_an_error_type_is_a_connection_failure() {
        let err = CliError::from_status(
            "ListVirtualClusters",
            "http://127.0.0.1:1",
            &Status::unavailable("tcp connect error"),
        );
        assert_eq!(err.exit_code(), EXIT_OTHER);
        assert_eq!(
            err.to_string(),
            "Could not connect to the endpoint URL: http://127.0.0.1:1: is the sparkvc server \
             running? (tcp connect error)"
        );
    }

    #[test]
    fn parse_errors_name_the_flag_and_exit_252() {
        let err = CliError::param("--job-driver", "unknown field `x`");
        assert_eq!(
            err.to_string(),
            "Error parsing parameter '--job-driver': unknown field `x`"
        );
        assert_eq!(err.exit_code(), EXIT_USAGE);
        let err = CliError::MissingArguments(vec!["--id".into(), "--name".into()]);
        assert_eq!(
            err.to_string(),
            "the following arguments are required: --id, --name"
        );
        assert_eq!(err.exit_code(), EXIT_USAGE);
    }
}
