//! The chart without a cluster: `helm lint`, the two golden renderings, the
//! rendered configuration file and identity store as the server itself reads
//! them, and the README's table of values.
//!
//! After an intended change to the chart, regenerate the golden files with
//! `SPARKVC_UPDATE_GOLDEN=1 cargo test -p sparkvc-helm-tests --test chart`
//! and review the diff.

use anyhow::{Context, Result, ensure};
use clap::Parser;
use serde_json::Value;
use sparkvc_helm_tests::{
    NAMESPACE, chart_dir, check_golden, documents, full_values, object, render, run_helm,
    value_paths,
};
use sparkvc_server::auth::identities::Identities;
use sparkvc_server::config::{Config, Flags};
use std::path::Path;

fn lint(args: &[&str]) -> Result<()> {
    let chart = chart_dir().display().to_string();
    let mut all = vec!["lint", chart.as_str()];
    all.extend_from_slice(args);
    let out = run_helm(&all)?;
    // INFO lines (an icon is recommended) are not findings.
    let findings: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| l.contains("[WARNING]") || l.contains("[ERROR]"))
        .collect();
    ensure!(
        out.success && findings.is_empty(),
        "helm {} is not clean:\n{}{}",
        all.join(" "),
        out.stdout,
        out.stderr
    );
    Ok(())
}

#[test]
fn lint_is_clean_with_the_defaults_and_the_full_values() -> Result<()> {
    let full = full_values().display().to_string();
    lint(&[])?;
    lint(&["--strict"])?;
    lint(&["--strict", "--values", &full])
}

#[test]
fn the_default_rendering_matches_its_golden_file() -> Result<()> {
    check_golden("default.yaml", &render(NAMESPACE, &[], &[])?)
}

#[test]
fn the_full_rendering_matches_its_golden_file() -> Result<()> {
    check_golden("full.yaml", &render(NAMESPACE, &[&full_values()], &[])?)
}

/// The server configuration of a rendering, written where the server can
/// read it.
fn server_config(docs: &[Value], dir: &Path) -> Result<std::path::PathBuf> {
    let map = object(docs, "ConfigMap", "sparkvc")?;
    let text = map["data"]["sparkvc-server.toml"]
        .as_str()
        .context("the ConfigMap has no sparkvc-server.toml")?;
    let path = dir.join("sparkvc-server.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn load(path: &Path) -> Result<Config, String> {
    let flags = Flags::parse_from(["sparkvc-server", "--config", path.to_str().unwrap()]);
    Config::load(&flags).map_err(|e| e.to_string())
}

#[test]
fn the_server_accepts_the_full_configuration() -> Result<()> {
    let docs = documents(&render(NAMESPACE, &[&full_values()], &[])?)?;
    let dir = tempfile::tempdir()?;
    let config = load(&server_config(&docs, dir.path())?).map_err(anyhow::Error::msg)?;
    assert_eq!(config.listen.to_string(), "0.0.0.0:50051");
    assert_eq!(
        config.metrics_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:9464")
    );
    assert_eq!(config.data_dir, Path::new("/var/lib/sparkvc"));
    assert_eq!(
        config.finished_job_ttl_seconds, 7200,
        "an integer, not 7200.0"
    );
    assert_eq!(config.region, "eu-west-1");
    let tls = config.tls.as_ref().context("TLS is on")?;
    assert_eq!(tls.cert_file, Path::new("/etc/sparkvc/tls/tls.crt"));
    assert_eq!(tls.client_ca_file, None);
    assert_eq!(
        config.identities_file.as_deref(),
        Some(Path::new("/etc/sparkvc/identities/identities.toml"))
    );
    let [cluster] = config.clusters.as_slice() else {
        panic!("one cluster: {:?}", config.clusters);
    };
    assert!(
        cluster.in_cluster && cluster.id == "eks-east",
        "{cluster:?}"
    );
    assert_eq!(cluster.job_pods.node_selector["node-pool"], "spark");
    assert_eq!(cluster.job_pods.tolerations.len(), 1);
    let lease = config.lease.as_ref().context("a Lease with the cluster")?;
    assert_eq!(
        (
            lease.namespace.as_str(),
            lease.name.as_str(),
            lease.duration_seconds
        ),
        (NAMESPACE, "sparkvc", 15)
    );
    assert_eq!(
        config.tenancy.resource_quota.as_ref().unwrap()["requests.cpu"],
        "100"
    );
    assert_eq!(
        config.app_ui.public_url.as_deref(),
        Some("https://sparkvc.example.com")
    );
    Ok(())
}

/// What NOTES.txt warns of: with neither TLS nor identities (the
/// defaults), the server refuses to serve the pod's address.
#[test]
fn the_server_refuses_the_default_configuration_as_the_notes_say() -> Result<()> {
    let rendered = render(NAMESPACE, &[], &[])?;
    let docs = documents(&rendered)?;
    let dir = tempfile::tempdir()?;
    let err = load(&server_config(&docs, dir.path())?).expect_err("refused");
    assert!(
        err.contains("0.0.0.0:50051 is not a loopback address"),
        "{err}"
    );
    let notes = run_helm(&[
        "install",
        "sparkvc",
        &chart_dir().display().to_string(),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
    ])?;
    assert!(notes.success, "{}", notes.stderr);
    assert!(
        notes.stdout.contains("WARNING: TLS is off")
            && notes.stdout.contains("WARNING: no identity store"),
        "{}",
        notes.stdout
    );
    // With both told, loudly, it starts.
    let insecure = render(
        NAMESPACE,
        &[],
        &[
            "config.insecure_allow_plaintext_remote=true",
            "config.insecure_allow_unauthenticated_remote=true",
        ],
    )?;
    let docs = documents(&insecure)?;
    load(&server_config(&docs, dir.path())?).map_err(anyhow::Error::msg)?;
    Ok(())
}

/// The identity store and its policies, laid out as the StatefulSet's
/// projected volume lays them out, load with the server's own loader (its
/// `file = "policies/tenant.json"` finds the policy).
#[test]
fn the_identity_store_loads_from_the_mounted_files() -> Result<()> {
    let docs = documents(&render(NAMESPACE, &[&full_values()], &[])?)?;
    let set = object(&docs, "StatefulSet", "sparkvc")?;
    let volumes = set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .context("volumes")?;
    let identities = volumes
        .iter()
        .find(|v| v["name"] == "identities")
        .context("an identities volume")?;
    let dir = tempfile::tempdir()?;
    for source in identities["projected"]["sources"].as_array().unwrap() {
        let (kind, from) = if source["secret"].is_object() {
            ("Secret", &source["secret"])
        } else {
            ("ConfigMap", &source["configMap"])
        };
        let name = from["name"].as_str().unwrap();
        let object = object(&docs, kind, name)?;
        for item in from["items"].as_array().unwrap() {
            let key = item["key"].as_str().unwrap();
            let text = if kind == "Secret" {
                let b64 = object["data"][key].as_str().context("secret data")?;
                decode_base64(b64)?
            } else {
                object["data"][key].as_str().context("data")?.to_string()
            };
            let path = dir.path().join(item["path"].as_str().unwrap());
            std::fs::create_dir_all(path.parent().unwrap())?;
            std::fs::write(path, text)?;
        }
    }
    let loaded = Identities::load(&dir.path().join("identities.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(
        loaded
            .files()
            .iter()
            .any(|f| f.ends_with("policies/tenant.json")),
        "{:?}",
        loaded.files()
    );
    Ok(())
}

/// Standard base64 (what helm's b64enc writes), decoded without another
/// dependency.
fn decode_base64(text: &str) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .context("not base64")? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

#[test]
fn a_setting_the_chart_owns_is_refused_with_its_name() -> Result<()> {
    let err = render(NAMESPACE, &[], &["config.data_dir=/elsewhere"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("config.data_dir is set by the chart"),
        "{err:#}"
    );
    Ok(())
}

#[test]
fn client_certificates_turn_the_probes_into_tcp_checks() -> Result<()> {
    let docs = documents(&render(
        NAMESPACE,
        &[&full_values()],
        &["tls.requireClientCertificates=true"],
    )?)?;
    let container =
        &object(&docs, "StatefulSet", "sparkvc")?["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(container[probe]["tcpSocket"]["port"], "http", "{probe}");
        assert!(container[probe]["httpGet"].is_null(), "{probe}");
    }
    let dir = tempfile::tempdir()?;
    let config = load(&server_config(&docs, dir.path())?).map_err(anyhow::Error::msg)?;
    assert_eq!(
        config.tls.unwrap().client_ca_file.as_deref(),
        Some(Path::new("/etc/sparkvc/tls/ca.crt"))
    );
    Ok(())
}

#[test]
fn every_value_is_documented_in_the_readme() -> Result<()> {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml"))?)?;
    let readme = std::fs::read_to_string(chart_dir().join("README.md"))?;
    let missing: Vec<String> = value_paths(&values)
        .into_iter()
        .filter(|path| !readme.contains(&format!("| `{path}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "values.yaml has values that README.md's table does not document (a row `| `path` | default | meaning |`): {missing:?}"
    );
    Ok(())
}

/// (API group, resource, verb) triples a rendered ClusterRole allows
/// (no wildcards: the chart's rules name everything).
fn allowed(role: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    out.push((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

/// In a tenant namespace sparkvc must hold, through the tenant ClusterRole
/// and the cluster-wide one together, every permission of the Spark Role
/// that it creates and binds there (the API server refuses to let it grant
/// what it does not hold) and every permission CreateVirtualCluster checks.
/// A change to either in the code fails here rather than on a cluster.
/// (`tests/least_privilege.rs` shows on a cluster that none is superfluous.)
#[test]
fn the_tenant_role_holds_the_spark_role_and_what_create_virtual_cluster_checks() -> Result<()> {
    let docs = documents(&render(NAMESPACE, &[], &[])?)?;
    let mut held = allowed(object(&docs, "ClusterRole", "sparkvc-tenant")?);
    held.extend(allowed(object(&docs, "ClusterRole", "sparkvc")?));
    let holds = |group: &str, resource: &str, verb: &str| {
        held.iter()
            .any(|(g, r, v)| g == group && r == resource && v == verb)
    };
    let spark = sparkvc_server::render::tenancy::render_tenant("ns", "vc", &Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .role;
    let spark = serde_json::to_value(&spark)?;
    let mut missing = Vec::new();
    for (group, resource, verb) in allowed(&spark) {
        if !holds(&group, &resource, &verb) {
            missing.push(format!("Spark Role: {verb} {resource} ({group:?})"));
        }
    }
    for (group, resource, verb) in sparkvc_server::cluster::access::REQUIRED_PERMISSIONS {
        if !holds(group, resource, verb) {
            missing.push(format!(
                "CreateVirtualCluster's check: {verb} {resource} ({group:?})"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "ClusterRoles sparkvc-tenant and sparkvc lack: {missing:#?}"
    );
    // The one cluster-wide rule: the pod watch.
    let cluster = allowed(object(&docs, "ClusterRole", "sparkvc")?);
    assert_eq!(
        cluster,
        [
            (String::new(), "pods".into(), "list".into()),
            (String::new(), "pods".into(), "watch".into())
        ]
    );
    Ok(())
}

/// The server pod against the controls of the "restricted" Pod Security
/// Standard (kubernetes.io/docs/concepts/security/pod-security-standards),
/// read from the rendering. A model of the admission check, not the check
/// itself: it catches a chart change that breaks the standard (a hostPath,
/// a capability, a root user) without a cluster.
#[test]
fn the_server_pod_meets_the_restricted_pod_security_standard() -> Result<()> {
    for values in [vec![], vec![full_values()]] {
        let values: Vec<&Path> = values.iter().map(|p| p.as_path()).collect();
        let docs = documents(&render(NAMESPACE, &values, &[])?)?;
        let pod = &object(&docs, "StatefulSet", "sparkvc")?["spec"]["template"]["spec"];
        let mut broken = Vec::new();
        let mut check = |ok: bool, control: &str| {
            if !ok {
                broken.push(control.to_string());
            }
        };
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            check(pod[host].is_null() || pod[host] == false, host);
        }
        let allowed_volumes = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let kinds: Vec<&String> = volume
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "name")
                .collect();
            check(
                kinds.iter().all(|k| allowed_volumes.contains(&k.as_str())),
                &format!("volume types: {kinds:?}"),
            );
        }
        let pod_context = &pod["securityContext"];
        check(pod_context["sysctls"].is_null(), "sysctls");
        check(
            pod_context["seccompProfile"]["type"] == "RuntimeDefault",
            "pod seccompProfile RuntimeDefault",
        );
        check(pod_context["runAsNonRoot"] == true, "pod runAsNonRoot");
        check(pod_context["runAsUser"] != 0, "pod runAsUser not 0");
        let containers = pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(pod["initContainers"].as_array().into_iter().flatten());
        for container in containers {
            let c = &container["securityContext"];
            check(
                c["privileged"].is_null() || c["privileged"] == false,
                "privileged",
            );
            check(
                c["allowPrivilegeEscalation"] == false,
                "allowPrivilegeEscalation false",
            );
            check(
                c["capabilities"]["drop"] == serde_json::json!(["ALL"]),
                "drop ALL",
            );
            check(c["capabilities"]["add"].is_null(), "no added capabilities");
            check(c["runAsUser"] != 0, "runAsUser not 0");
            check(c["procMount"].is_null(), "default procMount");
            check(
                c["readOnlyRootFilesystem"] == true,
                "readOnlyRootFilesystem",
            );
            for port in container["ports"].as_array().into_iter().flatten() {
                check(port["hostPort"].is_null(), "no hostPort");
            }
        }
        assert!(broken.is_empty(), "restricted controls broken: {broken:?}");
    }
    Ok(())
}
