//! Helpers of the Helm chart's tests: find helm (built from its Go module by
//! `deploy/local/helm/build`), render the chart, split the rendering into
//! objects, and compare text with the golden files.
//!
//! The tests themselves: `tests/chart.rs` (lint, golden renderings, the
//! rendered configuration and identity store read by the server's own code,
//! every value documented) needs no cluster; `tests/dry_run.rs` sends the
//! rendered objects to the local API server as a server-side dry-run;
//! `tests/least_privilege.rs` shows on the local cluster that each grant of
//! the chart's RBAC is needed. `rbac` types that RBAC; the `chart-identity`
//! binary applies it for `make test`, whose servers then act as the chart's
//! ServiceAccount.

pub mod rbac;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The release name and namespace the golden files are rendered with.
pub const RELEASE: &str = "sparkvc";
pub const NAMESPACE: &str = "sparkvc";

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `deploy/helm/sparkvc`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("deploy/helm/sparkvc")
}

/// The values file of the second golden rendering (TLS, identities, the
/// ServiceMonitor, most values away from their defaults).
pub fn full_values() -> PathBuf {
    chart_dir().join("tests/values-full.yaml")
}

/// The helm binary: `deploy/local/helm/build` prints its path, building it
/// first if its cache has none (minutes, once; its progress shows on
/// stderr). Built at most once per test process.
pub fn helm() -> Result<PathBuf> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(|| build_helm().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_helm() -> Result<PathBuf> {
    let script = repo_root().join("deploy/local/helm/build");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "{} failed ({}); its output is above",
        script.display(),
        out.status
    );
    let path = String::from_utf8(out.stdout)?.trim().to_string();
    ensure!(!path.is_empty(), "{} printed no path", script.display());
    Ok(PathBuf::from(path))
}

/// What one helm command printed.
#[derive(Debug)]
pub struct HelmOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs helm with `args`, with a HOME-independent configuration (no
/// repositories, no plugins, no cache of the user's).
pub fn run_helm(args: &[&str]) -> Result<HelmOutput> {
    let helm = helm()?;
    let scratch = std::env::temp_dir().join("sparkvc-helm-tests");
    let out = Command::new(&helm)
        .args(args)
        .env("HELM_CONFIG_HOME", scratch.join("config"))
        .env("HELM_CACHE_HOME", scratch.join("cache"))
        .env("HELM_DATA_HOME", scratch.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    Ok(HelmOutput {
        success: out.status.success(),
        stdout: String::from_utf8(out.stdout)?,
        stderr: String::from_utf8(out.stderr)?,
    })
}

/// `helm template` of the chart as release [`RELEASE`] in `namespace`, with
/// these values files and `--set` assignments.
pub fn render(namespace: &str, values: &[&Path], set: &[&str]) -> Result<String> {
    render_release(RELEASE, namespace, values, set)
}

/// `helm template` of the chart as release `release` in `namespace`.
pub fn render_release(
    release: &str,
    namespace: &str,
    values: &[&Path],
    set: &[&str],
) -> Result<String> {
    let chart = chart_dir();
    let mut args = vec![
        "template".to_string(),
        release.to_string(),
        chart.display().to_string(),
        "--namespace".to_string(),
        namespace.to_string(),
    ];
    for file in values {
        args.push("--values".into());
        args.push(file.display().to_string());
    }
    for assignment in set {
        args.push("--set".into());
        args.push(assignment.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args)?;
    if !out.success {
        bail!("helm {} failed:\n{}", args.join(" "), out.stderr);
    }
    Ok(out.stdout)
}

/// The objects of a multi-document YAML rendering, in order (empty
/// documents left out).
pub fn documents(yaml: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).context("the rendering is not valid YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The object of this kind and name.
pub fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("the rendering has no {kind} {name}"))
}

/// Compares `text` with `deploy/helm/sparkvc/tests/golden/<file>`, or
/// writes it there when `SPARKVC_UPDATE_GOLDEN` is set (as the rendering
/// golden tests of `services/render` do).
pub fn check_golden(file: &str, text: &str) -> Result<()> {
    let path = chart_dir().join("tests/golden").join(file);
    if std::env::var_os("SPARKVC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: missing; run with SPARKVC_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    })?;
    if let Some(diff) = first_difference(&want, text) {
        bail!(
            "{} differs from the chart's rendering:\n{diff}\n\
             If the change is intended, rerun with SPARKVC_UPDATE_GOLDEN=1 \
             (cargo test -p sparkvc-helm-tests --test chart) and review the diff.",
            path.display()
        );
    }
    Ok(())
}

/// The first differing line of two texts with three lines of context
/// before it, golden lines marked `-` and rendered ones `+`; None if equal.
pub fn first_difference(golden: &str, rendered: &str) -> Option<String> {
    if golden == rendered {
        return None;
    }
    let (want, got): (Vec<&str>, Vec<&str>) =
        (golden.lines().collect(), rendered.lines().collect());
    let at = want
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let mut out = String::new();
    for (n, line) in want.iter().enumerate().take(at).skip(at.saturating_sub(3)) {
        out.push_str(&format!("  {:>4}   {line}\n", n + 1));
    }
    for (n, line) in want.iter().enumerate().skip(at).take(3) {
        out.push_str(&format!("  {:>4} - {line}\n", n + 1));
    }
    for (n, line) in got.iter().enumerate().skip(at).take(3) {
        out.push_str(&format!("  {:>4} + {line}\n", n + 1));
    }
    if want.len() != got.len() {
        out.push_str(&format!(
            "  (golden: {} lines, rendered: {} lines)\n",
            want.len(),
            got.len()
        ));
    } else if at == want.len() {
        out.push_str("  (they differ in line endings or a final newline)\n");
    }
    Some(out)
}

/// The dotted paths of every leaf of a values tree (`tls.certManager.enabled`):
/// scalars, lists and empty maps are leaves.
pub fn value_paths(values: &Value) -> Vec<String> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, v) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", values, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_shown_with_its_context() {
        let golden = "a\nb\nc\nd\ne\n";
        let rendered = "a\nb\nc\nD\ne\n";
        let diff = first_difference(golden, rendered).unwrap();
        assert!(diff.contains("     3   c\n"), "{diff}");
        assert!(diff.contains("     4 - d\n"), "{diff}");
        assert!(diff.contains("     4 + D\n"), "{diff}");
        assert_eq!(first_difference(golden, golden), None);
        let longer = first_difference("a\n", "a\nb\n").unwrap();
        assert!(longer.contains("     2 + b"), "{longer}");
        assert!(
            longer.contains("golden: 1 lines, rendered: 2 lines"),
            "{longer}"
        );
    }

    #[test]
    fn leaves_of_the_values_tree_are_their_dotted_paths() {
        let values = serde_json::json!({
            "a": {"b": 1, "c": {}, "d": [1]},
            "e": "",
        });
        assert_eq!(value_paths(&values), ["a.b", "a.c", "a.d", "e"]);
    }
}
