//! Log shipping, the EMR-on-EKS way: when a run's `monitoringConfiguration`
//! names S3 (`s3MonitoringConfiguration.logUri`) and/or CloudWatch
//! (`cloudWatchMonitoringConfiguration`), its job-runner, driver and executor
//! pods get a fluentd sidecar that ships their stdout and stderr there.
//!
//! - The main container's output reaches the sidecar through the shared
//!   emptyDir `/var/log/spark/user`: its command runs under a small bash
//!   wrapper ([`capture_argv`], [`CAPTURE_SCRIPT`]) that copies stdout and
//!   stderr into `/var/log/spark/user/<pod>/{stdout,stderr}` with `tee`, so
//!   `kubectl logs` still shows them. The wrapper is a constant script; the
//!   real argv follows it as positional parameters, so nothing the user
//!   wrote is ever read by a shell.
//! - The sidecar is a Kubernetes native sidecar (an init container with
//!   `restartPolicy: Always`, Kubernetes 1.29+): it starts before the main
//!   container, does not keep a finished pod alive, and gets SIGTERM when the
//!   main container has exited; fluentd then flushes its buffers
//!   (`flush_at_shutdown`) within the pod's grace period. On clusters without
//!   native sidecars the pod would not finish; sparkvc does not support them.
//! - Layout (EMR's): S3 `<logUri>/<vcId>/jobs/<jobId>/containers/<sparkAppId>/<pod>/{stdout,stderr}-<n>.gz`
//!   and `<logUri>/<vcId>/jobs/<jobId>/control-logs/<pod>/…` for the
//!   job-runner; a stream is uploaded in numbered parts (every minute and at
//!   shutdown), where EMR writes one `stdout.gz`. CloudWatch streams
//!   `<prefix>/<vcId>/jobs/<jobId>/containers/<sparkAppId>/<pod>/{stdout,stderr}`
//!   (`…/control-logs/<pod>/…` for the job-runner) in the named group, which
//!   the plugin creates if missing (`auto_create_stream`).
//! - Settings come from the classifications: `emr-containers-defaults`
//!   `logging.image`, `logging.request.cores`, `logging.request.memory`,
//!   `executor.logging` (`DISABLED` turns executors' sidecars off);
//!   `emr-job-submitter` `jobsubmitter.logging` (`DISABLED`),
//!   `jobsubmitter.logging.image`, `…request.cores`, `…request.memory`.
//!
//! Everything here is pure; the fluentd configurations are golden-tested.

use super::RenderError;
use super::classifications::Classifications;
use super::log_destinations::{Destinations, destinations, run_path};
use super::names::USER_LOG_DIR;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, KeyToPath, ObjectFieldSelector,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use sparkvc_proto::v1::JobRun;
use std::collections::BTreeMap;

/// The sidecar's container name.
pub const SIDECAR: &str = "sparkvc-fluentd";
/// fluentd with fluent-plugin-s3 and fluent-plugin-cloudwatch-logs, built
/// from `deploy/fluentd/Dockerfile`.
pub const DEFAULT_IMAGE: &str = "ghcr.io/sparkvc/fluentd:v1.17-1";
pub const DEFAULT_CPU_REQUEST: &str = "100m";
pub const DEFAULT_MEMORY_REQUEST: &str = "200Mi";

/// ConfigMap keys of the two fluentd configurations.
pub const KEY_JOB_RUNNER_CONF: &str = "fluentd-job-runner.conf";
pub const KEY_SPARK_CONF: &str = "fluentd-spark.conf";
/// Where the sidecar sees its configuration.
pub const CONF_VOLUME: &str = "sparkvc-fluentd-conf";
pub const CONF_DIR: &str = "/etc/sparkvc/fluentd";

/// Copies the command's stdout and stderr into the pod's log directory (see
/// the module documentation). `$0` is a label; the command is `"$@"`.
///
/// With `SPARKVC_LOG_ROTATE_BYTES` and `SPARKVC_LOG_ROTATE_KEEP` set
/// (`containerLogRotationConfiguration`), each stream goes to numbered files
/// `<stream>.00000`, `<stream>.00001`, … of at most that many bytes of whole
/// lines (GNU `split -C`), and only the newest KEEP files are kept.
/// `SPARKVC_LOG_ROOT` moves the log directory (for tests).
///
/// The wrapper stays the container's main process until every copy is
/// written: when a container's first process exits, every other process in
/// it is killed at once, so copiers left running behind an `exec` lose the
/// end of the output (where the error usually is). So the command runs as a
/// child whose output goes through named pipes (beside the log directory, in
/// the shared volume: the root file system may be read-only) to `tee`
/// processes and the writers, all children the wrapper waits for; SIGTERM
/// and SIGINT are passed to the command as SIGTERM (bash does not let a
/// background command take SIGINT); the command's exit status is the
/// container's.
pub const CAPTURE_SCRIPT: &str = r#"root="${SPARKVC_LOG_ROOT:-/var/log/spark/user}" && dir="$root/$POD_NAME" && mkdir -p "$dir" || exit 1
if [ -n "$SPARKVC_LOG_ROTATE_BYTES" ]; then
  write() { split -d -a 5 -C "$SPARKVC_LOG_ROTATE_BYTES" --filter='cat > "$FILE" && ls -1 "${FILE%.*}".* | head -n -"$SPARKVC_LOG_ROTATE_KEEP" | xargs -r rm -f --' - "$dir/$1."; }
else
  write() { cat >> "$dir/$1"; }
fi
pipes="$root/.pipes-$POD_NAME-$$" && mkdir -p "$pipes" && mkfifo "$pipes/out" "$pipes/err" "$pipes/out.file" "$pipes/err.file" || exit 1
write stdout < "$pipes/out.file" &
write stderr < "$pipes/err.file" &
tee "$pipes/out.file" < "$pipes/out" &
tee "$pipes/err.file" < "$pipes/err" >&2 &
"$@" > "$pipes/out" 2> "$pipes/err" &
command=$!
trap 'kill -TERM "$command" 2>/dev/null' TERM INT
wait "$command"; status=$?
while kill -0 "$command" 2>/dev/null; do wait "$command"; status=$?; done
trap - TERM INT
wait
rm -rf "$pipes"
exit "$status""#;

/// The environment of a main container whose output is captured: its pod
/// name, and the rotation settings of `containerLogRotationConfiguration`.
pub fn capture_env(run: &JobRun) -> Vec<EnvVar> {
    let mut env = vec![pod_name_env()];
    let rotation = run
        .configuration_overrides
        .as_ref()
        .and_then(|o| o.monitoring_configuration.as_ref())
        .and_then(|m| m.container_log_rotation_configuration.as_ref());
    if let Some(r) = rotation
        && let Some(bytes) = sparkvc_proto::limits::rotation_bytes(&r.rotation_size)
    {
        let var = |name: &str, value: String| EnvVar {
            name: name.into(),
            value: Some(value),
            ..EnvVar::default()
        };
        env.push(var("SPARKVC_LOG_ROTATE_BYTES", bytes.to_string()));
        env.push(var(
            "SPARKVC_LOG_ROTATE_KEEP",
            r.max_files_to_keep.max(1).to_string(),
        ));
    }
    env
}

/// Whose output a sidecar ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    JobRunner,
    /// The driver or an executor.
    Spark,
}

impl LogSource {
    pub fn config_key(self) -> &'static str {
        match self {
            LogSource::JobRunner => KEY_JOB_RUNNER_CONF,
            LogSource::Spark => KEY_SPARK_CONF,
        }
    }

    /// Where this pod's streams go under `<vcId>/jobs/<jobId>/`, as a fluentd
    /// string (the pod name and Spark application ID come from the sidecar's
    /// environment).
    fn pod_path(self) -> &'static str {
        match self {
            LogSource::JobRunner => "control-logs/#{ENV['POD_NAME']}",
            LogSource::Spark => "containers/#{ENV['SPARK_APP_ID']}/#{ENV['POD_NAME']}",
        }
    }
}

/// What a run's sidecars are like, from its classifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarSettings {
    pub image: String,
    pub cpu_request: String,
    pub memory_request: String,
}

/// Which pods of a run get a sidecar, and what it is like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingPlan {
    pub destinations: Destinations,
    pub job_runner: Option<SidecarSettings>,
    pub driver: SidecarSettings,
    pub executor: Option<SidecarSettings>,
}

/// The run's logging plan; None when it ships no logs.
pub fn plan(run: &JobRun, classes: &Classifications) -> Result<Option<LoggingPlan>, RenderError> {
    let Some(destinations) = destinations(run)? else {
        return Ok(None);
    };
    let defaults = &classes.containers_defaults;
    let spark = SidecarSettings {
        image: defaults
            .logging_image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.into()),
        cpu_request: defaults
            .logging_cpu_request
            .clone()
            .unwrap_or_else(|| DEFAULT_CPU_REQUEST.into()),
        memory_request: defaults
            .logging_memory_request
            .clone()
            .unwrap_or_else(|| DEFAULT_MEMORY_REQUEST.into()),
    };
    let submitter = &classes.job_submitter;
    let job_runner = (submitter.logging != Some(false)).then(|| SidecarSettings {
        image: submitter
            .logging_image
            .clone()
            .unwrap_or_else(|| spark.image.clone()),
        cpu_request: submitter
            .logging_cpu_request
            .clone()
            .unwrap_or_else(|| spark.cpu_request.clone()),
        memory_request: submitter
            .logging_memory_request
            .clone()
            .unwrap_or_else(|| spark.memory_request.clone()),
    });
    let executor = (defaults.executor_logging != Some(false)).then(|| spark.clone());
    Ok(Some(LoggingPlan {
        destinations,
        job_runner,
        driver: spark,
        executor,
    }))
}

/// The fluentd configuration of one kind of pod of a run.
pub fn fluentd_config(
    destinations: &Destinations,
    source: LogSource,
    virtual_cluster_id: &str,
    job_run_id: &str,
    region: &str,
) -> String {
    let run = run_path(virtual_cluster_id, job_run_id);
    let pod = source.pod_path();
    let mut out = format!(
        "# Written by sparkvc: ships this pod's stdout and stderr\n\
         # (job run {job_run_id} of virtual cluster {virtual_cluster_id}).\n"
    );
    for stream in ["stdout", "stderr"] {
        out.push_str(&format!(
            r#"
<source>
  @type tail
  tag {stream}
  path "{USER_LOG_DIR}/#{{ENV['POD_NAME']}}/{stream}*"
  pos_file "{USER_LOG_DIR}/#{{ENV['POD_NAME']}}/.{stream}.pos"
  read_from_head true
  follow_inodes true
  refresh_interval 5
  <parse>
    @type none
  </parse>
</source>
"#
        ));
    }
    out.push_str("\n<match stdout stderr>\n  @type copy\n");
    if let Some(s3) = &destinations.s3 {
        let path = s3.key(&format!("{run}/{pod}/"));
        out.push_str(&format!(
            r#"  <store>
    @type s3
    s3_bucket {bucket}
    s3_region {region}
    path "{path}"
    s3_object_key_format "%{{path}}${{tag}}-%{{index}}.%{{file_extension}}"
    store_as gzip
    <format>
      @type single_value
    </format>
    <buffer tag>
      @type file
      path {USER_LOG_DIR}/.fluentd-buffer/s3
      flush_mode interval
      flush_interval 60s
      flush_at_shutdown true
      chunk_limit_size 64m
      retry_max_times 10
    </buffer>
  </store>
"#,
            bucket = s3.bucket,
        ));
    }
    if let Some(cw) = &destinations.cloudwatch {
        let stream = cw.stream(&format!("{run}/{pod}/${{tag}}"));
        out.push_str(&format!(
            r#"  <store>
    @type cloudwatch_logs
    region {region}
    log_group_name {group}
    log_stream_name "{stream}"
    auto_create_stream true
    message_keys message
    <buffer tag>
      @type file
      path {USER_LOG_DIR}/.fluentd-buffer/cloudwatch
      flush_mode interval
      flush_interval 5s
      flush_at_shutdown true
      retry_max_times 10
    </buffer>
  </store>
"#,
            group = cw.log_group,
        ));
    }
    out.push_str("</match>\n");
    out
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// What a pod that ships its logs gets: the sidecar, the volume of its
/// configuration, and the main container's environment for the capture
/// wrapper ([`capture_env`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LogCapture {
    pub sidecar: Container,
    pub config_volume: Volume,
    pub env: Vec<EnvVar>,
}

/// `POD_NAME` from the downward API, for the capture wrapper and fluentd.
pub fn pod_name_env() -> EnvVar {
    field_env("POD_NAME", "metadata.name")
}

/// The ConfigMap volume with one fluentd configuration, and its mount.
pub fn config_volume(config_map: &str, source: LogSource) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: CONF_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.into(),
            items: Some(vec![KeyToPath {
                key: source.config_key().into(),
                path: "fluent.conf".into(),
                ..KeyToPath::default()
            }]),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: CONF_VOLUME.into(),
        mount_path: CONF_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    (volume, mount)
}

/// The fluentd sidecar: a native sidecar (init container that keeps
/// running) reading the pod's log directory, `log_volume` mounted at
/// `/var/log/spark/user`.
pub fn sidecar(
    settings: &SidecarSettings,
    source: LogSource,
    log_volume: &str,
    region: &str,
) -> Container {
    let mut env = vec![
        pod_name_env(),
        EnvVar {
            name: "AWS_REGION".into(),
            value: Some(region.into()),
            ..EnvVar::default()
        },
    ];
    if source == LogSource::Spark {
        // Spark labels its pods with the application ID.
        env.push(field_env(
            "SPARK_APP_ID",
            "metadata.labels['spark-app-selector']",
        ));
    }
    Container {
        name: SIDECAR.into(),
        image: Some(settings.image.clone()),
        args: Some(vec!["-c".into(), format!("{CONF_DIR}/fluent.conf")]),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(settings.cpu_request.clone())),
                (
                    "memory".to_string(),
                    Quantity(settings.memory_request.clone()),
                ),
            ])),
            ..ResourceRequirements::default()
        }),
        restart_policy: Some("Always".into()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: log_volume.into(),
                mount_path: USER_LOG_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: CONF_VOLUME.into(),
                mount_path: CONF_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(super::security::restricted_security_context()),
        ..Container::default()
    }
}

/// `argv` run under the capture wrapper ([`CAPTURE_SCRIPT`]).
pub fn capture_argv(label: &str, argv: &[String]) -> Vec<String> {
    let mut out = vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        CAPTURE_SCRIPT.to_string(),
        label.to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_keeps_user_arguments_out_of_the_script() {
        let argv = capture_argv("job-runner", &["spark-submit".into(), "$(rm -rf /)".into()]);
        assert_eq!(
            &argv[..4],
            ["/bin/bash", "-c", CAPTURE_SCRIPT, "job-runner"]
        );
        assert_eq!(&argv[4..], ["spark-submit", "$(rm -rf /)"]);
        assert!(
            !CAPTURE_SCRIPT.contains("$(")
                && CAPTURE_SCRIPT.contains(r#""$@" > "$pipes/out" 2> "$pipes/err" &"#)
        );
    }

    /// Runs `command` under the capture wrapper with real bash and
    /// coreutils; returns (its exit code, its stdout, the log directory).
    fn capture(command: &str, env: &[(&str, &str)]) -> (i32, String, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let argv = capture_argv("test", &["sh".into(), "-c".into(), command.into()]);
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("POD_NAME", "pod-1")
            .env("SPARKVC_LOG_ROOT", root.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let code = out.status.code().expect("an exit code");
        (code, String::from_utf8(out.stdout).unwrap(), root)
    }

    /// The log files, read as soon as the wrapper has exited: it must have
    /// waited for its writers (in a container they die with it), and leave
    /// nothing but the files behind.
    fn files(root: &std::path::Path) -> Vec<(String, String)> {
        let names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["pod-1"], "only the pod's directory is left");
        let mut files: Vec<(String, String)> = std::fs::read_dir(root.join("pod-1"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_wrapper_copies_output_and_still_passes_it_through() {
        // Many lines written just before the command exits: none is lost.
        let (code, stdout, root) = capture(
            "echo err >&2; for i in $(seq 1 2000); do echo \"line $i\"; done; exit 3",
            &[],
        );
        assert_eq!(code, 3, "the command's exit status");
        assert_eq!(stdout.lines().count(), 2000);
        let files = files(root.path());
        assert_eq!(files[0], ("stderr".into(), "err\n".into()));
        assert_eq!(files[1].0, "stdout");
        assert_eq!(files[1].1, stdout);
    }

    #[test]
    fn sigterm_reaches_the_command_and_its_last_words_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let command = "trap 'echo stopping; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
        let argv = capture_argv("test", &["sh".into(), "-c".into(), command.into()]);
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("POD_NAME", "pod-1")
            .env("SPARKVC_LOG_ROOT", root.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = root.path().join("pod-1/stdout");
        for _ in 0..200 {
            if std::fs::read_to_string(&stdout).is_ok_and(|t| t.contains("ready")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(7), "the command's own exit on SIGTERM");
        assert_eq!(
            files(root.path()),
            [
                ("stderr".into(), "".into()),
                ("stdout".into(), "ready\nstopping\n".into())
            ]
        );
    }

    #[test]
    fn rotation_keeps_the_newest_files_of_whole_lines() {
        let env = [
            ("SPARKVC_LOG_ROTATE_BYTES", "100"),
            ("SPARKVC_LOG_ROTATE_KEEP", "2"),
        ];
        // 40 lines of 10 bytes: four files of 100 bytes, of which two stay.
        let (code, stdout, root) =
            capture("for i in $(seq 10 49); do echo \"line $i..\"; done", &env);
        assert_eq!(code, 0);
        assert_eq!(stdout.lines().count(), 40);
        let files = files(root.path());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["stdout.00002", "stdout.00003"]);
        let kept: String = files.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(kept.lines().next(), Some("line 30.."));
        assert_eq!(kept.lines().count(), 20);
    }

    #[test]
    fn a_sidecar_is_native_and_reads_the_log_directory() {
        let settings = SidecarSettings {
            image: "img".into(),
            cpu_request: "100m".into(),
            memory_request: "200Mi".into(),
        };
        let spark = sidecar(&settings, LogSource::Spark, "logs", "us-west-2");
        assert_eq!(spark.restart_policy.as_deref(), Some("Always"));
        let env: Vec<&str> = spark
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(env, ["POD_NAME", "AWS_REGION", "SPARK_APP_ID"]);
        let runner = sidecar(&settings, LogSource::JobRunner, "logs", "us-west-2");
        assert!(
            !runner
                .env
                .iter()
                .flatten()
                .any(|e| e.name == "SPARK_APP_ID")
        );
    }
}
