//! The error kinds of the emr-containers API.
//!
//! Every failure a client can see is one of these. They become a
//! `tonic::Status` in exactly one place (`api::status`), which keeps the AWS
//! error name next to the message so that a REST gateway could reproduce the
//! AWS response byte for byte.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// The request breaks a rule of the API (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// The named resource does not exist (`ResourceNotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// sparkvc failed; the client did nothing wrong (`InternalServerException`).
    #[error("{0}")]
    Internal(String),
    /// No policy lets the caller do this (`AccessDeniedException`).
    #[error("{0}")]
    AccessDenied(String),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// The AWS error type name.
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Internal(_) => "InternalServerException",
            Self::AccessDenied(_) => "AccessDeniedException",
        }
    }

    pub fn virtual_cluster_not_found(id: &str) -> Self {
        Self::NotFound(format!("Virtual cluster {id} doesn't exist."))
    }

    pub fn job_run_not_found(id: &str) -> Self {
        Self::NotFound(format!("Job run {id} doesn't exist."))
    }

    /// Delete, cancel and list operations declare no ResourceNotFoundException
    /// in the AWS model, so there an unknown ID is a ValidationException with
    /// the same words.
    pub fn into_validation(self) -> Self {
        match self {
            Self::NotFound(message) => Self::Validation(message),
            other => other,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The details go to the server log; the client learns only that the
        // fault was ours.
        tracing::error!(error = %err, "store failure");
        Self::Internal("sparkvc could not complete the request because of an internal storage error; it is safe to retry.".into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How much of a bad value an error message quotes: enough to recognise it,
/// never so much that an error outgrows what a client reads (or becomes a
/// way to reflect a request back whole).
pub const ECHO_CHARS: usize = 80;

/// `value` as an error message may quote it: its first [`ECHO_CHARS`]
/// characters, and `...` if there was more.
pub fn echo(value: &str) -> String {
    let mut shown: String = value.chars().take(ECHO_CHARS).collect();
    if shown.len() < value.len() {
        shown.push_str("...");
    }
    shown
}

impl From<crate::release::UnknownRelease> for ApiError {
    fn from(err: crate::release::UnknownRelease) -> Self {
        ApiError::NotFound(err.to_string())
    }
}
