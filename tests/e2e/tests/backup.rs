//! Backup and restore (issue 17, item 4): a backup taken with `GET /backup`
//! while runs are being started and cancelled, carried through S3 (the AWS
//! stand-in) the way an operator would (`curl … | aws s3 cp - s3://…`, here
//! with curl and the AWS SDK), restored into a fresh data directory with
//! `sparkvc-server restore`, and served: every run acknowledged before the
//! backup began is there with its whole state history.

use aws_sdk_s3::primitives::ByteStream;
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_every_acknowledged_run() {
    let env = sparkvc_cluster_tests::LocalEnv::load().expect("the local environment (moto)");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--metrics-listen", "127.0.0.1:0"],
    );
    let base = server
        .metrics_url
        .clone()
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;

    // The load: runs started one after another, every third one cancelled;
    // `done` lists each run once its last call was acknowledged.
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (mut client, vc, done, stop) = (client.clone(), vc.clone(), done.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = client
                    .start_job_run(start_request(&vc))
                    .await
                    .expect("StartJobRun")
                    .into_inner()
                    .id;
                if n % 3 == 0 {
                    client
                        .cancel_job_run(pb::CancelJobRunRequest {
                            id: id.clone(),
                            virtual_cluster_id: vc.clone(),
                        })
                        .await
                        .expect("CancelJobRun");
                }
                done.lock().unwrap().push(id);
                n += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<String> = done.lock().unwrap().clone();
    let file = dir.path().join("sparkvc.backup");
    let curl = tokio::task::spawn_blocking({
        let (url, file) = (format!("{base}/backup"), file.clone());
        move || {
            Command::new("curl")
                .args(["-sSf", "-o"])
                .arg(&file)
                .arg(&url)
                .output()
                .expect("run curl")
        }
    })
    .await
    .unwrap();
    assert!(
        curl.status.success(),
        "GET /backup: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    assert!(
        before.len() >= 20,
        "the load made only {} runs",
        before.len()
    );

    // What the live server says about the runs finished before the backup.
    let mut expected = BTreeMap::new();
    for id in &before {
        expected.insert(id.clone(), describe_run(&mut client, &vc, id).await);
    }
    drop(client);
    assert!(server.terminate(), "the server did not stop cleanly");

    // Through S3, as an operator would keep it.
    let s3 = env.s3_client().await;
    let bucket = format!("sparkvc-backups-{}", std::process::id());
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the bucket");
    s3.put_object()
        .bucket(&bucket)
        .key("nightly/sparkvc.backup")
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .expect("upload the backup");
    let fetched = s3
        .get_object()
        .bucket(&bucket)
        .key("nightly/sparkvc.backup")
        .send()
        .await
        .expect("download the backup")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(
        fetched.len() as u64,
        std::fs::metadata(&file).unwrap().len()
    );

    // Restore from standard input into a new data directory.
    let restored = dir.path().join("restored");
    let mut restore = Command::new(server_binary())
        .args(["restore", "--from", "-", "--data-dir"])
        .arg(&restored)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sparkvc-server restore");
    restore.stdin.take().unwrap().write_all(&fetched).unwrap();
    let out = restore.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("restored "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Not twice into the same place.
    let again = Command::new(server_binary())
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let server = Server::start(&restored);
    let mut client = server.client().await;
    for (id, want) in &expected {
        let got = describe_run(&mut client, &vc, id).await;
        assert_eq!(&got, want, "run {id} differs after the restore");
    }
    let cancelled = expected.values().filter(|r| r.state == "CANCELLED").count();
    assert!(cancelled > 0, "no cancelled run among {}", expected.len());
    // The restored store takes writes.
    client
        .start_job_run(start_request(&vc))
        .await
        .expect("StartJobRun after the restore");
}
