//! Upgrades: every store fixture an earlier release wrote
//! (`fixtures/store-format-*.tar.gz`, see `sparkvc_e2e::store_fixture`)
//! opens in this build and serves exactly what the API said when it was
//! written; it then takes writes, which survive a restart.
//!
//! (A store of a newer format than this build reads is refused untouched:
//! that is `store::tests::a_store_of_a_newer_format_is_refused_and_left_as_it_was`
//! in the server crate, plus the server's message, tested below.)

use sparkvc_e2e::store_fixture::{Manifest, fixtures_dir, live_cluster_request, read_back};
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::path::Path;
use std::process::Command;

/// The fixtures checked in, oldest format first.
fn fixtures() -> Vec<(u32, std::path::PathBuf)> {
    let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("the fixtures directory")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let format = name
                .strip_prefix("store-format-")?
                .strip_suffix(".tar.gz")?
                .parse()
                .ok()?;
            Some((format, path))
        })
        .collect();
    found.sort();
    found
}

fn unpack(archive: &Path, into: &Path) {
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {} failed", archive.display());
}

#[tokio::test]
async fn every_earlier_releases_store_opens_and_serves() {
    let fixtures = fixtures();
    assert!(
        !fixtures.is_empty(),
        "no store fixtures in {}",
        fixtures_dir().display()
    );
    for (format, archive) in fixtures {
        let manifest: Manifest = serde_json::from_str(
            &std::fs::read_to_string(archive.with_file_name(format!("store-format-{format}.json")))
                .expect("the fixture's manifest"),
        )
        .expect("a manifest");
        assert_eq!(manifest.store_format, format);
        let dir = tempfile::tempdir().unwrap();
        unpack(&archive, dir.path());
        let data = dir.path().join("data");

        let server = Server::start(&data);
        let mut client = server.client().await;
        let clusters: Vec<String> = manifest
            .virtual_clusters
            .iter()
            .map(|v| v.id.clone())
            .collect();
        let runs: Vec<String> = manifest.job_runs.iter().map(|r| r.id.clone()).collect();
        let served = read_back(
            &mut client,
            &clusters,
            &runs,
            &manifest.job_templates[0].id,
            &manifest.security_configurations[0].id,
        )
        .await;
        // Compared as the manifest holds them: JSON, whose timestamps keep
        // milliseconds.
        let served = serde_json::to_value(&served).unwrap();
        let written = serde_json::to_value(&manifest).unwrap();
        assert!(
            served == written,
            "format {format}: the store serves something else than was written:\nserved {served:#}\nwritten {written:#}"
        );

        // Listings, the states filter (an index) among them.
        let live = &clusters[0];
        let pending = client
            .list_job_runs(pb::ListJobRunsRequest {
                virtual_cluster_id: live.clone(),
                states: vec!["PENDING".into()],
                ..Default::default()
            })
            .await
            .expect("list pending runs")
            .into_inner()
            .job_runs;
        let mut pending: Vec<&str> = pending.iter().map(|r| r.name.as_str()).collect();
        pending.sort();
        assert_eq!(pending, ["waiting-1", "waiting-2"], "format {format}");
        let terminated = client
            .list_virtual_clusters(pb::ListVirtualClustersRequest {
                states: vec!["TERMINATED".into()],
                ..Default::default()
            })
            .await
            .expect("list terminated clusters")
            .into_inner()
            .virtual_clusters;
        assert_eq!(
            terminated
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["fixture-deleted"]
        );

        // Idempotency records survived: the same request with the same
        // client token names the same cluster.
        let again = client
            .create_virtual_cluster(live_cluster_request())
            .await
            .expect("repeat the live cluster's creation")
            .into_inner();
        assert_eq!(
            &again.id, live,
            "format {format}: the client token was lost"
        );

        // It takes writes, and they last.
        let mut request = start_request(live);
        request.name = "after-upgrade".into();
        let new_run = client
            .start_job_run(request)
            .await
            .expect("start a run on the upgraded store")
            .into_inner()
            .id;
        drop(client);
        assert!(server.terminate(), "the server did not stop cleanly");
        assert_eq!(
            std::fs::read_to_string(data.join("store/FORMAT")).unwrap(),
            format!(
                "sparkvc-store-format {}\n",
                sparkvc_server::store::format::CURRENT
            )
        );
        let server = Server::start(&data);
        let mut client = server.client().await;
        assert_eq!(
            describe_run(&mut client, live, &new_run).await.name,
            "after-upgrade"
        );
    }
}

/// A store from a newer release: the server will not start on it, says why
/// and what to do, and leaves it as it was.
#[test]
fn the_server_refuses_a_store_of_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("store")).unwrap();
    std::fs::write(data.join("store/FORMAT"), "sparkvc-store-format 99\n").unwrap();
    let out = Command::new(server_binary())
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run sparkvc-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has format 99, newer than this sparkvc reads")
            && stderr.contains("left untouched"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(data.join("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["FORMAT"], "the refused store gained files");
}
