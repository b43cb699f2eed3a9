//! Job templates: stored StartJobRun values with `${Name}` parameters.

use super::{ControlPlane, Idempotency, fingerprint, timestamp_from_micros, window};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use sparkvc_proto::v1 as pb;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job template {id} doesn't exist."))
}

impl ControlPlane {
    pub async fn create_job_template(
        &self,
        req: pb::CreateJobTemplateRequest,
    ) -> ApiResult<pb::CreateJobTemplateResponse> {
        let micros = self.clock.now_micros();
        let id = ids::new_id(micros, ids::TEMPLATE_ID_LEN);
        let template = pb::JobTemplate {
            name: req.name.clone(),
            arn: self.arns().job_template(&id),
            id,
            created_at: Some(timestamp_from_micros(micros)),
            created_by: self.identity.caller_arn.clone(),
            tags: req.tags.clone(),
            job_template_data: req.job_template_data.clone(),
            kms_key_arn: req.kms_key_arn.clone(),
            decryption_error: String::new(),
        };
        let token = Idempotency {
            operation: "CreateJobTemplate",
            scope: "",
            token: &req.client_token,
            fingerprint: fingerprint(&req, |r| r.client_token.clear()),
        };
        let stored = self
            .store
            .write(|txn| {
                if let Some(prior) = token.replayed(txn)? {
                    return txn.job_template(&prior)?.ok_or_else(|| not_found(&prior));
                }
                txn.put_job_template(&template);
                token.record(txn, &template.id);
                Ok(template)
            })
            .await?;
        Ok(pb::CreateJobTemplateResponse {
            id: stored.id,
            name: stored.name,
            arn: stored.arn,
            created_at: stored.created_at,
        })
    }

    pub fn describe_job_template(&self, id: &str) -> ApiResult<pb::JobTemplate> {
        self.store.job_template(id)?.ok_or_else(|| not_found(id))
    }

    pub fn list_job_templates(
        &self,
        req: &pb::ListJobTemplatesRequest,
    ) -> ApiResult<pb::ListJobTemplatesResponse> {
        let window = window(
            "jobtemplates",
            req.created_after.as_ref(),
            req.created_before.as_ref(),
            req.max_results,
            &req.next_token,
        )?;
        let page = self.store.list_job_templates(&window)?;
        Ok(pb::ListJobTemplatesResponse {
            templates: page.items,
            next_token: page
                .next
                .map(|c| c.to_token("jobtemplates"))
                .unwrap_or_default(),
        })
    }

    /// Job runs started from a template keep their merged values, so deleting
    /// the template affects only future StartJobRun calls.
    pub async fn delete_job_template(&self, id: &str) -> ApiResult<()> {
        self.store
            .write(|txn| {
                txn.job_template(id)?
                    .ok_or_else(|| not_found(id).into_validation())?;
                txn.delete_job_template(id);
                Ok(())
            })
            .await
    }
}
