//! The HTTP endpoint (`--metrics-listen`): `GET /metrics` for callers whose
//! policies allow `sparkvc:GetMetrics` (checked by `auth::http`), `GET
//! /backup` (an online backup of the store, streamed) for those allowed
//! `sparkvc:BackupStore`, the app-UI links, which carry signatures of their
//! own (`app_ui`), and the probes `GET /livez` and `GET /readyz` for the
//! kubelet, which say nothing about any tenant and so need no credentials.

use crate::auth::http::{BACKUP_STORE, GET_METRICS, HttpGuard, Refusal};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls::TlsIncoming;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use futures::StreamExt;
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
    serving: Serving,
}

/// Whether this instance is ready for calls: its API listener is bound
/// (cleared when the server starts to stop) and it holds the Lease of every
/// cluster it drives, if it holds Leases. Read by `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    listening: Arc<AtomicBool>,
    leases: Option<(crate::cluster::lease::Fence, Arc<Vec<String>>)>,
}

impl Serving {
    pub fn set(&self, serving: bool) {
        self.listening.store(serving, Ordering::Release);
    }

    /// Also not ready while `fence` lacks any of `clusters`.
    pub fn with_leases(
        mut self,
        fence: crate::cluster::lease::Fence,
        clusters: Vec<String>,
    ) -> Self {
        self.leases = Some((fence, Arc::new(clusters)));
        self
    }

    fn not_ready(&self) -> Option<&'static str> {
        if !self.listening.load(Ordering::Acquire) {
            return Some("the API is not serving (starting or stopping)\n");
        }
        match &self.leases {
            Some((fence, clusters)) if !fence.holds_all(clusters.iter().map(String::as_str)) => {
                Some("another instance holds a cluster's Lease: this one is standing by\n")
            }
            _ => None,
        }
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

/// Hands a backup's bytes from its blocking thread to the response body, in
/// chunks of about a MiB; the channel's bound keeps a slow client from
/// making the server buffer the store.
struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, String>>,
    buf: Vec<u8>,
}

const BACKUP_CHUNK: usize = 1 << 20;

impl std::io::Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BACKUP_CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(BACKUP_CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

/// `GET /backup`: a consistent backup of the store as of the moment it ends
/// (see `store::backup`), taken while the server serves, streamed as
/// `application/octet-stream`. A failure part-way aborts the response, and
/// the file, lacking its end record, will not restore. 409 if a backup is
/// already running.
async fn get_backup(
    State(endpoint): State<Arc<Scrape>>,
    ConnectInfo(Remote(remote)): ConnectInfo<Remote>,
    request: Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    if let Err(refusal) = endpoint
        .guard
        .admit(&parts, Some(remote), BACKUP_STORE)
        .await
    {
        return refused(refusal);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let store = endpoint.store.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut out = ChunkSender {
            tx: tx.clone(),
            buf: Vec::with_capacity(BACKUP_CHUNK),
        };
        match store.backup(&mut out) {
            Ok(summary) => tracing::info!(
                keys = summary.copied,
                writes_during = summary.replayed,
                bytes = summary.bytes,
                seconds = started.elapsed().as_secs_f64(),
                "backup sent"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "backup failed");
                let _ = tx.blocking_send(Err(err.to_string()));
            }
        }
    });
    // The first chunk (the header, at the latest with the first MiB) says
    // the backup started; an error first means it never did.
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(why)) => {
            let status = if why.contains("already running") {
                409
            } else {
                500
            };
            return crate::aws_error::response(status, "BackupFailed", &why);
        }
        None => return crate::aws_error::response(500, "BackupFailed", "the backup stopped"),
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map_err(std::io::Error::other), rx))
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sparkvc.backup\""),
    );
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
    match scrape.serving.not_ready() {
        None => probe_answer(true, ""),
        Some(why) => probe_answer(false, why),
    }
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
        serving,
    });
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get_metrics))
        .route("/livez", axum::routing::get(get_livez))
        .route("/readyz", axum::routing::get(get_readyz))
        .route("/backup", axum::routing::get(get_backup))
        .with_state(scrape)
        .merge(more);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Remote>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
