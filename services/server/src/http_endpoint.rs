//! The HTTP endpoint (`--metrics-listen`): `GET /metrics` for callers whose
//! policies allow `sparkvc:GetMetrics` (checked by `auth::http`), the app-UI
//! links, which carry signatures of their own (`app_ui`), and the probes
//! `GET /livez` and `GET /readyz` for the kubelet, which say nothing about any
//! tenant and so need no credentials.

use crate::auth::http::{GET_METRICS, HttpGuard, Refusal};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls::TlsIncoming;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The client's address, for any listener that knows it (axum provides
/// this for its own TCP listener only; the TLS one is ours).
#[derive(Debug, Clone, Copy)]
pub struct Remote(SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Remote {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Remote(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsIncoming>> for Remote {
    fn connect_info(stream: IncomingStream<'_, TlsIncoming>) -> Self {
        Remote(*stream.remote_addr())
    }
}

struct Scrape {
    metrics: Metrics,
    store: Store,
    guard: HttpGuard,
    serving: Arc<AtomicBool>,
}

/// Whether the API takes calls: set once its listener is bound, cleared when
/// the server starts to stop. Read by `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Serving(Arc<AtomicBool>);

impl Serving {
    pub fn set(&self, serving: bool) {
        self.0.store(serving, Ordering::Release);
    }
}

fn probe_answer(ok: bool, why_not: &'static str) -> Response {
    let (status, text) = if ok {
        (axum::http::StatusCode::OK, "ok\n")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, why_not)
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

/// Liveness: fails once the store takes no more writes, so that a
/// supervisor restarts the process (a restart replays the journal). The
/// server also stops by itself then; this covers the time until it has.
async fn get_livez(State(scrape): State<Arc<Scrape>>) -> Response {
    probe_answer(
        scrape.store.writable(),
        "the store can no longer write; restart to recover from its journal\n",
    )
}

/// Readiness: the API listener takes calls and the store takes writes.
async fn get_readyz(State(scrape): State<Arc<Scrape>>) -> Response {
    if !scrape.store.writable() {
        return probe_answer(false, "the store can no longer write\n");
    }
    probe_answer(
        scrape.serving.load(Ordering::Acquire),
        "the API is not serving (starting or stopping)\n",
    )
}

/// A refusal as AWS's REST services send one.
fn refused(refusal: Refusal) -> Response {
    crate::aws_error::response(refusal.status, refusal.code, &refusal.message)
}

async fn get_metrics(
    State(scrape): State<Arc<Scrape>>,
    ConnectInfo(Remote(remote)): ConnectInfo<Remote>,
    request: Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    if let Err(refusal) = scrape.guard.admit(&parts, Some(remote), GET_METRICS).await {
        return refused(refusal);
    }
    let text = scrape.metrics.render(&scrape.store);
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Serves `/metrics`, the probes, and the routes of `more`, on `listener`
/// until `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    metrics: Metrics,
    store: Store,
    guard: HttpGuard,
    serving: Serving,
    more: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    Remote: for<'a> Connected<IncomingStream<'a, L>>,
{
    let scrape = Arc::new(Scrape {
        metrics,
        store,
        guard,
        serving: serving.0,
    });
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get_metrics))
        .route("/livez", axum::routing::get(get_livez))
        .route("/readyz", axum::routing::get(get_readyz))
        .with_state(scrape)
        .merge(more);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Remote>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
