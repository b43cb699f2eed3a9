//! Authentication and authorization of the HTTP endpoint's own routes
//! (`/metrics`), for the same callers as the API: a SigV4 signature (the
//! service `emr-containers`, as the API's) or a Kubernetes bearer token
//! (what Prometheus sends from a ServiceAccount). The caller's policies
//! must allow the route's `sparkvc:` action on `*`: metrics name every
//! tenant's virtual clusters, so a tenant's grant of `emr-containers:*`
//! does not reach them. A development server (no identity store) serves
//! everyone, as its API does. The app-UI links are not checked here: they
//! carry signatures of their own (`app_ui`).

use super::audit::{self, AuditLog, Verdict};
use super::grpc::Authenticator;
use super::policy::{self, Decision, Question};
use super::{Access, AuthError, Caller};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// The action that `GET /metrics` needs.
pub const GET_METRICS: &str = "sparkvc:GetMetrics";
/// The action that `GET /backup` needs: a backup holds every tenant's
/// records, so it is an operator's action, like metrics.
pub const BACKUP_STORE: &str = "sparkvc:BackupStore";

/// Why a request was refused: an HTTP status, the AWS error code (for
/// `x-amzn-ErrorType`) and a message that names no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl From<&AuthError> for Refusal {
    fn from(err: &AuthError) -> Self {
        Refusal {
            status: err.http_status(),
            code: err.code(),
            message: err.to_string(),
        }
    }
}

/// Checks the callers of the HTTP endpoint's routes.
#[derive(Debug, Clone)]
pub struct HttpGuard {
    auth: Arc<Authenticator>,
    audit: Option<Arc<AuditLog>>,
    /// Whether the endpoint speaks TLS (`aws:SecureTransport`).
    tls: bool,
}

impl HttpGuard {
    pub fn new(auth: Arc<Authenticator>, audit: Option<Arc<AuditLog>>, tls: bool) -> Self {
        Self { auth, audit, tls }
    }

    /// Whether the request (a GET: it has no body) may do `action`; every
    /// answer but a development server's is audited.
    pub async fn admit(
        &self,
        parts: &http::request::Parts,
        remote: Option<SocketAddr>,
        action: &'static str,
    ) -> Result<(), Refusal> {
        if matches!(*self.auth, Authenticator::Development(_)) {
            return Ok(());
        }
        let request_id = audit::request_id();
        let source_ip = remote.map(|a| a.ip());
        let record = |caller: Option<&Caller>,
                      verdict: Option<&Verdict>,
                      refusal: Option<&AuthError>,
                      code: Option<&str>| {
            if let Some(log) = &self.audit {
                log.call(audit::Call {
                    request_id: &request_id,
                    operation: parts.uri.path(),
                    caller,
                    source_ip,
                    verdict,
                    refusal,
                    error_code: code,
                });
            }
        };
        let caller = match self.auth.authenticate(parts, b"", SystemTime::now()).await {
            Ok(caller) => caller,
            Err(err) => {
                tracing::info!(
                    code = err.code(),
                    path = parts.uri.path(),
                    "HTTP request refused: not authenticated"
                );
                record(None, None, Some(&err), None);
                return Err(Refusal::from(&err));
            }
        };
        let decision = match &caller.access {
            Access::Unrestricted => Decision::Allow {
                policy: "development".into(),
                sid: None,
            },
            Access::Policies(policies) => policy::evaluate(
                policies,
                Question {
                    action,
                    resource: "*",
                    context: &caller.context(source_ip, self.tls),
                },
            ),
        };
        let verdict = Verdict {
            action: action.to_string(),
            resource: "*".to_string(),
            decision: decision.label(),
            statement: decision.statement(),
        };
        match decision.denial(&caller.arn, action, "*") {
            None => {
                record(Some(&caller), Some(&verdict), None, None);
                Ok(())
            }
            Some(message) => {
                tracing::info!(principal = %caller.arn, action, "HTTP request refused: access denied");
                record(
                    Some(&caller),
                    Some(&verdict),
                    None,
                    Some("AccessDeniedException"),
                );
                Err(Refusal {
                    status: 403,
                    code: "AccessDeniedException",
                    message,
                })
            }
        }
    }
}
