//! Who is calling. Every API call is authenticated here before it reaches
//! `api`: a SigV4 signature checked against the identity store
//! ([`identities`]), or, on a loopback-only development server with no
//! identities configured, the one configured development caller.
//!
//! This module decides *who*; what the caller may do is decided later, per
//! call, by the policies (in `api`; for the HTTP endpoint's own routes, in
//! [`http`]). Nothing here writes anything.

pub mod audit;
pub mod grpc;
pub mod http;
pub mod identities;
pub mod identity_store;
pub mod policy;
pub mod rate_limit;
pub mod sigv4;
pub mod token_review;

use std::collections::BTreeMap;
use std::sync::Arc;

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// An AWS Signature Version 4 with an access key of the identity store.
    SigV4,
    /// A Kubernetes bearer token, checked with a TokenReview.
    KubernetesToken,
    /// No authentication: a development server on loopback with no
    /// identities configured.
    Development,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::SigV4 => "sigv4",
            AuthMethod::KubernetesToken => "kubernetes-token",
            AuthMethod::Development => "development",
        }
    }
}

/// The authenticated caller of one request (in the request's extensions).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The principal's ARN, reported as `createdBy`.
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub method: AuthMethod,
    /// The access key that signed, if any (for the audit log; never the
    /// secret).
    pub access_key_id: Option<String>,
    /// What the caller may do.
    pub access: Access,
    /// How many calls it may make (none: no limit, the development caller).
    pub rate_limit: Option<rate_limit::Limit>,
    /// The principal's condition keys, made from `arn` and `tags` (see
    /// [`Caller::principal_context`]); shared, since they are the same for
    /// every call of the principal.
    pub principal_context: Arc<policy::Context>,
}

impl Caller {
    /// The condition keys that depend only on who the principal is: its
    /// ARN and user name, its tags and their keys.
    pub fn principal_context(arn: &str, tags: &BTreeMap<String, String>) -> Arc<policy::Context> {
        let mut c = policy::Context::default();
        c.set("aws:PrincipalArn", arn);
        c.set("aws:userid", arn);
        if let Some((_, path)) = arn.rsplit_once(":user/") {
            c.set("aws:username", path.rsplit('/').next().unwrap_or(path));
        }
        for (key, value) in tags {
            c.set(&format!("aws:PrincipalTag/{key}"), value.clone());
        }
        c.set_many("aws:PrincipalTagKeys", tags.keys().cloned().collect());
        Arc::new(c)
    }

    /// The caller's part of every authorization context: the principal's
    /// keys, and the call's source address, transport and time.
    pub fn context(
        &self,
        source_ip: Option<std::net::IpAddr>,
        secure_transport: bool,
    ) -> policy::Context {
        let mut c = policy::Context::over(self.principal_context.clone());
        if let Some(ip) = source_ip {
            c.set("aws:SourceIp", ip.to_string());
        }
        c.set(
            "aws:SecureTransport",
            if secure_transport { "true" } else { "false" },
        );
        let (current_time, epoch_time) = clock::now_texts();
        c.set("aws:CurrentTime", current_time);
        c.set("aws:EpochTime", epoch_time);
        c
    }
}

/// The time keys' texts, made once a second rather than once a question.
mod clock {
    use std::cell::RefCell;

    std::thread_local! {
        static LAST: RefCell<(i64, String, String)> = const { RefCell::new((i64::MIN, String::new(), String::new())) };
    }

    /// `aws:CurrentTime` (RFC 3339, whole seconds, UTC) and `aws:EpochTime`.
    pub fn now_texts() -> (String, String) {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let second = now.unix_timestamp();
        LAST.with_borrow_mut(|(at, current, epoch)| {
            if *at != second {
                *at = second;
                *current = now
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                *epoch = second.to_string();
            }
            (current.clone(), epoch.clone())
        })
    }
}

/// How a caller's calls are authorized.
#[derive(Debug, Clone)]
pub enum Access {
    /// Everything: the development caller only.
    Unrestricted,
    /// What these policies allow (none: nothing).
    Policies(Arc<[policy::Policy]>),
}

impl PartialEq for Access {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Access::Unrestricted, Access::Unrestricted) => true,
            (Access::Policies(a), Access::Policies(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Access {}

/// Why a request was not authenticated. Each is an AWS error code the
/// SDKs know; the messages are AWS's where AWS has one, and never contain
/// a secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    #[error("{0}")]
    BadRequest(String),
    /// The check could not be made (the cluster that reviews bearer
    /// tokens did not answer); the caller may try again.
    #[error("{0}")]
    Unavailable(String),
    /// Over the principal's request rate; try again after the duration.
    #[error("Rate exceeded: retry in {} ms", .0.as_millis().max(1))]
    Throttled(std::time::Duration),
}

impl AuthError {
    /// The AWS error code (`x-amzn-ErrorType`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::InvalidSignature(_) | AuthError::SignatureMismatch => {
                "InvalidSignatureException"
            }
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::ExpiredToken => "ExpiredTokenException",
            AuthError::BadRequest(_) => "ValidationException",
            AuthError::Throttled(_) => "ThrottlingException",
            AuthError::Unavailable(_) => "ServiceUnavailableException",
        }
    }

    /// The HTTP status AWS's REST services answer it with.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::BadRequest(_) => 400,
            AuthError::Throttled(_) => 429,
            AuthError::Unavailable(_) => 503,
            _ => 403,
        }
    }
}
