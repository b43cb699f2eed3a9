//! The persistent app UI, for real: a small PySpark application runs on this
//! machine with the real Spark from the `pyspark` package and writes its
//! event log; the real Spark History Server (same package) reads it; a job
//! run on the local cluster whose driver carries that application's ID ends;
//! and sparkvc's signed link, followed through sparkvc's HTTP endpoint, shows
//! the application's History Server page.
//!
//! The driver pod itself is simulated by kwok (it runs no Spark), so the
//! application is not the driver's: the test gives the driver pod the ID of
//! the application it ran, as Spark would label a real driver.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use sparkvc_cluster_tests::{host_submit, kwok};
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::process::Command;

const APP_NAME: &str = "sparkvc-app-ui-test";

/// Runs a tiny PySpark application that writes its event log into
/// `events`; returns its application ID.
fn run_spark_app(spark_home: &std::path::Path, events: &std::path::Path) -> String {
    let app = events.parent().unwrap().join("app.py");
    std::fs::write(
        &app,
        format!(
            "from pyspark.sql import SparkSession\n\
             s = SparkSession.builder.appName('{APP_NAME}').getOrCreate()\n\
             s.range(1000).selectExpr('sum(id)').collect()\n\
             print('APPLICATION_ID', s.sparkContext.applicationId)\n\
             s.stop()\n"
        ),
    )
    .unwrap();
    let python = spark_home.parent().unwrap().join("bin/python");
    let out = Command::new(spark_home.join("bin/spark-submit"))
        .args(["--master", "local[1]"])
        .args(["--conf", "spark.eventLog.enabled=true"])
        .arg("--conf")
        .arg(format!("spark.eventLog.dir=file://{}", events.display()))
        .args(["--conf", "spark.ui.enabled=false"])
        .args(["--conf", "spark.driver.host=127.0.0.1"])
        .args(["--conf", "spark.driver.bindAddress=127.0.0.1"])
        .arg(&app)
        .env("SPARK_HOME", spark_home)
        .env("PYSPARK_PYTHON", &python)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .output()
        .expect("run spark-submit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Spark application failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("APPLICATION_ID "))
        .expect("the application printed its ID")
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_signed_link_shows_the_ended_runs_application_from_the_history_server() {
    let spark_home = host_submit::spark_home().expect("Spark (deploy/local/spark-env)");
    let work = tempfile::tempdir().unwrap();
    let events = work.path().join("events");
    std::fs::create_dir(&events).unwrap();
    let app_id = run_spark_app(&spark_home, &events);
    let history = HistoryServer::start(&spark_home, &events);
    history.wait_lists(&app_id);

    // The server's HTTP endpoint (metrics and app-UI links) is on.
    let event_log_dir = format!("file://{}", events.display());
    let setup = ClusterSetup::start(
        "app-ui",
        &[
            "--history-server-url",
            &history.url,
            "--event-log-dir",
            &event_log_dir,
        ],
    )
    .await;
    let ClusterSetup {
        server,
        mut client,
        kube,
        ns,
        vc,
        ..
    } = setup;

    let mut req = start_request(&vc);
    req.configuration_overrides = Some(
        serde_json::from_value(json!({"applicationConfiguration": [{
            "classification": "emr-job-submitter",
            "properties": {format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"}
        }]}))
        .unwrap(),
    );
    let run = client.start_job_run(req).await.unwrap().into_inner();
    wait_for_state(&mut client, &vc, &run.id, "SUBMITTED").await;
    // The run's Spark configuration sends its event log where the History
    // Server reads.
    let conf: k8s_openapi::api::core::v1::ConfigMap = Api::namespaced(kube.clone(), &ns.name)
        .get(&format!("spark-{}-conf", run.id))
        .await
        .unwrap();
    let defaults = &conf.data.unwrap()["spark-defaults.conf"];
    assert!(
        defaults.contains(&format!("spark.eventLog.dir file://{}", events.display())),
        "{defaults}"
    );
    // The driver, labelled with its application's ID as Spark labels it.
    let runner: Pod = Api::namespaced(kube.clone(), &ns.name)
        .get(&run.id)
        .await
        .unwrap();
    let driver: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": format!("spark-{}-driver", run.id),
            "labels": {
                "app.kubernetes.io/managed-by": "sparkvc",
                "sparkvc.io/job-run-id": run.id,
                "sparkvc.io/virtual-cluster-id": vc,
                "sparkvc.io/component": "driver",
                "sparkvc.io/attempt": "1",
                "spark-role": "driver",
                "spark-app-selector": app_id
            },
            "annotations": {kwok::RUN_SECONDS: "1"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": run.id, "uid": runner.metadata.uid}]
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "spark-kubernetes-driver", "image": "spark"}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(kube.clone(), &ns.name)
        .create(&PostParams::default(), &driver)
        .await
        .unwrap();
    let done = wait_for_state(&mut client, &vc, &run.id, "COMPLETED").await;
    assert_eq!(done.spark_application_id, app_id);

    let link = client
        .get_job_run_app_ui_url(pb::GetJobRunAppUiUrlRequest {
            virtual_cluster_id: vc.clone(),
            id: run.id.clone(),
            expires_in_seconds: Some(600),
        })
        .await
        .unwrap()
        .into_inner();
    let base = format!(
        "{}/app-ui/{vc}/{}/",
        server
            .metrics_url
            .as_deref()
            .unwrap()
            .trim_end_matches("/metrics"),
        run.id
    );
    assert!(
        link.url.starts_with(&base),
        "{} should start with {base}",
        link.url
    );
    let page = http_get(&link.url);
    assert!(
        page.contains(APP_NAME),
        "the History Server page of the application:\n{page}"
    );
    // Its links lead back through the signed link.
    let context = link
        .url
        .trim_start_matches("http://")
        .split_once('/')
        .unwrap()
        .1
        .trim_end_matches('/');
    assert!(
        page.contains(&format!("/{context}/history/{app_id}/")),
        "links under the link:\n{page}"
    );
    let stages = http_get(&format!("{}history/{app_id}/stages/", link.url));
    assert!(stages.contains(APP_NAME));

    // The link grants that application only, unaltered, until it expires.
    let (status, _) = http_get_status(&format!("{}api/v1/applications", link.url));
    assert_eq!(status, 403, "another path through the link");
    let tampered = {
        let mut url = link.url.trim_end_matches('/').to_string();
        let last = url.pop().unwrap();
        url.push(if last == '0' { '1' } else { '0' });
        format!("{url}/")
    };
    assert_eq!(http_get_status(&tampered).0, 403, "a tampered signature");
    let other_run = link.url.replace(&run.id, "0000000000000000000");
    assert_eq!(
        http_get_status(&other_run).0,
        403,
        "the signature of another run"
    );
    let short = client
        .get_job_run_app_ui_url(pb::GetJobRunAppUiUrlRequest {
            virtual_cluster_id: vc.clone(),
            id: run.id.clone(),
            expires_in_seconds: Some(10),
        })
        .await
        .unwrap_err();
    assert!(
        short.message().contains("expiresInSeconds"),
        "{}",
        short.message()
    );

    // The CLI gives the same kind of link.
    let out = sparkvc(
        &server.endpoint(),
        &[
            "get-job-run-app-ui-url",
            "--virtual-cluster-id",
            &vc,
            "--id",
            &run.id,
        ],
    );
    let printed = json_of(&out);
    assert!(
        printed["url"].as_str().unwrap().starts_with(&base),
        "{printed}"
    );
    drop(server);
    ns.delete().await.unwrap();
}
