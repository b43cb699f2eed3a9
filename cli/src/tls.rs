//! TLS to an `https://` endpoint, as the aws CLI does it: the system's
//! trust store, or the CA bundle of `--ca-bundle` / `AWS_CA_BUNDLE`;
//! `--no-verify-ssl` turns certificate checks off (with a warning on every
//! command, because it lets anyone on the path read and change the calls).
//! `--client-cert` and `--client-key` present a certificate to a server
//! that requires one (mutual TLS).

use crate::error::CliError;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How to check the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM bundle of the CAs to trust instead of the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any certificate (`--no-verify-ssl`).
    pub no_verify: bool,
    /// The certificate and key to present, for mutual TLS.
    pub client_identity: Option<ClientIdentity>,
}

/// PEM files of a client certificate (chain, leaf first) and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The rustls client configuration for `options`, offering HTTP/2 (gRPC).
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, CliError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Usage(format!("TLS set-up failed: {e}")))?;
    let builder = if options.no_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        let roots = match &options.ca_bundle {
            Some(path) => bundle_roots(path)?,
            None => system_roots(),
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match &options.client_identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let (chain, key) = load_identity(identity)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                CliError::Usage(format!(
                    "Bad value for --client-key \"{}\": it does not fit --client-cert \"{}\": {e}",
                    identity.key.display(),
                    identity.cert.display()
                ))
            })?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn load_identity(
    identity: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CliError> {
    let bad = |flag: &str, path: &Path, why: String| {
        CliError::Usage(format!(
            "Bad value for {flag} \"{}\": {why}",
            path.display()
        ))
    };
    let pem = std::fs::read(&identity.cert)
        .map_err(|e| bad("--client-cert", &identity.cert, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("--client-cert", &identity.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(
            "--client-cert",
            &identity.cert,
            "it holds no PEM CERTIFICATE block".into(),
        ));
    }
    // The key's bytes are never put in a message: only the file's name.
    let pem = std::fs::read(&identity.key)
        .map_err(|e| bad("--client-key", &identity.key, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        bad(
            "--client-key",
            &identity.key,
            "it holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
        )
    })?;
    Ok((chain, key))
}

fn bundle_roots(path: &Path) -> Result<rustls::RootCertStore, CliError> {
    let bad = |why: String| {
        CliError::Usage(format!(
            "Bad value for --ca-bundle \"{}\": {why}",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no PEM CERTIFICATE block".into()));
    }
    Ok(roots)
}

/// The operating system's trust store; certificates it cannot parse are
/// skipped (one bad file in /etc/ssl/certs must not break every command).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// `--no-verify-ssl`: any certificate is taken, but the handshake's
/// signatures are still checked (the connection is encrypted, to whoever
/// answers).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens TCP connections to the endpoint's host and runs the TLS handshake
/// on them, for tonic's `connect_with_connector`.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }
}

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let config = self.config.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("the endpoint URL has no host")?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.to_string())?;
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}
