//! TLS on the server's listeners (the gRPC API and the HTTP endpoint).
//!
//! The certificate and key come from PEM files that are read again whenever
//! their contents change, so a rotated certificate (cert-manager renewing a
//! Secret, an operator replacing files) is served to new connections without
//! a restart. A file that fails to parse is reported and the certificate in
//! use is kept: a half-written rotation never takes the listener down.
//! Client certificates are required when a CA bundle is configured.

use crate::reload::{Outcome, Seen};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A client that has not finished its handshake by then is dropped, so that
/// idle sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's TLS material lives (`[tls]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA bundle; when set, every client must present a certificate
    /// that chains to it (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} is not usable: {why}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// The certificate being served, replaced when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents `current` was made from, and the contents that
    /// last failed (so that a bad file is reported once, not every poll).
    seen: Mutex<Seen>,
    reloads: std::sync::atomic::AtomicU64,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

impl ReloadingCert {
    /// Reads the certificate and key; fails if either is missing or bad.
    pub fn load(settings: &TlsSettings, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let bytes = read_pair(settings)?;
        let key = certified_key(settings, &bytes, &provider)?;
        Ok(Self {
            settings: settings.clone(),
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(Seen::new(bytes)),
            reloads: Default::default(),
        })
    }

    /// Certificates loaded since start-up (not counting the first).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the files again and serves them if they changed and are good.
    pub fn reload_if_changed(&self) -> Outcome {
        self.reload(false)
    }

    /// Reads the files again; with `forced` (a SIGHUP) loads them even if
    /// they look unchanged, so an operator can retry a failed rotation.
    pub fn reload(&self, forced: bool) -> Outcome {
        // An unreadable file counts as a change (reported once) through its
        // error text.
        let pair = read_pair(&self.settings);
        let fingerprint = match &pair {
            Ok(bytes) => bytes.clone(),
            Err(err) => err.to_string().into_bytes(),
        };
        let mut seen = self.seen.lock().expect("seen lock");
        if !forced && !seen.is_new(&fingerprint) {
            return Outcome::Unchanged;
        }
        let loaded = pair.and_then(|bytes| certified_key(&self.settings, &bytes, &self.provider));
        match loaded {
            Ok(key) => {
                *self.current.write().expect("certificate lock") = Arc::new(key);
                seen.loaded(fingerprint);
                self.reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
                Outcome::Reloaded
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS certificate not reloaded; still serving the previous one");
                seen.failed(fingerprint);
                Outcome::Failed
            }
        }
    }
}

/// Both files, concatenated with a separator that PEM cannot contain, so
/// that one comparison notices a change to either.
fn read_pair(settings: &TlsSettings) -> Result<Vec<u8>, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    let mut bytes = read("TLS certificate", &settings.cert_file)?;
    bytes.push(0);
    bytes.extend(read("TLS key", &settings.key_file)?);
    Ok(bytes)
}

fn certified_key(
    settings: &TlsSettings,
    pair: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let split = pair.iter().position(|b| *b == 0).unwrap_or(pair.len());
    let (cert_pem, key_pem) = (&pair[..split], pair.get(split + 1..).unwrap_or_default());
    let invalid = |what, path: &Path, why: String| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        why,
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("TLS certificate", &settings.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid(
            "TLS certificate",
            &settings.cert_file,
            "it holds no PEM CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        invalid(
            "TLS key",
            &settings.key_file,
            format!("{e} (a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block is needed)"),
        )
    })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        invalid(
            "TLS key",
            &settings.key_file,
            format!("{e} (does it belong to the certificate?)"),
        )
    })
}

/// The server side of TLS, shared by both listeners.
#[derive(Debug, Clone)]
pub struct Tls {
    cert: Arc<ReloadingCert>,
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl Tls {
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = Arc::new(ReloadingCert::load(settings, provider.clone())?);
        let verifier = match &settings.client_ca_file {
            None => None,
            Some(path) => Some(client_verifier(path, provider.clone())?),
        };
        Ok(Self {
            cert,
            verifier,
            provider,
        })
    }

    pub fn cert(&self) -> &Arc<ReloadingCert> {
        &self.cert
    }

    pub fn requires_client_certificates(&self) -> bool {
        self.verifier.is_some()
    }

    /// A rustls configuration offering `alpn` (`h2` for gRPC, `http/1.1`
    /// for the HTTP endpoint).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions");
        let builder = match &self.verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.cert.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// Re-reads the certificate files every [`POLL_INTERVAL`] and on every
    /// SIGHUP, telling `report` what each change did, until the returned
    /// task is aborted.
    pub fn watch(
        &self,
        report: impl Fn(Outcome) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let cert = self.cert.clone();
        crate::reload::watch(true, move |forced| report(cert.reload(forced)))
    }
}

fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let invalid = |why: String| TlsError::Invalid {
        what: "client CA bundle",
        path: path.to_path_buf(),
        why,
    };
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        what: "client CA bundle",
        path: path.to_path_buf(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("it holds no PEM CERTIFICATE block".into()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

/// What the API learns about a connection: where it comes from and whether
/// it is encrypted (`aws:SourceIp`, `aws:SecureTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub remote: Option<SocketAddr>,
    pub tls: bool,
}

/// An accepted, handshaken TLS connection.
#[derive(Debug)]
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    remote: SocketAddr,
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = Transport;

    fn connect_info(&self) -> Transport {
        Transport {
            remote: Some(self.remote),
            tls: true,
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Connections accepted on `listener` whose TLS handshake succeeded. Each
/// handshake runs in a task of its own, so that a slow or silent client
/// holds up nobody else; failed handshakes are logged at debug level (a
/// port scan must not flood the log) and counted.
pub struct TlsIncoming {
    connections: mpsc::Receiver<TlsConnection>,
    local: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TlsIncoming {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, connections) = mpsc::channel(64);
        let accept_loop = tokio::spawn(async move {
            loop {
                let (socket, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: wait, retry.
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small request/response pairs: see the plaintext listener.
                let _ = socket.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(TlsConnection { stream, remote }).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%remote, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            connections,
            local,
            accept_loop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl futures::Stream for TlsIncoming {
    type Item = std::io::Result<TlsConnection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.connections.poll_recv(cx).map(|c| c.map(Ok))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConnection, SocketAddr) {
        match self.connections.recv().await {
            Some(connection) => {
                let remote = connection.remote;
                (connection, remote)
            }
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests;
