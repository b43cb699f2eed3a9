//! Driver and executor pod templates: sparkvc's defaults merged with the
//! user's template (`spark.kubernetes.{driver,executor}.podTemplateFile`).
//!
//! The caller fetches the user's template (local path or `s3://`) and passes
//! its text, YAML or JSON. Rules:
//! - The Spark container is the one named `spark-kubernetes-driver` /
//!   `spark-kubernetes-executor`; sparkvc adds it when the template has none
//!   and sets `spark.kubernetes.*.podTemplateContainerName` to it, so Spark
//!   never mistakes a sidecar for its container (without that setting Spark
//!   takes the *first* container). Every other container is a sidecar and is
//!   kept as written; init containers are kept too.
//! - Disallowed, USER_ERROR naming the field: `spec.serviceAccountName` and
//!   `spec.serviceAccount` (the service accounts are sparkvc's, for IRSA),
//!   and on the Spark container `image` (use `spark.kubernetes.container.image`),
//!   `command` (Spark's entrypoint must run) and `securityContext` (sparkvc sets
//!   a restricted one). `metadata.namespace`, when given, must be the virtual
//!   cluster's namespace.
//! - Allowed: the pod-level `spec.securityContext` (fsGroup is commonly needed
//!   to read the IRSA token file) and sidecars' own `securityContext`. Policing
//!   privileged pods is the job of Pod Security Admission on the namespace,
//!   which sparkvc does not replace.
//! - sparkvc's labels are set over the user's; the `/var/log/spark/user`
//!   emptyDir (for the log sidecars) is added and mounted in the Spark
//!   container; the owner reference, when given, is added; the cluster's
//!   node selector and tolerations for job pods are applied (see
//!   [`super::scheduling`]).
//!
//! The result is serialised as JSON (which Spark's YAML loader reads).

use super::RenderError;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use std::collections::BTreeMap;

use super::names::{DRIVER_CONTAINER, EXECUTOR_CONTAINER, USER_LOG_DIR, USER_LOG_VOLUME};
use super::scheduling::JobPodScheduling;
use super::security::restricted_security_context;

/// Which Spark pod a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparkRole {
    Driver,
    Executor,
}

impl SparkRole {
    pub fn container_name(self) -> &'static str {
        match self {
            SparkRole::Driver => DRIVER_CONTAINER,
            SparkRole::Executor => EXECUTOR_CONTAINER,
        }
    }

    fn template_name(self) -> &'static str {
        match self {
            SparkRole::Driver => "driver pod template",
            SparkRole::Executor => "executor pod template",
        }
    }
}

/// Everything [`render_pod_template`] needs.
#[derive(Debug, Clone)]
pub struct PodTemplateInputs<'a> {
    pub role: SparkRole,
    /// The user's template text (YAML or JSON), if any.
    pub user_template: Option<&'a str>,
    pub namespace: &'a str,
    /// Labels set over the user's.
    pub labels: BTreeMap<String, String>,
    pub owner: Option<&'a OwnerReference>,
    /// Further volumes sparkvc mounts in the Spark container (the SQL runner).
    pub extra_volumes: Vec<(Volume, VolumeMount)>,
    /// The log sidecar and the volume of its configuration, when this pod
    /// ships its logs (see `render::logging`): the Spark container's output
    /// is then captured into the log directory.
    pub log_capture: Option<super::logging::LogCapture>,
    /// The operator's node selector and tolerations for job pods.
    pub scheduling: &'a JobPodScheduling,
}

/// The Spark images' entrypoint, which the log capture wrapper runs.
pub const SPARK_ENTRYPOINT: &str = "/opt/entrypoint.sh";

/// The merged pod template. See the module documentation for the rules.
pub fn render_pod_template(inputs: &PodTemplateInputs<'_>) -> Result<Pod, RenderError> {
    let what = inputs.role.template_name();
    let main_name = inputs.role.container_name();
    let mut pod = match inputs.user_template {
        Some(text) => parse_pod(what, text)?,
        None => Pod::default(),
    };
    check_user_pod(&pod, inputs.role, inputs.namespace)?;

    let meta = &mut pod.metadata;
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .extend(inputs.labels.clone());
    if let Some(owner) = inputs.owner {
        let owners = meta.owner_references.get_or_insert_with(Vec::new);
        owners.retain(|o| o.uid != owner.uid);
        owners.push(owner.clone());
    }

    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let containers = &mut spec.containers;
    if !containers.iter().any(|c| c.name == main_name) {
        containers.insert(
            0,
            Container {
                name: main_name.to_string(),
                ..Container::default()
            },
        );
    }
    let mut volumes = vec![(
        Volume {
            name: USER_LOG_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        VolumeMount {
            name: USER_LOG_VOLUME.into(),
            mount_path: USER_LOG_DIR.into(),
            ..VolumeMount::default()
        },
    )];
    volumes.extend(inputs.extra_volumes.iter().cloned());
    let pod_volumes = spec.volumes.get_or_insert_with(Vec::new);
    for (volume, _) in &volumes {
        if pod_volumes.iter().any(|v| v.name == volume.name) {
            return Err(RenderError::user(
                format!("{what}: spec.volumes[{}]", volume.name),
                format!(
                    "{what}: spec.volumes[{}] uses a name reserved by sparkvc",
                    volume.name
                ),
            ));
        }
        pod_volumes.push(volume.clone());
    }
    let main = spec
        .containers
        .iter_mut()
        .find(|c| c.name == main_name)
        .expect("the Spark container was added above");
    let mounts = main.volume_mounts.get_or_insert_with(Vec::new);
    for (_, mount) in volumes {
        if mounts.iter().any(|m| m.mount_path == mount.mount_path) {
            return Err(RenderError::user(
                format!("{what}: spec.containers[{main_name}].volumeMounts"),
                format!(
                    "{what}: spec.containers[{main_name}].volumeMounts uses {}, a path reserved by sparkvc",
                    mount.mount_path
                ),
            ));
        }
        mounts.push(mount);
    }
    main.security_context = Some(restricted_security_context());
    if let Some(capture) = &inputs.log_capture {
        // Spark appends its arguments (`driver …`/`executor …`) to this.
        main.command = Some(super::logging::capture_argv(
            "spark",
            &[SPARK_ENTRYPOINT.to_string()],
        ));
        main.env
            .get_or_insert_with(Vec::new)
            .extend(capture.env.iter().cloned());
        spec.volumes
            .get_or_insert_with(Vec::new)
            .push(capture.config_volume.clone());
        spec.init_containers
            .get_or_insert_with(Vec::new)
            .push(capture.sidecar.clone());
    }
    inputs.scheduling.apply(spec);
    Ok(pod)
}

/// Parses a YAML or JSON pod (apiVersion/kind may be left out). Errors
/// say where and what kind of mistake, never the template's own text: a
/// template may hold what its reader should not see echoed (and an error
/// message is no place for a secret).
fn parse_pod(what: &str, text: &str) -> Result<Pod, RenderError> {
    let bad =
        |detail: String| RenderError::user(what, format!("{what} is not a valid pod: {detail}"));
    if text.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "it is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            bad(format!(
                "it is not valid YAML ({})",
                without_values(&e.to_string())
            ))
        })?
    };
    let serde_json::Value::Object(mut object) = value else {
        return Err(bad("it is not a mapping".into()));
    };
    for (key, want) in [("apiVersion", "v1"), ("kind", "Pod")] {
        match object.get(key) {
            None | Some(serde_json::Value::Null) => {
                object.insert(key.into(), want.into());
            }
            Some(serde_json::Value::String(s)) if s == want => {}
            Some(_) => return Err(bad(format!("{key} must be {want}"))),
        }
    }
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| bad(without_values(&e.to_string())))
}

/// The first line of a parser's message with every quoted or backticked
/// span (where parsers put the input they choke on) and anything after a
/// colon-quoted snippet replaced by `…`.
fn without_values(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut closing = None;
    let mut previous = ' ';
    for c in line.chars() {
        match closing {
            Some(end) if c == end => {
                closing = None;
                out.push('…');
            }
            Some(_) => {}
            // A single quote opens a span only at a word's start, so that
            // "doesn't" stays as it is.
            None if matches!(c, '"' | '`')
                || (c == '\'' && (previous.is_whitespace() || previous == '(')) =>
            {
                closing = Some(c);
            }
            None => out.push(c),
        }
        previous = c;
    }
    if closing.is_some() {
        out.push('…');
    }
    out
}

fn check_user_pod(pod: &Pod, role: SparkRole, namespace: &str) -> Result<(), RenderError> {
    let what = role.template_name();
    let main_name = role.container_name();
    let disallowed = |path: String, why: &str| {
        Err(RenderError::user(
            format!("{what}: {path}"),
            format!("{what}: {path} is not allowed ({why})"),
        ))
    };
    if pod
        .metadata
        .namespace
        .as_deref()
        .is_some_and(|ns| ns != namespace)
    {
        return disallowed(
            "metadata.namespace".into(),
            "pods run in the virtual cluster's namespace",
        );
    }
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    if spec.service_account_name.is_some() {
        return disallowed(
            "spec.serviceAccountName".into(),
            "sparkvc sets the service account",
        );
    }
    if spec.service_account.is_some() {
        return disallowed(
            "spec.serviceAccount".into(),
            "sparkvc sets the service account",
        );
    }
    let mains: Vec<&Container> = spec
        .containers
        .iter()
        .filter(|c| c.name == main_name)
        .collect();
    if mains.len() > 1 {
        return disallowed(
            format!("spec.containers[{main_name}]"),
            "the Spark container appears more than once",
        );
    }
    if let Some(main) = mains.first() {
        let path = |field: &str| format!("spec.containers[{main_name}].{field}");
        if main.image.is_some() {
            return disallowed(
                path("image"),
                "set spark.kubernetes.container.image instead",
            );
        }
        if main.command.is_some() {
            return disallowed(path("command"), "Spark's entrypoint must run");
        }
        if main.security_context.is_some() {
            return disallowed(path("securityContext"), "sparkvc sets it");
        }
    }
    Ok(())
}

/// The template as stored in the ConfigMap: pretty JSON with a final newline.
pub fn to_json(pod: &Pod) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(pod)
        .map_err(|e| RenderError::Internal(format!("cannot serialise a pod template: {e}")))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_SCHEDULING: JobPodScheduling = JobPodScheduling {
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
    };

    fn inputs(role: SparkRole, user: Option<&str>) -> PodTemplateInputs<'_> {
        PodTemplateInputs {
            role,
            user_template: user,
            namespace: "ns1",
            labels: BTreeMap::from([("sparkvc.io/job-run-id".to_string(), "r1".to_string())]),
            owner: None,
            extra_volumes: vec![],
            log_capture: None,
            scheduling: &NO_SCHEDULING,
        }
    }

    fn render(role: SparkRole, user: Option<&str>) -> Result<Pod, RenderError> {
        render_pod_template(&inputs(role, user))
    }

    fn names(pod: &Pod) -> Vec<&str> {
        pod.spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn defaults_without_a_user_template() {
        let pod = render(SparkRole::Driver, None).unwrap();
        assert_eq!(names(&pod), [DRIVER_CONTAINER]);
        let main = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            main.volume_mounts.as_ref().unwrap()[0].mount_path,
            USER_LOG_DIR
        );
        assert_eq!(main.security_context, Some(restricted_security_context()));
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["sparkvc.io/job-run-id"],
            "r1"
        );
        let volumes = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert_eq!(volumes[0].name, USER_LOG_VOLUME);
        assert!(volumes[0].empty_dir.is_some());
    }

    #[test]
    fn sidecars_are_kept_and_the_spark_container_is_added_first() {
        let yaml = "\
metadata:
  labels:
    team: data
    sparkvc.io/job-run-id: spoofed
spec:
  nodeSelector:
    disk: ssd
  initContainers:
  - name: init
    image: busybox
  containers:
  - name: sidecar
    image: fluent/fluent-bit
    securityContext:
      runAsUser: 1000
";
        let pod = render(SparkRole::Executor, Some(yaml)).unwrap();
        assert_eq!(names(&pod), [EXECUTOR_CONTAINER, "sidecar"]);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_selector.as_ref().unwrap()["disk"], "ssd");
        assert_eq!(spec.init_containers.as_ref().unwrap()[0].name, "init");
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "data");
        assert_eq!(
            labels["sparkvc.io/job-run-id"], "r1",
            "sparkvc's labels win"
        );
        assert!(to_json(&pod).unwrap().contains("\"kind\": \"Pod\""));
    }

    #[test]
    fn the_users_spark_container_keeps_its_settings() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[
            {"name":"side","image":"x"},
            {"name":"spark-kubernetes-driver","env":[{"name":"A","value":"1"}],
             "volumeMounts":[{"name":"data","mountPath":"/data"}]}],
            "volumes":[{"name":"data","emptyDir":{}}]}}"#;
        let pod = render(SparkRole::Driver, Some(json)).unwrap();
        assert_eq!(names(&pod), ["side", DRIVER_CONTAINER]);
        let main = &pod.spec.as_ref().unwrap().containers[1];
        assert_eq!(main.env.as_ref().unwrap()[0].name, "A");
        let mounts: Vec<_> = main
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/data", USER_LOG_DIR]);
    }

    #[test]
    fn disallowed_fields_are_user_errors_naming_the_field() {
        let cases = [
            (
                "spec: {serviceAccountName: admin}",
                "driver pod template: spec.serviceAccountName",
            ),
            (
                "spec: {serviceAccount: admin}",
                "driver pod template: spec.serviceAccount",
            ),
            (
                "spec: {containers: [{name: spark-kubernetes-driver, image: evil}]}",
                "driver pod template: spec.containers[spark-kubernetes-driver].image",
            ),
            (
                "spec: {containers: [{name: spark-kubernetes-driver, command: [sh]}]}",
                "driver pod template: spec.containers[spark-kubernetes-driver].command",
            ),
            (
                "spec: {containers: [{name: spark-kubernetes-driver, securityContext: {privileged: true}}]}",
                "driver pod template: spec.containers[spark-kubernetes-driver].securityContext",
            ),
            (
                "metadata: {namespace: other}",
                "driver pod template: metadata.namespace",
            ),
            (
                "spec: {volumes: [{name: sparkvc-user-logs, emptyDir: {}}]}",
                "driver pod template: spec.volumes[sparkvc-user-logs]",
            ),
        ];
        for (yaml, field) in cases {
            match render(SparkRole::Driver, Some(yaml)).unwrap_err() {
                RenderError::User { field: f, message } => {
                    assert_eq!(f, field, "{yaml}");
                    assert!(message.starts_with(field), "{message}");
                }
                other => panic!("{yaml}: {other:?}"),
            }
        }
        // The same namespace is fine; pod-level securityContext is allowed.
        assert!(
            render(
                SparkRole::Driver,
                Some("metadata: {namespace: ns1}\nspec: {securityContext: {fsGroup: 65534}}")
            )
            .is_ok()
        );
    }

    #[test]
    fn unparsable_templates_are_user_errors() {
        for text in [
            "",
            "  \n",
            "- a\n- b\n",
            "kind: Service\n",
            "{not json",
            "spec: {containers: 3}",
            "a: [unclosed",
        ] {
            let err = render(SparkRole::Executor, Some(text)).unwrap_err();
            assert_eq!(
                err.failure_reason(),
                sparkvc_proto::FailureReason::UserError,
                "{text}"
            );
            assert!(
                err.to_string()
                    .starts_with("executor pod template is not a valid pod"),
                "{err}"
            );
        }
    }

    #[test]
    fn owner_and_extra_volumes_are_added() {
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "o".into(),
            uid: "u-1".into(),
            ..OwnerReference::default()
        };
        let mut i = inputs(SparkRole::Driver, None);
        i.owner = Some(&owner);
        i.extra_volumes = vec![(
            Volume {
                name: "extra".into(),
                ..Volume::default()
            },
            VolumeMount {
                name: "extra".into(),
                mount_path: "/x".into(),
                ..VolumeMount::default()
            },
        )];
        let pod = render_pod_template(&i).unwrap();
        assert_eq!(pod.metadata.owner_references.as_ref().unwrap(), &[owner]);
        assert_eq!(
            pod.spec.as_ref().unwrap().volumes.as_ref().unwrap().len(),
            2
        );
        let json = to_json(&pod).unwrap();
        assert!(json.ends_with("}\n"));
        assert!(json.contains("\"mountPath\": \"/x\""));
    }

    #[test]
    fn parse_errors_never_quote_the_template() {
        let secret = "hunter2-s3cr3t";
        let templates = [
            format!("{{\"spec\": {secret}}}"),
            format!("apiVersion: {secret}\n"),
            format!("kind: {secret}\n"),
            format!("spec:\n  containers: {secret}\n"),
            format!("spec:\n  restartPolicy: [{secret}]\n"),
            format!(
                "spec:\n  containers:\n    - name: a\n      ports:\n        - containerPort: {secret}\n"
            ),
            format!("spec: [\n  {secret}: :\n"),
            format!("'{secret}\n"),
            format!("{secret}: {{ a: [\n"),
        ];
        for text in &templates {
            let err = parse_pod("driver pod template", text).expect_err(text);
            let message = err.to_string();
            assert!(!message.contains(secret), "{text:?} gave {message}");
            assert!(message.contains("is not a valid pod"), "{message}");
        }
    }
}
