//! The redo log in front of sled: each write's changes, as one checksummed
//! record, appended to a segment file and made durable before they are
//! applied to sled.
//!
//! Why: a sled transaction or batch spanning several keys costs a sealed IO
//! buffer each, and it stalls behind any flush in progress; under load that
//! made the multi-tree transaction most of a StartJobRun's time. Plain sled
//! inserts are cheap but not atomic together. This log makes them so: a
//! record holds every change of one write, so after a crash a write is
//! replayed whole or, if its record is torn, not at all (and a torn record
//! was never acknowledged).
//!
//! Layout: `<store>/journal/<first sequence number, 20 digits>.log`, each a
//! run of records
//!
//! ```text
//! record := body length: u32 LE | CRC-32 of body: u32 LE | body
//! body   := sequence number: u64 LE | change count: u32 LE | change*
//! change := tree: u8 | 1 (put) or 0 (remove): u8 | key length: u32 LE | key
//!           | for a put: value length: u32 LE | value
//! ```
//!
//! Sequence numbers rise by one from record to record and from segment to
//! segment. Segments are deleted oldest first once sled has flushed
//! everything they hold, so the segments on disk are always a contiguous
//! run, and replaying them in order reproduces every acknowledged write.
//! Only the last segment may end in a torn record; anything else unreadable
//! is corruption, reported and not guessed at.
//!
//! Segments are written full of zeros before use, and records then
//! overwrite them. So syncing a record never extends the file: on ext4 a
//! sync that must record a new file size waits for the filesystem journal,
//! and with it for whatever else (sled's own writes) is pending; measured
//! here beside a busy writer, that made the worst sync 130-190 ms against
//! 8 ms. An all-zero record header marks the end of a segment's records;
//! everything after it must be zeros too.

use super::files::{Files, JournalFile, OsFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A segment's size: it is written full of zeros before use, and closed
/// once its records reach this size.
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Prepared, not yet used segments are named `spare-<n>.tmp`.
const SPARE_PREFIX: &str = "spare-";
const SPARE_SUFFIX: &str = ".tmp";

/// One change: (tree, key, new value or None for a removal).
pub type Change = (u8, Vec<u8>, Option<Vec<u8>>);

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub changes: Vec<Change>,
}

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "journal segment {path} is damaged at byte {offset}: {reason} (only the newest segment may end in an incomplete record)"
    )]
    Damaged {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error(
        "journal segment {path} starts at record {found}, but record {expected} was expected next"
    )]
    Gap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const HEADER_LEN: usize = 8;
const PUT: u8 = 1;
const REMOVE: u8 = 0;

/// Appends the record for `changes` to `out`.
pub fn encode(seq: u64, changes: &[Change], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len_u32(changes.len()).to_le_bytes());
    for (tree, key, value) in changes {
        out.push(*tree);
        out.push(if value.is_some() { PUT } else { REMOVE });
        out.extend_from_slice(&len_u32(key.len()).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(value) = value {
            out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    let body = &out[start + HEADER_LEN..];
    let (len, crc) = (len_u32(body.len()), crc32fast::hash(body));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn len_u32(n: usize) -> u32 {
    // Keys and values are API-bounded records, far below 4 GiB.
    u32::try_from(n).expect("a store record under 4 GiB")
}

/// The records in `bytes`, where they end, and, when the segment does not
/// end cleanly (a torn or damaged record), why.
pub fn decode(bytes: &[u8]) -> (Vec<Record>, usize, Option<String>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() >= HEADER_LEN && rest[..HEADER_LEN].iter().all(|b| *b == 0) {
            // The end marker: the unused, zeroed part of the segment.
            let damage = rest
                .iter()
                .any(|b| *b != 0)
                .then(|| "data after the end of the records".to_string());
            return (records, at, damage);
        }
        match decode_one(rest) {
            Ok((record, used)) => {
                records.push(record);
                at += used;
            }
            Err(reason) => return (records, at, Some(reason)),
        }
    }
    (records, at, None)
}

fn decode_one(bytes: &[u8]) -> Result<(Record, usize), String> {
    let mut r = Reader { bytes, at: 0 };
    let len = r
        .u32()
        .map_err(|_| "incomplete record header".to_string())? as usize;
    let crc = r
        .u32()
        .map_err(|_| "incomplete record header".to_string())?;
    let body = r.take(len).map_err(|_| "incomplete record".to_string())?;
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    let mut b = Reader { bytes: body, at: 0 };
    let malformed = |_| "malformed record".to_string();
    let seq = b.u64().map_err(malformed)?;
    let count = b.u32().map_err(malformed)?;
    let mut changes = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let tree = b.u8().map_err(malformed)?;
        let op = b.u8().map_err(malformed)?;
        let key_len = b.u32().map_err(malformed)? as usize;
        let key = b.take(key_len).map_err(malformed)?.to_vec();
        let value = match op {
            PUT => {
                let value_len = b.u32().map_err(malformed)? as usize;
                Some(b.take(value_len).map_err(malformed)?.to_vec())
            }
            REMOVE => None,
            other => return Err(format!("unknown change kind {other}")),
        };
        changes.push((tree, key, value));
    }
    if b.at != body.len() {
        return Err("malformed record: trailing bytes".into());
    }
    Ok((Record { seq, changes }, HEADER_LEN + len))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        let end = self.at.checked_add(n).ok_or(())?;
        let slice = self.bytes.get(self.at..end).ok_or(())?;
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, ()> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ()> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| ())?,
        ))
    }
    fn u64(&mut self) -> Result<u64, ()> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| ())?,
        ))
    }
}

/// The directory of segment files.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    files: Arc<dyn Files>,
    /// Numbers spare files, so that each one has a name of its own.
    spares_made: Arc<AtomicU64>,
}

/// A segment file prepared ahead of use (see [`Journal::prepare_spare`]).
/// It owns the only handle ever opened on its file.
#[derive(Debug)]
pub struct Spare {
    path: PathBuf,
    file: Box<dyn JournalFile>,
}

/// The segment being appended to.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    file: Box<dyn JournalFile>,
    pub len: u64,
}

impl Segment {
    /// Appends `bytes` after the records so far and waits until they are
    /// on disk. On failure the segment must not be used again: part of
    /// `bytes` may be on disk.
    pub fn append_durably(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

impl Journal {
    /// The journal in `dir`, with segments of [`SEGMENT_BYTES`], on the
    /// operating system's files.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        Self::with_segment_bytes(dir, SEGMENT_BYTES)
    }

    pub fn with_segment_bytes(dir: &Path, segment_bytes: u64) -> Result<Self, JournalError> {
        Self::on_files(dir, segment_bytes, Arc::new(OsFiles))
    }

    /// The journal in `dir` on `files` (tests pass a simulated disk).
    pub fn on_files(
        dir: &Path,
        segment_bytes: u64,
        files: Arc<dyn Files>,
    ) -> Result<Self, JournalError> {
        files.create_dir_all(dir).map_err(io_error(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            files,
            spares_made: Arc::default(),
        })
    }

    /// How large a segment grows before the next one starts.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// The segments on disk, oldest first.
    pub fn segments(&self) -> Result<Vec<(u64, PathBuf)>, JournalError> {
        let mut out = Vec::new();
        for path in self.files.list(&self.dir).map_err(io_error(&self.dir))? {
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(first) = first {
                out.push((first, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every record on disk, in order, for replay. A torn record at the end
    /// of the newest segment is cut off (it was never acknowledged); damage
    /// anywhere else is an error.
    pub fn read_all(&self) -> Result<Vec<Record>, JournalError> {
        let segments = self.segments()?;
        let mut records: Vec<Record> = Vec::new();
        for (i, (first, path)) in segments.iter().enumerate() {
            let bytes = self.files.read(path).map_err(io_error(path))?;
            let (found, end, damage) = decode(&bytes);
            if let Some(reason) = damage {
                if i + 1 != segments.len() {
                    return Err(JournalError::Damaged {
                        path: path.clone(),
                        offset: end,
                        reason,
                    });
                }
                tracing::warn!(
                    segment = %path.display(),
                    offset = end,
                    reason,
                    "the store's journal ends in an incomplete record, which was never acknowledged; ignoring it"
                );
            }
            let next = records.last().map_or(*first, |r| r.seq + 1);
            for (expected, record) in (next..).zip(found) {
                if record.seq != expected {
                    return Err(JournalError::Gap {
                        path: path.clone(),
                        expected,
                        found: record.seq,
                    });
                }
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Starts a new, empty segment whose first record will be `first_seq`.
    pub fn create_segment(&self, first_seq: u64) -> Result<Segment, JournalError> {
        let spare = self.prepare_spare()?;
        self.install_spare(spare, first_seq)
    }

    /// Writes a zero-filled segment file under a name no other file has had,
    /// ready for [`install_spare`](Self::install_spare). Slow (it writes the
    /// whole segment), so done ahead of need, by one thread only.
    pub fn prepare_spare(&self) -> Result<Spare, JournalError> {
        let n = self.spares_made.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{SPARE_PREFIX}{n}{SPARE_SUFFIX}"));
        let file = self.files.create_new(&path).map_err(io_error(&path))?;
        let spare = Spare { path, file };
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < self.segment_bytes {
            let n = usize::try_from((self.segment_bytes - at).min(zeros.len() as u64))
                .unwrap_or(zeros.len());
            if let Err(err) = spare.file.write_all_at(&zeros[..n], at) {
                return Err(self.discard(spare, err));
            }
            at += n as u64;
        }
        if let Err(err) = spare.file.sync_all() {
            return Err(self.discard(spare, err));
        }
        Ok(spare)
    }

    /// Removes a spare whose preparation failed, so that a full disk is not
    /// filled further by half-made spares; returns the error to report.
    fn discard(&self, spare: Spare, err: std::io::Error) -> JournalError {
        let Spare { path, file } = spare;
        drop(file);
        if let Err(remove) = self.files.remove(&path) {
            tracing::warn!(spare = %path.display(), error = %remove, "cannot remove a half-made journal spare");
        }
        io_error(&path)(err)
    }

    /// Makes a prepared spare the segment whose first record will be
    /// `first_seq`.
    pub fn install_spare(&self, spare: Spare, first_seq: u64) -> Result<Segment, JournalError> {
        let path = self.dir.join(format!("{first_seq:020}.log"));
        self.files
            .rename(&spare.path, &path)
            .map_err(io_error(&path))?;
        // The new name must survive a crash before any record in it counts.
        self.sync_dir()?;
        Ok(Segment {
            path,
            file: spare.file,
            len: 0,
        })
    }

    /// Deletes every spare on disk that was never used (left by a crash or
    /// a close). Only while no spare is being prepared.
    pub fn remove_spares(&self) -> Result<(), JournalError> {
        for path in self.files.list(&self.dir).map_err(io_error(&self.dir))? {
            let is_spare = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SPARE_PREFIX) && n.ends_with(SPARE_SUFFIX));
            if is_spare {
                match self.files.remove(&path) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_error(&path)(err));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Deletes segments, oldest first, each deletion durable before the
    /// next, so that what remains is always a contiguous run. A segment
    /// already gone counts as deleted: an earlier try may have removed it
    /// and then failed to sync the directory.
    pub fn delete(&self, paths: &[PathBuf]) -> Result<(), JournalError> {
        for path in paths {
            match self.files.remove(path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error(path)(err));
                }
                _ => {}
            }
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Deletes every segment, oldest first: for when sled holds all they
    /// recorded.
    pub fn delete_all(&self) -> Result<(), JournalError> {
        let paths: Vec<PathBuf> = self.segments()?.into_iter().map(|(_, p)| p).collect();
        self.delete(&paths)
    }

    fn sync_dir(&self) -> Result<(), JournalError> {
        self.files.sync_dir(&self.dir).map_err(io_error(&self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn changes(n: u8) -> Vec<Change> {
        vec![
            (2, vec![b'k', n], Some(vec![n; 40])),
            (3, b"open".to_vec(), None),
        ]
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        encode(7, &changes(1), &mut buf);
        encode(8, &changes(2), &mut buf);
        let (records, end, damage) = decode(&buf);
        assert_eq!(end, buf.len());
        assert_eq!(damage, None);
        assert_eq!(
            records,
            [
                Record {
                    seq: 7,
                    changes: changes(1)
                },
                Record {
                    seq: 8,
                    changes: changes(2)
                }
            ]
        );
    }

    #[test]
    fn a_torn_or_altered_record_ends_the_readable_part() {
        let mut buf = Vec::new();
        encode(1, &changes(1), &mut buf);
        let first_len = buf.len();
        encode(2, &changes(2), &mut buf);
        for cut in first_len + 1..buf.len() {
            let (records, end, damage) = decode(&buf[..cut]);
            assert_eq!(records.len(), 1, "cut at {cut}");
            assert_eq!(end, first_len);
            assert!(damage.is_some());
        }
        let mut flipped = buf.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let (records, _, damage) = decode(&flipped);
        assert_eq!(records.len(), 1);
        assert_eq!(damage.as_deref(), Some("checksum mismatch"));
    }

    #[test]
    fn zeros_end_a_segment_and_nothing_may_follow_them() {
        let mut buf = Vec::new();
        encode(1, &changes(1), &mut buf);
        let end = buf.len();
        buf.resize(end + 100, 0);
        let (records, at, damage) = decode(&buf);
        assert_eq!((records.len(), at, damage), (1, end, None));
        buf[end + 50] = 7;
        let (records, at, damage) = decode(&buf);
        assert_eq!((records.len(), at), (1, end));
        assert_eq!(damage.as_deref(), Some("data after the end of the records"));
    }

    #[test]
    fn segments_are_zero_filled_and_spares_become_segments() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::with_segment_bytes(dir.path(), 4096).unwrap();
        let spare = journal.prepare_spare().unwrap();
        let mut segment = journal.install_spare(spare, 1).unwrap();
        let mut bytes = Vec::new();
        encode(1, &changes(1), &mut bytes);
        segment.append_durably(&bytes).unwrap();
        let on_disk = fs::read(&segment.path).unwrap();
        assert_eq!(on_disk.len(), 4096, "the file keeps its size");
        assert_eq!(&on_disk[..bytes.len()], &bytes[..]);
        assert_eq!(journal.read_all().unwrap().len(), 1);
        // A spare left behind is not a segment, and is removed.
        journal.prepare_spare().unwrap();
        assert_eq!(journal.segments().unwrap().len(), 1);
        journal.remove_spares().unwrap();
        journal.remove_spares().unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_the_newest_segment_may_be_torn() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::with_segment_bytes(dir.path(), 4096).unwrap();
        let mut first = journal.create_segment(1).unwrap();
        let mut bytes = Vec::new();
        encode(1, &changes(1), &mut bytes);
        encode(2, &changes(2), &mut bytes);
        first.append_durably(&bytes).unwrap();
        let mut second = journal.create_segment(3).unwrap();
        let mut bytes = Vec::new();
        encode(3, &changes(3), &mut bytes);
        second.append_durably(&bytes[..bytes.len() - 3]).unwrap();
        let seqs: Vec<u64> = journal.read_all().unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            [1, 2],
            "the torn tail of the newest segment is dropped"
        );

        // The same damage in an older segment is refused.
        let mut third = journal.create_segment(4).unwrap();
        let mut bytes = Vec::new();
        encode(4, &changes(4), &mut bytes);
        third.append_durably(&bytes).unwrap();
        let err = journal.read_all().unwrap_err();
        assert!(matches!(err, JournalError::Damaged { .. }), "{err}");
    }

    #[test]
    fn a_missing_segment_is_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::with_segment_bytes(dir.path(), 4096).unwrap();
        for seq in [1, 3] {
            let mut segment = journal.create_segment(seq).unwrap();
            let mut bytes = Vec::new();
            encode(seq, &changes(1), &mut bytes);
            segment.append_durably(&bytes).unwrap();
        }
        let err = journal.read_all().unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Gap {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn deleting_keeps_the_newest_segments() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::with_segment_bytes(dir.path(), 4096).unwrap();
        let a = journal.create_segment(1).unwrap();
        journal.create_segment(5).unwrap();
        journal.delete(&[a.path]).unwrap();
        let left: Vec<u64> = journal.segments().unwrap().iter().map(|s| s.0).collect();
        assert_eq!(left, [5]);
    }
}
