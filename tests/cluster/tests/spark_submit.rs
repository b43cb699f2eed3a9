//! The real spark-submit proof (issue 4): the job-runner command sparkvc
//! renders, run by Apache Spark's own `spark-submit` (the pinned `pyspark`
//! installed by `deploy/local/spark-env`, Java from the machine) against the
//! local API server, creates the driver pod sparkvc meant: its name, labels,
//! service account, owner and merged pod template (with a user sidecar).
//!
//! The job-runner pod cannot run for real (kwok runs no containers), so the
//! test plays the job-runner: it materialises the ConfigMap files at the paths
//! the Job mounts them (under a temporary root), and runs the rendered argv
//! with only what must differ outside a pod substituted (see
//! [`outside_the_pod`]). It authenticates with a TokenRequest token of the
//! rendered `client` service account and nothing else, so the driver, its
//! service and config map are created under sparkvc's rendered RBAC (the
//! tenant Role bound by the rendered RoleBinding), not as the admin.
//!
//! Needs the local environment (`deploy/local/up`) and Spark
//! (`deploy/local/spark-env`); `deploy/test.sh` runs both. Fails, never
//! skips, when either is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use sparkvc_cluster_tests::{default_run_dir, eventually, rand_u32, repo_root, with_namespace};
use sparkvc_proto::v1::JobRun;
use sparkvc_server::release::Catalogue;
use sparkvc_server::render::tenancy::{self, TenancyConfig};
use sparkvc_server::render::{JobRunInputs, RenderedJobRun, job, names, render_job_run};

const ACCOUNT: &str = "123456789012";
const RELEASE: &str = "emr-7.10.0-latest";
const VIRTUAL_CLUSTER: &str = "0000000000000000000000vc1";
/// How long spark-submit may take: JVM start, submission, and waiting
/// (`waitAppCompletion`) for kwok to run the driver to Succeeded.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(180);

/// The user's driver pod template: a sidecar, a pod-level setting, a label,
/// and the kwok annotation that makes the (simulated) driver finish in 2 s.
const USER_DRIVER_TEMPLATE: &str = "\
apiVersion: v1
kind: Pod
metadata:
  labels:
    team: a
  annotations:
    sparkvc.io/kwok-run-seconds: \"2\"
spec:
  securityContext:
    fsGroup: 65534
  containers:
  - name: spark-kubernetes-driver
    env:
    - name: TZ
      value: UTC
  - name: log-shipper
    image: docker.io/library/busybox:1.36
    command: [sh, -c, 'sleep infinity']
";

/// `SPARK_HOME` of the Spark that `deploy/local/spark-env` installed.
fn spark_home() -> Result<PathBuf> {
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

fn job_run(id: &str) -> Result<JobRun> {
    Ok(serde_json::from_value(json!({
        "id": id,
        "name": "spark-pi",
        "virtualClusterId": VIRTUAL_CLUSTER,
        "arn": format!("arn:aws:emr-containers:us-east-1:{ACCOUNT}:/virtualclusters/{VIRTUAL_CLUSTER}/jobruns/{id}"),
        "state": "PENDING",
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/team-a/SparkJobRole"),
        "releaseLabel": RELEASE,
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
            "entryPointArguments": ["10"],
            "sparkSubmitParameters": "--conf spark.executor.instances=1 --conf 'spark.driver.extraJavaOptions=-Dsparkvc.test=\"a b\"' --driver-memory 1g"
        }},
        "configurationOverrides": {"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {
                "spark.kubernetes.driver.podTemplateFile": "s3://bucket/templates/driver.yaml",
                "spark.executor.memory": "1g"
            }}
        ]}
    }))?)
}

/// The rendered job-runner's ConfigMap files, written under `root` at the
/// paths where the Job mounts them (`root` + mountPath + item path), so that
/// an in-pod path `P` is `root/P` here.
fn materialize_mounts(rendered: &RenderedJobRun, root: &Path) -> Result<Vec<String>> {
    let data = rendered.config_map.data.clone().unwrap_or_default();
    let pod = rendered
        .job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .context("the Job has a pod spec")?;
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == job::CONTAINER_NAME)
        .context("the Job has the job-runner container")?;
    let mut mount_paths = vec![];
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .with_context(|| format!("volume {} of mount {}", mount.name, mount.mount_path))?;
        let cm = volume
            .config_map
            .as_ref()
            .with_context(|| format!("volume {} is a ConfigMap volume", mount.name))?;
        ensure!(cm.name == *rendered.config_map.metadata.name.as_ref().unwrap());
        let dir = root.join(mount.mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir)?;
        for item in cm.items.iter().flatten() {
            let text = data
                .get(&item.key)
                .with_context(|| format!("ConfigMap key {}", item.key))?;
            std::fs::write(dir.join(&item.path), text)?;
        }
        mount_paths.push(mount.mount_path.clone());
    }
    Ok(mount_paths)
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
///    gets from its service account mount, i.e. the CA of the API server and
///    a token of the rendered `client` service account
///    (`spark.kubernetes.authenticate.submission.{caCertFile,oauthTokenFile}`).
///
/// Everything else (deploy mode, name, the user's options, the entry point and
/// its arguments, every other property) is passed exactly as rendered.
fn outside_the_pod(
    rendered: &RenderedJobRun,
    root: &Path,
    mounts: &[String],
    spark_submit: &Path,
    api_server: &str,
    ca_file: &Path,
    token_file: &Path,
) -> Result<Vec<String>> {
    let mut argv = rendered.spark_submit_argv.clone();
    ensure!(argv[0] == job::SPARK_SUBMIT, "argv[0] is {}", argv[0]);
    argv[0] = spark_submit.display().to_string(); // 1
    let master = argv
        .iter()
        .position(|a| a == "--master")
        .context("--master")?;
    ensure!(argv[master + 1] == job::MASTER);
    argv[master + 1] = format!("k8s://{api_server}"); // 2
    let props = argv
        .iter()
        .position(|a| a == "--properties-file")
        .context("--properties-file")?;
    let props_path = reroot(&argv[props + 1], mounts, root)
        .with_context(|| format!("{} is not in a mounted ConfigMap", argv[props + 1]))?;
    argv[props + 1] = props_path.clone(); // 3

    let text = std::fs::read_to_string(&props_path)?;
    let mut out = String::new();
    for line in text.lines() {
        let rerooted = line
            .split_once(' ')
            .filter(|(k, _)| k.starts_with("spark.kubernetes.") && k.ends_with(".podTemplateFile"))
            .and_then(|(k, v)| reroot(v, mounts, root).map(|v| format!("{k} {v}"))); // 3
        out.push_str(rerooted.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out.push_str(
        "# Added by the spark-submit test: the credentials a pod gets from its service account.\n",
    );
    out.push_str(&format!(
        "spark.kubernetes.authenticate.submission.caCertFile {}\n\
         spark.kubernetes.authenticate.submission.oauthTokenFile {}\n",
        ca_file.display(),
        token_file.display()
    )); // 4
    std::fs::write(&props_path, out)?;
    Ok(argv)
}

/// Runs `argv` with a clean Kubernetes environment: no kubeconfig (fabric8
/// would otherwise pick up the admin's client certificate from `KUBECONFIG` or
/// `~/.kube/config`), so the service account token is the only credential.
async fn run_spark_submit(
    argv: &[String],
    spark_home: &Path,
    work: &Path,
) -> Result<(std::process::ExitStatus, String)> {
    let log = work.join("spark-submit.log");
    let log_file = std::fs::File::create(&log)?;
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
    let status = match tokio::time::timeout(SUBMIT_TIMEOUT, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            child.kill().await.ok();
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "spark-submit did not finish within {SUBMIT_TIMEOUT:?}; its output:\n{}",
                tail(&out, 60)
            );
        }
    };
    Ok((status, std::fs::read_to_string(&log).unwrap_or_default()))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test]
async fn real_spark_submit_creates_the_driver_sparkvc_rendered() -> Result<()> {
    let spark_home = spark_home()?;
    with_namespace("spark-submit", |env, client, ns| async move {
        let started = Instant::now();
        let id = format!("0000000000{:09x}", rand_u32());
        let run = job_run(&id)?;
        let catalogue = Catalogue::builtin();
        let release = catalogue
            .resolve(RELEASE)
            .map_err(|e| anyhow!("release {RELEASE}: {e:?}"))?;

        // A real per-run owner, as the reconciler would have.
        let owner_cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("sparkvc-run-{id}")),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                },
            )
            .await?;
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner_cm.metadata.name.clone().unwrap(),
            uid: owner_cm.metadata.uid.clone().unwrap(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };

        let rendered = render_job_run(&JobRunInputs {
            run: &run,
            namespace: &ns,
            account_id: ACCOUNT,
            release,
            driver_template: Some(USER_DRIVER_TEMPLATE),
            executor_template: None,
            owner: Some(owner.clone()),
        })
        .map_err(|e| anyhow!("rendering the job run: {e}"))?;

        // sparkvc's RBAC, for real: the tenant Role, the role's service
        // accounts and the RoleBinding that grants the Role to them.
        let tenant = tenancy::render_tenant(&ns, VIRTUAL_CLUSTER, &TenancyConfig::default())
            .map_err(|e| anyhow!("rendering the tenant: {e}"))?;
        let pp = PostParams::default();
        Api::<Role>::namespaced(client.clone(), &ns)
            .create(&pp, &tenant.role)
            .await
            .context("creating the tenant Role")?;
        let sa_api = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
        for sa in &rendered.service_accounts {
            sa_api
                .create(&pp, sa)
                .await
                .context("creating a service account")?;
        }

        // The job-runner pod's identity: the rendered Job's service account.
        let client_sa = rendered
            .job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.service_account_name.clone())
            .context("the Job's serviceAccountName")?;
        let token = sa_api
            .create_token_request(
                &client_sa,
                &pp,
                &TokenRequest {
                    // No audiences: the API server's own, as for a pod's
                    // projected service account token.
                    spec: Some(TokenRequestSpec {
                        expiration_seconds: Some(600),
                        ..TokenRequestSpec::default()
                    }),
                    ..TokenRequest::default()
                },
            )
            .await
            .with_context(|| format!("TokenRequest for {client_sa}"))?
            .status
            .and_then(|s| s.token)
            .context("TokenRequest returned no token")?;

        let work = tempfile::tempdir()?;
        let root = work.path().join("pod");
        let mounts = materialize_mounts(&rendered, &root)?;
        let token_file = work.path().join("token");
        std::fs::write(&token_file, token)?;
        let api_server = env.kube_config().await?.cluster_url.to_string();
        let argv = outside_the_pod(
            &rendered,
            &root,
            &mounts,
            &spark_home.join("bin/spark-submit"),
            api_server.trim_end_matches('/'),
            &default_run_dir().join("pki/ca.crt"),
            &token_file,
        )?;

        // Control: before the RoleBinding exists, the same submission is
        // refused, in the client service account's name. So the token is the
        // credential spark-submit uses, and the rendered binding is what
        // lets it create the driver.
        let (status, output) = run_spark_submit(&argv, &spark_home, work.path()).await?;
        let refused_as = format!(
            "User \"system:serviceaccount:{ns}:{client_sa}\" cannot create resource \"pods\""
        );
        ensure!(
            !status.success() && output.contains(&refused_as),
            "without the RoleBinding spark-submit should be refused with {refused_as:?}; \
             it exited {status}:\n{}",
            tail(&output, 40)
        );
        ensure!(
            Api::<Pod>::namespaced(client.clone(), &ns)
                .get_opt(&names::driver_pod_name(&id))
                .await?
                .is_none(),
            "a driver pod exists after the refused submission"
        );

        Api::<RoleBinding>::namespaced(client.clone(), &ns)
            .create(&pp, &rendered.role_binding)
            .await
            .context("creating the RoleBinding")?;
        // The authorizer sees the binding through an informer: wait until it
        // answers yes, so that the submission below cannot race it.
        eventually(
            "RBAC to allow the client service account to create pods",
            Duration::from_secs(30),
            || async {
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(format!("system:serviceaccount:{ns}:{client_sa}")),
                        groups: Some(vec![
                            "system:serviceaccounts".into(),
                            format!("system:serviceaccounts:{ns}"),
                            "system:authenticated".into(),
                        ]),
                        resource_attributes: Some(ResourceAttributes {
                            namespace: Some(ns.clone()),
                            verb: Some("create".into()),
                            resource: Some("pods".into()),
                            ..ResourceAttributes::default()
                        }),
                        ..SubjectAccessReviewSpec::default()
                    },
                    ..SubjectAccessReview::default()
                };
                let out = Api::<SubjectAccessReview>::all(client.clone())
                    .create(&pp, &review)
                    .await?;
                Ok(out.status.is_some_and(|s| s.allowed).then_some(()))
            },
        )
        .await?;
        let submit_started = Instant::now();
        let (status, output) = run_spark_submit(&argv, &spark_home, work.path()).await?;
        let submit_took = submit_started.elapsed();
        ensure!(
            status.success(),
            "spark-submit failed ({status}); argv: {argv:?}\n{}",
            tail(&output, 80)
        );

        // The driver pod Spark created from sparkvc's submission.
        let driver_name = names::driver_pod_name(&id);
        ensure!(driver_name == format!("spark-{id}-driver"));
        let pod = Api::<Pod>::namespaced(client.clone(), &ns)
            .get_opt(&driver_name)
            .await?
            .with_context(|| {
                format!(
                    "no driver pod {driver_name} in {ns} after spark-submit; its output:\n{}",
                    tail(&output, 60)
                )
            })?;
        let meta = &pod.metadata;
        let labels = meta.labels.clone().unwrap_or_default();
        let want_labels = BTreeMap::from([
            (names::EMR_JOB_ID, id.as_str()),
            (names::EMR_VIRTUAL_CLUSTER_ID, VIRTUAL_CLUSTER),
            (names::JOB_RUN_ID, id.as_str()),
            (names::VIRTUAL_CLUSTER_ID, VIRTUAL_CLUSTER),
            (names::MANAGED_BY, names::MANAGED_BY_SPARKVC),
            (names::COMPONENT, names::COMPONENT_DRIVER),
            (names::SPARK_ROLE, "driver"),
            ("team", "a"),
        ]);
        for (k, v) in want_labels {
            ensure!(
                labels.get(k).map(String::as_str) == Some(v),
                "driver label {k}: want {v:?}, have {:?} (all: {labels:?})",
                labels.get(k)
            );
        }
        ensure!(
            labels.contains_key("spark-app-selector"),
            "Spark's own labels are there too: {labels:?}"
        );
        let annotations = meta.annotations.clone().unwrap_or_default();
        ensure!(
            annotations
                .get("sparkvc.io/kwok-run-seconds")
                .map(String::as_str)
                == Some("2"),
            "the user template's annotation: {annotations:?}"
        );
        ensure!(
            meta.owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == owner.uid && o.controller == Some(true)),
            "the driver is owned by the run's owner: {:?}",
            meta.owner_references
        );

        let spec = pod.spec.as_ref().context("driver spec")?;
        let sas = names::ServiceAccountNames::new(ACCOUNT, &run.execution_role_arn)
            .map_err(|e| anyhow!("{e}"))?;
        ensure!(
            spec.service_account_name.as_deref() == Some(sas.driver.as_str()),
            "driver serviceAccountName: want {}, have {:?}",
            sas.driver,
            spec.service_account_name
        );
        ensure!(spec.restart_policy.as_deref() == Some("Never"));
        ensure!(
            spec.security_context.as_ref().and_then(|s| s.fs_group) == Some(65534),
            "the user template's pod securityContext"
        );
        let container_names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        ensure!(
            container_names.len() == 2,
            "driver + one sidecar: {container_names:?}"
        );
        let driver = spec
            .containers
            .iter()
            .find(|c| c.name == "spark-kubernetes-driver")
            .with_context(|| {
                format!("Spark's container kept sparkvc's name: {container_names:?}")
            })?;
        ensure!(
            driver.image.as_deref() == Some(release.image.as_str()),
            "driver image: want {} (release {RELEASE}), have {:?}",
            release.image,
            driver.image
        );
        ensure!(
            driver
                .args
                .as_ref()
                .is_some_and(|a| a.first().map(String::as_str) == Some("driver")
                    && a.iter()
                        .any(|x| x == "local:///opt/spark/examples/src/main/python/pi.py")
                    && a.last().map(String::as_str) == Some("10")),
            "driver args: {:?}",
            driver.args
        );
        let sc = driver
            .security_context
            .as_ref()
            .context("driver securityContext")?;
        ensure!(
            sc.run_as_non_root == Some(true) && sc.allow_privilege_escalation == Some(false),
            "sparkvc's restricted securityContext: {sc:?}"
        );
        ensure!(
            driver
                .env
                .iter()
                .flatten()
                .any(|e| e.name == "TZ" && e.value.as_deref() == Some("UTC")),
            "the user template's env on the driver container"
        );
        ensure!(
            driver
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "sparkvc-user-logs" && m.mount_path == "/var/log/spark/user"),
            "sparkvc's user-log mount on the driver: {:?}",
            driver.volume_mounts
        );
        let memory = driver
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("memory"))
            .map(|q| q.0.clone());
        ensure!(
            // 1024Mi + max(0.4 × 1024Mi, 384Mi): Spark's overhead factor
            // for non-JVM (here Python) applications is 0.4.
            memory.as_deref() == Some("1433Mi"),
            "--driver-memory 1g (+409Mi overhead) reached Spark: {memory:?}"
        );
        let sidecar = spec
            .containers
            .iter()
            .find(|c| c.name == "log-shipper")
            .with_context(|| format!("the user's sidecar: {container_names:?}"))?;
        ensure!(sidecar.image.as_deref() == Some("docker.io/library/busybox:1.36"));
        ensure!(
            sidecar.command.as_deref()
                == Some(&["sh".to_string(), "-c".into(), "sleep infinity".into()][..])
        );
        let volumes: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        ensure!(
            volumes.contains(&"sparkvc-user-logs") && volumes.contains(&"spark-conf-volume-driver"),
            "sparkvc's and Spark's volumes: {volumes:?}"
        );

        // Spark ran the submission to the end: the driver service exists and
        // spark-submit saw kwok finish the driver (waitAppCompletion).
        let services = Api::<Service>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await?;
        ensure!(
            services.items.iter().any(|s| s
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.name == driver_name)),
            "the driver's Service, owned by the driver pod"
        );
        // What Spark hands the driver: the merged configuration (sparkvc's
        // executor settings included) and sparkvc's executor template, which
        // spark-submit read from the rendered file and stored in a ConfigMap.
        let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await?;
        let values = || {
            config_maps
                .items
                .iter()
                .flat_map(|cm| cm.data.iter().flatten())
        };
        let executor_template = rendered
            .config_map
            .data
            .as_ref()
            .and_then(|d| d.get(job::KEY_EXECUTOR_TEMPLATE))
            .context("the rendered executor template")?;
        ensure!(
            values().any(|(_, v)| v == executor_template),
            "no ConfigMap holds sparkvc's executor pod template for the driver"
        );
        let properties = values()
            .find(|(k, _)| k.as_str() == "spark.properties")
            .map(|(_, v)| v.clone())
            .context("Spark's driver ConfigMap with spark.properties")?;
        for want in [
            format!("spark.kubernetes.executor.label.sparkvc.io/job-run-id={id}"),
            format!(
                "spark.kubernetes.authenticate.executor.serviceAccountName={}",
                sas.executor
            ),
            format!(
                "spark.kubernetes.executor.podNamePrefix={}",
                names::executor_pod_prefix(&id)
            ),
            "spark.executor.instances=1".to_string(),
            "spark.executor.memory=1g".to_string(),
        ] {
            ensure!(
                properties.lines().any(|l| l == want),
                "the driver's spark.properties lacks {want:?}:\n{properties}"
            );
        }

        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        ensure!(
            phase.as_deref() == Some("Succeeded"),
            "driver phase after spark-submit returned: {phase:?}"
        );
        ensure!(
            output.contains("phase: Succeeded"),
            "spark-submit reported the driver's completion:\n{}",
            tail(&output, 40)
        );
        eprintln!(
            "spark-submit proof: driver {driver_name} in {ns}; spark-submit took {submit_took:?}, \
             the test {:?}; the end of spark-submit's output:\n{}",
            started.elapsed(),
            tail(&output, 25)
        );
        Ok(())
    })
    .await
}
