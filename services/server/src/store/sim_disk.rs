//! A simulated disk for the journal's tests, behind the same [`Files`]
//! trait as the real one.
//!
//! It keeps, for every file, what was written and what was last synced, and
//! for the directory, the names it has now and the names as of its last
//! sync. So at any moment it can show what a crash would leave behind
//! ([`SimDisk::crash_images`]): only synced data, under either the synced
//! or the current names (a rename or removal not yet synced may or may not
//! survive, so both are checked). It also
//! - pauses a thread at a chosen operation until the test lets it go on
//!   ([`SimDisk::pause_at`]), for controlled interleavings;
//! - fails a chosen operation once ([`SimDisk::fail_at`]): an I/O error,
//!   `ENOSPC`, or a short write that leaves part of the bytes behind;
//! - delays operations at random from a seed ([`SimDisk::jitter`]), to
//!   shake out other interleavings in many seeded runs;
//! - calls an observer after every operation, with the crash images, under
//!   the disk's lock, so that a test checks "a crash at any step" exactly;
//! - records a violation if a file is ever written through two handles.

use super::files::{Files, JournalFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What a crash leaves: each surviving name and the bytes it holds.
pub type Image = BTreeMap<PathBuf, Vec<u8>>;

/// The kinds of operation, for choosing where to pause or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Write,
    SyncData,
    SyncAll,
    Read,
    List,
    Rename,
    Remove,
    SyncDir,
}

/// One operation as a hook sees it.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    /// The file or directory it is on (for a rename, the old name).
    pub path: PathBuf,
    /// The name of the thread making it.
    pub thread: String,
}

impl Op {
    pub fn file_name(&self) -> &str {
        self.path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }
    pub fn on_thread(&self, name: &str) -> bool {
        self.thread == name
    }
}

/// How an operation fails.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Fails with this OS error number, changing nothing.
    Errno(i32),
    /// A write that stores the first half of its bytes, then fails with
    /// this error number.
    ShortWrite(i32),
}

type Matcher = Box<dyn Fn(&Op) -> bool + Send + Sync>;
type Observer = Box<dyn Fn(&[Image]) + Send + Sync>;

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
    /// The handle that wrote it first; another handle writing it is a
    /// violation.
    writer: Option<u64>,
}

#[derive(Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    synced_names: BTreeMap<PathBuf, usize>,
    dirs: BTreeSet<PathBuf>,
    handles: u64,
    violations: Vec<String>,
    rng: u64,
    jitter: bool,
}

#[derive(Default)]
struct Gate {
    open: bool,
    paused: bool,
}

struct PauseAt {
    matches: Matcher,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

struct FailAt {
    matches: Matcher,
    fault: Fault,
    /// How many more matching operations pass before the one that fails.
    skip: usize,
}

#[derive(Default)]
struct Hooks {
    pauses: Vec<PauseAt>,
    faults: Vec<FailAt>,
    observer: Option<Observer>,
}

/// The simulated disk. Cheap to share: clone the `Arc`.
#[derive(Default)]
pub struct SimDisk {
    state: Mutex<State>,
    hooks: Mutex<Hooks>,
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimDisk")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets a thread paused by [`SimDisk::pause_at`] go on.
#[derive(Clone)]
pub struct Pause(Arc<(Mutex<Gate>, Condvar)>);

impl Pause {
    /// Waits until a thread is paused here (at most 10 s).
    pub fn wait_until_paused(&self) {
        let (gate, cv) = &*self.0;
        let (g, timeout) = cv
            .wait_timeout_while(lock(gate), Duration::from_secs(10), |g| !g.paused)
            .unwrap_or_else(|e| e.into_inner());
        assert!(
            !timeout.timed_out() || g.paused,
            "no thread reached the pause"
        );
    }
    pub fn release(&self) {
        let (gate, cv) = &*self.0;
        lock(gate).open = true;
        cv.notify_all();
    }
}

impl SimDisk {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A disk holding `image`, all of it synced: the disk after a restart.
    pub fn from_image(image: &Image) -> Arc<Self> {
        let disk = Self::default();
        {
            let mut s = lock(&disk.state);
            for (path, bytes) in image {
                if let Some(dir) = path.parent() {
                    s.dirs.insert(dir.to_path_buf());
                }
                let inode = s.inodes.len();
                s.inodes.push(Inode {
                    data: bytes.clone(),
                    synced: bytes.clone(),
                    writer: None,
                });
                s.names.insert(path.clone(), inode);
            }
            s.synced_names = s.names.clone();
        }
        Arc::new(disk)
    }

    /// Delays operations at random (a sleep of up to 300 µs, or a yield),
    /// drawn from `seed`.
    pub fn jitter(&self, seed: u64) {
        let mut s = lock(&self.state);
        s.rng = seed ^ 0x9e37_79b9_7f4a_7c15;
        s.jitter = true;
    }

    /// The first thread to make an operation that `matches` stops there
    /// until the returned [`Pause`] is released.
    pub fn pause_at(&self, matches: impl Fn(&Op) -> bool + Send + Sync + 'static) -> Pause {
        let gate = Arc::new((Mutex::new(Gate::default()), Condvar::new()));
        lock(&self.hooks).pauses.push(PauseAt {
            matches: Box::new(matches),
            gate: gate.clone(),
        });
        Pause(gate)
    }

    /// The operation that `matches`, after `skip` matching ones, fails with
    /// `fault`; once.
    pub fn fail_at(
        &self,
        skip: usize,
        fault: Fault,
        matches: impl Fn(&Op) -> bool + Send + Sync + 'static,
    ) {
        lock(&self.hooks).faults.push(FailAt {
            matches: Box::new(matches),
            fault,
            skip,
        });
    }

    /// Calls `observer` after every operation that changes the disk, with
    /// the crash images of that moment, while no other operation can run.
    pub fn observe(&self, observer: impl Fn(&[Image]) + Send + Sync + 'static) {
        lock(&self.hooks).observer = Some(Box::new(observer));
    }

    /// Every file written through two handles, so far.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// What a crash now would leave, with `read` called at the same moment
    /// (so that what the test knows and what the disk holds agree).
    pub fn crash_now<T>(&self, read: impl FnOnce() -> T) -> (Vec<Image>, T) {
        let s = lock(&self.state);
        (Self::images(&s), read())
    }

    /// The names on disk now, for assertions.
    pub fn names(&self) -> Vec<PathBuf> {
        lock(&self.state).names.keys().cloned().collect()
    }

    fn images(s: &State) -> Vec<Image> {
        let image = |names: &BTreeMap<PathBuf, usize>| -> Image {
            names
                .iter()
                .map(|(p, i)| (p.clone(), s.inodes[*i].synced.clone()))
                .collect()
        };
        let (synced, current) = (image(&s.synced_names), image(&s.names));
        if synced == current {
            vec![synced]
        } else {
            vec![synced, current]
        }
    }

    /// Runs the hooks for `op`: maybe a delay, a pause, or a fault to return.
    fn before(&self, kind: OpKind, path: &Path) -> Option<Fault> {
        let op = Op {
            kind,
            path: path.to_path_buf(),
            thread: std::thread::current().name().unwrap_or("").to_string(),
        };
        let delay = {
            let mut s = lock(&self.state);
            if s.jitter {
                // splitmix64
                s.rng = s.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                Some(z ^ (z >> 31))
            } else {
                None
            }
        };
        match delay.map(|r| r % 8) {
            Some(0 | 1) => std::thread::sleep(Duration::from_micros(delay.unwrap_or(0) % 300)),
            Some(2 | 3) => std::thread::yield_now(),
            _ => {}
        }
        let (gate, fault) = {
            let mut hooks = lock(&self.hooks);
            let gate = hooks
                .pauses
                .iter()
                .position(|p| (p.matches)(&op))
                .map(|i| hooks.pauses.remove(i).gate);
            let mut fault = None;
            if let Some(i) = hooks.faults.iter().position(|f| (f.matches)(&op)) {
                if hooks.faults[i].skip == 0 {
                    fault = Some(hooks.faults.remove(i).fault);
                } else {
                    hooks.faults[i].skip -= 1;
                }
            }
            (gate, fault)
        };
        if let Some(gate) = gate {
            let (g, cv) = &*gate;
            let mut state = lock(g);
            state.paused = true;
            cv.notify_all();
            while !state.open {
                state = cv.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        fault
    }

    fn after(&self, s: &State) {
        if let Some(observer) = &lock(&self.hooks).observer {
            observer(&Self::images(s));
        }
    }

    fn errno(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    fn inode_of(s: &State, path: &Path) -> io::Result<usize> {
        s.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// A handle on one simulated file.
struct SimFile {
    disk: Arc<SimDisk>,
    inode: usize,
    handle: u64,
    /// The name it was opened under, for hooks.
    path: PathBuf,
}

impl std::fmt::Debug for SimFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimFile({})", self.path.display())
    }
}

impl SimFile {
    /// The file's current name, if it still has one (for hooks).
    fn current_path(&self, s: &State) -> PathBuf {
        s.names
            .iter()
            .find(|(_, i)| **i == self.inode)
            .map_or_else(|| self.path.clone(), |(p, _)| p.clone())
    }
    fn sync(&self, kind: OpKind) -> io::Result<()> {
        let path = self.current_path(&lock(&self.disk.state));
        if let Some(Fault::Errno(code) | Fault::ShortWrite(code)) = self.disk.before(kind, &path) {
            return Err(SimDisk::errno(code));
        }
        let mut s = lock(&self.disk.state);
        let inode = &mut s.inodes[self.inode];
        inode.synced = inode.data.clone();
        self.disk.after(&s);
        Ok(())
    }
}

impl JournalFile for SimFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let path = self.current_path(&lock(&self.disk.state));
        let fault = self.disk.before(OpKind::Write, &path);
        let (bytes, result) = match fault {
            None => (bytes, Ok(())),
            Some(Fault::Errno(code)) => return Err(SimDisk::errno(code)),
            Some(Fault::ShortWrite(code)) => (&bytes[..bytes.len() / 2], Err(SimDisk::errno(code))),
        };
        let mut s = lock(&self.disk.state);
        let handle = self.handle;
        let inode = &mut s.inodes[self.inode];
        let first_writer = *inode.writer.get_or_insert(handle);
        let offset = usize::try_from(offset).expect("a small simulated file");
        let end = offset + bytes.len();
        if inode.data.len() < end {
            inode.data.resize(end, 0);
        }
        inode.data[offset..end].copy_from_slice(bytes);
        if first_writer != handle {
            s.violations.push(format!(
                "{} was written through two handles ({first_writer} and {handle})",
                path.display()
            ));
        }
        self.disk.after(&s);
        result
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync(OpKind::SyncData)
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync(OpKind::SyncAll)
    }
}

/// The [`Files`] of a shared simulated disk.
#[derive(Debug, Clone)]
pub struct SimFiles(pub Arc<SimDisk>);

impl SimFiles {
    fn fault(&self, kind: OpKind, path: &Path) -> io::Result<()> {
        match self.0.before(kind, path) {
            Some(Fault::Errno(code) | Fault::ShortWrite(code)) => Err(SimDisk::errno(code)),
            None => Ok(()),
        }
    }
}

impl Files for SimFiles {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        lock(&self.0.state).dirs.insert(dir.to_path_buf());
        Ok(())
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        self.fault(OpKind::Create, path)?;
        let mut s = lock(&self.0.state);
        if s.names.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let inode = s.inodes.len();
        s.inodes.push(Inode::default());
        s.names.insert(path.to_path_buf(), inode);
        s.handles += 1;
        let handle = s.handles;
        self.0.after(&s);
        Ok(Box::new(SimFile {
            disk: self.0.clone(),
            inode,
            handle,
            path: path.to_path_buf(),
        }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.fault(OpKind::Read, path)?;
        let s = lock(&self.0.state);
        Ok(s.inodes[SimDisk::inode_of(&s, path)?].data.clone())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.fault(OpKind::List, dir)?;
        let s = lock(&self.0.state);
        if !s.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fault(OpKind::Rename, from)?;
        let mut s = lock(&self.0.state);
        let inode = SimDisk::inode_of(&s, from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), inode);
        self.0.after(&s);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.fault(OpKind::Remove, path)?;
        let mut s = lock(&self.0.state);
        SimDisk::inode_of(&s, path)?;
        s.names.remove(path);
        self.0.after(&s);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fault(OpKind::SyncDir, dir)?;
        let mut s = lock(&self.0.state);
        let State {
            names,
            synced_names,
            ..
        } = &mut *s;
        synced_names.retain(|p, _| p.parent() != Some(dir));
        synced_names.extend(
            names
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, i)| (p.clone(), *i)),
        );
        self.0.after(&s);
        Ok(())
    }
}
