//! Security configurations: stored and returned; sparkvc does not enforce
//! them yet.

use super::{ControlPlane, Idempotency, fingerprint, timestamp_from_micros, window};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use sparkvc_proto::v1 as pb;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Security configuration {id} doesn't exist."))
}

impl ControlPlane {
    pub async fn create_security_configuration(
        &self,
        req: pb::CreateSecurityConfigurationRequest,
    ) -> ApiResult<pb::CreateSecurityConfigurationResponse> {
        let micros = self.clock.now_micros();
        let id = ids::new_id(micros, ids::TEMPLATE_ID_LEN);
        let config = pb::SecurityConfiguration {
            name: req.name.clone(),
            arn: self.arns().security_configuration(&id),
            id,
            created_at: Some(timestamp_from_micros(micros)),
            created_by: self.identity.caller_arn.clone(),
            security_configuration_data: req.security_configuration_data.clone(),
            tags: req.tags.clone(),
        };
        let token = Idempotency {
            operation: "CreateSecurityConfiguration",
            scope: "",
            token: &req.client_token,
            fingerprint: fingerprint(&req, |r| r.client_token.clear()),
        };
        let stored = self
            .store
            .write(|txn| {
                if let Some(prior) = token.replayed(txn)? {
                    return txn
                        .security_configuration(&prior)?
                        .ok_or_else(|| not_found(&prior));
                }
                txn.put_security_configuration(&config);
                token.record(txn, &config.id);
                Ok(config)
            })
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
        self.store
            .security_configuration(id)?
            .ok_or_else(|| not_found(id))
    }

    pub fn list_security_configurations(
        &self,
        req: &pb::ListSecurityConfigurationsRequest,
    ) -> ApiResult<pb::ListSecurityConfigurationsResponse> {
        let window = window(
            "securityconfigurations",
            req.created_after.as_ref(),
            req.created_before.as_ref(),
            req.max_results,
            &req.next_token,
        )?;
        let page = self.store.list_security_configurations(&window)?;
        Ok(pb::ListSecurityConfigurationsResponse {
            security_configurations: page.items,
            next_token: page
                .next
                .map(|c| c.to_token("securityconfigurations"))
                .unwrap_or_default(),
        })
    }

    pub async fn delete_security_configuration(&self, id: &str) -> ApiResult<()> {
        self.store
            .write(|txn| {
                txn.security_configuration(id)?
                    .ok_or_else(|| not_found(id).into_validation())?;
                txn.delete_security_configuration(id);
                Ok(())
            })
            .await
    }
}
