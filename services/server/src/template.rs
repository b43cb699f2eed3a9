//! Job templates: `${Name}` parameters, their types and defaults, and how a
//! template is merged into a StartJobRun request.
//!
//! Merge rule: a job template exists to *enforce* values, so every member the
//! template sets wins over the request; the request only fills members the
//! template leaves out. Tags are the union, template tags winning on a clash.

use crate::error::{ApiError, ApiResult};
use regex::Regex;
use serde_json::Value;
use sparkvc_proto::v1 as pb;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([\.\-_\#A-Za-z0-9]+)\}").expect("static regex"));

/// The template members that may hold placeholders, as JSON.
fn parametric_members(data: &pb::JobTemplateData) -> Value {
    let mut value = serde_json::to_value(data).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("parameterConfiguration");
    }
    value
}

fn collect_placeholders(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            out.extend(PLACEHOLDER.captures_iter(s).map(|c| c[1].to_string()));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_placeholders(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.extend(PLACEHOLDER.captures_iter(k).map(|c| c[1].to_string()));
                collect_placeholders(v, out);
            }
        }
        _ => {}
    }
}

/// Every `${Name}` a template uses must be declared in its
/// `parameterConfiguration`, or no job run could ever fill it in.
pub fn check_placeholders_declared(data: &pb::JobTemplateData) -> ApiResult<()> {
    let mut used = BTreeSet::new();
    collect_placeholders(&parametric_members(data), &mut used);
    match used
        .iter()
        .find(|name| !data.parameter_configuration.contains_key(*name))
    {
        None => Ok(()),
        Some(name) => Err(ApiError::validation(format!(
            "jobTemplateData uses the parameter ${{{name}}}, which is not declared in jobTemplateData.parameterConfiguration."
        ))),
    }
}

/// The values a template gives a job run once its parameters are filled in.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TemplateValues {
    pub execution_role_arn: String,
    pub release_label: String,
    pub job_driver: Option<pb::JobDriver>,
    pub configuration_overrides: Option<pb::ConfigurationOverrides>,
    pub job_tags: BTreeMap<String, String>,
}

/// Resolves every parameter (request value, else default), checks its type,
/// and substitutes the values into the template.
pub fn instantiate(
    template: &pb::JobTemplate,
    params: &BTreeMap<String, String>,
) -> ApiResult<TemplateValues> {
    let data = template.job_template_data.clone().unwrap_or_default();
    if let Some(unknown) = params
        .keys()
        .find(|k| !data.parameter_configuration.contains_key(*k))
    {
        return Err(ApiError::validation(format!(
            "jobTemplateParameters.{unknown} is not a parameter of job template {}.",
            template.id
        )));
    }
    let mut values = BTreeMap::new();
    for (name, config) in &data.parameter_configuration {
        let value = params
            .get(name)
            .or(Some(&config.default_value).filter(|d| !d.is_empty()))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "Job template {} requires a value for the parameter {name}: give it in jobTemplateParameters.",
                    template.id
                ))
            })?;
        if config.r#type == "NUMBER" && !value.trim().parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(ApiError::validation(format!(
                "The value '{}' of job template parameter {name} is not a NUMBER.",
                crate::error::echo(value)
            )));
        }
        values.insert(name.clone(), value.clone());
    }

    let mut members = parametric_members(&data);
    substitute(&mut members, &values);
    let filled: pb::JobTemplateData = serde_json::from_value(members).map_err(|e| {
        ApiError::Internal(format!(
            "job template {} could not be instantiated: {e}",
            template.id
        ))
    })?;
    // The parametric overrides are a subset of the job run's overrides, member
    // for member, so the JSON form carries over directly.
    let configuration_overrides = match &filled.configuration_overrides {
        None => None,
        Some(parametric) => Some(
            serde_json::to_value(parametric)
                .and_then(serde_json::from_value)
                .map_err(|e| {
                    ApiError::validation(format!("jobTemplateData.configurationOverrides: {e}"))
                })?,
        ),
    };
    Ok(TemplateValues {
        execution_role_arn: filled.execution_role_arn,
        release_label: filled.release_label,
        job_driver: filled.job_driver,
        configuration_overrides,
        job_tags: filled.job_tags,
    })
}

fn substitute(value: &mut Value, params: &BTreeMap<String, String>) {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = PLACEHOLDER
                .replace_all(s, |c: &regex::Captures<'_>| {
                    params
                        .get(&c[1])
                        .cloned()
                        .unwrap_or_else(|| c[0].to_string())
                })
                .into_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, params)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (mut k, mut v) in old {
                if k.contains("${") {
                    let mut key = Value::String(k);
                    substitute(&mut key, params);
                    k = key.as_str().unwrap_or_default().to_string();
                }
                substitute(&mut v, params);
                map.insert(k, v);
            }
        }
        _ => {}
    }
}

/// Applies template values to a job run built from the request.
pub fn apply(run: &mut pb::JobRun, values: TemplateValues) {
    if !values.execution_role_arn.is_empty() {
        run.execution_role_arn = values.execution_role_arn;
    }
    if !values.release_label.is_empty() {
        run.release_label = values.release_label;
    }
    if values.job_driver.is_some() {
        run.job_driver = values.job_driver;
    }
    if values.configuration_overrides.is_some() {
        run.configuration_overrides = values.configuration_overrides;
    }
    run.tags.extend(values.job_tags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> pb::JobTemplate {
        let data: pb::JobTemplateData = serde_json::from_value(serde_json::json!({
            "executionRoleArn": "arn:aws:iam::123456789012:role/${Role}",
            "releaseLabel": "emr-7.9.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "s3://bucket/${Script}",
                "entryPointArguments": ["--partitions", "${Partitions}"],
                "sparkSubmitParameters": "--conf spark.executor.instances=${Partitions}"
            }},
            "configurationOverrides": {"monitoringConfiguration": {"persistentAppUI": "${Ui}"}},
            "parameterConfiguration": {
                "Role": {"type": "STRING"},
                "Script": {"type": "STRING", "defaultValue": "pi.py"},
                "Partitions": {"type": "NUMBER", "defaultValue": "10"},
                "Ui": {"defaultValue": "ENABLED"}
            },
            "jobTags": {"team": "data"}
        }))
        .unwrap();
        pb::JobTemplate {
            id: "tpl".into(),
            job_template_data: Some(data),
            ..Default::default()
        }
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_substituted_with_values_then_defaults() {
        let values = instantiate(
            &template(),
            &params(&[("Role", "etl"), ("Partitions", "4")]),
        )
        .unwrap();
        assert_eq!(
            values.execution_role_arn,
            "arn:aws:iam::123456789012:role/etl"
        );
        let submit = values.job_driver.unwrap().spark_submit_job_driver.unwrap();
        assert_eq!(submit.entry_point, "s3://bucket/pi.py");
        assert_eq!(submit.entry_point_arguments, vec!["--partitions", "4"]);
        assert_eq!(
            submit.spark_submit_parameters,
            "--conf spark.executor.instances=4"
        );
        let ui = values
            .configuration_overrides
            .unwrap()
            .monitoring_configuration
            .unwrap()
            .persistent_app_ui;
        assert_eq!(ui, "ENABLED");
        assert_eq!(
            values.job_tags.get("team").map(String::as_str),
            Some("data")
        );
    }

    #[test]
    fn missing_unknown_and_mistyped_parameters_are_rejected() {
        let err = instantiate(&template(), &params(&[])).unwrap_err();
        assert!(err.to_string().contains("parameter Role"), "{err}");
        let err = instantiate(
            &template(),
            &params(&[("Role", "r"), ("Partitions", "many")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("'many'") && err.to_string().contains("NUMBER"),
            "{err}"
        );
        let err = instantiate(&template(), &params(&[("Role", "r"), ("Nope", "1")])).unwrap_err();
        assert!(
            err.to_string().contains("jobTemplateParameters.Nope"),
            "{err}"
        );
    }

    #[test]
    fn undeclared_placeholders_are_caught_at_creation() {
        let mut data = template().job_template_data.unwrap();
        data.parameter_configuration.remove("Script");
        let err = check_placeholders_declared(&data).unwrap_err();
        assert!(err.to_string().contains("${Script}"), "{err}");
    }

    #[test]
    fn template_values_win_and_request_fills_the_gaps() {
        let mut run = pb::JobRun {
            execution_role_arn: "arn:aws:iam::123456789012:role/request".into(),
            release_label: "emr-6.15.0-latest".into(),
            tags: params(&[("team", "request"), ("owner", "me")]),
            ..Default::default()
        };
        let mut values = instantiate(&template(), &params(&[("Role", "etl")])).unwrap();
        values.release_label.clear();
        apply(&mut run, values);
        assert_eq!(run.execution_role_arn, "arn:aws:iam::123456789012:role/etl");
        assert_eq!(run.release_label, "emr-6.15.0-latest");
        assert_eq!(run.tags, params(&[("owner", "me"), ("team", "data")]));
    }
}
