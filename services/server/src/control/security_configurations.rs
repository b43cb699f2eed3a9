//! Security configurations: stored and returned; sparkvc does not enforce
//! them yet.

use super::standalone::ListRequest;
use super::{ControlPlane, timestamp_from_micros};
use crate::error::ApiResult;
use crate::ids;
use sparkvc_proto::v1 as pb;

impl ControlPlane {
    pub async fn create_security_configuration(
        &self,
        req: pb::CreateSecurityConfigurationRequest,
        created_by: &str,
    ) -> ApiResult<pb::CreateSecurityConfigurationResponse> {
        let micros = self.clock.now_micros();
        let id = ids::new_id(micros, ids::TEMPLATE_ID_LEN);
        let config = pb::SecurityConfiguration {
            name: req.name.clone(),
            arn: self.arns().security_configuration(&id),
            id,
            created_at: Some(timestamp_from_micros(micros)),
            created_by: created_by.to_string(),
            security_configuration_data: req.security_configuration_data.clone(),
            tags: req.tags.clone(),
        };
        let stored = self
            .create_standalone(&req, &req.client_token, |r| r.client_token.clear(), config)
            .await?;
        Ok(pb::CreateSecurityConfigurationResponse {
            id: stored.id,
            name: stored.name,
            arn: stored.arn,
        })
    }

    pub fn describe_security_configuration(
        &self,
        id: &str,
    ) -> ApiResult<pb::SecurityConfiguration> {
        self.describe_standalone(id)
    }

    pub fn list_security_configurations(
        &self,
        req: &pb::ListSecurityConfigurationsRequest,
    ) -> ApiResult<pb::ListSecurityConfigurationsResponse> {
        let (security_configurations, next_token) = self.list_standalone(ListRequest {
            created_after: req.created_after.as_ref(),
            created_before: req.created_before.as_ref(),
            max_results: req.max_results,
            next_token: &req.next_token,
        })?;
        Ok(pb::ListSecurityConfigurationsResponse {
            security_configurations,
            next_token,
        })
    }

    pub async fn delete_security_configuration(&self, id: &str) -> ApiResult<()> {
        self.delete_standalone::<pb::SecurityConfiguration>(id)
            .await
    }
}
