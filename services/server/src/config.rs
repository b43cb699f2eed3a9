//! Server configuration: defaults, then a TOML file, then environment
//! variables and flags (the last word wins).

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "sparkvc-server",
    version,
    about = "The sparkvc control plane: EMR-on-EKS-style virtual clusters over gRPC"
)]
pub struct Flags {
    /// TOML configuration file (see deploy/sparkvc-server.example.toml).
    #[arg(long, env = "SPARKVC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the gRPC API listens on (port 0 picks a free port).
    #[arg(long, env = "SPARKVC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of the server's HTTP endpoint: Prometheus metrics
    /// (`GET /metrics`) and the app-UI links (`/app-ui/…`); off if unset.
    #[arg(long, visible_alias = "http-listen", env = "SPARKVC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where job runs write Spark event logs (`spark.eventLog.dir`): the
    /// directory the History Server reads.
    #[arg(long, env = "SPARKVC_EVENT_LOG_DIR")]
    pub event_log_dir: Option<String>,
    /// The Spark History Server that app-UI links of ended runs lead to.
    #[arg(long, env = "SPARKVC_HISTORY_SERVER_URL")]
    pub history_server_url: Option<String>,
    /// How clients reach the HTTP endpoint, for app-UI links
    /// (default: http://<the --http-listen address>).
    #[arg(long, env = "SPARKVC_APP_UI_URL")]
    pub app_ui_url: Option<String>,
    /// Seconds a finished job run's pods are kept before its Job is deleted
    /// (the run's record stays). Default 3600.
    #[arg(long, env = "SPARKVC_FINISHED_JOB_TTL")]
    pub finished_job_ttl: Option<u64>,
    /// Directory of the embedded store; created if missing.
    #[arg(long, env = "SPARKVC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// AWS partition used in ARNs.
    #[arg(long, env = "SPARKVC_PARTITION")]
    pub partition: Option<String>,
    /// Region used in ARNs.
    #[arg(long, env = "SPARKVC_REGION")]
    pub region: Option<String>,
    /// 12-digit account ID used in ARNs.
    #[arg(long, env = "SPARKVC_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Release catalogue (TOML); the built-in deploy/releases.toml if unset.
    #[arg(long, env = "SPARKVC_RELEASE_CATALOGUE")]
    pub release_catalogue: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "SPARKVC_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// A Kubernetes cluster to run job runs on, as ID=CONTEXT (a context of
    /// --kubeconfig) or ID=in-cluster; repeat for several. Replaces the
    /// clusters of the config file.
    #[arg(long = "cluster", env = "SPARKVC_CLUSTERS", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// A directory on this server that job runs may name local pod
    /// templates from (`spark.kubernetes.*.podTemplateFile`); repeat for
    /// several. None by default: templates then come from S3 only, read with
    /// each run's execution role. Replaces the config file's list.
    #[arg(
        long = "pod-template-dir",
        env = "SPARKVC_POD_TEMPLATE_DIRS",
        value_delimiter = ','
    )]
    pub pod_template_dirs: Vec<PathBuf>,
    /// Kubeconfig for the --cluster contexts (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "SPARKVC_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Identity store (TOML): principals and their access keys. Every call
    /// must then be signed (SigV4). Without it the server only listens on
    /// loopback, as a single-user development server.
    #[arg(long, env = "SPARKVC_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// Audit log: a file path (rotated by size), `stderr`, or `off`.
    /// Default: `<data-dir>/audit.log` when identities are configured, else
    /// off.
    #[arg(long, env = "SPARKVC_AUDIT_LOG")]
    pub audit_log: Option<String>,
    /// DANGER: serve a non-loopback address without authentication; anyone
    /// who reaches the port acts as the development caller on every tenant.
    #[arg(long, env = "SPARKVC_INSECURE_ALLOW_UNAUTHENTICATED_REMOTE")]
    pub insecure_allow_unauthenticated_remote: bool,
    /// PEM certificate chain for TLS on both listeners (with --tls-key);
    /// re-read when the file changes.
    #[arg(long, env = "SPARKVC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SPARKVC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual
    /// TLS).
    #[arg(long, env = "SPARKVC_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// DANGER: serve a non-loopback address without TLS; requests,
    /// responses, app-UI links and metrics cross the network readable.
    #[arg(long, env = "SPARKVC_INSECURE_ALLOW_PLAINTEXT_REMOTE")]
    pub insecure_allow_plaintext_remote: bool,
    /// Hold this `coordination.k8s.io` Lease (`NAMESPACE/NAME`) in every
    /// cluster, and act on a cluster only while holding it (one writer).
    #[arg(long, env = "SPARKVC_LEASE")]
    pub lease: Option<String>,
    /// Seconds a Lease renewal counts (default 15).
    #[arg(long, env = "SPARKVC_LEASE_DURATION_SECONDS")]
    pub lease_duration_seconds: Option<u64>,
    /// Instead of serving: an offline maintenance command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Offline maintenance commands (`sparkvc-server <command>`).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Restores a backup (taken with `GET /backup` on the HTTP endpoint)
    /// into a data directory that has no store yet; then start the server
    /// on it. The server must not be running on that directory.
    Restore {
        /// The backup file; `-` reads standard input, e.g.
        /// `aws s3 cp s3://bucket/sparkvc.backup - | sparkvc-server restore --from - ...`.
        #[arg(long)]
        from: PathBuf,
        /// The data directory to restore into (the store goes to
        /// `<data-dir>/store`, which must not exist or be empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// A Kubernetes cluster that virtual clusters can be created on; its `id` is
/// what `containerProvider.id` names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub id: String,
    /// Kubeconfig file; `$KUBECONFIG` or `~/.kube/config` if unset.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; its current context if unset.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service account instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
    /// Node selector and tolerations for every pod of every run on this
    /// cluster (`[cluster.job_pods]`).
    #[serde(default)]
    pub job_pods: crate::render::scheduling::JobPodScheduling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings the server runs with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `GET /metrics` is served; no metrics endpoint if unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a finished run's pods are kept before its Job is deleted.
    pub finished_job_ttl_seconds: u64,
    pub data_dir: PathBuf,
    pub partition: String,
    pub region: String,
    pub account_id: String,
    pub release_catalogue: Option<PathBuf>,
    pub log_format: LogFormat,
    /// The development server's one caller (no identities configured):
    /// reported as `createdBy`; defaults to the account's root ARN.
    pub caller_arn: Option<String>,
    /// The identity store; none means a loopback development server.
    pub identities_file: Option<PathBuf>,
    /// Serve a non-loopback address without authentication (see the flag).
    pub insecure_allow_unauthenticated_remote: bool,
    /// TLS on both listeners (`[tls]`); none means plaintext, which only
    /// loopback addresses get unless told otherwise.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Serve a non-loopback address without TLS (see the flag).
    pub insecure_allow_plaintext_remote: bool,
    /// `stderr`, `off`, or a file (see the flag).
    pub audit_log: Option<String>,
    /// Size at which the audit log file is rotated.
    pub audit_log_max_bytes: u64,
    /// Rotated audit log files kept.
    pub audit_log_keep: u32,
    /// Where job runs run; none means API-only.
    #[serde(rename = "cluster")]
    pub clusters: Vec<ClusterConfig>,
    /// What each virtual cluster's namespace gets besides the Spark Role
    /// and NetworkPolicy (allowed ingress namespaces, quota, limits).
    pub tenancy: crate::render::tenancy::TenancyConfig,
    /// Persistent app UI: event logs, History Server, links.
    pub app_ui: AppUiConfig,
    /// Absolute directories local pod templates may come from; none means
    /// S3 only (read as each run's execution role).
    pub pod_template_dirs: Vec<PathBuf>,
    /// One writer per cluster (`[lease]`); none means this instance acts
    /// on its clusters unconditionally.
    pub lease: Option<LeaseConfig>,
}

/// The `coordination.k8s.io` Lease held in every cluster (`[lease]`); see
/// `cluster::lease`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// Its namespace (the Helm chart uses the release's).
    pub namespace: String,
    /// Its name: the same for every instance of one sparkvc.
    pub name: String,
    /// Seconds a renewal counts; failover takes about this long.
    #[serde(default = "default_lease_seconds")]
    pub duration_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    15
}

/// Settings of the persistent app UI (`[app_ui]` in the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppUiConfig {
    /// `spark.eventLog.dir` of every run that keeps its app UI; the
    /// History Server's `spark.history.fs.logDirectory`.
    pub event_log_dir: Option<String>,
    /// The History Server ended runs' links lead to.
    pub history_server_url: Option<String>,
    /// The base URL of the HTTP endpoint as clients see it.
    pub public_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: None,
            finished_job_ttl_seconds: 3600,
            data_dir: PathBuf::from("sparkvc-data"),
            partition: "aws".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            release_catalogue: None,
            log_format: LogFormat::Text,
            caller_arn: None,
            identities_file: None,
            insecure_allow_unauthenticated_remote: false,
            tls: None,
            insecure_allow_plaintext_remote: false,
            audit_log: None,
            audit_log_max_bytes: 100 * 1024 * 1024,
            audit_log_keep: 5,
            clusters: Vec::new(),
            tenancy: Default::default(),
            app_ui: AppUiConfig::default(),
            pod_template_dirs: Vec::new(),
            lease: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid setting {setting}: {rule}")]
    Invalid { setting: &'static str, rule: String },
}

impl Config {
    pub fn load(flags: &Flags) -> Result<Self, ConfigError> {
        let mut config = match &flags.config {
            None => Self::default(),
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: shown,
                    source,
                })?
            }
        };
        if let Some(v) = flags.listen {
            config.listen = v;
        }
        if let Some(v) = flags.metrics_listen {
            config.metrics_listen = Some(v);
        }
        if let Some(v) = &flags.event_log_dir {
            config.app_ui.event_log_dir = Some(v.clone());
        }
        if let Some(v) = &flags.history_server_url {
            config.app_ui.history_server_url = Some(v.clone());
        }
        if let Some(v) = &flags.app_ui_url {
            config.app_ui.public_url = Some(v.clone());
        }
        // Links and History Server paths are joined with a `/`, whether the
        // URL came from a flag or the file.
        for url in [
            &mut config.app_ui.history_server_url,
            &mut config.app_ui.public_url,
        ]
        .into_iter()
        .flatten()
        {
            url.truncate(url.trim_end_matches('/').len());
        }
        if let Some(v) = flags.finished_job_ttl {
            config.finished_job_ttl_seconds = v;
        }
        if let Some(v) = &flags.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &flags.partition {
            config.partition = v.clone();
        }
        if let Some(v) = &flags.region {
            config.region = v.clone();
        }
        if let Some(v) = &flags.account_id {
            config.account_id = v.clone();
        }
        if let Some(v) = &flags.release_catalogue {
            config.release_catalogue = Some(v.clone());
        }
        if let Some(v) = flags.log_format {
            config.log_format = v;
        }
        if let Some(v) = &flags.identities {
            config.identities_file = Some(v.clone());
        }
        if let Some(v) = &flags.audit_log {
            config.audit_log = Some(v.clone());
        }
        if flags.insecure_allow_unauthenticated_remote {
            config.insecure_allow_unauthenticated_remote = true;
        }
        if let (Some(cert_file), Some(key_file)) = (&flags.tls_cert, &flags.tls_key) {
            config.tls = Some(crate::tls::TlsSettings {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
                client_ca_file: flags.tls_client_ca.clone(),
            });
        }
        if flags.insecure_allow_plaintext_remote {
            config.insecure_allow_plaintext_remote = true;
        }
        if !flags.pod_template_dirs.is_empty() {
            config.pod_template_dirs = flags.pod_template_dirs.clone();
        }
        if let Some(spec) = &flags.lease {
            let (namespace, name) = spec.split_once('/').ok_or_else(|| ConfigError::Invalid {
                setting: "lease",
                rule: format!("{spec:?} is not NAMESPACE/NAME"),
            })?;
            config.lease = Some(LeaseConfig {
                namespace: namespace.into(),
                name: name.into(),
                duration_seconds: default_lease_seconds(),
            });
        }
        if let (Some(seconds), Some(lease)) = (flags.lease_duration_seconds, config.lease.as_mut())
        {
            lease.duration_seconds = seconds;
        }
        if !flags.clusters.is_empty() {
            config.clusters = flags
                .clusters
                .iter()
                .map(|spec| parse_cluster_flag(spec, flags.kubeconfig.as_ref()))
                .collect::<Result<_, _>>()?;
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting, rule: &str| {
            Err(ConfigError::Invalid {
                setting,
                rule: rule.into(),
            })
        };
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("account_id", "must be 12 digits, e.g. 123456789012");
        }
        let partition_ok = self.partition.starts_with("aws")
            && self
                .partition
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !partition_ok {
            return invalid(
                "partition",
                "must be an AWS partition name such as aws, aws-cn or aws-us-gov",
            );
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return invalid("region", "must be a region name such as us-east-1");
        }
        let unauthenticated = self.identities_file.is_none();
        if unauthenticated
            && !self.listen.ip().is_loopback()
            && !self.insecure_allow_unauthenticated_remote
        {
            return Err(ConfigError::Invalid {
                setting: "listen",
                rule: format!(
                    "{} is not a loopback address, and a server other machines can reach must authenticate its callers: set identities_file (--identities), or listen on 127.0.0.1; --insecure-allow-unauthenticated-remote serves every caller unauthenticated",
                    self.listen
                ),
            });
        }
        let remote = std::iter::once(("listen", self.listen))
            .chain(self.metrics_listen.map(|a| ("metrics_listen", a)))
            .find(|(_, addr)| !addr.ip().is_loopback());
        if let Some((setting, addr)) = remote
            && self.tls.is_none()
            && !self.insecure_allow_plaintext_remote
        {
            return Err(ConfigError::Invalid {
                setting,
                rule: format!(
                    "{addr} is not a loopback address, and a server other machines can reach must encrypt its traffic: set [tls] cert_file and key_file (--tls-cert, --tls-key), or listen on 127.0.0.1; --insecure-allow-plaintext-remote serves it in plaintext"
                ),
            });
        }
        if let Some(lease) = &self.lease {
            let dns_label = |v: &str| {
                !v.is_empty()
                    && v.len() <= 63
                    && v.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    })
            };
            if !dns_label(&lease.namespace) || !dns_label(&lease.name) {
                return invalid(
                    "lease",
                    "namespace and name must be Kubernetes names (lower-case letters, digits, '-' and '.')",
                );
            }
            if !(3..=3600).contains(&lease.duration_seconds) {
                return invalid("lease.duration_seconds", "must be from 3 to 3600");
            }
        }
        for cluster in &self.clusters {
            cluster
                .job_pods
                .check()
                .map_err(|rule| ConfigError::Invalid {
                    setting: "cluster",
                    rule: format!("cluster {}: {rule}", cluster.id),
                })?;
        }
        if let Some(dir) = self.pod_template_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(ConfigError::Invalid {
                setting: "pod_template_dirs",
                rule: format!("{} is not an absolute path", dir.display()),
            });
        }
        Ok(())
    }

    pub fn caller_arn(&self) -> String {
        self.caller_arn
            .clone()
            .unwrap_or_else(|| format!("arn:{}:iam::{}:root", self.partition, self.account_id))
    }
}

/// `ID=CONTEXT`, `ID=in-cluster`, or `ID` (the kubeconfig's current context).
fn parse_cluster_flag(
    spec: &str,
    kubeconfig: Option<&PathBuf>,
) -> Result<ClusterConfig, ConfigError> {
    let (id, context) = match spec.split_once('=') {
        Some((id, context)) => (id.trim(), Some(context.trim())),
        None => (spec.trim(), None),
    };
    if id.is_empty() {
        return Err(ConfigError::Invalid {
            setting: "cluster",
            rule: format!("{spec:?} must be ID=CONTEXT or ID=in-cluster"),
        });
    }
    let in_cluster = context == Some("in-cluster");
    Ok(ClusterConfig {
        id: id.to_string(),
        kubeconfig: kubeconfig.cloned(),
        context: context.filter(|_| !in_cluster).map(str::to_string),
        in_cluster,
        job_pods: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "region = \"eu-west-1\"\naccount_id = \"123456789012\"\n",
        )
        .unwrap();
        let flags = Flags::parse_from([
            "sparkvc-server",
            "--config",
            path.to_str().unwrap(),
            "--region",
            "us-west-2",
        ]);
        let config = Config::load(&flags).unwrap();
        assert_eq!(config.region, "us-west-2");
        assert_eq!(config.account_id, "123456789012");
        assert_eq!(config.listen, Config::default().listen);
    }

    #[test]
    fn the_lease_comes_from_the_file_or_the_flags_and_is_checked() {
        let load = |args: &[&str]| {
            let mut argv = vec!["sparkvc-server"];
            argv.extend_from_slice(args);
            Config::load(&Flags::parse_from(argv))
        };
        assert_eq!(load(&[]).unwrap().lease, None);
        let lease = load(&[
            "--lease",
            "sparkvc/one-writer",
            "--lease-duration-seconds",
            "9",
        ])
        .unwrap()
        .lease
        .unwrap();
        assert_eq!(
            lease,
            LeaseConfig {
                namespace: "sparkvc".into(),
                name: "one-writer".into(),
                duration_seconds: 9
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "[lease]\nnamespace = \"ops\"\nname = \"sparkvc\"\n").unwrap();
        let from_file = load(&["--config", path.to_str().unwrap()])
            .unwrap()
            .lease
            .unwrap();
        assert_eq!(from_file.duration_seconds, 15);
        for (args, says) in [
            (
                &["--lease", "no-slash"][..],
                "\"no-slash\" is not NAMESPACE/NAME",
            ),
            (&["--lease", "Ops/x"][..], "must be Kubernetes names"),
            (
                &["--lease", "ops/x", "--lease-duration-seconds", "1"][..],
                "lease.duration_seconds: must be from 3 to 3600",
            ),
        ] {
            let err = load(args).unwrap_err().to_string();
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_reachable_server_must_authenticate_unless_told_loudly() {
        let load = |args: &[&str]| {
            let mut argv = vec!["sparkvc-server"];
            argv.extend_from_slice(args);
            Config::load(&Flags::parse_from(argv))
        };
        let err = load(&["--listen", "0.0.0.0:50051"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid setting listen: 0.0.0.0:50051 is not a loopback address"),
            "{err}"
        );
        assert!(load(&["--listen", "127.0.0.1:0"]).is_ok());
        assert!(load(&["--listen", "[::1]:0"]).is_ok());
        let tls = ["--tls-cert", "/tls.crt", "--tls-key", "/tls.key"];
        let remote = |more: &[&str]| {
            let mut args = vec!["--listen", "0.0.0.0:0"];
            args.extend_from_slice(more);
            load(&args)
        };
        assert!(remote(&[&["--identities", "/ids.toml"][..], &tls].concat()).is_ok());
        assert!(remote(&[&["--insecure-allow-unauthenticated-remote"][..], &tls].concat()).is_ok());
        // Authenticated but in plaintext: refused unless told, loudly.
        let err = remote(&["--identities", "/ids.toml"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid setting listen: 0.0.0.0:0 is not a loopback address, and a server other machines can reach must encrypt"),
            "{err}"
        );
        assert!(
            remote(&[
                "--identities",
                "/ids.toml",
                "--insecure-allow-plaintext-remote"
            ])
            .is_ok()
        );
        // The HTTP endpoint (app-UI links, metrics) follows the same rule.
        let err = load(&["--metrics-listen", "0.0.0.0:0"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid setting metrics_listen"), "{err}");
        assert!(load(&[&["--metrics-listen", "0.0.0.0:0"][..], &tls].concat()).is_ok());
    }

    #[test]
    fn tls_comes_from_the_file_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[tls]\ncert_file = \"/a.crt\"\nkey_file = \"/a.key\"\nclient_ca_file = \"/ca.pem\"\n",
        )
        .unwrap();
        let flags = Flags::parse_from(["sparkvc-server", "--config", path.to_str().unwrap()]);
        let tls = Config::load(&flags).unwrap().tls.unwrap();
        assert_eq!(tls.client_ca_file.as_deref(), Some(Path::new("/ca.pem")));
        let flags = Flags::try_parse_from(["sparkvc-server", "--tls-cert", "/a.crt"]);
        assert!(flags.is_err(), "a certificate without its key");
    }

    #[test]
    fn clusters_come_from_flags_or_the_file() {
        let flags = Flags::parse_from([
            "sparkvc-server",
            "--cluster",
            "local=kind-a,prod=in-cluster",
            "--kubeconfig",
            "/k",
        ]);
        let config = Config::load(&flags).unwrap();
        assert_eq!(
            config.clusters[0],
            ClusterConfig {
                id: "local".into(),
                kubeconfig: Some("/k".into()),
                context: Some("kind-a".into()),
                in_cluster: false,
                job_pods: Default::default(),
            }
        );
        assert!(config.clusters[1].in_cluster);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[[cluster]]\nid = \"east\"\ncontext = \"eks-east\"\n",
        )
        .unwrap();
        let flags = Flags::parse_from(["sparkvc-server", "--config", path.to_str().unwrap()]);
        assert_eq!(
            Config::load(&flags).unwrap().clusters[0].context.as_deref(),
            Some("eks-east")
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let flags = Flags::parse_from(["sparkvc-server", "--account-id", "42"]);
        let err = Config::load(&flags).unwrap_err().to_string();
        assert!(err.contains("account_id"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "regoin = \"x\"\n").unwrap();
        let flags = Flags::parse_from(["sparkvc-server", "--config", path.to_str().unwrap()]);
        let err = Config::load(&flags).unwrap_err().to_string();
        assert!(err.contains("regoin"), "{err}");
    }

    #[test]
    fn app_ui_urls_lose_a_trailing_slash_from_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[app_ui]\nhistory_server_url = \"http://hs:18080/\"\npublic_url = \"https://sparkvc.example.com//\"\n",
        )
        .unwrap();
        let flags = Flags::parse_from(["sparkvc-server", "--config", path.to_str().unwrap()]);
        let app_ui = Config::load(&flags).unwrap().app_ui;
        assert_eq!(
            app_ui.history_server_url.as_deref(),
            Some("http://hs:18080")
        );
        assert_eq!(
            app_ui.public_url.as_deref(),
            Some("https://sparkvc.example.com")
        );
    }

    #[test]
    fn a_clusters_job_pod_placement_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(&Flags::parse_from([
                "sparkvc-server",
                "--config",
                path.to_str().unwrap(),
            ]))
        };
        let config = load(
            r#"
[[cluster]]
id = "local"
[cluster.job_pods]
node_selector = { "sparkvc.io/node" = "real" }
tolerations = [{ key = "sparkvc.io/real-node", operator = "Exists", effect = "NoSchedule" }]
"#,
        )
        .unwrap();
        let job_pods = &config.clusters[0].job_pods;
        assert_eq!(job_pods.node_selector["sparkvc.io/node"], "real");
        assert_eq!(
            job_pods.tolerations[0].effect.as_deref(),
            Some("NoSchedule")
        );
        let err = load(
            "[[cluster]]\nid = \"local\"\n[cluster.job_pods]\ntolerations = [{ key = \"k\", effect = \"Sometimes\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid setting cluster: cluster local: job_pods.tolerations[0].effect: \"Sometimes\" is not NoSchedule, PreferNoSchedule or NoExecute"
        );
    }
}
