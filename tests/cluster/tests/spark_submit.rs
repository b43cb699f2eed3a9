//! The real spark-submit proof (issue 4): the job-runner command sparkvc
//! renders, run by Apache Spark's own `spark-submit` (the pinned `pyspark`
//! installed by `deploy/local/spark-env`, Java from the machine) against the
//! local API server, creates the driver pod sparkvc meant: its name, labels,
//! service account, owner and merged pod template (with a user sidecar).
//!
//! The job-runner pod cannot run for real (kwok runs no containers), so the
//! test plays the job-runner: it materialises the ConfigMap files at the
//! paths the job-runner pod mounts them (under a temporary root), and runs
//! the rendered argv with only what must differ outside a pod substituted (see
//! [`outside_the_pod`]). It authenticates with a TokenRequest token of the
//! rendered `client` service account and nothing else, so the driver, its
//! service and config map are created under sparkvc's rendered RBAC (the
//! tenant Role bound by the rendered RoleBinding), not as the admin.
//!
//! Needs the local environment (`deploy/local/up`) and Spark
//! (`deploy/local/spark-env`); `deploy/test.sh` runs both. Fails, never
//! skips, when either is missing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
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
use sparkvc_cluster_tests::host_submit::{
    HostSubmit, IN_POD_MASTER, IN_POD_SPARK_SUBMIT, container_argv, materialize_mounts,
    outside_the_pod, run_spark_submit, spark_home, tail,
};
use sparkvc_cluster_tests::{default_run_dir, eventually, rand_u32, with_namespace};
use sparkvc_proto::v1::JobRun;
use sparkvc_render::Catalogue;
use sparkvc_render::tenancy::{self, TenancyConfig};
use sparkvc_render::{JobRunInputs, job_runner, names, render_job_run};

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
            attempt: 1,
            region: "us-east-1",
            event_log_dir: None,
            scheduling: &Default::default(),
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

        // The job-runner pod's identity: its service account.
        let client_sa = rendered
            .job_runner
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .context("the job-runner's serviceAccountName")?;
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
        let pod_spec = rendered
            .job_runner
            .spec
            .as_ref()
            .context("the job-runner has a pod spec")?;
        let container = pod_spec
            .containers
            .iter()
            .find(|c| c.name == job_runner::CONTAINER_NAME)
            .context("the pod has the job-runner container")?;
        ensure!(
            container_argv(container) == rendered.spark_submit_argv,
            "the container runs the rendered argv"
        );
        let config_maps = BTreeMap::from([(
            rendered
                .config_map
                .metadata
                .name
                .clone()
                .unwrap_or_default(),
            rendered.config_map.data.clone().unwrap_or_default(),
        )]);
        let mounts = materialize_mounts(pod_spec, container, &config_maps, &root)?;
        let token_file = work.path().join("token");
        std::fs::write(&token_file, token)?;
        let api_server = env.kube_config().await?.cluster_url.to_string();
        ensure!(
            job_runner::SPARK_SUBMIT == IN_POD_SPARK_SUBMIT && job_runner::MASTER == IN_POD_MASTER
        );
        let argv = outside_the_pod(
            &rendered.spark_submit_argv,
            &HostSubmit {
                root: &root,
                mounts: &mounts,
                spark_submit: &spark_home.join("bin/spark-submit"),
                api_server: &api_server,
                ca_file: &default_run_dir().join("pki/ca.crt"),
                token_file: &token_file,
            },
        )?;
        let submit = |log: &'static str| {
            let log = work.path().join(log);
            let (argv, spark_home, work) = (&argv, &spark_home, work.path());
            async move {
                let status = run_spark_submit(argv, spark_home, work, &log, SUBMIT_TIMEOUT).await?;
                anyhow::Ok((status, std::fs::read_to_string(&log).unwrap_or_default()))
            }
        };

        // Control: before the RoleBinding exists, the same submission is
        // refused, in the client service account's name. So the token is the
        // credential spark-submit uses, and the rendered binding is what
        // lets it create the driver.
        let (status, output) = submit("refused.log").await?;
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
        let (status, output) = submit("spark-submit.log").await?;
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
            .and_then(|d| d.get(job_runner::KEY_EXECUTOR_TEMPLATE))
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
