//! Authorization of each call: the IAM action, the resource ARN and the
//! condition keys of the reference table, evaluated against the caller's
//! policies (`auth::policy`).
//!
//! Besides the operation's own action, StartJobRun needs `iam:PassRole` on
//! its execution role and `DescribeJobTemplate` on its template, and any
//! call that sends tags needs `TagResource`. sparkvc's extensions have
//! actions of their own under `sparkvc:` (`sparkvc:GetJobRunLogs`,
//! `sparkvc:GetJobRunAppUiUrl`) on the run's ARN, so no `emr-containers:*`
//! grant reaches them by accident. The development caller may do anything.
//!
//! Only reads happen here: resource tags come from the control plane's
//! describe calls.

use crate::auth::policy::{self, Context, Decision, Question};
use crate::auth::{Access, Caller};
use crate::control::ControlPlane;
use crate::error::{ApiError, ApiResult};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The caller of one call, and where it came from.
#[derive(Debug)]
pub struct Requester<'a> {
    pub caller: &'a Caller,
    pub source_ip: Option<IpAddr>,
    /// Whether the call came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    pub control: &'a ControlPlane,
    /// The call's audit verdict: the last permission checked (the refusal,
    /// or the last of the needs that were all allowed).
    pub verdict: Option<&'a crate::auth::audit::VerdictSlot>,
    /// The caller's context for this call, made at the first question and
    /// shared by the rest (StartJobRun asks two or three).
    pub call_context: std::cell::OnceCell<Arc<Context>>,
}

/// `emr-containers:<operation>`.
pub fn action(operation: &str) -> String {
    format!("emr-containers:{operation}")
}

/// One permission a call needs.
#[derive(Debug, Default)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// Tags of the resource acted on (`aws:ResourceTag/…`).
    pub resource_tags: BTreeMap<String, String>,
    /// Tags the request sends (`aws:RequestTag/…`, `aws:TagKeys`).
    pub request_tags: Option<BTreeMap<String, String>>,
    /// Tag keys an untag request names (`aws:TagKeys`).
    pub tag_keys: Option<Vec<String>>,
    /// Further keys (`emr-containers:ExecutionRoleArn`, …).
    pub extra: Vec<(&'static str, String)>,
}

impl Need {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            ..Default::default()
        }
    }

    pub fn with_resource_tags(mut self, tags: BTreeMap<String, String>) -> Self {
        self.resource_tags = tags;
        self
    }

    pub fn with_request_tags(mut self, tags: &BTreeMap<String, String>) -> Self {
        self.request_tags = Some(tags.clone());
        self
    }
}

impl Requester<'_> {
    pub fn unrestricted(&self) -> bool {
        matches!(self.caller.access, Access::Unrestricted)
    }

    fn decide(&self, need: &Need) -> Decision {
        let Access::Policies(policies) = &self.caller.access else {
            return Decision::Allow {
                policy: "development".into(),
                sid: None,
            };
        };
        let call = self
            .call_context
            .get_or_init(|| Arc::new(self.caller.context(self.source_ip, self.secure_transport)));
        let mut context = Context::over(call.clone());
        for (key, value) in &need.resource_tags {
            context.set(&format!("aws:ResourceTag/{key}"), value.clone());
        }
        if let Some(tags) = need.request_tags.as_ref().filter(|t| !t.is_empty()) {
            for (key, value) in tags {
                context.set(&format!("aws:RequestTag/{key}"), value.clone());
            }
            context.set_many("aws:TagKeys", tags.keys().cloned().collect());
        }
        if let Some(keys) = &need.tag_keys {
            context.set_many("aws:TagKeys", keys.clone());
        }
        for (key, value) in &need.extra {
            context.set(key, value.clone());
        }
        policy::evaluate(
            policies,
            Question {
                action: &need.action,
                resource: &need.resource,
                context: &context,
            },
        )
    }

    /// Whether `need` is allowed, for filtering lists.
    pub fn allows(&self, need: &Need) -> bool {
        self.unrestricted() || self.decide(need).is_allowed()
    }

    /// Whether a listed item stays in the page: the caller may do
    /// `operation` (its Describe) on it, judged by the tags it carries.
    pub fn may_describe(
        &self,
        operation: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        self.allows(&Need::new(action(operation), arn).with_resource_tags(tags.clone()))
    }

    /// Allowed, or AccessDeniedException in IAM's words.
    pub fn require(&self, need: &Need) -> ApiResult<()> {
        if self.unrestricted() {
            return Ok(());
        }
        let decision = self.decide(need);
        if let Some(slot) = self.verdict {
            *slot.lock().expect("verdict lock") = Some(crate::auth::audit::Verdict {
                action: need.action.clone(),
                resource: need.resource.clone(),
                decision: decision.label(),
                statement: decision.statement(),
            });
        }
        tracing::debug!(principal = %self.caller.arn, action = %need.action, resource = %need.resource, ?decision, "authorization");
        match decision.denial(&self.caller.arn, &need.action, &need.resource) {
            None => Ok(()),
            Some(message) => Err(ApiError::AccessDenied(message)),
        }
    }

    /// All of `needs`, in order; the first refusal is the answer.
    pub fn require_all(&self, needs: &[Need]) -> ApiResult<()> {
        needs.iter().try_for_each(|need| self.require(need))
    }

    /// `emr-containers:<operation>` on a virtual cluster, with its tags
    /// (none if it does not exist: the operation then answers as it would).
    pub fn on_virtual_cluster(&self, operation: &str, id: &str) -> Need {
        let arn = self.control.arns().virtual_cluster(id);
        let tags = self.tags_of(&arn);
        Need::new(action(operation), arn).with_resource_tags(tags)
    }

    /// `action` (a full action name) on a job run, with its tags.
    pub fn on_job_run(&self, action: String, vc_id: &str, id: &str) -> Need {
        let arn = self.control.arns().job_run(vc_id, id);
        let tags = self.tags_of(&arn);
        Need::new(action, arn).with_resource_tags(tags)
    }

    /// `emr-containers:<operation>` on the resource `arn` names, with its tags.
    pub fn on_arn(&self, operation: &str, arn: &str) -> Need {
        Need::new(action(operation), arn).with_resource_tags(self.tags_of(arn))
    }

    /// What creating a resource with `tags` needs: the operation on `*`,
    /// and TagResource when tags are sent.
    pub fn creating(&self, operation: &str, tags: &BTreeMap<String, String>) -> Vec<Need> {
        let mut needs = vec![Need::new(action(operation), "*").with_request_tags(tags)];
        if !tags.is_empty() {
            needs.push(Need::new(action("TagResource"), "*").with_request_tags(tags));
        }
        needs
    }

    /// A resource's tags; none (and no read) for the development caller.
    fn tags_of(&self, arn: &str) -> BTreeMap<String, String> {
        if self.unrestricted() {
            return BTreeMap::new();
        }
        // The tag operations reach virtual clusters and job runs; templates
        // and security configurations carry their tags in their records.
        let arns = self.control.arns();
        let described = match arn.rsplit_once('/') {
            Some((_, id)) if arn == arns.job_template(id) => {
                Some(self.control.describe_job_template(id).map(|t| t.tags))
            }
            Some((_, id)) if arn == arns.security_configuration(id) => Some(
                self.control
                    .describe_security_configuration(id)
                    .map(|c| c.tags),
            ),
            _ => None,
        };
        described
            .unwrap_or_else(|| self.control.list_tags_for_resource(arn))
            .unwrap_or_default()
    }
}
