//! Gives the tests' sparkvc-server the chart's identity on the local
//! cluster: applies the chart's ServiceAccount and RBAC (release
//! `sparkvc-e2e` in namespace `sparkvc-e2e`, the tenant role bound
//! cluster-wide because every test makes its own namespace, TokenReviews
//! allowed), writes a kubeconfig that impersonates that ServiceAccount, and
//! an env file that points the tests at it. Prints the env file's path.
//!
//! `deploy/test.sh` sources that file, so every end-to-end test's server
//! acts on the cluster with exactly the rights the chart gives (issue 17:
//! the e2e cluster tests pass as the chart's ServiceAccount). The tests'
//! own clients stay the cluster's admin.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use sparkvc_cluster_tests::{LocalEnv, default_run_dir};
use sparkvc_helm_tests::rbac::Rbac;
use sparkvc_helm_tests::render_release;

/// The release: its name contains the chart's, so its fullname is the same.
const RELEASE: &str = "sparkvc-e2e";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let env = LocalEnv::load()?;
    let kube = env.kube_client().await?;
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": RELEASE}
    }))?;
    match Api::<Namespace>::all(kube.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err).context("creating the release namespace"),
    }
    let rendered = render_release(
        RELEASE,
        RELEASE,
        &[],
        &["rbac.clusterWideTenants=true", "rbac.tokenReview=true"],
    )?;
    let rbac = Rbac::from_rendering(&rendered)?;
    rbac.apply(&kube, &[]).await?;
    let account = rbac.fullname();

    let mut kubeconfig = Kubeconfig::read_from(&env.kubeconfig)?;
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some(format!("system:serviceaccount:{RELEASE}:{account}"));
        }
    }
    let dir = default_run_dir();
    let kubeconfig_path = dir.join("chart-identity.kubeconfig");
    std::fs::write(&kubeconfig_path, serde_json::to_string(&kubeconfig)?)
        .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
    let env_path = dir.join("chart-identity.env");
    std::fs::write(
        &env_path,
        format!(
            "# sparkvc-server in the tests acts as the chart's ServiceAccount ({RELEASE}/{account}).\n\
             export SPARKVC_SERVER_KUBECONFIG='{}'\n\
             export SPARKVC_SERVER_LEASE='{RELEASE}/{account}'\n",
            kubeconfig_path.display()
        ),
    )
    .with_context(|| format!("writing {}", env_path.display()))?;
    println!("{}", env_path.display());
    Ok(())
}
