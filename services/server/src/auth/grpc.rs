//! Authentication of gRPC calls: a tower layer in front of the API service.
//!
//! A SigV4 signature covers the body, so the layer reads the whole body
//! (unary calls; bounded by the request size limit) before the call goes on,
//! then hands the service the same bytes and the [`Caller`] in the
//! request's extensions. A refused call never reaches the service: it gets
//! `UNAUTHENTICATED` with the AWS error code in `x-amzn-errortype`.
//!
//! The health and reflection services stay open: probes and tooling need
//! them, and they reveal no tenant data.

use super::audit::{self, AuditLog, VerdictSlot};
use super::identity_store::IdentityStore;
use super::sigv4::SignedRequest;
use super::token_review::{TokenReviewer, bearer_token};
use super::{AuthError, AuthMethod, Caller};
use crate::tls::Transport;
use http_body_util::{BodyExt, Full, Limited};
use sparkvc_proto::ERROR_TYPE_METADATA;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;
use tonic::body::Body;
use tonic::metadata::MetadataValue;

/// The gRPC paths that are not authenticated.
const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// How callers are authenticated.
#[derive(Debug)]
pub enum Authenticator {
    /// Every call must be signed with a key of the identity store, or
    /// carry a Kubernetes bearer token that the store maps to a principal.
    SigV4 {
        identities: Arc<IdentityStore>,
        region: String,
        limiter: super::rate_limit::RateLimiter,
        tokens: TokenReviewer,
    },
    /// Every call is this caller (a loopback development server).
    Development(Caller),
}

impl Authenticator {
    pub fn development(arn: String) -> Self {
        Authenticator::Development(Caller {
            principal_context: Caller::principal_context(&arn, &Default::default()),
            arn,
            tags: Default::default(),
            groups: Vec::new(),
            method: AuthMethod::Development,
            access_key_id: None,
            access: super::Access::Unrestricted,
            rate_limit: None,
        })
    }

    /// Authenticates a request from its head and its whole body.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        match self {
            Authenticator::Development(caller) => Ok(caller.clone()),
            Authenticator::SigV4 {
                identities,
                region,
                limiter,
                tokens,
            } => {
                let identities = identities.current();
                let caller = match bearer_token(&parts.headers) {
                    Some(token) => {
                        // Bearer tokens are refused unless the store says
                        // where to check them.
                        let settings = identities
                            .token_review()
                            .ok_or(AuthError::UnrecognizedClient)?;
                        let username = tokens.review(token, settings).await?;
                        identities.kubernetes_caller(&username).ok_or_else(|| {
                            tracing::info!(%username, "a valid Kubernetes token of a user no kubernetes_identity maps");
                            AuthError::UnrecognizedClient
                        })?
                    }
                    None => {
                        let request = SignedRequest {
                            method: parts.method.as_str(),
                            path: parts.uri.path(),
                            query: parts.uri.query().unwrap_or(""),
                            headers: &parts.headers,
                            authority: parts.uri.authority().map(|a| a.as_str()),
                            body,
                        };
                        identities.authenticate(&request, region, now)?
                    }
                };
                if let Some(limit) = caller.rate_limit {
                    limiter
                        .take(&caller.arn, limit, std::time::Instant::now())
                        .map_err(AuthError::Throttled)?;
                }
                Ok(caller)
            }
        }
    }

    fn needs_body(&self) -> bool {
        matches!(self, Authenticator::SigV4 { .. })
    }
}

/// The refusal of an unauthenticated call.
pub fn refusal(err: &AuthError) -> tonic::Status {
    let code = match err {
        AuthError::BadRequest(_) => tonic::Code::InvalidArgument,
        AuthError::Throttled(_) => tonic::Code::ResourceExhausted,
        AuthError::Unavailable(_) => tonic::Code::Unavailable,
        _ => tonic::Code::Unauthenticated,
    };
    let mut status = tonic::Status::new(code, err.to_string());
    status
        .metadata_mut()
        .insert(ERROR_TYPE_METADATA, MetadataValue::from_static(err.code()));
    status
}

/// Authenticates every call of the services it wraps.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
    max_body_bytes: usize,
    audit: Option<Arc<AuditLog>>,
}

impl AuthLayer {
    pub fn new(
        auth: Arc<Authenticator>,
        max_body_bytes: usize,
        audit: Option<Arc<AuditLog>>,
    ) -> Self {
        Self {
            auth,
            max_body_bytes,
            audit,
        }
    }
}

/// A refusal in the protocol the request spoke: a gRPC status, or AWS's
/// REST error (status, `x-amzn-ErrorType`, JSON message).
fn refused(err: &AuthError, grpc: bool) -> http::Response<Body> {
    if grpc {
        return refusal(err).into_http();
    }
    crate::aws_error::response::<String>(err.http_status(), err.code(), &err.to_string())
        .map(|text| Body::new(Full::new(bytes::Bytes::from(text))))
}

/// The AWS error code of a failed response (None: success).
fn error_code(response: &http::Response<Body>, grpc: bool) -> Option<String> {
    let headers = response.headers();
    if !grpc {
        if response.status().is_success() {
            return None;
        }
        return Some(
            headers
                .get(ERROR_TYPE_METADATA)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {}", response.status().as_u16())),
        );
    }
    let status = headers.get("grpc-status")?;
    if status.as_bytes() == b"0" {
        return None;
    }
    Some(
        headers
            .get(ERROR_TYPE_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("grpc-status {}", status.to_str().unwrap_or("?"))),
    )
}

/// Where the connection comes from and whether it is encrypted, from what
/// the listener recorded: TLS connections carry a [`Transport`] of their
/// own, plaintext ones tonic's `TcpConnectInfo`.
fn transport(extensions: &http::Extensions) -> Transport {
    if let Some(transport) = extensions.get::<Transport>() {
        return *transport;
    }
    Transport {
        remote: extensions
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr()),
        tls: false,
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> tower::Service<http::Request<Body>> for Authenticated<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone that was made ready is the one that takes the call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let AuthLayer {
            auth,
            max_body_bytes,
            audit,
        } = self.layer.clone();
        Box::pin(async move {
            if OPEN_PREFIXES
                .iter()
                .any(|p| request.uri().path().starts_with(p))
            {
                return inner.call(request).await;
            }
            let grpc = crate::aws_error::is_grpc(request.headers());
            let (mut parts, body) = request.into_parts();
            let request_id = audit::request_id();
            let transport = transport(&parts.extensions);
            parts.extensions.insert(transport);
            let source_ip = transport.remote.map(|a| a.ip());
            // A gRPC path names the operation; a REST one needs its method.
            let operation = if grpc {
                parts.uri.path().to_string()
            } else {
                format!("{} {}", parts.method, parts.uri.path())
            };
            let verdict: VerdictSlot = Default::default();
            parts.extensions.insert(verdict.clone());
            let with_id = |mut response: http::Response<Body>| {
                if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-amzn-requestid", value);
                }
                response
            };
            // Bytes clone by reference count: the service gets the very
            // bytes that were verified.
            let (body, bytes) = if auth.needs_body() {
                match Limited::new(body, max_body_bytes).collect().await {
                    Ok(collected) => {
                        let bytes = collected.to_bytes();
                        (Body::new(Full::new(bytes.clone())), bytes)
                    }
                    Err(_) if !grpc => {
                        return Ok(with_id(
                            crate::aws_error::too_large::<String>(max_body_bytes)
                                .map(|text| Body::new(Full::new(bytes::Bytes::from(text)))),
                        ));
                    }
                    Err(_) => {
                        let err = AuthError::BadRequest(format!(
                            "1 validation error detected: the request is larger than the {max_body_bytes} bytes a request may have, or its body could not be read"
                        ));
                        return Ok(with_id(refused(&err, grpc)));
                    }
                }
            } else {
                (body, bytes::Bytes::new())
            };
            match auth.authenticate(&parts, &bytes, SystemTime::now()).await {
                Ok(caller) => {
                    tracing::debug!(principal = %caller.arn, method = caller.method.as_str(), "authenticated");
                    parts.extensions.insert(caller.clone());
                    let response = inner.call(http::Request::from_parts(parts, body)).await?;
                    if let Some(log) = &audit {
                        let verdict = verdict.lock().expect("verdict lock").take();
                        let code = error_code(&response, grpc);
                        log.call(audit::Call {
                            request_id: &request_id,
                            operation: &operation,
                            caller: Some(&caller),
                            source_ip,
                            verdict: verdict.as_ref(),
                            refusal: None,
                            error_code: code.as_deref(),
                        });
                    }
                    Ok(with_id(response))
                }
                Err(err) => {
                    tracing::info!(
                        code = err.code(),
                        path = parts.uri.path(),
                        "call refused: not authenticated"
                    );
                    if let Some(log) = &audit {
                        log.call(audit::Call {
                            request_id: &request_id,
                            operation: &operation,
                            caller: None,
                            source_ip,
                            verdict: None,
                            refusal: Some(&err),
                            error_code: None,
                        });
                    }
                    Ok(with_id(refused(&err, grpc)))
                }
            }
        })
    }
}
