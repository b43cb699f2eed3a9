//! A store written by an earlier release, checked in so that every later
//! release proves it still opens and serves it (`tests/upgrade.rs`).
//!
//! `examples/make_store_fixture.rs` writes one with the server of the tree
//! it is built from, through the API like any client: the data directory as
//! `fixtures/store-format-<N>.tar.gz` and what the API said about every
//! resource right after as `fixtures/store-format-<N>.json`. Make a new one
//! whenever the store's format (`store::format::CURRENT`) goes up, and keep
//! the old ones: each is a release users may upgrade from.

use crate::{Client, RELEASE, ROLE_ARN, submit_driver};
use serde::{Deserialize, Serialize};
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The fixtures' directory in the source tree.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// What the API said about the fixture's resources when it was written.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The store format the writing release had.
    pub store_format: u32,
    pub virtual_clusters: Vec<pb::VirtualCluster>,
    pub job_runs: Vec<pb::JobRun>,
    pub job_templates: Vec<pb::JobTemplate>,
    pub security_configurations: Vec<pb::SecurityConfiguration>,
    /// Tags by virtual cluster ARN, as ListTagsForResource returns them.
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// The request that created the fixture's live virtual cluster; sent again
/// with the same client token it must return the same cluster.
pub fn live_cluster_request() -> pb::CreateVirtualClusterRequest {
    pb::CreateVirtualClusterRequest {
        name: "fixture-live".into(),
        container_provider: Some(pb::ContainerProvider {
            r#type: "EKS".into(),
            id: "local".into(),
            info: Some(pb::ContainerInfo {
                eks_info: Some(pb::EksInfo {
                    namespace: "fixture-tenant".into(),
                    node_label: String::new(),
                }),
            }),
        }),
        client_token: "fixture-live-token".into(),
        tags: [("team".to_string(), "fixture".to_string())].into(),
        ..Default::default()
    }
}

fn run_request(vc: &str, name: &str) -> pb::StartJobRunRequest {
    pb::StartJobRunRequest {
        name: name.into(),
        virtual_cluster_id: vc.into(),
        client_token: format!("fixture-{name}-token"),
        execution_role_arn: ROLE_ARN.into(),
        release_label: RELEASE.into(),
        job_driver: Some(submit_driver(
            "local:///opt/spark/examples/src/main/python/pi.py",
        )),
        tags: [("run".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

/// Fills a fresh server (API-only: runs stay PENDING unless cancelled) with
/// one of each kind of resource and state this mode can make, and returns
/// what the API says about them.
pub async fn populate(client: &mut Client) -> Manifest {
    let live = client
        .create_virtual_cluster(live_cluster_request())
        .await
        .expect("create the live virtual cluster")
        .into_inner()
        .id;
    let mut doomed_request = live_cluster_request();
    doomed_request.name = "fixture-deleted".into();
    doomed_request.client_token = "fixture-deleted-token".into();
    if let Some(eks) = doomed_request
        .container_provider
        .as_mut()
        .and_then(|p| p.info.as_mut())
        .and_then(|i| i.eks_info.as_mut())
    {
        eks.namespace = "fixture-gone".into();
    }
    let doomed = client
        .create_virtual_cluster(doomed_request)
        .await
        .expect("create the virtual cluster to delete")
        .into_inner()
        .id;

    let mut runs = Vec::new();
    for name in ["waiting-1", "waiting-2", "cancelled"] {
        let id = client
            .start_job_run(run_request(&live, name))
            .await
            .unwrap_or_else(|e| panic!("start {name}: {e}"))
            .into_inner()
            .id;
        runs.push(id);
    }
    client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: runs[2].clone(),
            virtual_cluster_id: live.clone(),
        })
        .await
        .expect("cancel a run");
    client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: doomed.clone() })
        .await
        .expect("delete a virtual cluster");

    let template_data: pb::JobTemplateData = serde_json::from_value(serde_json::json!({
        "executionRoleArn": ROLE_ARN,
        "releaseLabel": RELEASE,
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
            "entryPointArguments": ["${Partitions}"]}},
        "parameterConfiguration": {"Partitions": {"type": "NUMBER", "defaultValue": "10"}}
    }))
    .expect("template data");
    let template = client
        .create_job_template(pb::CreateJobTemplateRequest {
            name: "fixture-template".into(),
            client_token: "fixture-template-token".into(),
            job_template_data: Some(template_data),
            tags: [("kind".to_string(), "template".to_string())].into(),
            ..Default::default()
        })
        .await
        .expect("create a job template")
        .into_inner();
    let security_data: pb::SecurityConfigurationData = serde_json::from_value(serde_json::json!({
        "authorizationConfiguration": {"encryptionConfiguration": {"inTransitEncryptionConfiguration": {
            "tlsCertificateConfiguration": {
                "certificateProviderType": "PEM",
                "publicCertificateSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:fixture-cert",
                "privateCertificateSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:fixture-key"
            }
        }}}
    }))
    .expect("security configuration data");
    let security = client
        .create_security_configuration(pb::CreateSecurityConfigurationRequest {
            name: "fixture-tls".into(),
            client_token: "fixture-tls-token".into(),
            security_configuration_data: Some(security_data),
            ..Default::default()
        })
        .await
        .expect("create a security configuration")
        .into_inner();
    let live_arn = crate::describe_vc(client, &live).await.arn;
    client
        .tag_resource(pb::TagResourceRequest {
            resource_arn: live_arn,
            tags: [("added".to_string(), "later".to_string())].into(),
        })
        .await
        .expect("tag the live virtual cluster");

    read_back(client, &[live, doomed], &runs, &template.id, &security.id).await
}

/// What the API says now about the given resources.
pub async fn read_back(
    client: &mut Client,
    clusters: &[String],
    runs: &[String],
    template: &str,
    security: &str,
) -> Manifest {
    let mut manifest = Manifest {
        store_format: 1,
        virtual_clusters: vec![],
        job_runs: vec![],
        job_templates: vec![],
        security_configurations: vec![],
        tags: BTreeMap::new(),
    };
    for id in clusters {
        manifest
            .virtual_clusters
            .push(crate::describe_vc(client, id).await);
    }
    let live = &clusters[0];
    for id in runs {
        manifest
            .job_runs
            .push(crate::describe_run(client, live, id).await);
    }
    manifest.job_templates.push(
        client
            .describe_job_template(pb::DescribeJobTemplateRequest {
                id: template.into(),
            })
            .await
            .expect("describe the template")
            .into_inner()
            .job_template
            .expect("a template"),
    );
    manifest.security_configurations.push(
        client
            .describe_security_configuration(pb::DescribeSecurityConfigurationRequest {
                id: security.into(),
            })
            .await
            .expect("describe the security configuration")
            .into_inner()
            .security_configuration
            .expect("a security configuration"),
    );
    // TagResource and ListTagsForResource take virtual cluster ARNs only,
    // as in AWS; the other resources show their tags when described.
    let arns: Vec<String> = manifest
        .virtual_clusters
        .iter()
        .map(|v| v.arn.clone())
        .collect();
    for arn in arns {
        let tags = client
            .list_tags_for_resource(pb::ListTagsForResourceRequest {
                resource_arn: arn.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("list tags of {arn}: {e}"))
            .into_inner()
            .tags;
        manifest.tags.insert(arn, tags.into_iter().collect());
    }
    manifest
}
