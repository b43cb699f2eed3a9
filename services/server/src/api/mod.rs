//! The gRPC service: validate the request, authorize it (`access.rs`),
//! call the control plane, map the result. Nothing else belongs here.

mod access;
pub mod limits;
mod status;

pub use status::to_status;

use crate::auth::Caller;
use crate::control::ControlPlane;
use crate::error::{ApiError, ApiResult};
use crate::validate;
use access::{Need, Requester, action};
use sparkvc_proto::EmrContainers;
use sparkvc_proto::v1 as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct Api {
    control: Arc<ControlPlane>,
    /// The app-UI links, when the server has an HTTP endpoint.
    app_ui: Option<Arc<crate::app_ui::AppUi>>,
}

impl Api {
    pub fn new(control: Arc<ControlPlane>, app_ui: Option<Arc<crate::app_ui::AppUi>>) -> Self {
        Self { control, app_ui }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: ApiResult<T>) -> Reply<T> {
    result.map(Response::new).map_err(to_status)
}

/// Who is calling, and from where.
struct Who {
    caller: Caller,
    transport: crate::tls::Transport,
    /// Where the auth layer's audit record learns the decision.
    verdict: Option<crate::auth::audit::VerdictSlot>,
}

/// The caller the auth layer put in front of every call. Its absence is a
/// wiring bug, never a reason to act as anyone.
fn who<T>(req: &Request<T>) -> Result<Who, Status> {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("the call was not authenticated"))?;
    Ok(Who {
        caller,
        transport: req
            .extensions()
            .get::<crate::tls::Transport>()
            .copied()
            .ok_or_else(|| Status::internal("the call's transport was not recorded"))?,
        verdict: req
            .extensions()
            .get::<crate::auth::audit::VerdictSlot>()
            .cloned(),
    })
}

impl Api {
    fn access<'a>(&'a self, who: &'a Who) -> Requester<'a> {
        Requester {
            caller: &who.caller,
            source_ip: who.transport.remote.map(|a| a.ip()),
            secure_transport: who.transport.tls,
            control: &self.control,
            verdict: who.verdict.as_ref(),
            call_context: Default::default(),
        }
    }

    /// What StartJobRun needs besides the operation itself: PassRole on the
    /// execution role (the request's, else the template's), DescribeJobTemplate
    /// on the template, TagResource when tags are sent.
    fn start_job_run_needs(&self, a: &Requester<'_>, req: &pb::StartJobRunRequest) -> Vec<Need> {
        let vc = &req.virtual_cluster_id;
        let mut role = req.execution_role_arn.clone();
        let template_arn = (!req.job_template_id.is_empty())
            .then(|| self.control.arns().job_template(&req.job_template_id));
        if role.is_empty() && !req.job_template_id.is_empty() {
            role = self
                .control
                .describe_job_template(&req.job_template_id)
                .and_then(|t| crate::template::instantiate(&t, &req.job_template_parameters))
                .map(|values| values.execution_role_arn)
                .unwrap_or_default();
        }
        let mut start = a
            .on_virtual_cluster("StartJobRun", vc)
            .with_request_tags(&req.tags);
        start
            .extra
            .push(("emr-containers:ExecutionRoleArn", role.clone()));
        if let Some(arn) = &template_arn {
            start
                .extra
                .push(("emr-containers:JobTemplateArn", arn.clone()));
        }
        let mut needs = vec![start];
        if !role.is_empty() {
            let mut pass = Need::new("iam:PassRole", role);
            pass.extra
                .push(("iam:PassedToService", "emr-containers.amazonaws.com".into()));
            needs.push(pass);
        }
        if let Some(arn) = &template_arn {
            needs.push(a.on_arn("DescribeJobTemplate", arn));
        }
        if !req.tags.is_empty() {
            let runs = format!("{}/jobruns/*", self.control.arns().virtual_cluster(vc));
            needs.push(Need::new(action("TagResource"), runs).with_request_tags(&req.tags));
        }
        needs
    }
}

#[tonic::async_trait]
impl EmrContainers for Api {
    #[tracing::instrument(skip_all, fields(name = %req.get_ref().name))]
    async fn create_virtual_cluster(
        &self,
        req: Request<pb::CreateVirtualClusterRequest>,
    ) -> Reply<pb::CreateVirtualClusterResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::create_virtual_cluster(&req)?;
                let a = self.access(&who);
                a.require_all(&a.creating("CreateVirtualCluster", &req.tags))?;
                self.control.create_virtual_cluster(req).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().id))]
    async fn describe_virtual_cluster(
        &self,
        req: Request<pb::DescribeVirtualClusterRequest>,
    ) -> Reply<pb::DescribeVirtualClusterResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
            let a = self.access(&who);
            a.require(&a.on_virtual_cluster("DescribeVirtualCluster", &req.id))?;
            let virtual_cluster = Some(self.control.describe_virtual_cluster(&req.id)?);
            Ok(pb::DescribeVirtualClusterResponse { virtual_cluster })
        })())
    }

    async fn list_virtual_clusters(
        &self,
        req: Request<pb::ListVirtualClustersRequest>,
    ) -> Reply<pb::ListVirtualClustersResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::list_virtual_clusters(&req)?;
            let a = self.access(&who);
            a.require(&Need::new(action("ListVirtualClusters"), "*"))?;
            let mut page = self.control.list_virtual_clusters(&req)?;
            page.virtual_clusters
                .retain(|vc| a.may_describe("DescribeVirtualCluster", &vc.arn, &vc.tags));
            Ok(page)
        })())
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().id))]
    async fn update_virtual_cluster(
        &self,
        req: Request<pb::UpdateVirtualClusterRequest>,
    ) -> Reply<pb::UpdateVirtualClusterResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::update_virtual_cluster(&req)?;
                let a = self.access(&who);
                a.require(&a.on_virtual_cluster("UpdateVirtualCluster", &req.id))?;
                let virtual_cluster = Some(self.control.update_virtual_cluster(req).await?);
                Ok(pb::UpdateVirtualClusterResponse { virtual_cluster })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().id))]
    async fn delete_virtual_cluster(
        &self,
        req: Request<pb::DeleteVirtualClusterRequest>,
    ) -> Reply<pb::DeleteVirtualClusterResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
                let a = self.access(&who);
                a.require(&a.on_virtual_cluster("DeleteVirtualCluster", &req.id))?;
                self.control.delete_virtual_cluster(&req.id).await?;
                Ok(pb::DeleteVirtualClusterResponse { id: req.id })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id))]
    async fn start_job_run(
        &self,
        req: Request<pb::StartJobRunRequest>,
    ) -> Reply<pb::StartJobRunResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::start_job_run(&req)?;
                let a = self.access(&who);
                a.require_all(&self.start_job_run_needs(&a, &req))?;
                self.control.start_job_run(req, &who.caller.arn).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn describe_job_run(
        &self,
        req: Request<pb::DescribeJobRunRequest>,
    ) -> Reply<pb::DescribeJobRunResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::id("virtualClusterId", &req.virtual_cluster_id)?;
            validate::id("id", &req.id)?;
            let a = self.access(&who);
            a.require(&a.on_job_run(action("DescribeJobRun"), &req.virtual_cluster_id, &req.id))?;
            let job_run = Some(
                self.control
                    .describe_job_run(&req.virtual_cluster_id, &req.id)?,
            );
            Ok(pb::DescribeJobRunResponse { job_run })
        })())
    }

    async fn list_job_runs(
        &self,
        req: Request<pb::ListJobRunsRequest>,
    ) -> Reply<pb::ListJobRunsResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::list_job_runs(&req)?;
            let a = self.access(&who);
            a.require(&a.on_virtual_cluster("ListJobRuns", &req.virtual_cluster_id))?;
            let mut page = self.control.list_job_runs(&req)?;
            page.job_runs
                .retain(|run| a.may_describe("DescribeJobRun", &run.arn, &run.tags));
            Ok(page)
        })())
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn get_job_run_app_ui_url(
        &self,
        req: Request<pb::GetJobRunAppUiUrlRequest>,
    ) -> Reply<pb::GetJobRunAppUiUrlResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::id("virtualClusterId", &req.virtual_cluster_id)?;
            validate::id("id", &req.id)?;
            let expires_in = req.expires_in_seconds.unwrap_or(3600);
            validate::rules::in_range("expiresInSeconds", expires_in.into(), 60, 86_400)?;
            let a = self.access(&who);
            a.require(&a.on_job_run(
                "sparkvc:GetJobRunAppUiUrl".into(),
                &req.virtual_cluster_id,
                &req.id,
            ))?;
            let run = self
                .control
                .describe_job_run(&req.virtual_cluster_id, &req.id)?;
            let Some(ui) = &self.app_ui else {
                return Err(ApiError::validation(
                    "This sparkvc server serves no app UI: start it with --http-listen.",
                ));
            };
            let disabled = run
                .configuration_overrides
                .as_ref()
                .and_then(|o| o.monitoring_configuration.as_ref())
                .is_some_and(|m| m.persistent_app_ui == "DISABLED");
            if disabled {
                return Err(ApiError::validation(format!(
                    "Job run {} was started with persistentAppUI DISABLED.",
                    run.id
                )));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let expires = now + expires_in.unsigned_abs() as u64;
            Ok(pb::GetJobRunAppUiUrlResponse {
                url: ui.link(&run.virtual_cluster_id, &run.id, expires),
                expires_at: Some(prost_types::Timestamp {
                    seconds: expires as i64,
                    nanos: 0,
                }),
            })
        })())
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn get_job_run_logs(
        &self,
        req: Request<pb::GetJobRunLogsRequest>,
    ) -> Reply<pb::GetJobRunLogsResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::id("virtualClusterId", &req.virtual_cluster_id)?;
                validate::id("id", &req.id)?;
                let a = self.access(&who);
                a.require(&a.on_job_run(
                    "sparkvc:GetJobRunLogs".into(),
                    &req.virtual_cluster_id,
                    &req.id,
                ))?;
                self.control.get_job_run_logs(&req).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn cancel_job_run(
        &self,
        req: Request<pb::CancelJobRunRequest>,
    ) -> Reply<pb::CancelJobRunResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::id("virtualClusterId", &req.virtual_cluster_id)?;
                validate::id("id", &req.id)?;
                let a = self.access(&who);
                a.require(&a.on_job_run(action("CancelJobRun"), &req.virtual_cluster_id, &req.id))?;
                self.control
                    .cancel_job_run(&req.virtual_cluster_id, &req.id)
                    .await?;
                Ok(pb::CancelJobRunResponse {
                    id: req.id,
                    virtual_cluster_id: req.virtual_cluster_id,
                })
            }
            .await,
        )
    }

    async fn create_job_template(
        &self,
        req: Request<pb::CreateJobTemplateRequest>,
    ) -> Reply<pb::CreateJobTemplateResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::create_job_template(&req)?;
                let a = self.access(&who);
                a.require_all(&a.creating("CreateJobTemplate", &req.tags))?;
                self.control.create_job_template(req, &who.caller.arn).await
            }
            .await,
        )
    }

    async fn describe_job_template(
        &self,
        req: Request<pb::DescribeJobTemplateRequest>,
    ) -> Reply<pb::DescribeJobTemplateResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
            let a = self.access(&who);
            a.require(&a.on_arn(
                "DescribeJobTemplate",
                &self.control.arns().job_template(&req.id),
            ))?;
            let job_template = Some(self.control.describe_job_template(&req.id)?);
            Ok(pb::DescribeJobTemplateResponse { job_template })
        })())
    }

    async fn list_job_templates(
        &self,
        req: Request<pb::ListJobTemplatesRequest>,
    ) -> Reply<pb::ListJobTemplatesResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::next_token(&req.next_token)?;
            let a = self.access(&who);
            a.require(&Need::new(action("ListJobTemplates"), "*"))?;
            let mut page = self.control.list_job_templates(&req)?;
            page.templates
                .retain(|t| a.may_describe("DescribeJobTemplate", &t.arn, &t.tags));
            Ok(page)
        })())
    }

    async fn delete_job_template(
        &self,
        req: Request<pb::DeleteJobTemplateRequest>,
    ) -> Reply<pb::DeleteJobTemplateResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
                let a = self.access(&who);
                a.require(&a.on_arn(
                    "DeleteJobTemplate",
                    &self.control.arns().job_template(&req.id),
                ))?;
                self.control.delete_job_template(&req.id).await?;
                Ok(pb::DeleteJobTemplateResponse { id: req.id })
            }
            .await,
        )
    }

    async fn create_security_configuration(
        &self,
        req: Request<pb::CreateSecurityConfigurationRequest>,
    ) -> Reply<pb::CreateSecurityConfigurationResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::create_security_configuration(&req)?;
                let a = self.access(&who);
                a.require_all(&a.creating("CreateSecurityConfiguration", &req.tags))?;
                self.control
                    .create_security_configuration(req, &who.caller.arn)
                    .await
            }
            .await,
        )
    }

    async fn describe_security_configuration(
        &self,
        req: Request<pb::DescribeSecurityConfigurationRequest>,
    ) -> Reply<pb::DescribeSecurityConfigurationResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
            let a = self.access(&who);
            a.require(&a.on_arn(
                "DescribeSecurityConfiguration",
                &self.control.arns().security_configuration(&req.id),
            ))?;
            let security_configuration =
                Some(self.control.describe_security_configuration(&req.id)?);
            Ok(pb::DescribeSecurityConfigurationResponse {
                security_configuration,
            })
        })())
    }

    async fn list_security_configurations(
        &self,
        req: Request<pb::ListSecurityConfigurationsRequest>,
    ) -> Reply<pb::ListSecurityConfigurationsResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply((|| {
            validate::next_token(&req.next_token)?;
            let a = self.access(&who);
            a.require(&Need::new(action("ListSecurityConfigurations"), "*"))?;
            let mut page = self.control.list_security_configurations(&req)?;
            page.security_configurations
                .retain(|c| a.may_describe("DescribeSecurityConfiguration", &c.arn, &c.tags));
            Ok(page)
        })())
    }

    async fn delete_security_configuration(
        &self,
        req: Request<pb::DeleteSecurityConfigurationRequest>,
    ) -> Reply<pb::DeleteSecurityConfigurationResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
                let a = self.access(&who);
                a.require(&a.on_arn(
                    "DeleteSecurityConfiguration",
                    &self.control.arns().security_configuration(&req.id),
                ))?;
                self.control.delete_security_configuration(&req.id).await?;
                Ok(pb::DeleteSecurityConfigurationResponse { id: req.id })
            }
            .await,
        )
    }

    async fn tag_resource(
        &self,
        req: Request<pb::TagResourceRequest>,
    ) -> Reply<pb::TagResourceResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::resource_arn(&req.resource_arn)?;
                validate::tag_map(&req.tags)?;
                let a = self.access(&who);
                a.require(
                    &a.on_arn("TagResource", &req.resource_arn)
                        .with_request_tags(&req.tags),
                )?;
                self.control
                    .tag_resource(&req.resource_arn, req.tags)
                    .await?;
                Ok(pb::TagResourceResponse {})
            }
            .await,
        )
    }

    async fn untag_resource(
        &self,
        req: Request<pb::UntagResourceRequest>,
    ) -> Reply<pb::UntagResourceResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::resource_arn(&req.resource_arn)?;
                validate::tag_keys(&req.tag_keys)?;
                let a = self.access(&who);
                let mut need = a.on_arn("UntagResource", &req.resource_arn);
                need.tag_keys = Some(req.tag_keys.clone());
                a.require(&need)?;
                self.control
                    .untag_resource(&req.resource_arn, &req.tag_keys)
                    .await?;
                Ok(pb::UntagResourceResponse {})
            }
            .await,
        )
    }

    async fn list_tags_for_resource(
        &self,
        req: Request<pb::ListTagsForResourceRequest>,
    ) -> Reply<pb::ListTagsForResourceResponse> {
        let who = who(&req)?;
        let req = req.into_inner();
        reply(validate::resource_arn(&req.resource_arn).and_then(|()| {
            let a = self.access(&who);
            a.require(&a.on_arn("ListTagsForResource", &req.resource_arn))?;
            let tags = self.control.list_tags_for_resource(&req.resource_arn)?;
            Ok(pb::ListTagsForResourceResponse { tags })
        }))
    }
}
