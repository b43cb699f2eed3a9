//! Validation rule by rule, on the wire types, with no server. The API
//! suite (`tests/e2e/tests/api.rs`) keeps a few of these cases end to end.

use super::job_runs::{configuration_overrides, job_driver};
use super::virtual_clusters::scheduler_configuration;
use super::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;

#[test]
fn a_job_templates_log_uri_is_checked_unless_it_has_a_parameter() {
    let template = |log_uri: &str| -> pb::CreateJobTemplateRequest {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "clientToken": "c",
            "jobTemplateData": {
                "executionRoleArn": "arn:aws:iam::123456789012:role/r",
                "releaseLabel": "emr-7.9.0-latest",
                "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///a.py"}},
                "parameterConfiguration": {"bucket": {"type": "STRING"}},
                "configurationOverrides": {"monitoringConfiguration": {
                    "s3MonitoringConfiguration": {"logUri": log_uri}
                }}
            }
        }))
        .unwrap()
    };
    let err = create_job_template(&template("not-an-s3-uri")).unwrap_err();
    assert!(err.to_string().contains("is not a valid S3 URI"), "{err}");
    create_job_template(&template("s3://logs/team-a/")).unwrap();
    create_job_template(&template("s3://${bucket}/team-a/")).unwrap();
}

#[test]
fn timestamps_need_nanoseconds_within_a_second() {
    let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
    assert!(timestamp("createdAfter", None).is_ok());
    assert!(timestamp("createdAfter", Some(&at(i64::MAX, 999_999_999))).is_ok());
    assert!(timestamp("createdAfter", Some(&at(i64::MIN, 0))).is_ok());
    for nanos in [-1, 1_000_000_000, i32::MAX] {
        let err = timestamp("createdBefore", Some(&at(0, nanos))).unwrap_err();
        assert!(err.to_string().contains("'createdBefore'"), "{err}");
    }
}

fn submit_driver() -> pb::JobDriver {
    pb::JobDriver {
        spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
            entry_point: "local:///opt/spark/examples/src/main/python/pi.py".into(),
            ..Default::default()
        }),
        spark_sql_job_driver: None,
    }
}

#[test]
fn job_driver_needs_exactly_one_driver() {
    let mut both = submit_driver();
    both.spark_sql_job_driver = Some(Default::default());
    let err = job_driver("jobDriver", &both).unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
    assert!(job_driver("jobDriver", &pb::JobDriver::default()).is_err());
    assert!(job_driver("jobDriver", &submit_driver()).is_ok());
}

#[test]
fn log_settings_are_checked() {
    let overrides = |m: pb::MonitoringConfiguration| pb::ConfigurationOverrides {
        application_configuration: vec![],
        monitoring_configuration: Some(m),
    };
    let bad_uri = overrides(pb::MonitoringConfiguration {
        s3_monitoring_configuration: Some(pb::S3MonitoringConfiguration {
            log_uri: "logs/here".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let err = configuration_overrides("configurationOverrides", &bad_uri).unwrap_err();
    assert!(err.to_string().contains(
        "configurationOverrides.monitoringConfiguration.s3MonitoringConfiguration.logUri"
    ));
    let tiny = overrides(pb::MonitoringConfiguration {
        container_log_rotation_configuration: Some(pb::ContainerLogRotationConfiguration {
            rotation_size: "1KB".into(),
            max_files_to_keep: 3,
        }),
        ..Default::default()
    });
    assert!(
        configuration_overrides("c", &tiny)
            .unwrap_err()
            .to_string()
            .contains("between 2KB and 2GB")
    );
}

#[test]
fn scheduler_limits_are_one_to_a_thousand() {
    let s = pb::SchedulerConfiguration {
        max_in_queue_job_runs: Some(0),
        max_concurrent_job_runs: None,
    };
    let err = scheduler_configuration("schedulerConfiguration", &s).unwrap_err();
    assert!(
        err.to_string()
            .contains("schedulerConfiguration.maxInQueueJobRuns")
    );
}

fn start_request() -> pb::StartJobRunRequest {
    pb::StartJobRunRequest {
        name: "pi".into(),
        virtual_cluster_id: "0123456789abcdefghijklmnopqrstuvwxyz"
            .chars()
            .take(25)
            .collect(),
        client_token: "token-1".into(),
        execution_role_arn: "arn:aws:iam::123456789012:role/SparkJobRole".into(),
        release_label: "emr-7.9.0-latest".into(),
        job_driver: Some(submit_driver()),
        ..Default::default()
    }
}

/// What StartJobRun checks: the request as given, then (with no template
/// to merge) the run it becomes.
fn check_start(req: &pb::StartJobRunRequest) -> ApiResult<()> {
    start_job_run(req)?;
    complete_job_run(&pb::JobRun {
        execution_role_arn: req.execution_role_arn.clone(),
        release_label: req.release_label.clone(),
        job_driver: req.job_driver.clone(),
        configuration_overrides: req.configuration_overrides.clone(),
        tags: req.tags.clone(),
        ..Default::default()
    })
}

fn monitoring(r: &mut pb::StartJobRunRequest, m: pb::MonitoringConfiguration) {
    r.configuration_overrides = Some(pb::ConfigurationOverrides {
        application_configuration: vec![],
        monitoring_configuration: Some(m),
    });
}

fn rotation(size: &str, files: i32) -> pb::MonitoringConfiguration {
    pb::MonitoringConfiguration {
        container_log_rotation_configuration: Some(pb::ContainerLogRotationConfiguration {
            rotation_size: size.into(),
            max_files_to_keep: files,
        }),
        ..Default::default()
    }
}

fn submit(r: &mut pb::StartJobRunRequest) -> &mut pb::SparkSubmitJobDriver {
    r.job_driver
        .as_mut()
        .unwrap()
        .spark_submit_job_driver
        .as_mut()
        .unwrap()
}

#[test]
fn start_job_run_names_the_member_and_the_rule() {
    check_start(&start_request()).expect("the base request is valid");
    type Case = (&'static str, fn(&mut pb::StartJobRunRequest), &'static str);
    let cases: &[Case] = &[
        (
            "name pattern",
            |r| r.name = "bad name!".into(),
            "at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            "name length",
            |r| r.name = "a".repeat(65),
            "at 'name' failed to satisfy constraint: Member must have length less than or equal to 64",
        ),
        (
            "client token",
            |r| r.client_token = "x".repeat(65),
            "at 'clientToken'",
        ),
        (
            "client token missing",
            |r| r.client_token.clear(),
            "Value null at 'clientToken'",
        ),
        (
            "virtual cluster id",
            |r| r.virtual_cluster_id = "UPPER".into(),
            "at 'virtualClusterId'",
        ),
        (
            "role",
            |r| r.execution_role_arn = "arn:aws:iam::1:role/x".into(),
            "at 'executionRoleArn'",
        ),
        (
            "role missing",
            |r| r.execution_role_arn.clear(),
            "Value null at 'executionRoleArn'",
        ),
        (
            "release missing",
            |r| r.release_label.clear(),
            "Value null at 'releaseLabel'",
        ),
        (
            "release pattern",
            |r| r.release_label = "emr 7".into(),
            "at 'releaseLabel'",
        ),
        (
            "no driver",
            |r| r.job_driver = None,
            "Value null at 'jobDriver'",
        ),
        (
            "two drivers",
            |r| r.job_driver.as_mut().unwrap().spark_sql_job_driver = Some(Default::default()),
            "exactly one of sparkSubmitJobDriver and sparkSqlJobDriver",
        ),
        (
            "empty entry point",
            |r| submit(r).entry_point = " ".into(),
            "at 'jobDriver.sparkSubmitJobDriver.entryPoint'",
        ),
        (
            "entry point length",
            |r| submit(r).entry_point = "x".repeat(257),
            "less than or equal to 256",
        ),
        (
            "retry attempts",
            |r| {
                r.retry_policy_configuration =
                    Some(pb::RetryPolicyConfiguration { max_attempts: 0 })
            },
            "at 'retryPolicyConfiguration.maxAttempts'",
        ),
        (
            "retry attempts above sparkvc's limit",
            |r| {
                r.retry_policy_configuration =
                    Some(pb::RetryPolicyConfiguration { max_attempts: 11 })
            },
            "at 'retryPolicyConfiguration.maxAttempts'",
        ),
        (
            "too many tags",
            |r| r.tags = (0..51).map(|i| (format!("k{i}"), "v".into())).collect(),
            "at 'tags'",
        ),
        (
            "tag value",
            |r| r.tags = BTreeMap::from([("k".into(), "v".repeat(257))]),
            "at 'tags.k'",
        ),
        (
            "template id",
            |r| r.job_template_id = "UPPER".into(),
            "at 'jobTemplateId'",
        ),
        (
            "params without template",
            |r| r.job_template_parameters = BTreeMap::from([("a".into(), "1".into())]),
            "only be given together with jobTemplateId",
        ),
        (
            "log uri",
            |r| {
                monitoring(
                    r,
                    pb::MonitoringConfiguration {
                        s3_monitoring_configuration: Some(pb::S3MonitoringConfiguration {
                            log_uri: "/tmp/logs".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )
            },
            "s3MonitoringConfiguration.logUri",
        ),
        (
            "log group",
            |r| {
                monitoring(
                    r,
                    pb::MonitoringConfiguration {
                        cloud_watch_monitoring_configuration: Some(
                            pb::CloudWatchMonitoringConfiguration {
                                log_group_name: "bad group".into(),
                                ..Default::default()
                            },
                        ),
                        ..Default::default()
                    },
                )
            },
            "cloudWatchMonitoringConfiguration.logGroupName",
        ),
        (
            "rotation",
            |r| monitoring(r, rotation("5TB", 5)),
            "containerLogRotationConfiguration.rotationSize",
        ),
        (
            "max files",
            |r| monitoring(r, rotation("10MB", 51)),
            "containerLogRotationConfiguration.maxFilesToKeep",
        ),
        (
            "persistent ui",
            |r| {
                monitoring(
                    r,
                    pb::MonitoringConfiguration {
                        persistent_app_ui: "YES".into(),
                        ..Default::default()
                    },
                )
            },
            "Member must satisfy enum value set: [ENABLED, DISABLED]",
        ),
        (
            "classification",
            |r| {
                r.configuration_overrides = Some(pb::ConfigurationOverrides {
                    application_configuration: vec![pb::Configuration::default()],
                    monitoring_configuration: None,
                })
            },
            "applicationConfiguration.0.classification",
        ),
        (
            "oversized request",
            |r| submit(r).entry_point_arguments = vec!["x".repeat(1024); 300],
            "more than the 262144 sparkvc takes",
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut req = start_request();
        mutate(&mut req);
        let err = check_start(&req).expect_err(what);
        assert!(
            err.to_string().contains(expected),
            "{what}: {err} lacks {expected:?}"
        );
    }
}

#[test]
fn listings_check_ids_states_page_sizes_and_tokens() {
    for (id_value, expected) in [
        ("", "Value null at 'id'"),
        ("ABC", "at 'id'"),
        (&"a".repeat(65) as &str, "less than or equal to 64"),
    ] {
        let err = id("id", id_value).unwrap_err();
        assert!(err.to_string().contains(expected), "{id_value}: {err}");
    }
    assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
    assert_eq!(page_size(Some(1000)).unwrap(), 1000);
    for bad in [0, -1, 1001] {
        let err = page_size(Some(bad)).unwrap_err();
        assert!(err.to_string().contains("at 'maxResults'"), "{bad}: {err}");
    }
    let list = |states: &[&str]| pb::ListJobRunsRequest {
        virtual_cluster_id: "abcdefghijklmnopqrstuvwxy".into(),
        states: states.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    list_job_runs(&list(&["RUNNING", "CANCEL_PENDING"])).unwrap();
    let err = list_job_runs(&list(&["DONE"])).unwrap_err();
    assert!(err.to_string().contains("at 'states'"), "{err}");
    let err = list_job_runs(&list(&["RUNNING"; 11])).unwrap_err();
    assert!(err.to_string().contains("at 'states'"), "{err}");
    let err = list_virtual_clusters(&pb::ListVirtualClustersRequest {
        container_provider_type: "GKE".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("containerProviderType"), "{err}");
}

#[test]
fn virtual_clusters_need_an_eks_provider_with_a_namespace() {
    let request = |namespace: &str| -> pb::CreateVirtualClusterRequest {
        serde_json::from_value(serde_json::json!({
            "name": "team-a",
            "clientToken": "c",
            "containerProvider": {
                "id": "local", "type": "EKS",
                "info": {"eksInfo": {"namespace": namespace}}
            }
        }))
        .unwrap()
    };
    create_virtual_cluster(&request("team-a")).unwrap();
    let err = create_virtual_cluster(&request("Bad_Namespace")).unwrap_err();
    assert!(
        err.to_string()
            .contains("containerProvider.info.eksInfo.namespace"),
        "{err}"
    );
    let mut gke = request("team-a");
    gke.container_provider.as_mut().unwrap().r#type = "GKE".into();
    let err = create_virtual_cluster(&gke).unwrap_err();
    assert!(
        err.to_string().contains(
            "at 'containerProvider.type' failed to satisfy constraint: Member must satisfy enum value set: [EKS]"
        ),
        "{err}"
    );
    let mut no_info = request("team-a");
    no_info.container_provider.as_mut().unwrap().info = None;
    // The model leaves the namespace optional; CreateVirtualCluster asks
    // for it through namespace_of, as AWS does in practice.
    create_virtual_cluster(&no_info).unwrap();
    let err = namespace_of(no_info.container_provider.as_ref().unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("containerProvider.info.eksInfo.namespace"),
        "{err}"
    );
}

fn configuration(classification: &str, nested: Vec<pb::Configuration>) -> pb::Configuration {
    pb::Configuration {
        classification: classification.into(),
        properties: [("K".to_string(), "v".to_string())].into(),
        configurations: nested,
    }
}

#[test]
fn configurations_nest_two_levels_and_never_echo_a_property_value() {
    let with = |configs: Vec<pb::Configuration>| {
        let mut r = start_request();
        r.configuration_overrides = Some(pb::ConfigurationOverrides {
            application_configuration: configs,
            monitoring_configuration: None,
        });
        check_start(&r)
    };
    // spark-env with its nested export: two levels, as the model documents.
    with(vec![configuration(
        "spark-env",
        vec![configuration("export", vec![])],
    )])
    .unwrap();
    let deep = with(vec![configuration(
        "a",
        vec![configuration("b", vec![configuration("c", vec![])])],
    )])
    .unwrap_err()
    .to_string();
    assert!(deep.contains("at most 2 levels"), "{deep}");

    let mut bad = configuration("spark-defaults", vec![]);
    bad.properties = [(
        "spark.password".to_string(),
        format!("hunter2{}", " ".repeat(2000)),
    )]
    .into();
    let err = with(vec![bad]).unwrap_err().to_string();
    assert!(err.contains("spark.password"), "{err}");
    assert!(!err.contains("hunter2"), "the value was echoed: {err}");
}

#[test]
fn tag_resource_needs_tags_and_untag_resource_needs_tag_keys() {
    assert!(
        super::tag_map(&Default::default())
            .unwrap_err()
            .to_string()
            .contains("Value null at 'tags'")
    );
    assert!(
        super::tag_keys(&[])
            .unwrap_err()
            .to_string()
            .contains("Value null at 'tagKeys'")
    );
}
