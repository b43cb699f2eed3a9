//! The store's own behaviour: replay, checkpoints, read-your-writes,
//! paging and timers. Crash and disk-fault cases are in `durability_tests`.

use super::*;

fn pending_run(vc: &str, id: &str) -> pb::JobRun {
    let mut run = pb::JobRun {
        id: id.into(),
        virtual_cluster_id: vc.into(),
        ..Default::default()
    };
    crate::state::initial(&mut run, prost_types::Timestamp::default());
    run
}

/// The changes `put_job_run` makes for a new run, as journal changes.
fn new_run_changes(run: &pb::JobRun) -> Vec<journal::Change> {
    let key = keys::job_run(&run.virtual_cluster_id, &run.id);
    vec![
        (TreeId::JobRuns as u8, key.clone(), Some(encode(run))),
        (TreeId::OpenJobRuns as u8, key, Some(b"PENDING".to_vec())),
    ]
}

#[tokio::test]
async fn open_replays_what_only_the_journal_holds() {
    // A store directory as a crash can leave it: two writes reached the
    // journal but not sled, and a third was torn mid-record.
    let dir = tempfile::tempdir().unwrap();
    drop(sled::open(dir.path()).unwrap());
    let journal = journal::Journal::open(&dir.path().join("journal")).unwrap();
    let mut segment = journal.create_segment(1).unwrap();
    let mut bytes = Vec::new();
    journal::encode(1, &new_run_changes(&pending_run("vc", "r1")), &mut bytes);
    journal::encode(2, &new_run_changes(&pending_run("vc", "r2")), &mut bytes);
    let mut torn = Vec::new();
    journal::encode(3, &new_run_changes(&pending_run("vc", "r3")), &mut torn);
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    segment.append_durably(&bytes).unwrap();
    drop(segment);

    let store = Store::open(dir.path()).unwrap();
    assert!(store.job_run("vc", "r1").unwrap().is_some());
    assert!(store.job_run("vc", "r2").unwrap().is_some());
    assert!(
        store.job_run("vc", "r3").unwrap().is_none(),
        "a torn record is not replayed"
    );
    assert_eq!(store.open_job_runs().unwrap().len(), 2);
    assert_eq!(store.queue_counts("vc").in_queue, 2);

    // Writes go on after the replayed ones, and survive a clean close,
    // which leaves no journal behind.
    store
        .write(|txn| -> StoreResult<()> {
            txn.put_job_run(None, &pending_run("vc", "r4"))?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().unwrap();
    assert_eq!(journal.segments().unwrap(), []);
    let err = store
        .write(|txn| -> StoreResult<()> {
            txn.put_job_run(None, &pending_run("vc", "r5"))?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not flush the store to disk: the store is closed"
    );
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.open_job_runs().unwrap().len(), 3);
}

#[tokio::test]
async fn full_segments_are_checkpointed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let small = journal::Journal::with_segment_bytes(&journal_dir, 2048).unwrap();
    let store = Store::open_with_journal(dir.path(), small.clone()).unwrap();
    for i in 0..200 {
        store
            .write(|txn| -> StoreResult<()> {
                txn.put_job_run(None, &pending_run("vc", &format!("r{i:03}")))?;
                Ok(())
            })
            .await
            .unwrap();
    }
    // Each record is about 150 bytes: many segments were filled, and the
    // checkpoint thread deletes them once sled has flushed them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while small.segments().unwrap().len() > 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "full segments are kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.close().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.job_run_count(), 200);
    assert_eq!(store.queue_counts("vc").in_queue, 200);
}

#[tokio::test]
async fn a_write_sees_earlier_writes_and_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let writes = (0..50).map(|i| {
        let store = store.clone();
        async move {
            store
                .write(|txn| -> StoreResult<()> {
                    txn.put_job_run(None, &pending_run("vc", &format!("r{i:02}")))?;
                    Ok(())
                })
                .await
        }
    });
    futures::future::try_join_all(writes).await.unwrap();
    let open = store
        .write(|txn| -> StoreResult<Vec<String>> {
            txn.put_job_run(None, &pending_run("vc", "zz"))?;
            txn.open_job_runs_of("vc")
        })
        .await
        .unwrap();
    assert_eq!(
        open.len(),
        50,
        "the runs committed before, not this write's own"
    );
    assert_eq!(store.queue_counts("vc").in_queue, 51);
}

#[tokio::test]
async fn a_page_of_large_records_stops_at_its_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..10u64 {
        let mut run = pending_run("vc", &ids::new_id(1_000_000 + i, ids::JOB_RUN_ID_LEN));
        run.name = "x".repeat(300 * 1024);
        store
            .write(|txn| -> StoreResult<()> {
                txn.put_job_run(None, &run)?;
                Ok(())
            })
            .await
            .unwrap();
    }
    let window = |cursor| Window {
        limit: 50,
        max_bytes: 1024 * 1024,
        cursor,
        ..Window::default()
    };
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_job_runs("vc", &window(cursor), |_| true)
            .unwrap();
        assert!(
            (1..=3).contains(&page.items.len()),
            "{} items",
            page.items.len()
        );
        seen += page.items.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 10, "paging by bytes loses no run");
    // One record larger than the budget still comes, alone.
    let tiny = Window {
        limit: 50,
        max_bytes: 1,
        ..Window::default()
    };
    assert_eq!(
        store
            .list_job_runs("vc", &tiny, |_| true)
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn timers_come_due_in_time_order_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(|txn| -> StoreResult<()> {
            txn.schedule(Timer::Cleanup, 2_000, "vc", "late");
            txn.schedule(Timer::Cleanup, 1_000, "vc", "early");
            txn.schedule(Timer::Retry, 500, "vc", "retried");
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(store.due(Timer::Cleanup, 999, 10).unwrap(), []);
    assert_eq!(store.next_due(Timer::Cleanup).unwrap(), Some(1_000));
    assert_eq!(store.next_due(Timer::Retry).unwrap(), Some(500));
    let due = store.due(Timer::Cleanup, 2_000, 10).unwrap();
    let runs: Vec<&str> = due.iter().map(|c| c.run_id.as_str()).collect();
    assert_eq!(runs, ["early", "late"]);
    let first = due[0].key.clone();
    store
        .write(|txn| -> StoreResult<()> {
            txn.unschedule(Timer::Cleanup, &first);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        store.due(Timer::Cleanup, u64::MAX - 1, 10).unwrap().len(),
        1
    );
    assert_eq!(
        store.due(Timer::Retry, 500, 10).unwrap()[0].run_id,
        "retried"
    );
}

/// Every file under `dir`, with its bytes, to tell whether anything changed.
fn snapshot(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[tokio::test]
async fn a_store_of_a_newer_format_is_refused_and_left_as_it_was() {
    // A store with data in it, as a newer release could leave it.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(|txn| -> StoreResult<()> {
            txn.put_job_run(None, &pending_run("vc", "r1"))?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().unwrap();
    drop(store);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        "sparkvc-store-format 1\n",
        "open records the format"
    );
    std::fs::write(dir.path().join("FORMAT"), "sparkvc-store-format 2\n").unwrap();
    let before = snapshot(dir.path());

    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Format(format::FormatError::Newer { found: 2, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert!(before == snapshot(dir.path()), "the refused store changed");

    // Put back, it opens with its data.
    std::fs::write(dir.path().join("FORMAT"), "sparkvc-store-format 1\n").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.job_run("vc", "r1").unwrap().is_some());
}
