//! Kubernetes rendering: pure functions from a job run to the objects that
//! run it. No API calls, no I/O, deterministic output (sorted maps), so every
//! result can be golden-tested.
//!
//! The reconciler's use:
//! 1. [`pod_template_files`] says which user pod templates (local path or
//!    `s3://`) must be fetched;
//! 2. [`render_job_run`] with their contents gives the objects to create:
//!    the role's service accounts and RoleBinding (shared by the runs of that
//!    role in the namespace), the ConfigMap and the job-runner pod;
//! 3. a [`RenderError`] fails the run with [`RenderError::failure_reason`] and
//!    [`RenderError::state_details`].
//!
//! Per virtual cluster, [`tenancy::render_tenant`] gives the namespace's Role,
//! NetworkPolicy and optional quota objects.

pub mod args;
pub mod classifications;
pub mod job_runner;
pub mod kube_syntax;
pub mod log_destinations;
pub mod logging;
pub mod names;
pub mod pod_template;
pub mod release;
pub mod scheduling;
pub mod security;
pub mod spark_conf;
pub mod tenancy;

use args::{ArgsKind, SubmitArgs};
use job_runner::EntryPoint;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use pod_template::{PodTemplateInputs, SparkRole};
pub use release::{Catalogue, CatalogueError, Release, UnknownRelease};
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1::JobRun;
use std::collections::BTreeMap;

pub use sparkvc_proto::limits::MAX_STATE_DETAILS;

/// Why a job run cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The job run asks for something sparkvc refuses or cannot read: an
    /// unterminated quote, a setting sparkvc controls, a disallowed pod
    /// template field, an unknown classification property. `field` names it
    /// (`sparkSubmitParameters`, `spark.kubernetes.namespace`,
    /// `driver pod template: spec.serviceAccountName`, …); `message` is the
    /// whole sentence shown to the user. The run fails with USER_ERROR.
    #[error("{message}")]
    User { field: String, message: String },
    /// sparkvc's own inputs are wrong (its configuration, a record missing a
    /// member the API guarantees). The run fails with INTERNAL_ERROR.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RenderError {
    pub(crate) fn user(field: impl Into<String>, message: impl Into<String>) -> Self {
        RenderError::User {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The job run's `failureReason`.
    pub fn failure_reason(&self) -> FailureReason {
        match self {
            RenderError::User { .. } => FailureReason::UserError,
            RenderError::Internal(_) => FailureReason::InternalError,
        }
    }

    /// The job run's `stateDetails`: the message, cut to
    /// [`MAX_STATE_DETAILS`] characters (ending in `…` when cut).
    pub fn state_details(&self) -> String {
        sparkvc_proto::limits::fit_details(&self.to_string())
    }
}

/// Everything needed to render one job run.
#[derive(Debug, Clone)]
pub struct JobRunInputs<'a> {
    pub run: &'a JobRun,
    /// The virtual cluster's namespace.
    pub namespace: &'a str,
    /// The AWS account of the execution role, for the service account names.
    pub account_id: &'a str,
    pub release: &'a Release,
    /// Contents of the user's driver pod template, fetched by the caller
    /// from the location [`pod_template_files`] gave.
    pub driver_template: Option<&'a str>,
    pub executor_template: Option<&'a str>,
    /// The per-run owner, the job-runner pod once it exists: set on the
    /// ConfigMap and the driver pod (executors are owned by the driver, by
    /// Spark), so that deleting it garbage-collects the run.
    pub owner: Option<OwnerReference>,
    /// Which attempt of the run to render (1 unless it is retried): each
    /// attempt has its own objects (see [`names::attempt_name`]).
    pub attempt: u32,
    /// The AWS region the log sidecars write to (the server's region).
    pub region: &'a str,
    /// The server's app-UI event log directory, if configured (see
    /// [`log_destinations::event_log_dir`]).
    pub event_log_dir: Option<&'a str>,
    /// The cluster's node selector and tolerations for every pod of the run.
    pub scheduling: &'a scheduling::JobPodScheduling,
}

/// The objects of one job run.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedJobRun {
    /// client, driver, executor; annotated with `eks.amazonaws.com/role-arn`.
    /// Shared by the role's runs in the namespace: create if absent.
    pub service_accounts: Vec<ServiceAccount>,
    /// Grants the Spark Role to the client and driver accounts; shared too.
    pub role_binding: RoleBinding,
    /// `spark-defaults.conf`, the pod templates (and the SQL runner).
    pub config_map: ConfigMap,
    /// The job-runner pod; it has no owner (it is the run's root object).
    pub job_runner: Pod,
    /// What the job-runner runs, argv[0] first (also in its pod).
    pub spark_submit_argv: Vec<String>,
}

/// The user pod template locations a run names (local path or `s3://`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodTemplateFiles {
    pub driver: Option<String>,
    pub executor: Option<String>,
}

/// The job driver, its parameters member name, and its options.
struct Driver<'a> {
    entry: EntryPoint<'a>,
    args_field: &'static str,
    args: SubmitArgs,
}

fn driver(run: &JobRun) -> Result<Driver<'_>, RenderError> {
    let job_driver = run
        .job_driver
        .as_ref()
        .ok_or_else(|| RenderError::Internal(format!("job run {} has no jobDriver", run.id)))?;
    if let Some(d) = &job_driver.spark_submit_job_driver {
        let field = "sparkSubmitParameters";
        let words = args::split_words(field, &d.spark_submit_parameters)?;
        Ok(Driver {
            entry: EntryPoint::SparkSubmit {
                entry_point: &d.entry_point,
                arguments: &d.entry_point_arguments,
            },
            args_field: field,
            args: args::parse_submit_args(field, ArgsKind::SparkSubmit, words)?,
        })
    } else if let Some(d) = &job_driver.spark_sql_job_driver {
        let field = "sparkSqlParameters";
        let words = args::split_words(field, &d.spark_sql_parameters)?;
        Ok(Driver {
            entry: EntryPoint::SparkSql {
                sql_file: &d.entry_point,
            },
            args_field: field,
            args: args::parse_submit_args(field, ArgsKind::SparkSql, words)?,
        })
    } else {
        Err(RenderError::Internal(format!(
            "job run {} has neither sparkSubmitJobDriver nor sparkSqlJobDriver",
            run.id
        )))
    }
}

/// Which user pod templates the caller must fetch before [`render_job_run`].
pub fn pod_template_files(run: &JobRun) -> Result<PodTemplateFiles, RenderError> {
    let driver = driver(run)?;
    let classes = classifications::parse_classifications(run.configuration_overrides.as_ref())?;
    let (d, e) = spark_conf::user_pod_template_files(&classes.spark_defaults, &driver.args.conf);
    Ok(PodTemplateFiles {
        driver: d,
        executor: e,
    })
}

/// Renders the objects of a job run. Pure: same inputs, same output.
pub fn render_job_run(inputs: &JobRunInputs<'_>) -> Result<RenderedJobRun, RenderError> {
    let run = inputs.run;
    let id = run.id.as_str();
    let vc = run.virtual_cluster_id.as_str();
    let driver = driver(run)?;
    let classes = classifications::parse_classifications(run.configuration_overrides.as_ref())?;
    let (want_driver, want_executor) =
        spark_conf::user_pod_template_files(&classes.spark_defaults, &driver.args.conf);
    for (what, wanted, given) in [
        ("driver", &want_driver, inputs.driver_template),
        ("executor", &want_executor, inputs.executor_template),
    ] {
        if wanted.is_some() != given.is_some() {
            return Err(RenderError::Internal(format!(
                "the {what} pod template was {} but {} given",
                if wanted.is_some() {
                    "asked for"
                } else {
                    "not asked for"
                },
                if given.is_some() { "was" } else { "was not" },
            )));
        }
    }

    // A run may not move its pods off the nodes the operator chose.
    for (name, value) in &driver.args.conf {
        inputs
            .scheduling
            .check_run_setting(driver.args_field, name, value)?;
    }
    let app_config = "applicationConfiguration";
    for (name, value) in &classes.spark_defaults {
        inputs
            .scheduling
            .check_run_setting(app_config, name, value)?;
    }
    for (key, value) in &classes.job_submitter.node_selector {
        let name = format!("jobsubmitter.node.selector.{key}");
        inputs
            .scheduling
            .check_run_setting(app_config, &name, value)?;
    }

    let identity = tenancy::render_role_identity(
        inputs.namespace,
        vc,
        inputs.account_id,
        &run.execution_role_arn,
    )?;
    let sas = names::ServiceAccountNames::new(inputs.account_id, &run.execution_role_arn)?;
    let labels = names::job_run_labels(id, vc, inputs.attempt);
    let attempt_name = names::attempt_name(id, inputs.attempt);
    let config_map_name = names::config_map_name(&attempt_name);

    let event_log_dir = log_destinations::event_log_dir(run, inputs.event_log_dir)?;
    let conf = spark_conf::merge(
        &spark_conf::SparkConfInputs {
            job_run_id: id,
            attempt: inputs.attempt,
            virtual_cluster_id: vc,
            namespace: inputs.namespace,
            image: &inputs.release.image,
            service_accounts: &sas,
            driver_template_path: job_runner::DRIVER_TEMPLATE_PATH,
            executor_template_path: job_runner::EXECUTOR_TEMPLATE_PATH,
            event_log_dir: event_log_dir.as_deref(),
        },
        &classes.spark_defaults,
        driver.args_field,
        &driver.args.conf,
    )?;

    let is_sql = matches!(driver.entry, EntryPoint::SparkSql { .. });
    let logs = logging::plan(run, &classes)?;
    let log_capture = |settings: Option<&logging::SidecarSettings>, source| {
        settings.map(|settings| logging::LogCapture {
            sidecar: logging::sidecar(settings, source, names::USER_LOG_VOLUME, inputs.region),
            config_volume: logging::config_volume(&config_map_name, source).0,
            env: logging::capture_env(run),
        })
    };
    let template = |role: SparkRole, user: Option<&str>| -> Result<String, RenderError> {
        let component = match role {
            SparkRole::Driver => names::COMPONENT_DRIVER,
            SparkRole::Executor => names::COMPONENT_EXECUTOR,
        };
        let mut pod_labels = labels.clone();
        pod_labels.insert(names::COMPONENT.into(), component.into());
        let driver_role = role == SparkRole::Driver;
        let pod = pod_template::render_pod_template(&PodTemplateInputs {
            role,
            user_template: user,
            namespace: inputs.namespace,
            labels: pod_labels,
            owner: inputs.owner.as_ref().filter(|_| driver_role),
            extra_volumes: if driver_role && is_sql {
                vec![job_runner::sql_runner_volume(&config_map_name)]
            } else {
                vec![]
            },
            log_capture: log_capture(
                logs.as_ref().and_then(|plan| match role {
                    SparkRole::Driver => Some(&plan.driver),
                    SparkRole::Executor => plan.executor.as_ref(),
                }),
                logging::LogSource::Spark,
            ),
            scheduling: inputs.scheduling,
        })?;
        pod_template::to_json(&pod)
    };
    let mut data = BTreeMap::from([
        (
            job_runner::KEY_SPARK_DEFAULTS.to_string(),
            spark_conf::to_properties_text(&conf),
        ),
        (
            job_runner::KEY_DRIVER_TEMPLATE.to_string(),
            template(SparkRole::Driver, inputs.driver_template)?,
        ),
        (
            job_runner::KEY_EXECUTOR_TEMPLATE.to_string(),
            template(SparkRole::Executor, inputs.executor_template)?,
        ),
    ]);
    if is_sql {
        data.insert(
            job_runner::KEY_SQL_RUNNER.to_string(),
            job_runner::SQL_RUNNER.to_string(),
        );
    }
    let mut conf_files = Vec::new();
    if let Some(log4j2) = &classes.log4j2 {
        if let Some(key) = log4j2.keys().find(|k| k.contains(['\n', '\r'])) {
            return Err(RenderError::user(
                "applicationConfiguration",
                format!("spark-log4j2: the key {key:?} contains a line break"),
            ));
        }
        data.insert(
            job_runner::KEY_LOG4J2.to_string(),
            spark_conf::properties_file(
                "# Written by sparkvc from the job run's spark-log4j2 classification.\n",
                log4j2,
            ),
        );
        conf_files.push(job_runner::KEY_LOG4J2);
    }
    if let Some(plan) = &logs {
        for source in [logging::LogSource::JobRunner, logging::LogSource::Spark] {
            data.insert(
                source.config_key().to_string(),
                logging::fluentd_config(&plan.destinations, source, vc, id, inputs.region),
            );
        }
    }
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name.clone()),
            namespace: Some(inputs.namespace.into()),
            labels: Some(labels.clone()),
            owner_references: inputs.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        immutable: Some(true),
        ..ConfigMap::default()
    };

    let name = if run.name.is_empty() {
        id
    } else {
        run.name.as_str()
    };
    let argv = job_runner::spark_submit_argv(name, &driver.args.options, &driver.entry);
    let job_runner = job_runner::render_job_runner(&job_runner::JobRunnerInputs {
        name: &names::job_runner_name(&attempt_name),
        namespace: inputs.namespace,
        labels: &labels,
        image: &inputs.release.image,
        service_account: &sas.client,
        config_map: &config_map_name,
        argv: &argv,
        submitter: &classes.job_submitter,
        log_capture: log_capture(
            logs.as_ref().and_then(|plan| plan.job_runner.as_ref()),
            logging::LogSource::JobRunner,
        ),
        conf_files: &conf_files,
        scheduling: inputs.scheduling,
    });
    Ok(RenderedJobRun {
        service_accounts: identity.service_accounts,
        role_binding: identity.role_binding,
        config_map,
        job_runner,
        spark_submit_argv: argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_and_state_details() {
        let user = RenderError::user("f", "x".repeat(300));
        assert_eq!(user.failure_reason(), FailureReason::UserError);
        let details = user.state_details();
        assert_eq!(details.chars().count(), MAX_STATE_DETAILS);
        assert!(details.ends_with('…'));
        let internal = RenderError::Internal("boom".into());
        assert_eq!(internal.failure_reason(), FailureReason::InternalError);
        assert_eq!(internal.state_details(), "internal error: boom");
        // Multi-byte characters are cut on a character boundary.
        let wide = RenderError::user("f", "é".repeat(300));
        assert_eq!(wide.state_details().chars().count(), MAX_STATE_DETAILS);
    }
}
