//! Job templates: stored StartJobRun values with `${Name}` parameters.

use super::standalone::ListRequest;
use super::{ControlPlane, timestamp_from_micros};
use crate::error::ApiResult;
use crate::ids;
use sparkvc_proto::v1 as pb;

impl ControlPlane {
    pub async fn create_job_template(
        &self,
        req: pb::CreateJobTemplateRequest,
        created_by: &str,
    ) -> ApiResult<pb::CreateJobTemplateResponse> {
        let micros = self.clock.now_micros();
        let id = ids::new_id(micros, ids::TEMPLATE_ID_LEN);
        let template = pb::JobTemplate {
            name: req.name.clone(),
            arn: self.arns().job_template(&id),
            id,
            created_at: Some(timestamp_from_micros(micros)),
            created_by: created_by.to_string(),
            tags: req.tags.clone(),
            job_template_data: req.job_template_data.clone(),
            kms_key_arn: req.kms_key_arn.clone(),
            decryption_error: String::new(),
        };
        let stored = self
            .create_standalone(
                &req,
                &req.client_token,
                |r| r.client_token.clear(),
                template,
            )
            .await?;
        Ok(pb::CreateJobTemplateResponse {
            id: stored.id,
            name: stored.name,
            arn: stored.arn,
            created_at: stored.created_at,
        })
    }

    pub fn describe_job_template(&self, id: &str) -> ApiResult<pb::JobTemplate> {
        self.describe_standalone(id)
    }

    pub fn list_job_templates(
        &self,
        req: &pb::ListJobTemplatesRequest,
    ) -> ApiResult<pb::ListJobTemplatesResponse> {
        let (templates, next_token) = self.list_standalone(ListRequest {
            created_after: req.created_after.as_ref(),
            created_before: req.created_before.as_ref(),
            max_results: req.max_results,
            next_token: &req.next_token,
        })?;
        Ok(pb::ListJobTemplatesResponse {
            templates,
            next_token,
        })
    }

    /// Job runs started from a template keep their merged values, so deleting
    /// the template affects only future StartJobRun calls.
    pub async fn delete_job_template(&self, id: &str) -> ApiResult<()> {
        self.delete_standalone::<pb::JobTemplate>(id).await
    }
}
