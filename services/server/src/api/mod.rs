//! The gRPC service: validate the request, call the control plane, map the
//! result. Nothing else belongs here.

pub mod limits;
mod status;

pub use status::to_status;

use crate::auth::Caller;
use crate::control::ControlPlane;
use crate::error::{ApiError, ApiResult};
use crate::validate;
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

/// The caller the auth layer put in front of every call. Its absence is a
/// wiring bug, never a reason to act as anyone.
fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("the call was not authenticated"))
}

#[tonic::async_trait]
impl EmrContainers for Api {
    #[tracing::instrument(skip_all, fields(name = %req.get_ref().name))]
    async fn create_virtual_cluster(
        &self,
        req: Request<pb::CreateVirtualClusterRequest>,
    ) -> Reply<pb::CreateVirtualClusterResponse> {
        let req = req.into_inner();
        reply(
            async {
                validate::create_virtual_cluster(&req)?;
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
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
            let virtual_cluster = Some(self.control.describe_virtual_cluster(&req.id)?);
            Ok(pb::DescribeVirtualClusterResponse { virtual_cluster })
        })())
    }

    async fn list_virtual_clusters(
        &self,
        req: Request<pb::ListVirtualClustersRequest>,
    ) -> Reply<pb::ListVirtualClustersResponse> {
        let req = req.into_inner();
        reply(
            validate::list_virtual_clusters(&req)
                .and_then(|()| self.control.list_virtual_clusters(&req)),
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().id))]
    async fn update_virtual_cluster(
        &self,
        req: Request<pb::UpdateVirtualClusterRequest>,
    ) -> Reply<pb::UpdateVirtualClusterResponse> {
        let req = req.into_inner();
        reply(
            async {
                validate::update_virtual_cluster(&req)?;
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
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
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
        let caller = caller(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::start_job_run(&req)?;
                self.control.start_job_run(req, &caller.arn).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn describe_job_run(
        &self,
        req: Request<pb::DescribeJobRunRequest>,
    ) -> Reply<pb::DescribeJobRunResponse> {
        let req = req.into_inner();
        reply((|| {
            validate::id("virtualClusterId", &req.virtual_cluster_id)?;
            validate::id("id", &req.id)?;
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
        let req = req.into_inner();
        reply(validate::list_job_runs(&req).and_then(|()| self.control.list_job_runs(&req)))
    }

    #[tracing::instrument(skip_all, fields(virtual_cluster_id = %req.get_ref().virtual_cluster_id, job_run_id = %req.get_ref().id))]
    async fn get_job_run_app_ui_url(
        &self,
        req: Request<pb::GetJobRunAppUiUrlRequest>,
    ) -> Reply<pb::GetJobRunAppUiUrlResponse> {
        let req = req.into_inner();
        reply((|| {
            validate::id("virtualClusterId", &req.virtual_cluster_id)?;
            validate::id("id", &req.id)?;
            let expires_in = req.expires_in_seconds.unwrap_or(3600);
            validate::rules::in_range("expiresInSeconds", expires_in.into(), 60, 86_400)?;
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
        let req = req.into_inner();
        reply(
            async {
                validate::id("virtualClusterId", &req.virtual_cluster_id)?;
                validate::id("id", &req.id)?;
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
        let req = req.into_inner();
        reply(
            async {
                validate::id("virtualClusterId", &req.virtual_cluster_id)?;
                validate::id("id", &req.id)?;
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
        let caller = caller(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::create_job_template(&req)?;
                self.control.create_job_template(req, &caller.arn).await
            }
            .await,
        )
    }

    async fn describe_job_template(
        &self,
        req: Request<pb::DescribeJobTemplateRequest>,
    ) -> Reply<pb::DescribeJobTemplateResponse> {
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
            let job_template = Some(self.control.describe_job_template(&req.id)?);
            Ok(pb::DescribeJobTemplateResponse { job_template })
        })())
    }

    async fn list_job_templates(
        &self,
        req: Request<pb::ListJobTemplatesRequest>,
    ) -> Reply<pb::ListJobTemplatesResponse> {
        let req = req.into_inner();
        reply(
            validate::next_token(&req.next_token)
                .and_then(|()| self.control.list_job_templates(&req)),
        )
    }

    async fn delete_job_template(
        &self,
        req: Request<pb::DeleteJobTemplateRequest>,
    ) -> Reply<pb::DeleteJobTemplateResponse> {
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
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
        let caller = caller(&req)?;
        let req = req.into_inner();
        reply(
            async {
                validate::create_security_configuration(&req)?;
                self.control
                    .create_security_configuration(req, &caller.arn)
                    .await
            }
            .await,
        )
    }

    async fn describe_security_configuration(
        &self,
        req: Request<pb::DescribeSecurityConfigurationRequest>,
    ) -> Reply<pb::DescribeSecurityConfigurationResponse> {
        let req = req.into_inner();
        reply((|| {
            validate::id("id", &req.id)?;
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
        let req = req.into_inner();
        reply(
            validate::next_token(&req.next_token)
                .and_then(|()| self.control.list_security_configurations(&req)),
        )
    }

    async fn delete_security_configuration(
        &self,
        req: Request<pb::DeleteSecurityConfigurationRequest>,
    ) -> Reply<pb::DeleteSecurityConfigurationResponse> {
        let req = req.into_inner();
        reply(
            async {
                validate::id("id", &req.id)?;
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
        let req = req.into_inner();
        reply(
            async {
                validate::resource_arn(&req.resource_arn)?;
                validate::tag_map(&req.tags)?;
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
        let req = req.into_inner();
        reply(
            async {
                validate::resource_arn(&req.resource_arn)?;
                validate::tag_keys(&req.tag_keys)?;
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
        let req = req.into_inner();
        reply(validate::resource_arn(&req.resource_arn).and_then(|()| {
            let tags = self.control.list_tags_for_resource(&req.resource_arn)?;
            Ok(pb::ListTagsForResourceResponse { tags })
        }))
    }
}
