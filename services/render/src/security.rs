//! What every container sparkvc adds to a pod has in common.

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

/// The container security context sparkvc sets on its containers: what the
/// Kubernetes "restricted" Pod Security Standard asks of a container.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}
