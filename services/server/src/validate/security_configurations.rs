//! CreateSecurityConfiguration.

use super::rules::*;
use super::virtual_clusters::container_provider;
use crate::error::ApiResult;
use sparkvc_proto::v1 as pb;

pub fn create_security_configuration(
    req: &pb::CreateSecurityConfigurationRequest,
) -> ApiResult<()> {
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    required("name", &req.name, RESOURCE_NAME)?;
    if let Some(provider) = &req.container_provider {
        container_provider("containerProvider", provider)?;
    }
    tags("tags", &req.tags)?;
    let data = req
        .security_configuration_data
        .as_ref()
        .ok_or_else(|| missing("securityConfigurationData"))?;
    let f = "securityConfigurationData";
    if let Some(authz) = &data.authorization_configuration {
        let af = format!("{f}.authorizationConfiguration");
        if let Some(lf) = &authz.lake_formation_configuration {
            let lff = format!("{af}.lakeFormationConfiguration");
            optional(
                &format!("{lff}.authorizedSessionTagValue"),
                &lf.authorized_session_tag_value,
                SESSION_TAG_VALUE,
            )?;
            optional(
                &format!("{lff}.queryEngineRoleArn"),
                &lf.query_engine_role_arn,
                IAM_ROLE_ARN,
            )?;
            if let Some(ns) = &lf.secure_namespace_info {
                optional(
                    &format!("{lff}.secureNamespaceInfo.clusterId"),
                    &ns.cluster_id,
                    CLUSTER_ID,
                )?;
                optional(
                    &format!("{lff}.secureNamespaceInfo.namespace"),
                    &ns.namespace,
                    KUBERNETES_NAMESPACE,
                )?;
            }
        }
        if let Some(tls) = authz
            .encryption_configuration
            .as_ref()
            .and_then(|e| e.in_transit_encryption_configuration.as_ref())
            .and_then(|t| t.tls_certificate_configuration.as_ref())
        {
            let tf = format!(
                "{af}.encryptionConfiguration.inTransitEncryptionConfiguration.tlsCertificateConfiguration"
            );
            one_of(
                &format!("{tf}.certificateProviderType"),
                &tls.certificate_provider_type,
                &["PEM"],
                false,
            )?;
            optional(
                &format!("{tf}.publicCertificateSecretArn"),
                &tls.public_certificate_secret_arn,
                SECRET_ARN,
            )?;
            optional(
                &format!("{tf}.privateCertificateSecretArn"),
                &tls.private_certificate_secret_arn,
                SECRET_ARN,
            )?;
        }
    }
    if let Some(authn) = &data.authentication_configuration {
        let af = format!("{f}.authenticationConfiguration");
        if let Some(ic) = &authn.identity_center_configuration {
            let icf = format!("{af}.identityCenterConfiguration");
            optional(
                &format!("{icf}.identityCenterInstanceARN"),
                &ic.identity_center_instance_arn,
                IDENTITY_CENTER_INSTANCE_ARN,
            )?;
            optional(
                &format!("{icf}.emrIdentityCenterApplicationARN"),
                &ic.emr_identity_center_application_arn,
                IDENTITY_CENTER_APPLICATION_ARN,
            )?;
        }
        if let Some(iam) = &authn.iam_configuration {
            optional(
                &format!("{af}.iamConfiguration.systemRole"),
                &iam.system_role,
                IAM_ROLE_ARN,
            )?;
        }
    }
    Ok(())
}
