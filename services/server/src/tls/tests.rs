use super::*;
use crate::reload::Outcome;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and a way to issue certificates from it.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// (certificate PEM, key PEM) for `names`.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> TlsSettings {
    let settings = TlsSettings {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        client_ca_file: None,
    };
    std::fs::write(&settings.cert_file, cert).unwrap();
    std::fs::write(&settings.key_file, key).unwrap();
    settings
}

/// An echo server behind `tls`; returns its address.
async fn echo_server(tls: &Tls) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut incoming = TlsIncoming::new(listener, tls.server_config(&[b"h2"])).unwrap();
    let addr = incoming.local_addr();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(Ok(mut conn)) = incoming.next().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 5];
                if conn.read_exact(&mut buf).await.is_ok() {
                    let _ = conn.write_all(&buf).await;
                    let _ = conn.flush().await;
                }
            });
        }
    });
    addr
}

fn client_config(
    roots: rustls::RootCertStore,
    client_cert: Option<&(String, String)>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects, echoes five bytes, and returns the certificate the server
/// presented.
async fn round_trip(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<CertificateDer<'static>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"hello").await?;
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"hello");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    Ok(session.peer_certificates().unwrap()[0].clone())
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.issue(&["localhost", "127.0.0.1"]);
    let settings = write_pair(dir.path(), &first);
    let tls = Tls::load(&settings).unwrap();
    let addr = echo_server(&tls).await;
    // A fresh client each time: a resumed TLS session would not show the
    // server's certificate again.
    let client = || client_config(ca.roots(), None);
    assert_eq!(round_trip(addr, client()).await.unwrap(), der(&first.0));

    // Nothing changed: nothing reloaded.
    assert_eq!(tls.cert().reload_if_changed(), Outcome::Unchanged);

    // A rotation that is only half written (a new certificate, the old
    // key) is refused, and the old pair is still served.
    let second = ca.issue(&["localhost"]);
    std::fs::write(&settings.cert_file, &second.0).unwrap();
    assert_eq!(tls.cert().reload_if_changed(), Outcome::Failed);
    assert_eq!(round_trip(addr, client()).await.unwrap(), der(&first.0));

    // The rotation completes: new connections get the new certificate.
    std::fs::write(&settings.key_file, &second.1).unwrap();
    assert_eq!(tls.cert().reload_if_changed(), Outcome::Reloaded);
    assert_eq!(tls.cert().reloads(), 1);
    assert_eq!(round_trip(addr, client()).await.unwrap(), der(&second.0));

    // Garbage in the files: the previous certificate stays.
    std::fs::write(&settings.cert_file, "not a certificate").unwrap();
    assert_eq!(tls.cert().reload_if_changed(), Outcome::Failed);
    std::fs::remove_file(&settings.key_file).unwrap();
    assert_eq!(tls.cert().reload_if_changed(), Outcome::Failed);
    assert_eq!(round_trip(addr, client()).await.unwrap(), der(&second.0));
}

#[test]
fn a_forced_reload_loads_unchanged_files_again() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let settings = write_pair(dir.path(), &ca.issue(&["localhost"]));
    let tls = Tls::load(&settings).unwrap();
    assert_eq!(tls.cert().reload(false), Outcome::Unchanged);
    // A SIGHUP: the operator asks for a reload, so it happens and counts.
    assert_eq!(tls.cert().reload(true), Outcome::Reloaded);
    assert_eq!(tls.cert().reloads(), 1);
    // Forced or not, bad files are refused and the old pair stays.
    std::fs::write(&settings.key_file, "not a key").unwrap();
    assert_eq!(tls.cert().reload(true), Outcome::Failed);
    assert_eq!(tls.cert().reload(true), Outcome::Failed);
    assert_eq!(tls.cert().reloads(), 1);
}

#[tokio::test]
async fn the_watch_task_picks_up_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let settings = write_pair(dir.path(), &ca.issue(&["localhost"]));
    let tls = Tls::load(&settings).unwrap();
    let watch = tls.watch(|_| {});
    write_pair(dir.path(), &ca.issue(&["localhost"]));
    let deadline = std::time::Instant::now() + crate::reload::POLL_INTERVAL * 5;
    while tls.cert().reloads() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch.abort();
}

#[test]
fn bad_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, _) = ca.issue(&["localhost"]);
    let (_, other_key) = ca.issue(&["localhost"]);
    let settings = write_pair(dir.path(), &(cert.clone(), other_key));
    let err = Tls::load(&settings).unwrap_err().to_string();
    assert!(err.starts_with("TLS key "), "{err}");
    assert!(err.contains("does it belong to the certificate?"), "{err}");

    let settings = write_pair(dir.path(), &(String::new(), String::new()));
    let err = Tls::load(&settings).unwrap_err().to_string();
    assert!(err.contains("holds no PEM CERTIFICATE block"), "{err}");

    let settings = write_pair(dir.path(), &(cert, "-----BEGIN NOTHING-----".into()));
    let err = Tls::load(&settings).unwrap_err().to_string();
    assert!(err.contains("tls.key is not usable"), "{err}");

    let mut missing = settings.clone();
    missing.cert_file = dir.path().join("absent.crt");
    let err = Tls::load(&missing).unwrap_err().to_string();
    assert!(err.starts_with("cannot read TLS certificate"), "{err}");
    assert!(err.contains("absent.crt"), "{err}");
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let mut settings = write_pair(dir.path(), &server_ca.issue(&["localhost"]));
    let ca_file = dir.path().join("clients.pem");
    std::fs::write(&ca_file, client_ca.cert.pem()).unwrap();
    settings.client_ca_file = Some(ca_file);
    let tls = Tls::load(&settings).unwrap();
    assert!(tls.requires_client_certificates());
    let addr = echo_server(&tls).await;

    let good = client_ca.issue(&["tenant-a"]);
    round_trip(addr, client_config(server_ca.roots(), Some(&good)))
        .await
        .expect("a client certificate from the CA is accepted");

    // In TLS 1.3 the client learns of the refusal on its first read.
    let none = round_trip(addr, client_config(server_ca.roots(), None)).await;
    assert!(none.is_err(), "no client certificate must be refused");
    let stranger = Ca::new().issue(&["tenant-a"]);
    let foreign = round_trip(addr, client_config(server_ca.roots(), Some(&stranger))).await;
    assert!(
        foreign.is_err(),
        "a certificate of another CA must be refused"
    );
}
