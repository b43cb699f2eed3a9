//! Running a job-runner pod's spark-submit on this machine.
//!
//! kwok nodes run no containers, so on the local cluster the job-runner's
//! `spark-submit` has to run somewhere else to happen at all: here, with the
//! Apache Spark that `deploy/local/spark-env` installed and Java from the
//! machine. The spark-submit proof test and the `local-job-runner` program
//! (which plays the kubelet for job-runner pods in the demo) both do it the
//! same way:
//!
//! 1. the pod's ConfigMap volumes are written under a temporary root, at the
//!    paths where the container mounts them ([`materialize_mounts`]);
//! 2. the container's argv is made runnable outside the pod with as few
//!    substitutions as possible ([`outside_the_pod`]);
//! 3. spark-submit runs with a clean Kubernetes environment, so the service
//!    account token it is given is its only credential ([`run_spark_submit`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::repo_root;

/// argv[0] of the rendered job-runner: the image's Spark.
pub const IN_POD_SPARK_SUBMIT: &str = "/opt/spark/bin/spark-submit";
/// The in-cluster API server address the job-runner submits to.
pub const IN_POD_MASTER: &str = "k8s://https://kubernetes.default.svc:443";

/// `SPARK_HOME` of the Spark that `deploy/local/spark-env` installed, after
/// checking that spark-submit, its Kubernetes support and Java are there.
pub fn spark_home() -> Result<PathBuf> {
    let venv = std::env::var_os("SPARKVC_SPARK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("deploy/local/.spark-venv"));
    let home = venv.join("spark-home");
    let submit = home.join("bin/spark-submit");
    ensure!(
        submit.is_file(),
        "Apache Spark is not installed: {} is missing. Run `deploy/local/spark-env` \
         (deploy/test.sh does) to install the pinned pyspark into {}",
        submit.display(),
        venv.display()
    );
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .unwrap_or_else(|| PathBuf::from("java"));
    let java_ok = std::process::Command::new(&java)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    ensure!(
        java_ok,
        "spark-submit needs Java 17 (or 11): `{} -version` failed; install a JRE or set JAVA_HOME",
        java.display()
    );
    let kube_jar = std::fs::read_dir(home.join("jars"))?
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("spark-kubernetes_")
        });
    ensure!(
        kube_jar,
        "{} has no spark-kubernetes jar",
        home.join("jars").display()
    );
    Ok(home)
}

/// Writes the container's ConfigMap mounts under `root` (`root` + mountPath +
/// item path), so that an in-pod path `P` is `root/P` here. `config_maps`
/// holds the data of the ConfigMaps the pod's volumes name. Returns the mount
/// paths.
pub fn materialize_mounts(
    pod: &PodSpec,
    container: &Container,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    root: &Path,
) -> Result<Vec<String>> {
    let mut mount_paths = vec![];
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .with_context(|| format!("volume {} of mount {}", mount.name, mount.mount_path))?;
        let Some(cm) = volume.config_map.as_ref() else {
            continue;
        };
        let data = config_maps
            .get(&cm.name)
            .with_context(|| format!("the data of ConfigMap {}", cm.name))?;
        let dir = root.join(mount.mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir)?;
        for item in cm.items.iter().flatten() {
            let text = data
                .get(&item.key)
                .with_context(|| format!("ConfigMap {} key {}", cm.name, item.key))?;
            std::fs::write(dir.join(&item.path), text)?;
        }
        mount_paths.push(mount.mount_path.clone());
    }
    Ok(mount_paths)
}

/// The container's full argv: its `command` followed by its `args`.
pub fn container_argv(container: &Container) -> Vec<String> {
    let command = container.command.iter().flatten();
    command
        .chain(container.args.iter().flatten())
        .cloned()
        .collect()
}

/// Re-roots an in-pod path under `root` if it lies in one of the mounts.
fn reroot(value: &str, mounts: &[String], root: &Path) -> Option<String> {
    mounts
        .iter()
        .any(|m| value.starts_with(&format!("{m}/")))
        .then(|| {
            root.join(value.trim_start_matches('/'))
                .display()
                .to_string()
        })
}

/// What must differ when the job-runner's spark-submit runs on this machine.
#[derive(Debug, Clone)]
pub struct HostSubmit<'a> {
    /// Where [`materialize_mounts`] wrote the pod's files, and its result.
    pub root: &'a Path,
    pub mounts: &'a [String],
    /// The installed Spark's `bin/spark-submit`.
    pub spark_submit: &'a Path,
    /// The local API server, e.g. `https://127.0.0.1:26443`.
    pub api_server: &'a str,
    /// The API server's CA and a token of the pod's service account: what
    /// the pod would get from its service account mount.
    pub ca_file: &'a Path,
    pub token_file: &'a Path,
}

/// The rendered argv and spark-defaults.conf made runnable from this machine
/// instead of from the job-runner pod. Only these substitutions are made:
///
/// 1. argv[0] `/opt/spark/bin/spark-submit` (the image's Spark) → the
///    installed Spark's `bin/spark-submit`;
/// 2. `--master k8s://https://kubernetes.default.svc:443` (the in-cluster
///    service address, not resolvable here) → the local API server's URL;
/// 3. in-pod paths of the mounted ConfigMap files (`--properties-file`, the
///    `spark.kubernetes.*.podTemplateFile` values) → their copies under
///    `root` (see [`materialize_mounts`]);
/// 4. appended to the properties file: the submission credentials that a pod
///    gets from its service account mount
///    (`spark.kubernetes.authenticate.submission.{caCertFile,oauthTokenFile}`).
///
/// Everything else (deploy mode, name, the user's options, the entry point and
/// its arguments, every other property) is passed exactly as rendered.
pub fn outside_the_pod(argv: &[String], host: &HostSubmit<'_>) -> Result<Vec<String>> {
    let mut argv = argv.to_vec();
    ensure!(
        argv.first().map(String::as_str) == Some(IN_POD_SPARK_SUBMIT),
        "argv[0] is {:?}, not {IN_POD_SPARK_SUBMIT}",
        argv.first()
    );
    argv[0] = host.spark_submit.display().to_string(); // 1
    let master = argv
        .iter()
        .position(|a| a == "--master")
        .context("--master")?;
    ensure!(argv.get(master + 1).map(String::as_str) == Some(IN_POD_MASTER));
    argv[master + 1] = format!("k8s://{}", host.api_server.trim_end_matches('/')); // 2
    let props = argv
        .iter()
        .position(|a| a == "--properties-file")
        .context("--properties-file")?;
    let in_pod = argv.get(props + 1).context("--properties-file value")?;
    let props_path = reroot(in_pod, host.mounts, host.root)
        .with_context(|| format!("{in_pod} is not in a mounted ConfigMap"))?;
    argv[props + 1] = props_path.clone(); // 3

    let text = std::fs::read_to_string(&props_path)?;
    let mut out = String::new();
    for line in text.lines() {
        let rerooted = line
            .split_once(' ')
            .filter(|(k, _)| k.starts_with("spark.kubernetes.") && k.ends_with(".podTemplateFile"))
            .and_then(|(k, v)| reroot(v, host.mounts, host.root).map(|v| format!("{k} {v}"))); // 3
        out.push_str(rerooted.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out.push_str("# Added outside the pod: the credentials a pod gets from its service account.\n");
    out.push_str(&format!(
        "spark.kubernetes.authenticate.submission.caCertFile {}\n\
         spark.kubernetes.authenticate.submission.oauthTokenFile {}\n",
        host.ca_file.display(),
        host.token_file.display()
    )); // 4
    std::fs::write(&props_path, out)?;
    Ok(argv)
}

/// Runs `argv` with a clean Kubernetes environment: no kubeconfig (fabric8
/// would otherwise pick up the admin's client certificate from `KUBECONFIG` or
/// `~/.kube/config`), so the service account token is the only credential.
/// Output goes to `log`; the process is killed if this future is dropped or
/// `timeout` passes.
pub async fn run_spark_submit(
    argv: &[String],
    spark_home: &Path,
    work: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<ExitStatus> {
    let log_file = std::fs::File::create(log)?;
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(work)
        .env("SPARK_HOME", spark_home)
        .env("HOME", work)
        .env("KUBECONFIG", work.join("no-kubeconfig"))
        .env_remove("KUBERNETES_MASTER")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("SPARK_CONF_DIR")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", argv[0]))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            child.kill().await.ok();
            let out = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "spark-submit did not finish within {timeout:?}; its output:\n{}",
                tail(&out, 60)
            );
        }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_pod_paths_move_under_the_root_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let pod: PodSpec = serde_json::from_value(json!({
            "containers": [{"name": "job-runner", "volumeMounts": [
                {"name": "conf", "mountPath": "/etc/spark/conf"},
                {"name": "templates", "mountPath": "/etc/spark/pod-templates"}
            ]}],
            "volumes": [
                {"name": "conf", "configMap": {"name": "cm", "items": [{"key": "defaults", "path": "spark-defaults.conf"}]}},
                {"name": "templates", "configMap": {"name": "cm", "items": [{"key": "driver", "path": "driver.json"}]}}
            ]
        }))
        .unwrap();
        let data = BTreeMap::from([(
            "cm".to_string(),
            BTreeMap::from([
                (
                    "defaults".to_string(),
                    "spark.kubernetes.driver.podTemplateFile /etc/spark/pod-templates/driver.json\nspark.app.name x\n"
                        .to_string(),
                ),
                ("driver".to_string(), "{}".to_string()),
            ]),
        )]);
        let root = dir.path().join("pod");
        let mounts = materialize_mounts(&pod, &pod.containers[0], &data, &root).unwrap();
        assert_eq!(mounts, ["/etc/spark/conf", "/etc/spark/pod-templates"]);
        let argv: Vec<String> = [
            IN_POD_SPARK_SUBMIT,
            "--master",
            IN_POD_MASTER,
            "--properties-file",
            "/etc/spark/conf/spark-defaults.conf",
            "--conf",
            "spark.x=/etc/spark/conf/not-rerooted",
            "app.py",
        ]
        .map(String::from)
        .to_vec();
        let host = HostSubmit {
            root: &root,
            mounts: &mounts,
            spark_submit: Path::new("/spark/bin/spark-submit"),
            api_server: "https://127.0.0.1:1/",
            ca_file: Path::new("/ca.crt"),
            token_file: Path::new("/token"),
        };
        let out = outside_the_pod(&argv, &host).unwrap();
        let props = root.join("etc/spark/conf/spark-defaults.conf");
        assert_eq!(out[0], "/spark/bin/spark-submit");
        assert_eq!(out[2], "k8s://https://127.0.0.1:1");
        assert_eq!(out[4], props.display().to_string());
        assert_eq!(out[5..], argv[5..], "the user's options are untouched");
        let text = std::fs::read_to_string(props).unwrap();
        assert!(text.contains(&format!(
            "spark.kubernetes.driver.podTemplateFile {}",
            root.join("etc/spark/pod-templates/driver.json").display()
        )));
        assert!(text.contains("spark.app.name x\n"));
        assert!(text.contains("oauthTokenFile /token"));
    }
}
