//! TLS on the real server: the `sparkvc` CLI reaches an `https://` endpoint
//! with a CA bundle (and refuses it without one), client certificates are
//! required when a client CA is configured (and the CLI presents one), a
//! rotated certificate is served without a restart (and at once on SIGHUP),
//! the HTTP endpoint speaks TLS too, and policies see `aws:SecureTransport`.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use sparkvc_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const KEY: &str = "AKIATLSEXAMPLE000001";
const SECRET: &str = "tls/secret+EXAMPLE";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: with rcgen's default, the CA and the
        // certificates it issues would have the same subject, and OpenSSL
        // (curl) would take each as self-signed.
        params
            .distinguished_name
            .push(DnType::CommonName, "sparkvc test CA");
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.cert.pem()).unwrap();
        path.to_path_buf()
    }

    /// Writes a certificate for this machine's loopback names and its key.
    fn issue_into(&self, cert_file: &Path, key_file: &Path) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(cert_file, cert.pem()).unwrap();
        std::fs::write(key_file, key.serialize_pem()).unwrap();
    }
}

/// Identities whose one policy allows everything, but never in plaintext.
fn write_identities(dir: &Path) -> PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[policy]]
name = "tls-only"
document = '''
{{"Version":"2012-10-17","Statement":[
  {{"Effect":"Allow","Action":["emr-containers:*","sparkvc:GetMetrics"],"Resource":"*"}},
  {{"Sid":"NoPlaintext","Effect":"Deny","Action":"*","Resource":"*",
    "Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}
'''

[[principal]]
arn = "arn:aws:iam::123456789012:user/tls"
policies = ["tls-only"]
[[principal.access_key]]
id = "{KEY}"
secret = "{SECRET}"
"#
        ),
    )
    .unwrap();
    path
}

/// The CLI, signing with the test's key and nothing from this machine.
fn cli(endpoint: &str, args: &[&str]) -> Output {
    let env = [
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-west-2"),
    ];
    sparkvc_isolated(endpoint, &env, args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct TlsServer {
    server: Server,
    https: String,
    cert_file: PathBuf,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(ca: &Ca, extra: &[&str]) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    ca.issue_into(&cert_file, &key_file);
    let identities = write_identities(dir.path());
    let mut args = vec![
        "--identities",
        identities.to_str().unwrap(),
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = Server::start_with(&dir.path().join("data"), &args);
    let https = format!("https://{}", server.addr);
    TlsServer {
        server,
        https,
        cert_file,
        key_file,
        _dir: dir,
    }
}

#[test]
fn the_cli_reaches_an_https_server_it_trusts_and_only_that() {
    let ca = Ca::new();
    let tls = start(&ca, &[]);
    let bundle = ca.write(&tls._dir.path().join("ca.pem"));
    let bundle = bundle.to_str().unwrap();

    let ok = cli(
        &tls.https,
        &["list-virtual-clusters", "--ca-bundle", bundle],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(json_of(&ok)["virtualClusters"], serde_json::json!([]));

    // The policy denies plaintext calls; over TLS the call got through, so
    // the server saw aws:SecureTransport true. A create works too.
    let created = cli(
        &tls.https,
        &[
            "create-virtual-cluster",
            "--name",
            "over-tls",
            "--container-provider",
            "id=local,type=EKS,info={eksInfo={namespace=tls}}",
            "--ca-bundle",
            bundle,
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));

    // The system trust store does not know this CA.
    let untrusted = cli(&tls.https, &["list-virtual-clusters"]);
    assert_eq!(untrusted.status.code(), Some(255), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("Could not connect to the endpoint URL"),
        "{}",
        stderr(&untrusted)
    );
    assert!(
        stderr(&untrusted).to_lowercase().contains("certificate"),
        "the error names the certificate: {}",
        stderr(&untrusted)
    );

    // --no-verify-ssl gets through, and says what it gives up.
    let unverified = cli(&tls.https, &["list-virtual-clusters", "--no-verify-ssl"]);
    assert!(unverified.status.success(), "{}", stderr(&unverified));
    assert!(
        stderr(&unverified).contains("warning: --no-verify-ssl"),
        "{}",
        stderr(&unverified)
    );

    // Plaintext to the TLS port is not answered as gRPC.
    let plain = cli(
        &format!("http://{}", tls.server.addr),
        &["list-virtual-clusters"],
    );
    assert!(!plain.status.success(), "{}", stderr(&plain));

    // A bad bundle is named.
    let bad = cli(
        &tls.https,
        &["list-virtual-clusters", "--ca-bundle", "/nonexistent.pem"],
    );
    assert_eq!(bad.status.code(), Some(252), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--ca-bundle"), "{}", stderr(&bad));
}

#[test]
fn the_same_policy_refuses_plaintext_calls() {
    let dir = tempfile::tempdir().unwrap();
    let identities = write_identities(dir.path());
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", identities.to_str().unwrap()],
    );
    let out = cli(&server.endpoint(), &["list-virtual-clusters"]);
    assert_eq!(out.status.code(), Some(254), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AccessDeniedException"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("explicit deny"),
        "the deny statement decided: {}",
        stderr(&out)
    );
}

#[test]
fn a_rotated_certificate_is_served_without_a_restart() {
    let old_ca = Ca::new();
    let tls = start(&old_ca, &[]);
    let dir = tls._dir.path();
    let old_bundle = old_ca.write(&dir.join("old-ca.pem"));
    let ok = cli(
        &tls.https,
        &[
            "list-virtual-clusters",
            "--ca-bundle",
            old_bundle.to_str().unwrap(),
        ],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Rotate to a certificate of another CA: key first, then certificate,
    // as a careless operator might; the half-written pair is not served.
    let new_ca = Ca::new();
    let new_bundle = new_ca.write(&dir.join("new-ca.pem"));
    let staging = dir.join("staging");
    std::fs::create_dir(&staging).unwrap();
    new_ca.issue_into(&staging.join("tls.crt"), &staging.join("tls.key"));
    std::fs::copy(staging.join("tls.key"), &tls.key_file).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let during = cli(
        &tls.https,
        &[
            "list-virtual-clusters",
            "--ca-bundle",
            old_bundle.to_str().unwrap(),
        ],
    );
    assert!(
        during.status.success(),
        "the old pair is still served while the new one is half written: {}",
        stderr(&during)
    );
    std::fs::copy(staging.join("tls.crt"), &tls.cert_file).unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = cli(
            &tls.https,
            &[
                "list-virtual-clusters",
                "--ca-bundle",
                new_bundle.to_str().unwrap(),
            ],
        );
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let old = cli(
        &tls.https,
        &[
            "list-virtual-clusters",
            "--ca-bundle",
            old_bundle.to_str().unwrap(),
        ],
    );
    assert!(
        !old.status.success(),
        "the old certificate is no longer served"
    );
}

/// `GET /metrics` over TLS, signed, trusting `ca`.
fn scrape(tls: &TlsServer, ca: &Ca) -> (u16, String) {
    let url = tls.server.metrics_url.clone().expect("a metrics URL");
    assert!(url.starts_with("https://"), "{url}");
    let bundle = ca.write(&tls._dir.path().join("scrape-ca.pem"));
    signed_get(
        &url,
        (KEY, SECRET),
        "us-west-2",
        &["--cacert", bundle.to_str().unwrap()],
    )
}

#[test]
fn the_http_endpoint_speaks_tls_too() {
    let ca = Ca::new();
    let tls = start(&ca, &[]);
    let (status, body) = scrape(&tls, &ca);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sparkvc_store_writable 1"), "{body}");
    // Plaintext on the TLS port gets no HTTP answer.
    let url = tls.server.metrics_url.clone().unwrap();
    let (status, _) = http_get_status_lenient(&url.replace("https://", "http://"));
    assert_ne!(status, 200);
}

/// `http_get_status`, but a connection that is closed or answered with
/// garbage is status 0 instead of a panic.
fn http_get_status_lenient(url: &str) -> (u16, String) {
    std::panic::catch_unwind(|| http_get_status(url)).unwrap_or((0, String::new()))
}

#[test]
fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let ca = Ca::new();
    let client_ca = Ca::new();
    let probe = tempfile::tempdir().unwrap();
    let client_bundle = client_ca.write(&probe.path().join("clients.pem"));
    let tls = start(&ca, &["--tls-client-ca", client_bundle.to_str().unwrap()]);
    let dir = tls._dir.path();
    let bundle = ca.write(&dir.join("ca.pem"));
    let bundle = bundle.to_str().unwrap();
    let (good_cert, good_key) = (dir.join("client.crt"), dir.join("client.key"));
    client_ca.issue_into(&good_cert, &good_key);
    // A certificate from the server's CA is not one from the client CA.
    let (wrong_cert, wrong_key) = (dir.join("wrong.crt"), dir.join("wrong.key"));
    ca.issue_into(&wrong_cert, &wrong_key);

    let with = |cert: &Path, key: &Path| {
        cli(
            &tls.https,
            &[
                "list-virtual-clusters",
                "--ca-bundle",
                bundle,
                "--client-cert",
                cert.to_str().unwrap(),
                "--client-key",
                key.to_str().unwrap(),
            ],
        )
    };
    let ok = with(&good_cert, &good_key);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(json_of(&ok)["virtualClusters"], serde_json::json!([]));

    // TLS 1.3 ends the handshake before the server has checked the client,
    // so a refusal arrives as a closed connection on the first call.
    let refused = |out: &Output, why: &str| {
        assert_eq!(out.status.code(), Some(255), "{why}: {}", stderr(out));
        assert!(
            stderr(out).contains("Could not connect to the endpoint URL"),
            "{}",
            stderr(out)
        );
    };
    let none = cli(
        &tls.https,
        &["list-virtual-clusters", "--ca-bundle", bundle],
    );
    refused(&none, "a client without a certificate got in");
    refused(
        &with(&wrong_cert, &wrong_key),
        "a certificate from another CA got in",
    );

    // A key that does not belong to the certificate is named before any
    // connection, and its bytes are not echoed.
    let mismatched = with(&good_cert, &wrong_key);
    assert_eq!(
        mismatched.status.code(),
        Some(252),
        "{}",
        stderr(&mismatched)
    );
    assert!(
        stderr(&mismatched).contains("--client-key"),
        "{}",
        stderr(&mismatched)
    );
    let key_pem = std::fs::read_to_string(&wrong_key).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(!stderr(&mismatched).contains(key_body), "the key leaked");
    // One flag without the other is a usage error.
    let half = cli(
        &tls.https,
        &[
            "list-virtual-clusters",
            "--client-cert",
            good_cert.to_str().unwrap(),
        ],
    );
    assert_eq!(half.status.code(), Some(252), "{}", stderr(&half));
    assert!(stderr(&half).contains("--client-key"), "{}", stderr(&half));
}

#[test]
fn sighup_reloads_the_certificate_at_once() {
    let ca = Ca::new();
    let tls = start(&ca, &[]);
    let reloads = || {
        let (status, body) = scrape(&tls, &ca);
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find(|l| {
                l.starts_with("sparkvc_config_reloads_total")
                    && l.contains("tls_certificate")
                    && l.contains("\"ok\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(reloads(), 0);
    // The files are unchanged, so polling would never reload them; a SIGHUP
    // does (an operator's way to say "load it now").
    let status = Command::new("kill")
        .args(["-HUP", &tls.server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads() == 0 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_remote_listener_needs_tls_or_a_loud_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let identities = write_identities(dir.path());
    let out = Command::new(server_binary())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--account-id", "123456789012", "--identities"])
        .arg(&identities)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("must encrypt its traffic"), "{err}");
    assert!(err.contains("--tls-cert"), "{err}");
}
