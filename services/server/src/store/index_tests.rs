//! The state indexes (`job_runs_by_state`, `vc_by_state`): a listing from
//! them is the listing a walk of every record gives, page for page and
//! token for token; they are built once for a store that predates them; and
//! they stay exact through crashes at any step, simulated (a crash image of
//! the journal at a disk operation) and real (a writer process killed).

use super::journal::Journal;
use super::keys::Cursor;
use super::sim_disk::{Image, SimDisk, SimFiles};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

fn now_micros() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_micros() as u64)
}

const RUN_STATES: [&str; 7] = [
    "PENDING",
    "SUBMITTED",
    "RUNNING",
    "CANCEL_PENDING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
];
const VC_STATES: [&str; 3] = ["RUNNING", "TERMINATING", "TERMINATED"];
const NAMES: [&str; 3] = ["etl", "report", ""];
/// Run IDs are made at times from here on, a millisecond or so apart.
const T0: u64 = 1_700_000_000_000_000;

fn run(vc: &str, id: &str, state: &str, name: &str) -> pb::JobRun {
    pb::JobRun {
        id: id.into(),
        virtual_cluster_id: vc.into(),
        state: state.into(),
        name: name.into(),
        ..Default::default()
    }
}

fn vc(id: &str, state: &str, provider: &str) -> pb::VirtualCluster {
    pb::VirtualCluster {
        id: id.into(),
        state: state.into(),
        container_provider: Some(pb::ContainerProvider {
            id: provider.into(),
            r#type: "EKS".into(),
            info: None,
        }),
        ..Default::default()
    }
}

/// Opens the store in `dir`, which another handle may still hold a moment
/// after its close (sled's IO threads let go of it last): retries for 10 s.
fn reopen(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() > deadline => panic!("open {dir:?}: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// Stores `run` as a write would, whatever it was before.
fn put_run(txn: &mut Txn<'_>, run: &pb::JobRun) -> StoreResult<()> {
    let before = txn
        .job_run(&run.virtual_cluster_id, &run.id)?
        .map(|r| crate::state::state_of(&r));
    txn.put_job_run(before, run)
}

/// A store with two virtual clusters' worth of runs, in random states with
/// random names (some long, for the byte limit), many of them moved to
/// other states since, some twice within one write.
async fn random_store(rng: &mut StdRng, dir: &Path) -> (Store, Vec<String>) {
    let store = Store::open(dir).unwrap();
    let vcs = vec![
        ids::new_id(T0, ids::VIRTUAL_CLUSTER_ID_LEN),
        ids::new_id(T0 + 1, ids::VIRTUAL_CLUSTER_ID_LEN),
    ];
    let mut runs = Vec::new();
    for batch in 0..8 {
        let mut writes = Vec::new();
        for i in 0..40 {
            let vc = &vcs[rng.random_range(0..2)];
            let micros = T0 + (batch * 40 + i) * 1_000 + rng.random_range(0..1_000);
            let id = ids::new_id(micros, ids::JOB_RUN_ID_LEN);
            let mut name = NAMES[rng.random_range(0..3)].to_string();
            if rng.random_bool(0.2) {
                name.push_str(&"x".repeat(rng.random_range(100..600)));
            }
            let state = RUN_STATES[rng.random_range(0..7)];
            writes.push(run(vc, &id, state, &name));
        }
        runs.extend(writes.clone());
        store
            .write(|txn| writes.iter().try_for_each(|r| put_run(txn, r)))
            .await
            .unwrap();
    }
    for _ in 0..6 {
        let mut changed = Vec::new();
        for r in &runs {
            if rng.random_bool(0.15) {
                let mut r = r.clone();
                r.state = RUN_STATES[rng.random_range(0..7)].into();
                changed.push(r.clone());
                if rng.random_bool(0.3) {
                    // A second change to the same run in the same write.
                    r.state = RUN_STATES[rng.random_range(0..7)].into();
                    changed.push(r);
                }
            }
        }
        store
            .write(|txn| changed.iter().try_for_each(|r| put_run(txn, r)))
            .await
            .unwrap();
    }
    for i in 0..60u64 {
        let id = ids::new_id(T0 + i * 50_000, ids::VIRTUAL_CLUSTER_ID_LEN);
        let providers = ["c1", "c2"];
        let mut v = vc(
            &id,
            VC_STATES[rng.random_range(0..3)],
            providers[(i % 2) as usize],
        );
        store
            .write(|txn| txn.put_virtual_cluster(&v))
            .await
            .unwrap();
        if rng.random_bool(0.4) {
            v.state = VC_STATES[rng.random_range(0..3)].into();
            store
                .write(|txn| txn.put_virtual_cluster(&v))
                .await
                .unwrap();
        }
    }
    (store, vcs)
}

/// A random `states` filter: one to three states, at times one twice or
/// one no record has.
fn random_states(rng: &mut StdRng, from: &[&str]) -> Vec<String> {
    let mut states: Vec<String> = (0..rng.random_range(1..=3))
        .map(|_| from[rng.random_range(0..from.len())].to_string())
        .collect();
    if rng.random_bool(0.1) {
        states.push("DONE".into());
    }
    states
}

/// A random window, at times starting from an arbitrary cursor.
fn random_window(rng: &mut StdRng, prefix: &str, keys: &[Vec<u8>], span: u64) -> Window {
    let created_after_micros = rng.random_bool(0.3).then(|| T0 + rng.random_range(0..span));
    let created_before_micros = rng.random_bool(0.3).then(|| T0 + rng.random_range(0..span));
    let cursor = match rng.random_range(0..10) {
        0 => Some(keys[rng.random_range(0..keys.len())].clone()),
        1 => Some(prefix.as_bytes().to_vec()),
        2 => Some(b"0".to_vec()),
        3 => Some(b"zz".to_vec()),
        _ => None,
    };
    Window {
        created_after_micros,
        created_before_micros,
        cursor: cursor.map(|after| Cursor { after }),
        limit: rng.random_range(1..=25),
        max_bytes: [0, 0, 400, 1500][rng.random_range(0..4)],
    }
}

/// Pages through one listing both ways, from `window` on, comparing each
/// page and its cursor.
fn same_pages<M: Message + Default + PartialEq + std::fmt::Debug>(
    mut window: Window,
    what: &str,
    walk: impl Fn(&Window) -> Page<M>,
    indexed: impl Fn(&Window) -> Page<M>,
) -> usize {
    let mut seen = 0;
    for page_no in 0.. {
        let (a, b) = (walk(&window), indexed(&window));
        assert_eq!(a.items, b.items, "{what}: page {page_no}");
        assert_eq!(a.next, b.next, "{what}: the cursor after page {page_no}");
        seen += a.items.len();
        match a.next {
            Some(next) => window.cursor = Some(next),
            None => return seen,
        }
    }
    unreachable!()
}

#[tokio::test]
async fn listing_by_state_from_the_index_matches_the_walk() {
    let mut nonempty = 0;
    for seed in 0..4 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let (store, vcs) = random_store(&mut rng, dir.path()).await;
        store.check_state_indexes().unwrap();
        let run_keys: Vec<Vec<u8>> = store
            .tree(TreeId::JobRuns)
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        for q in 0..60 {
            let vc_id = &vcs[rng.random_range(0..2)];
            let states = random_states(&mut rng, &RUN_STATES);
            let name = NAMES[rng.random_range(0..3)];
            let keep = |r: &pb::JobRun| {
                states.contains(&r.state) && (name.is_empty() || r.name.starts_with(name))
            };
            let window = random_window(&mut rng, &format!("{vc_id}/"), &run_keys, 400_000);
            let what = format!("seed {seed} query {q}: {states:?} {name:?} {window:?}");
            nonempty += same_pages(
                window,
                &what,
                |w| store.list_job_runs(vc_id, w, keep).unwrap(),
                |w| {
                    store
                        .list_job_runs_in_states(vc_id, &states, w, keep)
                        .unwrap()
                },
            );
        }
        let vc_keys: Vec<Vec<u8>> = store
            .tree(TreeId::VirtualClusters)
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        for q in 0..40 {
            let states = random_states(&mut rng, &VC_STATES);
            let provider = ["", "c1"][rng.random_range(0..2)];
            let keep = |v: &pb::VirtualCluster| {
                states.contains(&v.state)
                    && (provider.is_empty()
                        || v.container_provider
                            .as_ref()
                            .is_some_and(|p| p.id == provider))
            };
            let window = random_window(&mut rng, "", &vc_keys, 3_000_000);
            let what = format!("seed {seed} vc query {q}: {states:?} {provider:?} {window:?}");
            same_pages(
                window,
                &what,
                |w| store.list_virtual_clusters(w, keep).unwrap(),
                |w| {
                    store
                        .list_virtual_clusters_in_states(&states, w, keep)
                        .unwrap()
                },
            );
        }
        store.close().unwrap();
    }
    assert!(nonempty > 1000, "the queries found too little: {nonempty}");
}

#[tokio::test]
async fn a_store_from_before_the_indexes_gets_them_built_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let (store, _) = random_store(&mut rng, dir.path()).await;
    store.forget_state_indexes();
    // As if a build had been cut short: entries, but no marker.
    store
        .tree(TreeId::JobRunsByState)
        .insert(b"stale/RUNNING/0", Vec::new())
        .unwrap();
    assert!(store.check_state_indexes().is_err());
    store.close().unwrap();
    drop(store);

    let store = reopen(dir.path());
    store.check_state_indexes().unwrap();
    // Once: with the marker set, open leaves the indexes alone.
    store
        .tree(TreeId::VcByState)
        .insert(b"RUNNING/probe", Vec::new())
        .unwrap();
    store.close().unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert!(
        store
            .tree(TreeId::VcByState)
            .contains_key(b"RUNNING/probe")
            .unwrap(),
        "the indexes were built again"
    );
    store.close().unwrap();
}

/// What a writer under test has had acknowledged: (vcId, jobRunId).
type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// One random write: a new run, or a known run, or a virtual cluster,
/// moved to a random state. Returns the run it wrote, if any.
fn random_write(
    store: &Store,
    rng: &mut StdRng,
    vcs: &[String],
    known: &mut Vec<(String, String)>,
) -> StoreResult<Option<(String, String)>> {
    let state = RUN_STATES[rng.random_range(0..7)];
    let pick = rng.random_range(0..10);
    futures::executor::block_on(store.write(|txn| -> StoreResult<Option<(String, String)>> {
        if pick == 0 {
            let id = &vcs[rng.random_range(0..vcs.len())];
            let v = vc(id, VC_STATES[rng.random_range(0..3)], "c1");
            txn.put_virtual_cluster(&v)?;
            return Ok(None);
        }
        let (vc_id, run_id) = if pick < 5 || known.is_empty() {
            let vc_id = vcs[rng.random_range(0..vcs.len())].clone();
            (vc_id, ids::new_id(now_micros(), ids::JOB_RUN_ID_LEN))
        } else {
            known[rng.random_range(0..known.len())].clone()
        };
        // Several runs in one write, at times.
        for extra in 0..rng.random_range(1..3) {
            let id = if extra == 0 {
                run_id.clone()
            } else {
                ids::new_id(now_micros(), ids::JOB_RUN_ID_LEN)
            };
            put_run(txn, &run(&vc_id, &id, state, "etl"))?;
        }
        Ok(Some((vc_id, run_id)))
    }))
    .inspect(|written| {
        if let Some(w) = written
            && !known.contains(w)
        {
            known.push(w.clone());
        }
    })
}

/// An image without its spare segments, which open deletes unread: they
/// take memory and test nothing here.
fn without_spares(image: &Image) -> Image {
    image
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "log"))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect()
}

/// Crash images of the journal taken at random disk operations while
/// three writers run; each is restarted on an empty sled (so that it holds
/// only what the journal replays: every write since the store was made,
/// as the segment never fills) and its indexes checked against a walk.
#[test]
fn a_crash_at_any_disk_operation_leaves_the_indexes_exact() {
    for seed in 0..3u64 {
        let disk = SimDisk::new();
        disk.jitter(seed);
        let acked: Acked = Arc::default();
        let images: Arc<Mutex<Vec<(Image, usize)>>> = Arc::default();
        let ops = Arc::new(AtomicUsize::new(0));
        {
            let (acked, images, ops) = (acked.clone(), images.clone(), ops.clone());
            disk.observe(move |now| {
                let n = ops.fetch_add(1, Ordering::Relaxed);
                // About one operation in seven, spread by the seed.
                if (n as u64 * 2_654_435_761 + seed).is_multiple_of(7) {
                    let acked = acked.lock().unwrap().len();
                    let mut images = images.lock().unwrap();
                    images.extend(now.iter().map(|i| (without_spares(i), acked)));
                }
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        let segment_bytes = 256 * 1024;
        let journal = Journal::on_files(
            &journal_dir,
            segment_bytes,
            Arc::new(SimFiles(disk.clone())),
        )
        .unwrap();
        let store = Store::open_with_journal(dir.path(), journal).unwrap();
        let vcs: Vec<String> = (0..2)
            .map(|i| ids::new_id(T0 + i, ids::VIRTUAL_CLUSTER_ID_LEN))
            .collect();
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (store, acked, vcs) = (store.clone(), acked.clone(), vcs.clone());
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed * 10 + w);
                    let mut known = Vec::new();
                    for _ in 0..60 {
                        if let Some(written) =
                            random_write(&store, &mut rng, &vcs, &mut known).expect("a write")
                        {
                            acked.lock().unwrap().push(written);
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        store.check_state_indexes().unwrap();
        let (last, all) = disk.crash_now(|| acked.lock().unwrap().len());
        let mut images = std::mem::take(&mut *images.lock().unwrap());
        images.extend(last.iter().map(|i| (without_spares(i), all)));
        let segments: Vec<PathBuf> = disk
            .names()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        assert_eq!(
            segments.len(),
            1,
            "seed {seed}: the segment filled: {segments:?}"
        );
        assert!(images.len() > 20, "seed {seed}: {} images", images.len());
        for (i, (image, acked_then)) in images.iter().enumerate() {
            let restarted = tempfile::tempdir().unwrap();
            let db = sled::open(restarted.path()).unwrap();
            // Made by this sparkvc: the indexes come from the journal, not
            // from a build at open.
            db.open_tree(META_TREE)
                .unwrap()
                .insert(STATE_INDEXES, STATE_INDEXES_VERSION)
                .unwrap();
            let files = Arc::new(SimFiles(SimDisk::from_image(image)));
            let journal = Journal::on_files(&journal_dir, segment_bytes, files).unwrap();
            let store = Store::open_on(db, journal)
                .unwrap_or_else(|e| panic!("seed {seed}, image {i}: open: {e}"));
            store
                .check_state_indexes()
                .unwrap_or_else(|e| panic!("seed {seed}, image {i}: {e}"));
            for (vc_id, run_id) in &acked.lock().unwrap()[..*acked_then] {
                assert!(
                    store.job_run(vc_id, run_id).unwrap().is_some(),
                    "seed {seed}, image {i}: acknowledged run {run_id} is lost"
                );
            }
            store.close().unwrap();
        }
        store.close().unwrap();
    }
}

/// Where a killed writer keeps its store (set only in the child).
const CHILD_DIR: &str = "SPARKVC_TEST_INDEX_WRITER_DIR";

/// A real crash: a process writing runs as fast as it can is killed
/// (SIGKILL) at a random moment, over and over, on the same store; after
/// each kill the store is opened (replaying the journal over whatever sled
/// kept, which may end in the middle of applying a record) and its indexes
/// checked against a walk.
#[test]
fn a_killed_writer_leaves_the_indexes_exact() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        // The child: write until killed.
        let store = reopen(Path::new(&dir));
        let mut rng = StdRng::seed_from_u64(now_micros());
        let vcs: Vec<String> = (0..2)
            .map(|i| ids::new_id(T0 + i, ids::VIRTUAL_CLUSTER_ID_LEN))
            .collect();
        let mut known = Vec::new();
        loop {
            random_write(&store, &mut rng, &vcs, &mut known).unwrap();
            if known.len() > 2_000 {
                known.drain(..1_000);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut runs_before = 0;
    for round in 0..6 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::index_tests::a_killed_writer_leaves_the_indexes_exact",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            rng.random_range(400..1_500),
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        let store = reopen(dir.path());
        store
            .check_state_indexes()
            .unwrap_or_else(|e| panic!("after kill {round}: {e}"));
        let runs = store.job_run_count();
        assert!(
            runs > runs_before,
            "round {round}: the writer wrote nothing"
        );
        runs_before = runs;
        store.close().unwrap();
    }
}
