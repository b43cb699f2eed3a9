//! Start-up wiring: open the store, build the control plane, serve gRPC
//! (with health and reflection), and shut down cleanly.

use crate::api::Api;
use crate::app_ui::AppUi;
use crate::auth::audit::AuditLog;
use crate::auth::grpc::{AuthLayer, Authenticator};
use crate::auth::http::HttpGuard;
use crate::auth::identity_store::IdentityStore;
use crate::auth::token_review::TokenReviewer;
use crate::cluster::Clusters;
use crate::cluster::executor::{Executor, ExecutorSettings};
use crate::cluster::lease::{Fence, Keeper, LeaseSettings};
use crate::config::{Config, LogFormat};
use crate::control::{ControlPlane, ControlPlaneParts, Identity};
use crate::ids::ArnBuilder;
use crate::metrics::Metrics;
use crate::release::Catalogue;
use crate::store::Store;
use crate::tls::{Tls, TlsIncoming};
use anyhow::Context;
use sparkvc_proto::EmrContainersServer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPARKVC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs the server until `shutdown` completes. Prints `sparkvc-server
/// metrics on URL` (when the metrics endpoint is on), then `sparkvc-server
/// listening on ADDR`, on standard output, so that scripts and tests that ask
/// for port 0 learn which ports they got.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let catalogue = match &config.release_catalogue {
        Some(path) => Catalogue::load(path)?,
        None => Catalogue::builtin(),
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir.join("store"))
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        job_runs = store.job_run_count(),
        "store opened"
    );
    let identity = Identity {
        arns: ArnBuilder {
            partition: config.partition.clone(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        },
    };
    let metrics = Metrics::default();
    let clusters = Clusters::connect(&config.clusters).await?;
    let (authenticator, identities) = authenticator(&config, &clusters)?;
    let authenticator = Arc::new(authenticator);
    let _identities_watch = identities.map(|store| {
        let metrics = metrics.clone();
        AbortOnDrop(store.watch(move |o| metrics.config_reload("identities", o)))
    });
    let tls = tls(&config)?;
    let _tls_watch = tls.as_ref().map(|t| {
        let metrics = metrics.clone();
        AbortOnDrop(t.watch(move |o| metrics.config_reload("tls_certificate", o)))
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let audit = audit_log(&config)?;
    if clusters.is_empty() {
        tracing::warn!("no Kubernetes cluster configured: API-only mode, job runs stay PENDING");
    } else {
        tracing::info!(clusters = ?clusters, "Kubernetes clusters configured");
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut executor_tasks = None;
    // One writer per cluster: hold the Lease in each, if configured.
    let (leases_stop, leases_stopped) = tokio::sync::watch::channel(false);
    let mut lease_keepers = Vec::new();
    let mut fence = Fence::default();
    if let Some(lease) = config.lease.as_ref().filter(|_| !clusters.is_empty()) {
        fence = Fence::leased();
        let identity = crate::cluster::lease::identity();
        tracing::info!(lease = %format!("{}/{}", lease.namespace, lease.name), %identity, "holding a Lease per cluster; acting on a cluster only while holding it");
        for id in clusters.ids() {
            let client = clusters.get(id).expect("a configured cluster").clone();
            let keeper = Keeper {
                cluster: id.to_string(),
                api: kube::Api::namespaced(client, &lease.namespace),
                settings: LeaseSettings {
                    namespace: lease.namespace.clone(),
                    name: lease.name.clone(),
                    duration: std::time::Duration::from_secs(lease.duration_seconds),
                },
                identity: identity.clone(),
                fence: fence.clone(),
            };
            let mut stopped = leases_stopped.clone();
            lease_keepers.push(tokio::spawn(keeper.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })));
        }
    }
    if !clusters.is_empty() {
        let executor = Executor::new(
            store.clone(),
            clusters.clone(),
            catalogue.clone(),
            wake.clone(),
            metrics.clone(),
            ExecutorSettings {
                account_id: config.account_id.clone(),
                region: config.region.clone(),
                finished_job_ttl: std::time::Duration::from_secs(config.finished_job_ttl_seconds),
                event_log_dir: config.app_ui.event_log_dir.clone(),
                pod_template_dirs: config.pod_template_dirs.clone(),
                tenancy: config.tenancy.clone(),
            },
        );
        executor_tasks = Some(Arc::new(executor.with_fence(fence.clone())).spawn());
    }
    let control = Arc::new(ControlPlane::new(ControlPlaneParts {
        store: store.clone(),
        catalogue,
        identity,
        clusters: Arc::new(clusters.clone()),
        wake,
    }));
    control
        .resume_terminations()
        .await
        .map_err(|e| anyhow::anyhow!("resuming virtual cluster deletions: {e}"))?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<EmrContainersServer<Api>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sparkvc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut serving = crate::http_endpoint::Serving::default();
    if config.lease.is_some() && !clusters.is_empty() {
        serving = serving.with_leases(fence.clone(), clusters.ids().map(str::to_string).collect());
    }
    let mut app_ui = None;
    if let Some(metrics_addr) = config.metrics_listen {
        let listener = TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
        let addr = listener.local_addr()?;
        println!("sparkvc-server metrics on {scheme}://{addr}/metrics");
        tracing::info!(%addr, "serving metrics and app-UI links");
        let ui = Arc::new(
            AppUi::new(
                &config.data_dir,
                config
                    .app_ui
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("{scheme}://{addr}")),
                config.app_ui.history_server_url.clone(),
                store.clone(),
                clusters.clone(),
            )
            .with_context(|| {
                format!(
                    "cannot keep the app-UI key in {}",
                    config.data_dir.display()
                )
            })?,
        );
        app_ui = Some(ui.clone());
        let (metrics, store) = (metrics.clone(), store.clone());
        let guard = HttpGuard::new(authenticator.clone(), audit.clone(), tls.is_some());
        let routes = crate::app_ui::router(ui);
        let serving = serving.clone();
        let stop = async move {
            let _ = metrics_stop_rx.await;
        };
        let served: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match &tls {
            Some(tls) => {
                let incoming = TlsIncoming::new(listener, tls.server_config(&[b"http/1.1"]))?;
                Box::pin(crate::http_endpoint::serve(
                    incoming, metrics, store, guard, serving, routes, stop,
                ))
            }
            None => Box::pin(crate::http_endpoint::serve(
                listener, metrics, store, guard, serving, routes, stop,
            )),
        };
        tokio::spawn(async move {
            if let Err(err) = served.await {
                tracing::error!(error = %err, "the HTTP endpoint failed");
            }
        });
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("sparkvc-server listening on {addr}");
    tracing::info!(%addr, "serving the emr-containers API");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let (store_failed_tx, mut store_failed_rx) = tokio::sync::oneshot::channel::<String>();
    serving.set(true);
    let shutdown = {
        let store = store.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                why = stop_serving_on_store_failure(&store, &health_reporter) => {
                    let _ = store_failed_tx.send(why);
                }
            }
            serving.set(false);
            let _ = stopping_tx.send(());
            let _ = metrics_stop_tx.send(());
        }
    };
    // gRPC and AWS's REST protocol share the port: gRPC requests go to
    // their services by path, everything else to the REST routes.
    let api = Api::new(control, app_ui);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            EmrContainersServer::new(api.clone())
                .max_decoding_message_size(crate::api::limits::MAX_REQUEST_BYTES),
        );
    let mut routes = routes.routes();
    let grpc_routes = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() =
        grpc_routes.fallback(move |request| crate::rest::handle(api.clone(), request));
    let router = tonic::transport::Server::builder()
        // AWS SDKs speak HTTP/1.1; gRPC clients HTTP/2.
        .accept_http1(true)
        .layer(tower::util::MapResponseLayer::new(
            crate::api::limits::name_oversized_requests,
        ))
        // The framed message is 5 bytes longer than the message itself.
        .layer(AuthLayer::new(
            authenticator,
            crate::api::limits::MAX_REQUEST_BYTES + 5,
            audit,
        ))
        .add_routes(routes);
    let serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match &tls {
            Some(tls) => Box::pin(router.serve_with_incoming_shutdown(
                TlsIncoming::new(listener, tls.server_config(&[b"h2", b"http/1.1"]))?,
                shutdown,
            )),
            // Small request/response pairs: Nagle's algorithm would hold
            // each response back for the client's delayed ACK (~40 ms).
            None => Box::pin(router.serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )),
        };
    // In-flight requests get a grace period; clients that keep idle
    // connections open do not hold the process up beyond it. Anything already
    // acknowledged is durable either way.
    let grace = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = serve => served.context("gRPC server failed")?,
        () = grace => tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them"),
    }
    // Nothing may write to the store once it is closed.
    if let Some(tasks) = executor_tasks {
        tasks.stop().await;
    }
    // Only now, with the executor stopped, may a successor take over.
    let _ = leases_stop.send(true);
    for keeper in lease_keepers {
        let _ = keeper.await;
    }
    store.close()?;
    if let Ok(why) = store_failed_rx.try_recv() {
        anyhow::bail!(
            "stopped because the store can no longer write ({why}); start sparkvc-server again to recover every acknowledged write from the store's journal"
        );
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Waits until the store stops taking writes; then reports the server
/// NOT_SERVING and returns why. The caller stops the server: a restart
/// replays the journal, while a server left running would refuse every
/// write until someone restarted it by hand. Under Kubernetes the exit (or
/// the failing health check) is what brings the restart.
async fn stop_serving_on_store_failure(
    store: &Store,
    health: &tonic_health::server::HealthReporter,
) -> String {
    let why = store.failed().await;
    tracing::error!(error = %why, "the store can no longer write; stopping the server so that a restart recovers from its journal");
    health.set_not_serving::<EmrContainersServer<Api>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    why
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Aborts a background task when dropped (the certificate watch ends with
/// the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// TLS for both listeners, if configured; plaintext is allowed off loopback
/// only with `--insecure-allow-plaintext-remote` (see `Config`), and says so.
fn tls(config: &Config) -> anyhow::Result<Option<Tls>> {
    let Some(settings) = &config.tls else {
        let remote = std::iter::once(config.listen)
            .chain(config.metrics_listen)
            .find(|a| !a.ip().is_loopback());
        if let Some(addr) = remote {
            tracing::error!(%addr, "INSECURE: --insecure-allow-plaintext-remote: traffic to this address, signed requests and app-UI links among it, crosses the network unencrypted");
        }
        return Ok(None);
    };
    let tls = Tls::load(settings)?;
    tracing::info!(
        cert = %settings.cert_file.display(),
        client_certificates = if tls.requires_client_certificates() { "required" } else { "not asked for" },
        "TLS on both listeners; the certificate is re-read when its files change"
    );
    Ok(Some(tls))
}

/// Where audit records go, if anywhere (see `Config::audit_log`).
fn audit_log(config: &Config) -> anyhow::Result<Option<Arc<AuditLog>>> {
    let choice = match &config.audit_log {
        Some(choice) => choice.clone(),
        None if config.identities_file.is_some() => {
            config.data_dir.join("audit.log").display().to_string()
        }
        None => return Ok(None),
    };
    let log = match choice.as_str() {
        "off" => return Ok(None),
        "stderr" => AuditLog::stderr(),
        path => AuditLog::file(
            std::path::Path::new(path),
            config.audit_log_max_bytes,
            config.audit_log_keep,
        )
        .with_context(|| format!("cannot open the audit log {path}"))?,
    };
    tracing::info!(audit_log = %choice, "audit log on: one record per API call");
    Ok(Some(Arc::new(log)))
}

/// How the API authenticates callers: the identity store if one is
/// configured (returned too, for its reload watch), else the single
/// development caller (which `Config` allows only on loopback unless told
/// otherwise, loudly).
fn authenticator(
    config: &Config,
    clusters: &Clusters,
) -> anyhow::Result<(Authenticator, Option<Arc<IdentityStore>>)> {
    let Some(path) = &config.identities_file else {
        let arn = config.caller_arn();
        if config.listen.ip().is_loopback() {
            tracing::warn!(caller = %arn, "no identities configured: single-user development server on loopback; every call acts as the development caller");
        } else {
            tracing::error!(caller = %arn, listen = %config.listen, "INSECURE: --insecure-allow-unauthenticated-remote: every caller that reaches this address acts as the development caller, on every tenant");
        }
        return Ok((Authenticator::development(arn), None));
    };
    let identities = Arc::new(IdentityStore::load(path)?);
    tracing::info!(
        file = %path.display(),
        principals = identities.current().principal_count(),
        "identities loaded: every call must be signed (SigV4); reloaded when the files change or on SIGHUP"
    );
    if let Some(review) = identities.current().token_review() {
        if clusters.get(&review.cluster).is_none() {
            anyhow::bail!(
                "identity file {}: [token_review] cluster {:?} is not a cluster of this server (--cluster or [[cluster]])",
                path.display(),
                review.cluster
            );
        }
        tracing::info!(cluster = %review.cluster, audiences = ?review.audiences, "Kubernetes bearer tokens accepted, checked with a TokenReview");
    }
    let authenticator = Authenticator::SigV4 {
        identities: identities.clone(),
        region: config.region.clone(),
        limiter: Default::default(),
        tokens: TokenReviewer::new(clusters.clone()),
    };
    Ok((authenticator, Some(identities)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreResult, testing};
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    #[tokio::test]
    async fn a_store_that_stops_writing_stops_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::store_whose_journal_fails(dir.path());
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<EmrContainersServer<Api>>().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let watching = {
            let store = store.clone();
            tokio::spawn(async move { stop_serving_on_store_failure(&store, &reporter).await })
        };

        let err = store
            .write(|txn| -> StoreResult<()> {
                txn.schedule(crate::store::Timer::Cleanup, 1, "vc", "run");
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot write the store's journal"),
            "{err}"
        );
        let why = tokio::time::timeout(std::time::Duration::from_secs(5), watching)
            .await
            .expect("the failure is noticed")
            .unwrap();
        assert!(why.contains("cannot write the store's journal"), "{why}");

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        for service in ["", "sparkvc.v1.EmrContainers"] {
            let status = client
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(
                status,
                ServingStatus::NotServing as i32,
                "service {service:?}"
            );
        }
        let text = Metrics::default().render(&store);
        assert!(text.contains("sparkvc_store_writable 0"), "{text}");
    }
}
