//! Persistent app UI links (GetJobRunAppUiUrl, a sparkvc extension).
//!
//! A link is `<base>/app-ui/<vcId>/<jobRunId>/<expires>/<signature>/`, where
//! the signature is HMAC-SHA256, under a key only the server knows
//! (`<data dir>/app-ui.key`, made on first start), of the virtual cluster,
//! the run and the expiry time. The server's HTTP endpoint serves it:
//! - while the run's driver runs: its live Spark UI (port 4040), through the
//!   Kubernetes API server's pod proxy;
//! - after: the run's application on the configured Spark History Server.
//!
//! A link grants that one application and nothing else: the path after the
//! signature may only name the application's own pages and Spark's static
//! assets; a tampered or expired link, or one for another run, is refused
//! (403). Spark renders its links under the `X-Forwarded-Context` header the
//! proxy sends, so they lead back through the same link.

use crate::state::{self, JobRunState};
use crate::store::Store;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Response, StatusCode};
use std::io::Write;
use std::sync::Arc;

/// The key file in the data directory.
const KEY_FILE: &str = "app-ui.key";

/// HMAC-SHA256 (RFC 2104) in lower-case hex, from AWS's maintained SigV4
/// crate (the one the API's signature check uses).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    aws_sigv4::sign::v4::calculate_signature(key, message)
}

/// The signature of a link for (virtual cluster, run, expiry).
pub fn signature(key: &[u8], vc_id: &str, run_id: &str, expires: u64) -> String {
    hmac_sha256_hex(key, format!("{vc_id}/{run_id}/{expires}").as_bytes())
}

/// Equal in constant time (the signature is a secret until it matches).
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The path (relative, no leading `/`) a redirect `location` names, with the
/// link's own `context` prefix and any scheme and host taken off.
pub fn redirect_path(location: &str, context: &str) -> Option<String> {
    let path = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    };
    let path = path.strip_prefix(context).unwrap_or(path);
    Some(path.strip_prefix('/')?.to_string())
}

/// Whether `sig` signs (virtual cluster, run, expiry) and the link has not
/// expired at `now` (Unix seconds).
pub fn valid(key: &[u8], (vc_id, run_id, expires): (&str, &str, u64), sig: &str, now: u64) -> bool {
    now < expires && same(&signature(key, vc_id, run_id, expires), sig)
}

/// Which upstream path a link's remaining path may reach, for application
/// `app_id`: its own History Server pages and Spark's static assets only.
pub fn allowed_path(rest: &str, app_id: &str) -> Option<String> {
    if rest.contains("..") || rest.contains("//") || rest.starts_with('/') {
        return None;
    }
    let own = format!("history/{app_id}/");
    if rest.is_empty() {
        Some(format!("{own}jobs/"))
    } else if rest.starts_with(&own) || rest.starts_with("static/") {
        Some(rest.to_string())
    } else {
        None
    }
}

/// The app-UI links and their HTTP endpoint.
#[derive(Debug)]
pub struct AppUi {
    key: Vec<u8>,
    /// Base URL of the HTTP endpoint as clients see it.
    pub public_url: String,
    history_server: Option<String>,
    store: Store,
    clusters: crate::cluster::Clusters,
    http: history_http::Client,
}

impl AppUi {
    /// Loads the signing key from the data directory, making one if missing.
    pub fn new(
        data_dir: &std::path::Path,
        public_url: String,
        history_server: Option<String>,
        store: Store,
        clusters: crate::cluster::Clusters,
    ) -> std::io::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(key) if key.len() >= 32 => key,
            _ => {
                let key: [u8; 32] = rand::random();
                let mut file = std::fs::OpenOptions::new();
                file.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
                file.open(&path)?.write_all(&key)?;
                key.to_vec()
            }
        };
        Ok(Self {
            key,
            public_url,
            history_server,
            store,
            clusters,
            http: history_http::Client::default(),
        })
    }

    /// A link to run `run_id`'s app UI, valid until `expires` (Unix seconds).
    pub fn link(&self, vc_id: &str, run_id: &str, expires: u64) -> String {
        let sig = signature(&self.key, vc_id, run_id, expires);
        format!(
            "{}/app-ui/{vc_id}/{run_id}/{expires}/{sig}/",
            self.public_url
        )
    }

    fn check(&self, vc_id: &str, run_id: &str, expires: u64, sig: &str) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        valid(&self.key, (vc_id, run_id, expires), sig, now)
    }

    async fn serve(
        &self,
        vc_id: &str,
        run_id: &str,
        expires: u64,
        sig: &str,
        rest: &str,
    ) -> Response<Body> {
        if !self.check(vc_id, run_id, expires, sig) {
            return plain(
                StatusCode::FORBIDDEN,
                "This app UI link is invalid or has expired.",
            );
        }
        let run = match self.store.job_run(vc_id, run_id) {
            Ok(Some(run)) => run,
            Ok(None) => return plain(StatusCode::NOT_FOUND, "The job run no longer exists."),
            Err(err) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        };
        if run.spark_application_id.is_empty() {
            return plain(
                StatusCode::NOT_FOUND,
                "The job run has no Spark application yet.",
            );
        }
        let Some(path) = allowed_path(rest, &run.spark_application_id) else {
            return plain(
                StatusCode::FORBIDDEN,
                "This link leads only to its own application's pages.",
            );
        };
        let context = format!("/app-ui/{vc_id}/{run_id}/{expires}/{sig}");
        if state::state_of(&run) == JobRunState::Running {
            return self.live(&run, &path, &context).await;
        }
        let Some(history) = &self.history_server else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "No Spark History Server is configured (--history-server-url).",
            );
        };
        // The History Server answers an application's first request with a
        // redirect to the same page once it has loaded it: follow those here,
        // within what the link allows.
        let mut path = path;
        for _ in 0..5 {
            let response = match self.http.get(&format!("{history}/{path}"), &context).await {
                Ok(response) => response,
                Err(err) => {
                    return plain(
                        StatusCode::BAD_GATEWAY,
                        &format!("The History Server did not answer: {err}"),
                    );
                }
            };
            let next = response
                .status()
                .is_redirection()
                .then(|| response.headers().get(axum::http::header::LOCATION))
                .flatten()
                .and_then(|l| l.to_str().ok())
                .and_then(|l| redirect_path(l, &context))
                .and_then(|p| allowed_path(&p, &run.spark_application_id));
            match next {
                Some(next) => path = next,
                None => return response,
            }
        }
        plain(
            StatusCode::BAD_GATEWAY,
            "The History Server kept redirecting.",
        )
    }

    /// The running driver's UI, through the API server's pod proxy.
    async fn live(
        &self,
        run: &sparkvc_proto::v1::JobRun,
        path: &str,
        context: &str,
    ) -> Response<Body> {
        let Ok(Some(vc)) = self.store.virtual_cluster(&run.virtual_cluster_id) else {
            return plain(
                StatusCode::NOT_FOUND,
                "The virtual cluster no longer exists.",
            );
        };
        let provider = vc.container_provider.unwrap_or_default();
        let namespace = provider
            .info
            .and_then(|i| i.eks_info)
            .map(|e| e.namespace)
            .unwrap_or_default();
        let Some(client) = self.clusters.get(&provider.id) else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The job run's cluster is not configured.",
            );
        };
        let attempt = crate::render::names::attempt_name(&run.id, state::attempt_of(run));
        let driver = crate::render::names::driver_pod_name(&attempt);
        // The live UI serves the application's pages at its root, where the
        // History Server serves them under `history/<appId>/`: links keep the
        // History Server's paths (the only ones a link allows), so the live
        // UI is told that it is served there, and its links lead back here
        // whether the run is still running or has ended by the next click.
        let own = format!("history/{}/", run.spark_application_id);
        let live_path = path.strip_prefix(&own).unwrap_or(path);
        let context = format!("{context}/{}", own.trim_end_matches('/'));
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{driver}:4040/proxy/{live_path}");
        let request = match axum::http::Request::get(uri)
            .header("X-Forwarded-Context", context)
            .body(Vec::new())
        {
            Ok(request) => request,
            Err(err) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        };
        match client.request_text(request).await {
            Ok(text) => {
                let mut response = Response::new(Body::from(text));
                response.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            Err(err) => plain(
                StatusCode::BAD_GATEWAY,
                &format!("The driver's UI did not answer: {err}"),
            ),
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response
}

/// The routes of the app-UI links.
pub fn router(app_ui: Arc<AppUi>) -> axum::Router {
    async fn root(
        State(ui): State<Arc<AppUi>>,
        Path((vc, run, expires, sig)): Path<(String, String, u64, String)>,
    ) -> Response<Body> {
        ui.serve(&vc, &run, expires, &sig, "").await
    }
    async fn page(
        State(ui): State<Arc<AppUi>>,
        Path((vc, run, expires, sig, rest)): Path<(String, String, u64, String, String)>,
    ) -> Response<Body> {
        ui.serve(&vc, &run, expires, &sig, &rest).await
    }
    axum::Router::new()
        .route(
            "/app-ui/{vc}/{run}/{expires}/{sig}/",
            axum::routing::get(root),
        )
        .route(
            "/app-ui/{vc}/{run}/{expires}/{sig}/{*rest}",
            axum::routing::get(page),
        )
        .with_state(app_ui)
}

/// A minimal HTTP/1.1 client for the History Server (plain `http://`).
mod history_http {
    use super::*;

    #[derive(Debug, Default)]
    pub struct Client {}

    impl Client {
        /// GETs `url`, sending `X-Forwarded-Context`, and returns the answer
        /// as a response to pass on (status, content type, body).
        pub async fn get(&self, url: &str, context: &str) -> Result<Response<Body>, String> {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let rest = url
                .strip_prefix("http://")
                .ok_or_else(|| format!("{url} is not an http:// URL"))?;
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let mut stream = tokio::net::TcpStream::connect(host)
                .await
                .map_err(|e| format!("connecting to {host}: {e}"))?;
            // HTTP/1.0: the answer ends when the connection closes, unchunked.
            let request = format!(
                "GET /{path} HTTP/1.0\r\nHost: {host}\r\nX-Forwarded-Context: {context}\r\nAccept-Encoding: identity\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .await
                .map_err(|e| e.to_string())?;
            let split = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or("no HTTP header in the answer")?;
            let head = String::from_utf8_lossy(&raw[..split]).to_string();
            let body = raw[split + 4..].to_vec();
            let mut lines = head.lines();
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or("no HTTP status in the answer")?;
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            for line in lines {
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if matches!(name.as_str(), "content-type" | "location")
                        && let Ok(value) = HeaderValue::from_str(value.trim())
                    {
                        let name = axum::http::HeaderName::from_bytes(name.as_bytes())
                            .map_err(|e| e.to_string())?;
                        response.headers_mut().insert(name, value);
                    }
                }
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_bind_the_run_and_the_expiry() {
        let key = b"k";
        let sig = signature(key, "vc", "run", 100);
        assert!(same(&sig, &signature(key, "vc", "run", 100)));
        assert!(!same(&sig, &signature(key, "vc", "other", 100)));
        assert!(!same(&sig, &signature(key, "vc", "run", 101)));
        assert!(!same(&sig, &signature(b"other key", "vc", "run", 100)));
    }

    #[test]
    fn redirects_are_read_as_paths_under_the_link() {
        let ctx = "/app-ui/vc/run/1/sig";
        assert_eq!(
            redirect_path("/history/app-1/jobs/", ctx).as_deref(),
            Some("history/app-1/jobs/")
        );
        assert_eq!(
            redirect_path(
                "http://127.0.0.1:18080/app-ui/vc/run/1/sig/history/app-1/jobs/",
                ctx
            )
            .as_deref(),
            Some("history/app-1/jobs/")
        );
        assert_eq!(redirect_path("jobs/", ctx), None);
    }

    #[test]
    fn links_expire() {
        let sig = signature(b"k", "vc", "run", 100);
        assert!(valid(b"k", ("vc", "run", 100), &sig, 99));
        assert!(!valid(b"k", ("vc", "run", 100), &sig, 100));
        assert!(
            !valid(b"k", ("vc", "run", 101), &sig, 99),
            "a longer expiry needs its own signature"
        );
    }

    #[test]
    fn a_link_reaches_only_its_own_application() {
        assert_eq!(
            allowed_path("", "app-1").as_deref(),
            Some("history/app-1/jobs/")
        );
        assert_eq!(
            allowed_path("history/app-1/stages/", "app-1").as_deref(),
            Some("history/app-1/stages/")
        );
        assert!(allowed_path("static/spark-logo.png", "app-1").is_some());
        for bad in [
            "history/app-2/jobs/",
            "api/v1/applications",
            "history/app-1/../app-2/",
            "/etc/passwd",
        ] {
            assert_eq!(allowed_path(bad, "app-1"), None, "{bad}");
        }
    }
}
