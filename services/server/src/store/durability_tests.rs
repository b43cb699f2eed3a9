//! The flusher and the checkpointer on a simulated disk: a controlled
//! interleaving, many seeded schedules, and injected I/O faults.
//!
//! Every test checks, after every disk operation, what a crash at that
//! moment would leave (see `sim_disk.rs`): the journal must read back
//! without damage or gaps, and hold every acknowledged record that sled has
//! not yet made durable by a checkpoint. Every test also checks that no file
//! was ever written through two handles, and restarts a store from a crash
//! image to see the acknowledged writes come back. sled itself is real, on a
//! temporary directory; only the journal's files are simulated.

use super::durability::Durability;
use super::journal::{Change, Journal};
use super::sim_disk::{Fault, Image, Op, OpKind, SimDisk, SimFiles};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

const DIR: &str = "/store/journal";
const FLUSHER: &str = "sparkvc-store-flush";
const CHECKPOINTER: &str = "sparkvc-store-checkpoint";
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks a crash image: it must read back, and hold every record above
/// `checkpointed` up to `acknowledged`.
fn check_image(image: &Image, acknowledged: u64, checkpointed: u64) -> Result<(), String> {
    let files = Arc::new(SimFiles(SimDisk::from_image(image)));
    let journal = Journal::on_files(Path::new(DIR), 4096, files).map_err(|e| e.to_string())?;
    let records = journal.read_all().map_err(|e| format!("unreadable: {e}"))?;
    if acknowledged <= checkpointed {
        return Ok(());
    }
    let (first, last) = (
        records.first().map_or(u64::MAX, |r| r.seq),
        records.last().map_or(0, |r| r.seq),
    );
    if first > checkpointed + 1 || last < acknowledged {
        return Err(format!(
            "records {first}..={last} on disk, but {}..={acknowledged} are acknowledged and not yet checkpointed",
            checkpointed + 1
        ));
    }
    Ok(())
}

/// A durability layer on a simulated disk, with its checks wired in.
struct Harness {
    disk: Arc<SimDisk>,
    durability: Arc<Durability>,
    /// What a crash at some step would have broken.
    problems: Arc<Mutex<Vec<String>>>,
    /// (sequence number, key) of every acknowledged write.
    acknowledged: Mutex<Vec<(u64, Vec<u8>)>>,
    _sled: tempfile::TempDir,
}

fn open_durability(disk: &Arc<SimDisk>, segment_bytes: u64, sled: &Path) -> Arc<Durability> {
    let db = sled::Config::new().path(sled).open().expect("open sled");
    let trees = vec![db.open_tree("t").expect("open a tree")];
    let files = Arc::new(SimFiles(disk.clone()));
    let journal = Journal::on_files(Path::new(DIR), segment_bytes, files).expect("the journal");
    Durability::open(db, trees, journal).expect("open the durability layer")
}

impl Harness {
    fn open(disk: Arc<SimDisk>, segment_bytes: u64) -> Self {
        let problems = Arc::new(Mutex::new(Vec::new()));
        let watched: Arc<OnceLock<Weak<Durability>>> = Arc::default();
        {
            let (problems, watched) = (problems.clone(), watched.clone());
            disk.observe(move |images| {
                let Some(d) = watched.get().and_then(Weak::upgrade) else {
                    return;
                };
                let (checkpointed, acknowledged) = (d.checkpointed(), d.acknowledged());
                for image in images {
                    if let Err(why) = check_image(image, acknowledged, checkpointed) {
                        lock(&problems).push(format!("a crash now would lose data: {why}"));
                    }
                }
            });
        }
        let sled = tempfile::tempdir().expect("a temporary directory");
        let durability = open_durability(&disk, segment_bytes, sled.path());
        let _ = watched.set(Arc::downgrade(&durability));
        Self {
            disk,
            durability,
            problems,
            acknowledged: Mutex::default(),
            _sled: sled,
        }
    }

    /// One write of a `size`-byte value under `key`, waited for.
    fn write(&self, key: String, size: usize) -> Result<u64, String> {
        let key = key.into_bytes();
        let changes: Vec<Change> = vec![(0, key.clone(), Some(vec![7; size]))];
        let seq = self.durability.submit(changes).map_err(|e| e.to_string())?;
        futures::executor::block_on(self.durability.wait(seq)).map_err(|e| e.to_string())?;
        lock(&self.acknowledged).push((seq, key));
        Ok(seq)
    }

    fn segments(&self) -> Vec<String> {
        self.names(|n| n.ends_with(".log"))
    }

    fn names(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.disk
            .names()
            .iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .filter(|n| keep(n))
            .collect()
    }

    /// Waits (at most 10 s) until `done`.
    fn wait_for(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The checks every test ends with: nothing a crash could have lost at
    /// any step, no file written through two handles, and a store restarted
    /// from a crash now has every acknowledged write.
    fn assert_sound(&self) {
        let problems = lock(&self.problems).clone();
        assert!(
            problems.is_empty(),
            "{} problems, first: {}",
            problems.len(),
            problems[0]
        );
        let violations = self.disk.violations();
        assert!(violations.is_empty(), "{violations:?}");
        let (images, (checkpointed, acked)) = self.disk.crash_now(|| {
            (
                self.durability.checkpointed(),
                lock(&self.acknowledged).clone(),
            )
        });
        for image in images {
            let restarted = SimDisk::from_image(&image);
            let sled = tempfile::tempdir().expect("a temporary directory");
            // A fresh sled holds only what the journal replays: the records
            // that the old sled had not checkpointed must all be there.
            let durability = open_durability(&restarted, 4096, sled.path());
            let tree = durability.tree(0).clone();
            for (seq, key) in acked.iter().filter(|(seq, _)| *seq > checkpointed) {
                assert!(
                    tree.get(key).expect("read sled").is_some(),
                    "acknowledged write {seq} is lost after a restart"
                );
            }
            durability.close().expect("close the restarted store");
        }
    }
}

/// A fault case: what it is, the fault, and the (thread, kind, file name
/// prefix) of the operation that fails.
type Case = (&'static str, Fault, (&'static str, OpKind, &'static str));

fn on(thread: &'static str, kind: OpKind, name: &'static str) -> impl Fn(&Op) -> bool {
    move |op| op.on_thread(thread) && op.kind == kind && op.file_name().starts_with(name)
}

/// The race of issue 12: the current segment fills while the checkpointer
/// is still writing the spare. The flusher must neither touch that file nor
/// make one of its own; it keeps appending until the spare is ready.
#[test]
fn a_segment_that_fills_while_the_spare_is_made_waits_for_it() {
    let disk = SimDisk::new();
    let zero_filling = disk.pause_at(on(CHECKPOINTER, OpKind::Write, "spare-"));
    // Whatever the spare is named by then.
    let syncing = disk.pause_at(on(CHECKPOINTER, OpKind::SyncAll, ""));
    let h = Harness::open(disk, 2048);
    zero_filling.wait_until_paused();
    // About 6 KB of records: the 2 KB segment fills three times over.
    for i in 0..40 {
        h.write(format!("k{i:03}"), 100)
            .expect("a write while the spare is made");
    }
    let while_paused = h.segments();
    // The checkpointer writes its zeros and stops before syncing them.
    zero_filling.release();
    syncing.wait_until_paused();
    let violations = h.disk.violations();
    assert!(violations.is_empty(), "{violations:?}");
    syncing.release();
    // The first write after the spare is ready starts a new segment, and
    // the full one is checkpointed and deleted.
    let first = while_paused[0].clone();
    let mut after = 0;
    h.wait_for("the flusher switches to the spare", |h| {
        after += 1;
        h.write(format!("after{after}"), 100)
            .expect("a write after the spare is made");
        h.segments() != [first.clone()]
    });
    h.wait_for("the full segment is deleted", |h| {
        !h.segments().contains(&first)
    });
    h.assert_sound();
    assert_eq!(
        while_paused.len(),
        1,
        "the flusher made a segment itself: {while_paused:?}"
    );
    h.durability.close().expect("close");
}

/// Writers, the flusher and the checkpointer under random delays at every
/// disk operation, one schedule per seed. `SPARKVC_STORE_SEEDS` sets how
/// many (default 40).
#[test]
fn seeded_schedules_lose_no_acknowledged_write() {
    let seeds: u64 = std::env::var("SPARKVC_STORE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 0..seeds {
        let disk = SimDisk::new();
        disk.jitter(seed);
        let segment_bytes = [1024, 2048, 4096][(seed % 3) as usize];
        let h = Arc::new(Harness::open(disk, segment_bytes));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let size = ((seed * 31 + w * 7 + i * 13) % 400) as usize + 1;
                        h.write(format!("s{seed}-w{w}-{i}"), size)
                            .unwrap_or_else(|e| panic!("seed {seed}: write failed: {e}"));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer thread");
        }
        assert_eq!(lock(&h.acknowledged).len(), 200, "seed {seed}");
        h.assert_sound();
        h.durability.close().expect("close");
        let left = h.names(|_| true);
        assert!(
            left.is_empty(),
            "seed {seed}: a clean close leaves {left:?}"
        );
    }
}

/// Writes one at a time until one fails or `count` succeed; how many
/// succeeded. With `switching`, each write waits for a spare first, so that
/// every segment that fills is switched at once (which a fault in the
/// switch needs, whatever the machine's load).
fn write_until_refused(h: &Harness, count: usize, switching: bool) -> usize {
    for i in 0..count {
        if switching {
            h.wait_for("a spare segment", |h| {
                h.durability.spare_ready() || !h.durability.writable()
            });
        }
        if h.write(format!("k{i:04}"), 120).is_err() {
            // Once refused, always refused: the store stops taking writes.
            assert!(
                h.write("later".into(), 10).is_err(),
                "a write after a failure"
            );
            return i;
        }
    }
    count
}

/// A failure where the flusher writes refuses that write and every later
/// one, tells the server, and leaves a journal that restarts with every
/// acknowledged write.
#[test]
fn a_fault_in_the_flusher_refuses_writes_and_loses_none() {
    let cases: [Case; 6] = [
        (
            "failed append",
            Fault::Errno(EIO),
            (FLUSHER, OpKind::Write, "0"),
        ),
        (
            "append on a full disk",
            Fault::Errno(ENOSPC),
            (FLUSHER, OpKind::Write, "0"),
        ),
        (
            "short append",
            Fault::ShortWrite(ENOSPC),
            (FLUSHER, OpKind::Write, "0"),
        ),
        (
            "failed fdatasync",
            Fault::Errno(EIO),
            (FLUSHER, OpKind::SyncData, "0"),
        ),
        (
            "failed rename of a spare",
            Fault::Errno(EIO),
            (FLUSHER, OpKind::Rename, "spare-"),
        ),
        (
            "failed directory sync after a rename",
            Fault::Errno(EIO),
            (FLUSHER, OpKind::SyncDir, "journal"),
        ),
    ];
    for (what, fault, (thread, kind, name)) in cases {
        for skip in [0, 3] {
            let disk = SimDisk::new();
            disk.fail_at(skip, fault, on(thread, kind, name));
            let h = Harness::open(disk, 1024);
            let written = write_until_refused(&h, 120, true);
            assert!(
                written < 120,
                "{what} (after {skip}): the fault never happened"
            );
            let why = futures::executor::block_on(h.durability.failed());
            assert!(!why.is_empty(), "{what}: the failure has a reason");
            h.assert_sound();
            h.durability.close().expect("close after a failure");
            assert!(
                !h.segments().is_empty(),
                "{what}: a store that failed keeps its journal for the next start"
            );
        }
    }
}

/// A failure where the checkpointer works (making a spare, checkpointing)
/// costs no write: it is tried again, and the journal stays sound.
#[test]
fn a_fault_in_the_checkpointer_is_retried_and_costs_no_write() {
    let cases: [Case; 6] = [
        (
            "no room for a spare",
            Fault::Errno(ENOSPC),
            (CHECKPOINTER, OpKind::Create, "spare-"),
        ),
        (
            "a full disk while zero-filling",
            Fault::ShortWrite(ENOSPC),
            (CHECKPOINTER, OpKind::Write, "spare-"),
        ),
        (
            "failed fsync of a spare",
            Fault::Errno(EIO),
            (CHECKPOINTER, OpKind::SyncAll, "spare-"),
        ),
        (
            "failed removal of a segment",
            Fault::Errno(EIO),
            (CHECKPOINTER, OpKind::Remove, "0"),
        ),
        (
            "failed directory sync after a removal",
            Fault::Errno(EIO),
            (CHECKPOINTER, OpKind::SyncDir, "journal"),
        ),
        (
            "a second failed directory sync after a removal",
            Fault::Errno(EIO),
            (CHECKPOINTER, OpKind::SyncDir, "journal"),
        ),
    ];
    for (i, (what, fault, (thread, kind, name))) in cases.into_iter().enumerate() {
        let disk = SimDisk::new();
        disk.fail_at(i % 2, fault, on(thread, kind, name));
        let h = Harness::open(disk, 1024);
        assert_eq!(
            write_until_refused(&h, 100, false),
            100,
            "{what}: a write was refused"
        );
        h.wait_for("the checkpointer catches up", |h| h.segments().len() <= 2);
        let spares = h.names(|n| n.starts_with("spare-"));
        assert!(
            spares.len() <= 1,
            "{what}: half-made spares are left: {spares:?}"
        );
        h.assert_sound();
        h.durability.close().expect("close");
        assert!(
            h.names(|_| true).is_empty(),
            "{what}: a clean close leaves files"
        );
    }
}
