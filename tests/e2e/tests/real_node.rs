//! Real Spark through sparkvc on the local environment's real node
//! (`deploy/local/up` as root): the job-runner container runs spark-submit,
//! which creates the driver pod, which creates its executor pods; every
//! container really runs, from the Spark image built by
//! `deploy/local/node/images` (release label [`REAL_NODE_RELEASE`]).
//!
//! The server places job pods on the real node with `[cluster.job_pods]`, as
//! `make demo` does. The node has two CPUs, so the runs ask for small CPU
//! requests and the tests take the node one at a time.
//!
//! Log shipping is not exercised here: fluentd cannot be installed on these
//! machines (no package of it is reachable), so these runs name no log
//! destination and their pods have no log sidecar.

// In a module of its own, so that the tests' names (`real_node::…`) let
// deploy/test.sh leave them out, visibly, where there is no real node.
mod real_node {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::{Api, ListParams, LogParams, PostParams};
    use serde_json::json;
    use sparkvc_e2e::*;
    use sparkvc_proto::v1 as pb;
    use std::path::Path;
    use std::time::Duration;

    /// One test at a time on the node: two runs side by side would not fit its
    /// two CPUs, and one would wait for the other's executors.
    static NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// How long a run may take from StartJobRun to its end: SparkPi takes about
    /// 30 s here; JVM starts are slow when the machine is busy.
    const RUN_TIMEOUT: Duration = Duration::from_secs(240);

    /// The job-runner (500m), the driver and two executors (250m each) fit the
    /// node; half a GiB each for the JVMs.
    const SMALL: &str = "--conf spark.executor.instances=2 \
    --conf spark.kubernetes.driver.request.cores=250m \
    --conf spark.kubernetes.executor.request.cores=250m \
    --conf spark.driver.memory=512m --conf spark.executor.memory=512m";

    const SPARK_PI_JAR: &str = "local:///opt/spark/examples/jars/sparkvc-examples.jar";
    const PI_PY: &str = "local:///opt/spark/examples/src/main/python/pi.py";

    fn request(
        s: &ClusterSetup,
        name: &str,
        entry_point: &str,
        arguments: &[&str],
        parameters: &str,
        spark_defaults: &[(&str, &str)],
    ) -> pb::StartJobRunRequest {
        let overrides = (!spark_defaults.is_empty()).then(|| pb::ConfigurationOverrides {
            application_configuration: vec![pb::Configuration {
                classification: "spark-defaults".into(),
                properties: spark_defaults
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                configurations: vec![],
            }],
            monitoring_configuration: None,
        });
        pb::StartJobRunRequest {
            name: name.into(),
            virtual_cluster_id: s.vc.clone(),
            client_token: unique("token"),
            execution_role_arn: ROLE_ARN.into(),
            release_label: REAL_NODE_RELEASE.into(),
            job_driver: Some(pb::JobDriver {
                spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
                    entry_point: entry_point.into(),
                    entry_point_arguments: arguments.iter().map(|a| a.to_string()).collect(),
                    spark_submit_parameters: format!("{SMALL} {parameters}"),
                }),
                spark_sql_job_driver: None,
            }),
            configuration_overrides: overrides,
            ..Default::default()
        }
    }

    async fn start(s: &mut ClusterSetup, request: pb::StartJobRunRequest) -> String {
        s.client
            .start_job_run(request)
            .await
            .expect("StartJobRun")
            .into_inner()
            .id
    }

    /// Waits for the run to end and returns it.
    async fn ended(s: &mut ClusterSetup, id: &str) -> pb::JobRun {
        wait_or_diagnose(s, id, "a terminal state", |run| is_terminal(&run.state)).await
    }

    /// Waits until the run is in `state` and returns it.
    async fn reached(s: &mut ClusterSetup, id: &str, state: &str) -> pb::JobRun {
        wait_or_diagnose(s, id, state, |run| run.state == state).await
    }

    /// Polls the run until `done` holds. After [`RUN_TIMEOUT`] it fails with
    /// the node's and the namespace's state: a run that never gets anywhere
    /// on a real node is nearly always a pod that cannot start, and the
    /// failure message is often all a CI log keeps.
    async fn wait_or_diagnose(
        s: &mut ClusterSetup,
        id: &str,
        what: &str,
        done: impl Fn(&pb::JobRun) -> bool,
    ) -> pb::JobRun {
        let vc = s.vc.clone();
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        loop {
            let run = describe_run(&mut s.client, &vc, id).await;
            if done(&run) {
                return run;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "job run {id} never reached {what} within {RUN_TIMEOUT:?}; it is {} ({})\n{}",
                    run.state,
                    run.state_details,
                    diagnosis(&s.kube, &s.ns.name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The real node (conditions, taints, room), the namespace's pods (phase,
    /// unmet conditions, containers' states), its latest events, and the end
    /// of the kubelet's and containerd's logs: enough to tell a pod that was
    /// never scheduled from one whose containers cannot start.
    async fn diagnosis(kube: &kube::Client, namespace: &str) -> String {
        use k8s_openapi::api::core::v1::{Event, Node};
        use std::fmt::Write;
        let mut out = String::from("--- diagnosis ---\n");
        let node_name = std::env::var("SPARKVC_REAL_NODE_NAME").unwrap_or_default();
        match Api::<Node>::all(kube.clone()).get(&node_name).await {
            Ok(node) => {
                let status = node.status.unwrap_or_default();
                for c in status.conditions.unwrap_or_default() {
                    let _ = writeln!(
                        out,
                        "node {node_name} {}={} {} {}",
                        c.type_,
                        c.status,
                        c.reason.unwrap_or_default(),
                        c.message.unwrap_or_default()
                    );
                }
                let taints: Vec<String> = node
                    .spec
                    .and_then(|s| s.taints)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| format!("{}={}:{}", t.key, t.value.unwrap_or_default(), t.effect))
                    .collect();
                let room: Vec<String> = status
                    .allocatable
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory" | "pods"))
                    .map(|(k, v)| format!("{k}={}", v.0))
                    .collect();
                let _ = writeln!(out, "node taints {taints:?}, allocatable {room:?}");
            }
            Err(e) => {
                let _ = writeln!(out, "node {node_name:?}: {e}");
            }
        }
        match Api::<Pod>::namespaced(kube.clone(), namespace)
            .list(&ListParams::default())
            .await
        {
            Ok(pods) => {
                for pod in pods.items {
                    let name = pod.metadata.name.unwrap_or_default();
                    let on = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
                    let status = pod.status.unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "pod {name} on {on:?}: {}",
                        status.phase.unwrap_or_default()
                    );
                    for c in status.conditions.unwrap_or_default() {
                        if c.status != "True" {
                            let _ = writeln!(
                                out,
                                "  {} {} {}",
                                c.type_,
                                c.reason.unwrap_or_default(),
                                c.message.unwrap_or_default()
                            );
                        }
                    }
                    let containers = status
                        .init_container_statuses
                        .unwrap_or_default()
                        .into_iter()
                        .chain(status.container_statuses.unwrap_or_default());
                    for c in containers {
                        let state = c.state.unwrap_or_default();
                        let said = if let Some(w) = state.waiting {
                            format!(
                                "waiting {} {}",
                                w.reason.unwrap_or_default(),
                                w.message.unwrap_or_default()
                            )
                        } else if let Some(t) = state.terminated {
                            format!(
                                "exited {} {} {}",
                                t.exit_code,
                                t.reason.unwrap_or_default(),
                                t.message.unwrap_or_default()
                            )
                        } else {
                            "running".into()
                        };
                        let _ = writeln!(out, "  container {}: {said}", c.name);
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(out, "pods: {e}");
            }
        }
        if let Ok(events) = Api::<Event>::namespaced(kube.clone(), namespace)
            .list(&ListParams::default())
            .await
        {
            let mut events = events.items;
            events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            for e in events.iter().rev().take(25).rev() {
                let _ = writeln!(
                    out,
                    "event {} {} {}: {}",
                    e.involved_object.name.as_deref().unwrap_or_default(),
                    e.type_.as_deref().unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default(),
                    e.message.as_deref().unwrap_or_default()
                );
            }
        }
        let logs = sparkvc_cluster_tests::default_run_dir().join("logs");
        for component in ["kubelet", "containerd"] {
            let text = std::fs::read_to_string(logs.join(format!("{component}.log")))
                .unwrap_or_else(|e| format!("(unreadable: {e})"));
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(out, "--- last lines of {component}.log ---");
            for line in &lines[lines.len().saturating_sub(12)..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// Cancels a run and waits until it is CANCELLED.
    async fn cancel(s: &mut ClusterSetup, id: &str) -> pb::JobRun {
        let vc = s.vc.clone();
        s.client
            .cancel_job_run(pb::CancelJobRunRequest {
                id: id.into(),
                virtual_cluster_id: vc.clone(),
            })
            .await
            .expect("CancelJobRun");
        reached(s, id, "CANCELLED").await
    }

    /// The states a run went through, in order.
    fn history(run: &pb::JobRun) -> Vec<&str> {
        run.state_history.iter().map(|t| t.state.as_str()).collect()
    }

    fn pods(s: &ClusterSetup) -> Api<Pod> {
        Api::namespaced(s.kube.clone(), &s.ns.name)
    }

    /// The run's pods of one Spark role (`driver`, `executor`), any phase.
    async fn spark_pods(s: &ClusterSetup, run_id: &str, role: &str) -> Vec<Pod> {
        let selector = format!("sparkvc.io/job-run-id={run_id},spark-role={role}");
        pods(s)
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list pods")
            .items
    }

    async fn driver_log(s: &ClusterSetup, run_id: &str) -> String {
        let params = LogParams {
            container: Some("spark-kubernetes-driver".into()),
            ..LogParams::default()
        };
        pods(s)
            .logs(&format!("spark-{run_id}-driver"), &params)
            .await
            .expect("the driver's log")
    }

    /// The driver pod of a run, which stays after the run (until its TTL).
    async fn driver_pod(s: &ClusterSetup, run_id: &str) -> Pod {
        pods(s)
            .get(&format!("spark-{run_id}-driver"))
            .await
            .expect("the driver pod")
    }

    fn node_of(pod: &Pod) -> Option<&str> {
        pod.spec.as_ref()?.node_name.as_deref()
    }

    /// The driver's log shows two executors registering with it, and nothing of
    /// the run but its finished job-runner and driver is left afterwards.
    async fn check_real_executors(s: &ClusterSetup, run_id: &str, log: &str) {
        let registered: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("Registered executor"))
            .collect();
        assert_eq!(
            registered.len(),
            2,
            "two executors must register with the driver:\n{log}"
        );
        for id in [1, 2] {
            assert!(
                registered
                    .iter()
                    .any(|l| l.contains(&format!("with ID {id},"))),
                "executor {id} did not register:\n{}",
                registered.join("\n")
            );
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let executors = spark_pods(s, run_id, "executor").await;
            if executors.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the driver did not delete its executors: {:?}",
                executors
                    .iter()
                    .map(|p| p.metadata.name.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    #[tokio::test]
    async fn spark_pi_and_a_pyspark_job_complete_on_real_executors() {
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-complete", dir.path(), &[]).await;
        let real_node = sparkvc_cluster_tests::LocalEnv::load()
            .unwrap()
            .real_node
            .unwrap();
        for (name, entry_point, parameters) in [
            ("spark-pi", SPARK_PI_JAR, "--class sparkvc.examples.SparkPi"),
            ("pyspark-pi", PI_PY, ""),
        ] {
            let started = std::time::Instant::now();
            let request = request(&s, name, entry_point, &["20"], parameters, &[]);
            let id = start(&mut s, request).await;
            let run = ended(&mut s, &id).await;
            assert_eq!(
                run.state, "COMPLETED",
                "{name}: {} ({})",
                run.state, run.state_details
            );
            let states = history(&run);
            assert_eq!(
                states,
                ["PENDING", "SUBMITTED", "RUNNING", "COMPLETED"],
                "{name}"
            );
            assert!(
                run.spark_application_id.starts_with("spark-"),
                "{name}: the application ID comes from the real driver: {:?}",
                run.spark_application_id
            );
            let log = driver_log(&s, &id).await;
            assert!(log.contains("Pi is roughly 3.1"), "{name}:\n{log}");
            check_real_executors(&s, &id, &log).await;
            let driver = driver_pod(&s, &id).await;
            assert_eq!(node_of(&driver), Some(real_node.as_str()), "{name}");
            let runner = pods(&s).get(&id).await.expect("the job-runner pod");
            assert_eq!(node_of(&runner), Some(real_node.as_str()), "{name}");
            eprintln!(
                "{name}: StartJobRun to COMPLETED in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }

    #[tokio::test]
    async fn a_pyspark_job_that_raises_fails_with_its_exit_code_and_error() {
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-raises", dir.path(), &[]).await;
        // pi.py reads its argument as a number of partitions.
        let request = request(&s, "raises", PI_PY, &["many"], "", &[]);
        let id = start(&mut s, request).await;
        let run = ended(&mut s, &id).await;
        assert_eq!(run.state, "FAILED", "{}", run.state_details);
        assert_eq!(run.failure_reason, "USER_ERROR");
        assert_eq!(
            run.state_details,
            "The Spark driver failed: container spark-kubernetes-driver exited with code 1 (Error): \
         ValueError: invalid literal for int() with base 10: 'many'."
        );
    }

    /// Puts PySpark scripts in a ConfigMap of the test namespace and writes a
    /// driver pod template that mounts them at /opt/sparkvc-test, plus `extra`
    /// (merged into the template's JSON), into `dir`. Returns the template path.
    async fn scripts_template(
        s: &ClusterSetup,
        dir: &Path,
        scripts: &[(&str, &str)],
        extra: serde_json::Value,
    ) -> String {
        let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "test-scripts"},
        "data": scripts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
    }))
    .unwrap();
        Api::<ConfigMap>::namespaced(s.kube.clone(), &s.ns.name)
            .create(&PostParams::default(), &config_map)
            .await
            .expect("create the scripts ConfigMap");
        let mut template = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "spec": {
                "volumes": [{"name": "test-scripts", "configMap": {"name": "test-scripts"}}],
                "containers": [{
                    "name": "spark-kubernetes-driver",
                    "volumeMounts": [{"name": "test-scripts", "mountPath": "/opt/sparkvc-test"}]
                }]
            }
        });
        merge(&mut template, extra);
        let path = dir.join("driver.json");
        std::fs::write(&path, template.to_string()).unwrap();
        path.display().to_string()
    }

    /// JSON merge: objects key by key; in arrays, an element with the `name` of
    /// one already there is merged into it, any other appended; anything else
    /// replaced.
    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        use serde_json::Value;
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                for item in b {
                    let same = a.iter_mut().find(|old| {
                        old.get("name").is_some() && old.get("name") == item.get("name")
                    });
                    match same {
                        Some(old) => merge(old, item),
                        None => a.push(item),
                    }
                }
            }
            (slot, value) => *slot = value,
        }
    }

    #[tokio::test]
    async fn the_requests_pod_templates_are_in_the_real_pods() {
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-templates", dir.path(), &[]).await;
        let image = std::env::var("SPARKVC_REAL_NODE_SPARK_IMAGE")
            .ok()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "localhost/sparkvc/spark:3.5.6-sparkvc1".into());
        let script = "from pyspark.sql import SparkSession\n\
        print('sparkvc-test: the init container wrote: ' + open('/work/init.txt').read().strip(), flush=True)\n\
        spark = SparkSession.builder.getOrCreate()\n\
        print('sparkvc-test: counted %d' % spark.range(1000).count(), flush=True)\n";
        let driver_template = scripts_template(
            &s,
            dir.path(),
            &[("template.py", script)],
            json!({
                "metadata": {"labels": {"sparkvc-test/template": "driver"}},
                "spec": {
                    "volumes": [{"name": "work", "emptyDir": {}}],
                    "initContainers": [{
                        "name": "prepare",
                        "image": image,
                        "command": ["/bin/sh", "-c", "echo from-init > /work/init.txt"],
                        "volumeMounts": [{"name": "work", "mountPath": "/work"}]
                    }],
                    "containers": [{
                        "name": "spark-kubernetes-driver",
                        "volumeMounts": [{"name": "work", "mountPath": "/work"}]
                    }]
                }
            }),
        )
        .await;
        let executor_template = dir.path().join("executor.yaml");
        std::fs::write(
            &executor_template,
            "metadata:\n  labels:\n    sparkvc-test/template: executor\n",
        )
        .unwrap();
        let request = request(
            &s,
            "templates",
            "local:///opt/sparkvc-test/template.py",
            &[],
            "",
            &[
                ("spark.kubernetes.driver.podTemplateFile", &driver_template),
                (
                    "spark.kubernetes.executor.podTemplateFile",
                    executor_template.to_str().unwrap(),
                ),
            ],
        );
        let id = start(&mut s, request).await;
        // The executors live only while the driver runs: look at them then.
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        let executor = loop {
            if let Some(pod) = spark_pods(&s, &id, "executor").await.into_iter().next() {
                break pod;
            }
            let run = describe_run(&mut s.client, &s.vc.clone(), &id).await;
            assert!(
                !is_terminal(&run.state),
                "the run ended ({}: {}) before an executor pod was seen",
                run.state,
                run.state_details
            );
            assert!(tokio::time::Instant::now() < deadline, "no executor pod");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let labels = executor.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("sparkvc-test/template").map(String::as_str),
            Some("executor"),
            "{labels:?}"
        );
        assert_eq!(
            labels.get("sparkvc.io/job-run-id").map(String::as_str),
            Some(id.as_str())
        );
        let run = ended(&mut s, &id).await;
        assert_eq!(run.state, "COMPLETED", "{}", run.state_details);

        let driver = driver_pod(&s, &id).await;
        let labels = driver.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("sparkvc-test/template").map(String::as_str),
            Some("driver")
        );
        let init = driver
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .and_then(|statuses| statuses.iter().find(|c| c.name == "prepare"))
            .expect("the template's init container ran");
        let exit = init
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code);
        assert_eq!(exit, Some(0), "{init:?}");
        let log = driver_log(&s, &id).await;
        assert!(
            log.contains("sparkvc-test: the init container wrote: from-init"),
            "{log}"
        );
        assert!(log.contains("sparkvc-test: counted 1000"), "{log}");
    }

    #[tokio::test]
    async fn a_driver_over_its_memory_limit_fails_as_oomkilled() {
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-oom", dir.path(), &[]).await;
        // Written pages, so the memory is really used: the container's limit is
        // spark.driver.memory (512m) plus Spark's 384m overhead.
        let script = "from pyspark.sql import SparkSession\n\
        spark = SparkSession.builder.getOrCreate()\n\
        print('sparkvc-test: allocating until the limit', flush=True)\n\
        hog = []\n\
        while True:\n    hog.append(b'x' * (64 << 20))\n";
        let template = scripts_template(&s, dir.path(), &[("oom.py", script)], json!({})).await;
        let request = request(
            &s,
            "oom",
            "local:///opt/sparkvc-test/oom.py",
            &[],
            "",
            &[("spark.kubernetes.driver.podTemplateFile", &template)],
        );
        let id = start(&mut s, request).await;
        let run = ended(&mut s, &id).await;
        assert_eq!(run.state, "FAILED", "{}", run.state_details);
        assert_eq!(run.failure_reason, "USER_ERROR");
        // This kernel's cgroups (v1 memory controller) let the kubelet see the
        // kill; were they to hide it, the reason would be Error with code 137.
        assert!(
            run.state_details
                .contains("exited with code 137 (OOMKilled)"),
            "{}",
            run.state_details
        );
        assert!(run.state_details.contains("ran out of memory"));
    }

    #[tokio::test]
    async fn cancelling_a_run_removes_its_job_runner_driver_and_executors() {
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-cancel", dir.path(), &[]).await;
        // 100,000 partitions keep pi.py busy for minutes.
        let request = request(&s, "long", PI_PY, &["100000"], "", &[]);
        let id = start(&mut s, request).await;
        reached(&mut s, &id, "RUNNING").await;
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        loop {
            let running = spark_pods(&s, &id, "executor")
                .await
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if running == 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "two executors never ran"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let run = cancel(&mut s, &id).await;
        let states = history(&run);
        assert_eq!(
            states,
            [
                "PENDING",
                "SUBMITTED",
                "RUNNING",
                "CANCEL_PENDING",
                "CANCELLED"
            ]
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let left =
                live_pod_names(&s.kube, &s.ns.name, &format!("sparkvc.io/job-run-id={id}")).await;
            let all = pods(&s)
                .list(&ListParams::default().labels(&format!("sparkvc.io/job-run-id={id}")))
                .await
                .unwrap()
                .items;
            if all.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pods of the cancelled run are still there: {left:?} (of {})",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The signed app-UI link of a run on the real node: the live Spark UI of
    /// its running driver (through the API server's pod proxy), with the
    /// UI's own links leading back through the link; after the run, the
    /// History Server's page of the application, from the event log the real
    /// driver wrote. The event log directory is a host directory the driver
    /// pod mounts (hostPath), where the host's History Server reads it.
    #[tokio::test]
    async fn the_app_ui_link_shows_the_live_ui_then_the_history_server() {
        let _node = NODE.lock().await;
        let spark_home = sparkvc_cluster_tests::host_submit::spark_home()
            .expect("Spark for the History Server (deploy/local/spark-env)");
        let dir = tempfile::tempdir().unwrap();
        // Under /var/tmp, not a private /tmp: the kubelet mounts it into the
        // driver, which writes as Spark's uid 185.
        let work = tempfile::Builder::new()
            .prefix("sparkvc-rn-app-ui")
            .tempdir_in("/var/tmp")
            .unwrap();
        let events = work.path().join("events");
        std::fs::create_dir(&events).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&events, std::fs::Permissions::from_mode(0o777)).unwrap();
        let history = HistoryServer::start(&spark_home, &events);
        let event_log_dir = format!("file://{}/", events.display());
        let mut s = ClusterSetup::start_on_real_node(
            "rn-app-ui",
            dir.path(),
            &[
                "--event-log-dir",
                &event_log_dir,
                "--history-server-url",
                &history.url,
            ],
        )
        .await;
        let template = dir.path().join("driver.json");
        let events_path = events.display().to_string();
        std::fs::write(
            &template,
            json!({"spec": {
                "volumes": [{"name": "events", "hostPath": {"path": events_path, "type": "Directory"}}],
                "containers": [{
                    "name": "spark-kubernetes-driver",
                    "volumeMounts": [{"name": "events", "mountPath": events_path}]
                }]
            }})
            .to_string(),
        )
        .unwrap();
        // 150 partitions keep the driver busy for half a minute or so.
        let request = request(
            &s,
            "app-ui",
            PI_PY,
            &["150"],
            "",
            &[(
                "spark.kubernetes.driver.podTemplateFile",
                template.to_str().unwrap(),
            )],
        );
        let id = start(&mut s, request).await;
        let vc = s.vc.clone();
        reached(&mut s, &id, "RUNNING").await;
        let link = s
            .client
            .get_job_run_app_ui_url(pb::GetJobRunAppUiUrlRequest {
                virtual_cluster_id: vc.clone(),
                id: id.clone(),
                expires_in_seconds: Some(900),
            })
            .await
            .expect("GetJobRunAppUiUrl")
            .into_inner()
            .url;
        let context = link
            .trim_start_matches("http://")
            .split_once('/')
            .unwrap()
            .1
            .trim_end_matches('/')
            .to_string();

        // Live: the driver's own UI (it starts moments after the pod runs).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let jobs = loop {
            let (status, page) = http_get_status(&link);
            if status == 200 && page.contains("PythonPi") {
                break page;
            }
            let run = describe_run(&mut s.client, &vc, &id).await;
            assert!(
                run.state == "RUNNING" && tokio::time::Instant::now() < deadline,
                "the live UI never showed (the run is {}; the link said {status}: {page})",
                run.state
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let app_id = describe_run(&mut s.client, &vc, &id)
            .await
            .spark_application_id;
        let own = format!("/{context}/history/{app_id}");
        assert!(
            jobs.contains(&format!("{own}/executors/")),
            "the live UI's links lead back through the link:\n{jobs}"
        );
        let executors = http_get(&format!("{link}history/{app_id}/executors/"));
        assert!(executors.contains("Executors"), "{executors}");
        let (status, _) = http_get_status(&format!("{link}api/v1/applications"));
        assert_eq!(status, 403, "the link grants the application's pages only");

        let run = ended(&mut s, &id).await;
        assert_eq!(run.state, "COMPLETED", "{}", run.state_details);
        // After: the History Server, from the real driver's event log.
        history.wait_lists(&run.spark_application_id);
        let page = http_get(&link);
        assert!(
            page.contains("PythonPi"),
            "the History Server's page of the application:\n{page}"
        );
        assert!(
            page.contains(&format!("/{context}/history/{}/", run.spark_application_id)),
            "links under the link:\n{page}"
        );
    }

    /// The log capture wrapper that sparkvc puts in front of a job pod's
    /// command when its logs are shipped, in a real container of the Spark
    /// image: the command's stdout and stderr reach the shared log directory
    /// (`/var/log/spark/user/<pod>/{stdout,stderr}`) and still the
    /// container's own log. sparkvc adds the wrapper only together with the
    /// fluentd sidecar, and fluentd cannot be installed on these machines
    /// (no package of it is reachable): so this pod, made here from the
    /// rendered wrapper (`render::logging::capture_argv`/`capture_env`), has
    /// no sidecar; a second container prints what the directory holds.
    #[tokio::test]
    async fn the_log_capture_wrapper_fills_the_log_directory_in_a_real_container() {
        use sparkvc_server::render::{logging, security};
        let _node = NODE.lock().await;
        let env = sparkvc_cluster_tests::LocalEnv::load().unwrap();
        assert!(
            env.real_node.is_some(),
            "the local environment has no real node"
        );
        let kube = env.kube_client().await.unwrap();
        wait_for_schedulable_node(&kube, env.real_node.as_deref().unwrap()).await;
        let ns = sparkvc_cluster_tests::TestNamespace::create(&kube, "rn-log-capture")
            .await
            .unwrap();
        let image = std::env::var("SPARKVC_REAL_NODE_SPARK_IMAGE")
            .ok()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "localhost/sparkvc/spark:3.5.6-sparkvc1".into());
        let command = logging::capture_argv(
            "job-runner",
            &[
                "/bin/sh".into(),
                "-c".into(),
                // Much output just before the end: a wrapper that let its
                // copiers outlive it lost it, as the container's end kills them.
                "echo to-stderr >&2; seq 1 5000".into(),
            ],
        );
        let mount = json!([{"name": "logs", "mountPath": "/var/log/spark/user"}]);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "log-capture"},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"sparkvc.io/node": "real"},
                "tolerations": [{"key": "sparkvc.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
                "volumes": [{"name": "logs", "emptyDir": {}}],
                "initContainers": [{
                    "name": "main",
                    "image": image,
                    "command": command,
                    "env": logging::capture_env(&pb::JobRun::default()),
                    "volumeMounts": mount,
                    "securityContext": security::restricted_security_context()
                }],
                "containers": [{
                    "name": "show",
                    "image": image,
                    "command": ["/bin/sh", "-c",
                        "cd /var/log/spark/user && for f in */*; do echo \"== $f $(wc -l < \"$f\")\"; tail -n 1 \"$f\"; done"],
                    "volumeMounts": mount,
                    "securityContext": security::restricted_security_context()
                }]
            }
        }))
        .unwrap();
        let pods: Api<Pod> = Api::namespaced(kube.clone(), &ns.name);
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let pod = pods.get("log-capture").await.unwrap();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            if phase == "Succeeded" {
                break;
            }
            if phase == "Failed" || tokio::time::Instant::now() >= deadline {
                panic!("the pod is {phase}\n{}", diagnosis(&kube, &ns.name).await);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let log = |container: &str| {
            let pods = pods.clone();
            let params = LogParams {
                container: Some(container.into()),
                ..LogParams::default()
            };
            async move { pods.logs("log-capture", &params).await.unwrap() }
        };
        assert_eq!(
            log("show").await,
            "== log-capture/stderr 1\nto-stderr\n== log-capture/stdout 5000\n5000\n"
        );
        let own = log("main").await;
        assert!(
            own.contains("\n5000\n") && own.contains("to-stderr"),
            "the container's own log keeps its output: {own:?}"
        );
        ns.delete().await.unwrap();
    }

    /// The driver's permissions are what it needs: with the tenant Role a
    /// real driver creates its executors (the first run COMPLETES); bound
    /// instead to the same Role without `create` on pods, the same driver is
    /// refused by the API server (Forbidden) and no executor pod exists.
    #[tokio::test]
    async fn the_driver_is_forbidden_its_executors_without_the_roles_pod_creation() {
        use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
        use sparkvc_server::render::{names, tenancy};
        let _node = NODE.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterSetup::start_on_real_node("rn-rbac", dir.path(), &[]).await;
        let vc = s.vc.clone();
        let first = request(&s, "with-the-role", PI_PY, &["4"], "", &[]);
        let id = start(&mut s, first).await;
        let run = ended(&mut s, &id).await;
        assert_eq!(run.state, "COMPLETED", "{}", run.state_details);

        // The driver's service account, bound to a copy of the Role that
        // lacks pods/create; its RoleBinding keeps only the client (which
        // spark-submit uses to create the driver).
        let account = ROLE_ARN.split(':').nth(4).unwrap();
        let sas = names::ServiceAccountNames::new(account, ROLE_ARN).unwrap();
        let binding_name = names::role_binding_name(account, ROLE_ARN).unwrap();
        let bindings: Api<RoleBinding> = Api::namespaced(s.kube.clone(), &s.ns.name);
        let mut binding = bindings.get(&binding_name).await.unwrap();
        let subjects = binding.subjects.take().unwrap_or_default();
        assert!(
            subjects.iter().any(|x| x.name == sas.driver),
            "{subjects:?}"
        );
        binding.subjects = Some(
            subjects
                .into_iter()
                .filter(|x| x.name != sas.driver)
                .collect(),
        );
        bindings
            .replace(&binding_name, &PostParams::default(), &binding)
            .await
            .unwrap();
        let roles: Api<Role> = Api::namespaced(s.kube.clone(), &s.ns.name);
        let tenant = roles.get(tenancy::SPARK_ROLE_NAME).await.unwrap();
        let mut rules = tenant.rules.clone().unwrap_or_default();
        for rule in &mut rules {
            let resources = rule.resources.get_or_insert_with(Vec::new);
            if resources.iter().any(|r| r == "pods") {
                resources.retain(|r| r != "pods");
            }
        }
        rules.push(
            serde_json::from_value(json!({
                "apiGroups": [""], "resources": ["pods"],
                "verbs": ["get", "list", "watch", "delete", "deletecollection", "patch", "update"]
            }))
            .unwrap(),
        );
        let narrow: Role = serde_json::from_value(json!({
            "metadata": {"name": "test-driver-without-pod-create"},
            "rules": rules
        }))
        .unwrap();
        roles.create(&PostParams::default(), &narrow).await.unwrap();
        let driver_binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "test-driver-without-pod-create"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "test-driver-without-pod-create"},
            "subjects": [{"kind": "ServiceAccount", "name": sas.driver, "namespace": s.ns.name}]
        }))
        .unwrap();
        bindings
            .create(&PostParams::default(), &driver_binding)
            .await
            .unwrap();

        let second = request(&s, "without-pod-create", PI_PY, &["4"], "", &[]);
        let id = start(&mut s, second).await;
        reached(&mut s, &id, "RUNNING").await;
        let forbidden = format!(
            "User \"system:serviceaccount:{}:{}\" cannot create resource \"pods\"",
            s.ns.name, sas.driver
        );
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        loop {
            let run = describe_run(&mut s.client, &vc, &id).await;
            let log = driver_log(&s, &id).await;
            if log.contains(&forbidden) || run.state_details.contains(&forbidden) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the driver was never refused ({}: {}):\n{log}",
                run.state,
                run.state_details
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(
            spark_pods(&s, &id, "executor").await.is_empty(),
            "no executor can exist"
        );
        let run = describe_run(&mut s.client, &vc, &id).await;
        if run.state == "RUNNING" {
            // Spark keeps asking for executors: the run would wait forever.
            cancel(&mut s, &id).await;
        }
    }

    /// Runs `program` (a script of the repository) and returns its stdout,
    /// failing with what it printed.
    fn script(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut cmd = std::process::Command::new(sparkvc_cluster_tests::repo_root().join(program));
        without_test_cargo_env(&mut cmd)
            .args(args)
            .envs(env.iter().copied());
        let out = cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Issue 17's install proof, on the real node: the chart
    /// (`deploy/helm/sparkvc`) with the server image built here
    /// (`node/images server`, from the tests' debug binaries) puts sparkvc in
    /// a pod; that sparkvc, with only its in-cluster ServiceAccount and the
    /// chart's RBAC, creates a virtual cluster and runs SparkPi to COMPLETED
    /// on the same node; `helm uninstall` removes what the chart made and
    /// nothing of the tenant's.
    ///
    /// The release serves plaintext without authentication (the test's
    /// values say so loudly): TLS and identities are the chart's own tests'
    /// business (`tests/helm`); the test reaches the pod at its IP.
    #[tokio::test]
    async fn the_chart_installs_sparkvc_which_runs_spark_pi_on_the_node() {
        use k8s_openapi::api::core::v1::{Namespace, PersistentVolume};
        use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
        use sparkvc_server::render::tenancy;
        let _node = NODE.lock().await;
        let env = sparkvc_cluster_tests::LocalEnv::load().unwrap();
        let node = env.real_node.clone().expect("the real node");
        let kube = env.kube_client().await.unwrap();
        wait_for_schedulable_node(&kube, &node).await;

        // The image, into the node's containerd.
        let built = script(
            "deploy/local/node/images",
            &["server"],
            &[("SPARKVC_SERVER_IMAGE_PROFILE", "dev")],
        );
        let (image, archive) = built.split_once(' ').expect("REF ARCHIVE");
        let (repository, tag) = image.rsplit_once(':').unwrap();
        let socket =
            sparkvc_cluster_tests::default_run_dir().join("real-node/containerd/containerd.sock");
        let imported = std::process::Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", "k8s.io", "images", "import", archive])
            .output()
            .expect("run ctr");
        assert!(
            imported.status.success(),
            "ctr import: {}",
            String::from_utf8_lossy(&imported.stderr)
        );

        let release = format!("sparkvc-{}", std::process::id());
        let ns = sparkvc_cluster_tests::TestNamespace::create(&kube, "rn-chart")
            .await
            .unwrap();
        // The API server's PodSecurity admission holds the release
        // namespace to the restricted standard, as the chart's README asks.
        let restricted = json!({"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"
        }}});
        Api::<Namespace>::all(kube.clone())
            .patch(
                &ns.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&restricted),
            )
            .await
            .expect("label the release namespace restricted");
        let tenant = sparkvc_cluster_tests::TestNamespace::create(&kube, "rn-chart-tenant")
            .await
            .unwrap();
        // The data volume: a hostPath PersistentVolume bound to the
        // StatefulSet's claim (the local cluster has no provisioner),
        // owned by the server's user.
        let host_dir = std::path::PathBuf::from(format!("/var/tmp/sparkvc-{release}"));
        std::fs::create_dir_all(&host_dir).unwrap();
        std::os::unix::fs::chown(&host_dir, Some(65532), Some(65532)).unwrap();
        let volumes: Api<PersistentVolume> = Api::all(kube.clone());
        let volume: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": release},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": host_dir, "type": "Directory"},
                "claimRef": {"namespace": ns.name, "name": format!("data-{release}-0")}
            }
        }))
        .unwrap();
        volumes
            .create(&PostParams::default(), &volume)
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let values = dir.path().join("values.yaml");
        let real = json!({"sparkvc.io/node": "real"});
        let tolerate =
            json!([{"key": "sparkvc.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]);
        std::fs::write(
            &values,
            serde_json::to_string(&json!({
                "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
                "rbac": {"tenantNamespaces": [tenant.name]},
                "cluster": {"id": "local", "jobPods": {"nodeSelector": real, "tolerations": tolerate}},
                // Test only: plaintext and no authentication off loopback.
                "config": {
                    "account_id": "123456789012",
                    "region": "us-west-2",
                    "insecure_allow_unauthenticated_remote": true,
                    "insecure_allow_plaintext_remote": true
                },
                "nodeSelector": real,
                "tolerations": tolerate,
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
            }))
            .unwrap(),
        )
        .unwrap();
        let helm = script("deploy/local/helm/build", &[], &[]);
        let kubeconfig = env.kubeconfig.display().to_string();
        let helm_run = |args: &[&str]| {
            let mut all = vec![
                "--kubeconfig",
                kubeconfig.as_str(),
                "--kube-context",
                env.context.as_str(),
            ];
            all.extend_from_slice(args);
            let out = std::process::Command::new(&helm)
                .args(&all)
                .output()
                .expect("run helm");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        let chart = sparkvc_cluster_tests::repo_root().join("deploy/helm/sparkvc");
        // `helm install` or `upgrade` with a values file and `--set`s,
        // waiting for the pod to be ready.
        let deploy = async |verb: &str, values_file: &Path, set: &[&str]| {
            let mut args = vec![
                verb,
                release.as_str(),
                chart.to_str().unwrap(),
                "-n",
                ns.name.as_str(),
                "-f",
                values_file.to_str().unwrap(),
                "--wait",
                "--timeout",
                "240s",
            ];
            for assignment in set {
                args.extend(["--set", assignment]);
            }
            let (ok, said) = helm_run(&args);
            if !ok {
                panic!("helm {verb}: {said}\n{}", diagnosis(&kube, &ns.name).await);
            }
        };
        let started = std::time::Instant::now();
        deploy("install", &values, &[]).await;
        let pod = pods_in(&kube, &ns.name)
            .get(&format!("{release}-0"))
            .await
            .unwrap();
        println!("helm install to ready: {:?}", started.elapsed());
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some(node.as_str())
        );
        let ip = pod.status.and_then(|s| s.pod_ip).expect("a pod IP");

        // sparkvc in the pod, from the host: a virtual cluster, SparkPi.
        let mut client = connect_to_pod(&ip)
            .await
            .expect("connect to sparkvc in its pod");
        let mut create = create_vc_request(&tenant.name);
        create.container_provider.as_mut().unwrap().id = "local".into();
        let vc = client
            .create_virtual_cluster(create)
            .await
            .expect("CreateVirtualCluster")
            .into_inner()
            .id;
        let run = client
            .start_job_run(pb::StartJobRunRequest {
                name: "chart-pi".into(),
                virtual_cluster_id: vc.clone(),
                client_token: unique("token"),
                execution_role_arn: ROLE_ARN.into(),
                release_label: REAL_NODE_RELEASE.into(),
                job_driver: Some(pb::JobDriver {
                    spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
                        entry_point: SPARK_PI_JAR.into(),
                        entry_point_arguments: vec!["10".into()],
                        spark_submit_parameters: format!(
                            "--class sparkvc.examples.SparkPi {SMALL}"
                        ),
                    }),
                    spark_sql_job_driver: None,
                }),
                ..Default::default()
            })
            .await
            .expect("StartJobRun")
            .into_inner()
            .id;
        let done = wait_until(
            &mut client,
            &vc,
            &run,
            "a terminal state",
            RUN_TIMEOUT,
            |r| is_terminal(&r.state),
        )
        .await;
        if done.state != "COMPLETED" {
            panic!(
                "{} ({})\n{}",
                done.state,
                done.state_details,
                diagnosis(&kube, &tenant.name).await
            );
        }
        // The job pods ran on the node too, created by the pod's sparkvc.
        let runner = pods_in(&kube, &tenant.name)
            .get(&run)
            .await
            .expect("the job-runner pod");
        assert_eq!(runner.spec.and_then(|s| s.node_name), Some(node.clone()));

        // Upgrade to another build of the image (here the same binaries
        // under a new tag, which is what the StatefulSet sees): the pod is
        // replaced, and the store on its volume keeps every run.
        let before = describe_run(&mut client, &vc, &run).await;
        let old_pod = pod.metadata.uid.clone();
        let upgraded = format!("{tag}-upgraded");
        let tagged = std::process::Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "tag",
                "--force",
                image,
                &format!("{repository}:{upgraded}"),
            ])
            .output()
            .expect("run ctr");
        assert!(
            tagged.status.success(),
            "ctr tag: {}",
            String::from_utf8_lossy(&tagged.stderr)
        );
        let started = std::time::Instant::now();
        let set_tag = format!("image.tag={upgraded}");
        deploy("upgrade", &values, &[&set_tag]).await;
        let pod = pods_in(&kube, &ns.name)
            .get(&format!("{release}-0"))
            .await
            .unwrap();
        println!("helm upgrade to ready: {:?}", started.elapsed());
        assert_ne!(pod.metadata.uid, old_pod, "the pod was not replaced");
        let image_now = pod
            .spec
            .as_ref()
            .map(|s| s.containers[0].image.clone().unwrap_or_default());
        assert!(image_now.is_some_and(|i| i.ends_with(&upgraded)));
        let ip = pod.status.and_then(|s| s.pod_ip).expect("a pod IP");
        let mut client = connect_to_pod(&ip)
            .await
            .expect("connect to the upgraded sparkvc");
        assert_eq!(
            describe_run(&mut client, &vc, &run).await,
            before,
            "the run changed in the upgrade"
        );

        // Under load: the job pods move to the kwok nodes (a values change,
        // another upgrade), 300 runs are started, and the server's pod is
        // deleted a third of the way through.
        let mut kwok_values: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&values).unwrap()).unwrap();
        kwok_values["cluster"]["jobPods"] = json!({});
        kwok_values["image"]["tag"] = json!(upgraded);
        let kwok_file = dir.path().join("values-kwok.yaml");
        std::fs::write(&kwok_file, serde_json::to_string(&kwok_values).unwrap()).unwrap();
        deploy("upgrade", &kwok_file, &[]).await;
        let server = PodClient {
            kube: kube.clone(),
            namespace: ns.name.clone(),
            pod: format!("{release}-0"),
            current: Default::default(),
        };
        runs_survive_deleting_the_pod(&server, &vc, &tenant.name).await;

        // Uninstall: the chart's objects go, the tenant's stay.
        let (ok, said) = helm_run(&[
            "uninstall",
            &release,
            "-n",
            &ns.name,
            "--wait",
            "--timeout",
            "120s",
        ]);
        assert!(ok, "helm uninstall: {said}");
        let cluster_roles: Api<ClusterRole> = Api::all(kube.clone());
        let left: Vec<String> = cluster_roles
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|r| r.metadata.name)
            .filter(|n| n.starts_with(&release))
            .collect();
        assert!(left.is_empty(), "the chart's ClusterRoles stayed: {left:?}");
        assert!(
            pods_in(&kube, &ns.name)
                .get_opt(&format!("{release}-0"))
                .await
                .unwrap()
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            "the server's pod stayed"
        );
        let roles: Api<Role> = Api::namespaced(kube.clone(), &tenant.name);
        assert!(
            roles
                .get_opt(tenancy::SPARK_ROLE_NAME)
                .await
                .unwrap()
                .is_some(),
            "the tenant's Spark Role went with the chart"
        );
        let namespaces: Api<Namespace> = Api::all(kube.clone());
        assert!(namespaces.get_opt(&tenant.name).await.unwrap().is_some());

        let _ = volumes.delete(&release, &Default::default()).await;
        let _ = std::fs::remove_dir_all(&host_dir);
    }

    fn pods_in(kube: &kube::Client, namespace: &str) -> Api<Pod> {
        Api::namespaced(kube.clone(), namespace)
    }

    /// A client of sparkvc's API in a pod at `ip` (its plaintext port 50051).
    async fn connect_to_pod(ip: &str) -> Result<Client, tonic::transport::Error> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{ip}:50051"))
            .expect("a valid URI")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        Ok(sparkvc_proto::EmrContainersClient::new(channel))
    }

    /// A client of sparkvc in a pod of the StatefulSet, reconnected to the
    /// pod's new address when the pod is replaced.
    struct PodClient {
        kube: kube::Client,
        namespace: String,
        pod: String,
        current: tokio::sync::Mutex<Option<(String, Client)>>,
    }

    impl PodClient {
        /// A client of the pod as it is now, if it is ready.
        async fn client(&self) -> Option<Client> {
            let pod = pods_in(&self.kube, &self.namespace)
                .get_opt(&self.pod)
                .await
                .ok()??;
            let ready = pod
                .status
                .as_ref()?
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = pod.status?.pod_ip?;
            if !ready || pod.metadata.deletion_timestamp.is_some() {
                return None;
            }
            let mut current = self.current.lock().await;
            if let Some((known, client)) = current.as_ref()
                && *known == ip
            {
                return Some(client.clone());
            }
            let client = connect_to_pod(&ip).await.ok()?;
            *current = Some((ip, client.clone()));
            Some(client)
        }

        /// Calls `call` until the pod answers it, for up to two minutes.
        async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> T
        where
            F: FnMut(Client) -> Fut,
            Fut: std::future::Future<Output = Result<T, tonic::Status>>,
        {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let mut last = String::from("the pod was never ready");
            loop {
                if let Some(client) = self.client().await {
                    match call(client).await {
                        Ok(answer) => return answer,
                        Err(status) => last = format!("{status:?}"),
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: sparkvc's pod did not answer for two minutes; last: {last}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// 300 runs started (each retried with its client token until
    /// acknowledged) while the server's pod is deleted once 100 are in: the
    /// StatefulSet brings it back, and every acknowledged run is there, ends,
    /// and was submitted once (one SUBMITTED, one job-runner, no second
    /// attempt). The job pods are on kwok nodes, where a job-runner ends
    /// without a driver, so each run ends FAILED as "driver missing"; the
    /// test is about the control plane, not Spark.
    async fn runs_survive_deleting_the_pod(server: &PodClient, vc: &str, tenant: &str) {
        use futures::StreamExt;
        const RUNS: usize = 300;
        let acknowledged = std::sync::atomic::AtomicUsize::new(0);
        let old_uid = pods_in(&server.kube, &server.namespace)
            .get(&server.pod)
            .await
            .unwrap()
            .metadata
            .uid;
        let start_all = futures::stream::iter(0..RUNS)
            .map(|i| {
                let acknowledged = &acknowledged;
                let request = pb::StartJobRunRequest {
                    name: format!("load-{i}"),
                    virtual_cluster_id: vc.into(),
                    client_token: unique("load"),
                    execution_role_arn: ROLE_ARN.into(),
                    release_label: REAL_NODE_RELEASE.into(),
                    job_driver: Some(submit_driver(
                        "local:///opt/spark/examples/src/main/python/pi.py",
                    )),
                    ..Default::default()
                };
                async move {
                    let id = server
                        .retry("StartJobRun", |mut c| {
                            let request = request.clone();
                            async move { c.start_job_run(request).await }
                        })
                        .await
                        .into_inner()
                        .id;
                    acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    id
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<String>>();
        let delete_once_a_third_is_in = async {
            while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < RUNS / 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            pods_in(&server.kube, &server.namespace)
                .delete(&server.pod, &Default::default())
                .await
                .expect("delete sparkvc's pod");
            let deleted = std::time::Instant::now();
            loop {
                let pod = pods_in(&server.kube, &server.namespace)
                    .get_opt(&server.pod)
                    .await
                    .unwrap();
                let replaced = pod.as_ref().is_some_and(|p| p.metadata.uid != old_uid);
                if replaced && server.client().await.is_some() {
                    println!(
                        "pod deleted to its successor ready: {:?}",
                        deleted.elapsed()
                    );
                    return;
                }
                assert!(
                    deleted.elapsed() < Duration::from_secs(180),
                    "the StatefulSet did not bring sparkvc back"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let (ids, ()) = tokio::join!(start_all, delete_once_a_third_is_in);
        let ids: std::collections::BTreeSet<String> = ids.into_iter().collect();
        assert_eq!(
            ids.len(),
            RUNS,
            "every start acknowledged once, each its own run"
        );

        // Every acknowledged run is stored and ends.
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        let runs = loop {
            let listed = server
                .retry("ListJobRuns", |mut c| async move {
                    Ok::<_, tonic::Status>(all_runs(&mut c, vc).await)
                })
                .await;
            let ours: Vec<pb::JobRun> =
                listed.into_iter().filter(|r| ids.contains(&r.id)).collect();
            let open = ours.iter().filter(|r| !is_terminal(&r.state)).count();
            if ours.len() == RUNS && open == 0 {
                break ours;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {RUNS} acknowledged runs listed, {open} not ended",
                ours.len()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        // Each was submitted once: one SUBMITTED in its history, one
        // job-runner pod, no second attempt.
        for run in &runs {
            let submitted = run
                .state_history
                .iter()
                .filter(|t| t.state == "SUBMITTED")
                .count();
            assert!(submitted <= 1, "run {} submitted {submitted} times", run.id);
        }
        let pods = pods_in(&server.kube, tenant)
            .list(&ListParams::default().labels("sparkvc.io/component=job-runner"))
            .await
            .unwrap()
            .items;
        let mut runners: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for pod in &pods {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let run = labels
                .get("sparkvc.io/job-run-id")
                .cloned()
                .unwrap_or_default();
            if ids.contains(&run) {
                let attempt = labels
                    .get("sparkvc.io/attempt")
                    .cloned()
                    .unwrap_or_default();
                runners.entry(run).or_default().push(attempt);
            }
        }
        let not_once: Vec<_> = runners.iter().filter(|(_, a)| *a != &["1"]).collect();
        assert!(
            not_once.is_empty(),
            "runs with other than one first-attempt job-runner: {not_once:?}"
        );
        assert_eq!(runners.len(), RUNS, "every run has its job-runner pod");
    }
}
