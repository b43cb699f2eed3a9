//! The HTTP endpoint (`--metrics-listen`): `GET /metrics` for callers whose
//! policies allow `sparkvc:GetMetrics` (checked by `auth::http`), and the
//! app-UI links, which carry signatures of their own (`app_ui`).

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

/// Serves `/metrics`, and the routes of `more`, on `listener` until
/// `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    metrics: Metrics,
    store: Store,
    guard: HttpGuard,
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
    });
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get_metrics))
        .with_state(scrape)
        .merge(more);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Remote>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
