//! Writes the store fixture of this tree's store format (see
//! `sparkvc_e2e::store_fixture`):
//!
//!     cargo run -p sparkvc-e2e --example make_store_fixture
//!
//! It refuses to overwrite a fixture that exists: those are what earlier
//! releases wrote, and the upgrade test depends on them being exactly that.

use sparkvc_e2e::Server;
use sparkvc_e2e::store_fixture::{fixtures_dir, populate};
use std::process::Command;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let format = sparkvc_server::store::format::CURRENT;
    let dir = fixtures_dir();
    let archive = dir.join(format!("store-format-{format}.tar.gz"));
    let manifest_file = dir.join(format!("store-format-{format}.json"));
    assert!(
        !archive.exists() && !manifest_file.exists(),
        "{} already exists: fixtures of released formats are never rewritten",
        archive.display()
    );
    let work = tempfile::tempdir().expect("a temporary directory");
    let data = work.path().join("data");
    let server = Server::start(&data);
    let mut client = server.client().await;
    let manifest = populate(&mut client).await;
    drop(client);
    assert!(server.terminate(), "the server did not stop cleanly");

    std::fs::create_dir_all(&dir).expect("the fixtures directory");
    let status = Command::new("tar")
        .args(["-czf"])
        .arg(&archive)
        .arg("-C")
        .arg(work.path())
        .arg("data")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed: {status}");
    let mut json = serde_json::to_string_pretty(&manifest).expect("manifest as JSON");
    json.push('\n');
    std::fs::write(&manifest_file, json).expect("write the manifest");
    println!(
        "wrote {} and {}",
        archive.display(),
        manifest_file.display()
    );
}
