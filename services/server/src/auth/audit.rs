//! The audit log: one JSON line per API call, allowed or refused, with who
//! called (principal, how they authenticated, from where), what they asked
//! (action, resource), the decision and the statement that decided, and the
//! error code if the call failed. Never a secret, a signature or a request
//! body.
//!
//! Records go to a file, rotated by size (`audit.log`, then `audit.log.1`
//! … `audit.log.<keep>`), or to standard error.

use super::{AuthError, Caller};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// What the authorization step learned about a call, filled in by `api`
/// through the request's extensions.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    pub action: String,
    pub resource: String,
    /// `allow`, `explicit-deny` or `implicit-deny`.
    pub decision: &'static str,
    /// `policy#sid` of the deciding statement.
    pub statement: Option<String>,
}

/// Shared between the auth layer and the handler of one call.
pub type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// One record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub time: String,
    pub request_id: &'a str,
    pub principal: Option<&'a str>,
    pub auth_method: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    pub source_ip: Option<String>,
    /// The gRPC method called, or the HTTP route.
    pub operation: &'a str,
    pub action: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub decision: &'a str,
    pub statement: Option<&'a str>,
    /// The AWS error code, if the call failed.
    pub error_code: Option<&'a str>,
}

/// What one call's record says besides the time.
pub struct Call<'a> {
    pub request_id: &'a str,
    pub operation: &'a str,
    pub caller: Option<&'a Caller>,
    pub source_ip: Option<std::net::IpAddr>,
    pub verdict: Option<&'a Verdict>,
    /// Why the caller was not authenticated, if it was not.
    pub refusal: Option<&'a AuthError>,
    pub error_code: Option<&'a str>,
}

enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: File,
        written: u64,
        max_bytes: u64,
        keep: u32,
    },
}

impl Sink {
    /// Writes whole lines, rotating the file before a line that would take
    /// it past `max_bytes` (a file holds at least one line).
    fn write_lines(&mut self, lines: &[u8]) -> std::io::Result<()> {
        let Sink::File {
            path,
            file,
            written,
            max_bytes,
            keep,
        } = self
        else {
            return std::io::stderr().write_all(lines);
        };
        let mut rest = lines;
        while !rest.is_empty() {
            // As many lines as fit before the next rotation, at least one.
            let mut take = 0;
            for line in rest.split_inclusive(|b| *b == b'\n') {
                let fits = *written + (take + line.len()) as u64 <= *max_bytes;
                if !fits && (take > 0 || *written > 0) {
                    break;
                }
                take += line.len();
            }
            if take == 0 {
                match rotate(path, *keep) {
                    Ok(fresh) => {
                        *file = fresh;
                        *written = 0;
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot rotate the audit log");
                        // Keep writing to the old file rather than lose records.
                        *written = 0;
                    }
                }
                continue;
            }
            file.write_all(&rest[..take])?;
            *written += take as u64;
            rest = &rest[take..];
        }
        Ok(())
    }
}

/// How long the writer lets records gather after the first of a batch:
/// long enough that a busy server makes one `write` for many calls, short
/// enough that a record is in the file a moment after its call.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Lines waiting for the writer thread, and how far it has got.
#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    /// Records queued and records written, for [`AuditLog::flush`].
    queued: u64,
    written: u64,
    /// The writer is waiting for a first record (only then is it woken).
    idle: bool,
    /// Someone waits in [`AuditLog::flush`]: write without gathering.
    hurry: bool,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits here for lines; `flush` waits here for the writer.
    changed: Condvar,
}

/// Where records go. A call only appends its line to a queue in memory;
/// one thread writes what has gathered for a few milliseconds with one
/// `write`: under load one system call for many records, instead of one per
/// call on the request path (and no wake-up per call either). A record
/// reaches the file at most a few milliseconds after its call; dropping the
/// log writes what is queued. A `kill -9` in that moment loses those
/// records, which a `write` per call would have left in the page cache.
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    pub fn stderr() -> Self {
        Self::start(Sink::Stderr)
    }

    /// Appends to `path`, rotating when it passes `max_bytes`.
    pub fn file(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Self::start(Sink::File {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes,
            keep,
        }))
    }

    fn start(mut sink: Sink) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let theirs = shared.clone();
        let writer = std::thread::Builder::new()
            .name("sparkvc-audit".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let (count, closed) = {
                        let mut queue = theirs.queue.lock().expect("audit queue lock");
                        while queue.lines.is_empty() && !queue.closed {
                            queue.idle = true;
                            queue = theirs.changed.wait(queue).expect("audit queue lock");
                        }
                        queue.idle = false;
                        if !queue.closed && !queue.hurry {
                            drop(queue);
                            std::thread::sleep(GATHER);
                            queue = theirs.queue.lock().expect("audit queue lock");
                        }
                        std::mem::swap(&mut batch, &mut queue.lines);
                        (queue.queued, queue.closed)
                    };
                    if !batch.is_empty() {
                        if let Err(err) = sink.write_lines(&batch) {
                            tracing::error!(%err, "cannot write the audit log");
                        }
                        batch.clear();
                    }
                    let mut queue = theirs.queue.lock().expect("audit queue lock");
                    queue.written = count;
                    theirs.changed.notify_all();
                    if closed && queue.lines.is_empty() {
                        return;
                    }
                }
            })
            .expect("start the audit log's writer thread");
        Self {
            shared,
            writer: Some(writer),
        }
    }

    /// Records `call`, stamped with the time now.
    pub fn call(&self, call: Call<'_>) {
        let decision = match (call.refusal, call.verdict) {
            (Some(_), _) => "unauthenticated",
            (None, Some(v)) => v.decision,
            (None, None) => "none",
        };
        self.write(&Record {
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            request_id: call.request_id,
            principal: call.caller.map(|c| c.arn.as_str()),
            auth_method: call.caller.map(|c| c.method.as_str()),
            access_key_id: call.caller.and_then(|c| c.access_key_id.as_deref()),
            source_ip: call.source_ip.map(|ip| ip.to_string()),
            operation: call.operation,
            action: call.verdict.map(|v| v.action.as_str()),
            resource: call.verdict.map(|v| v.resource.as_str()),
            decision,
            statement: call.verdict.and_then(|v| v.statement.as_deref()),
            error_code: call.refusal.map(|e| e.code()).or(call.error_code),
        });
    }

    /// Queues `record` for the writer thread.
    pub fn write(&self, record: &Record<'_>) {
        let mut queue = self.shared.queue.lock().expect("audit queue lock");
        let was_empty = queue.lines.is_empty();
        if let Err(err) = serde_json::to_writer(&mut queue.lines, record) {
            tracing::error!(%err, "cannot encode an audit record");
            return;
        }
        queue.lines.push(b'\n');
        queue.queued += 1;
        // A writer that is gathering or writing finds this line when it
        // looks again: only an idle one needs waking (a system call).
        if was_empty && queue.idle {
            queue.idle = false;
            self.shared.changed.notify_all();
        }
    }

    /// Waits until every record queued so far is written.
    pub fn flush(&self) {
        let mut queue = self.shared.queue.lock().expect("audit queue lock");
        let target = queue.queued;
        queue.hurry = true;
        self.shared.changed.notify_all();
        while queue.written < target {
            queue = self.shared.changed.wait(queue).expect("audit queue lock");
        }
        queue.hurry = false;
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
            self.shared.changed.notify_all();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// `path` → `path.1` → … → `path.<keep>` (the oldest dropped); a new `path`.
fn rotate(path: &Path, keep: u32) -> std::io::Result<File> {
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            std::fs::rename(&from, numbered(n + 1))?;
        }
    }
    if keep > 0 {
        std::fs::rename(path, numbered(1))?;
    } else {
        std::fs::remove_file(path)?;
    }
    open_append(path)
}

/// A request ID in AWS's shape (a random, version-4 UUID).
pub fn request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = b[6] & 0x0f | 0x40;
    b[8] = b[8] & 0x3f | 0x80;
    let hex = hex::encode(b);
    let mut id = String::with_capacity(36);
    for (i, range) in [0..8, 8..12, 12..16, 16..20, 20..32]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            id.push('-');
        }
        id.push_str(&hex[range]);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record<'_> {
        Record {
            time: "2026-12-03T00:00:00Z".into(),
            request_id: id,
            principal: Some("arn:aws:iam::1:user/a"),
            auth_method: Some("sigv4"),
            access_key_id: Some("AKIA"),
            source_ip: None,
            operation: "/sparkvc.v1.EmrContainers/StartJobRun",
            action: Some("emr-containers:StartJobRun"),
            resource: Some("arn:x"),
            decision: "allow",
            statement: Some("p#s"),
            error_code: None,
        }
    }

    #[test]
    fn records_are_json_lines_and_the_file_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path, 600, 2).unwrap();
        for i in 0..10 {
            log.write(&record(&format!("id-{i}")));
            // One line per batch, so that rotation is tested line by line.
            log.flush();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(current.lines().next().unwrap()).unwrap();
        assert_eq!(first["action"], "emr-containers:StartJobRun");
        assert!(current.len() <= 600);
        assert!(path.with_extension("log.1").exists());
        assert!(path.with_extension("log.2").exists());
        assert!(
            !path.with_extension("log.3").exists(),
            "only `keep` old files"
        );
        let all: usize = ["audit.log", "audit.log.1", "audit.log.2"]
            .iter()
            .map(|f| {
                std::fs::read_to_string(dir.path().join(f))
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert!(all < 10, "the oldest records were dropped");
        assert!(current.contains("id-9"));
    }

    fn request_ids(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| {
                let record: serde_json::Value = serde_json::from_str(l).unwrap();
                record["request_id"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn a_batch_is_split_at_line_boundaries_and_dropping_the_log_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path, 600, 50).unwrap();
        for i in 0..40 {
            log.write(&record(&format!("id-{i}")));
        }
        drop(log);
        let mut ids = Vec::new();
        for n in (1..=50).rev() {
            let old = dir.path().join(format!("audit.log.{n}"));
            if let Ok(text) = std::fs::read_to_string(&old) {
                assert!(
                    text.len() <= 600,
                    "{} is {} bytes",
                    old.display(),
                    text.len()
                );
                ids.extend(request_ids(&text));
            }
        }
        ids.extend(request_ids(&std::fs::read_to_string(&path).unwrap()));
        let expected: Vec<String> = (0..40).map(|i| format!("id-{i}")).collect();
        assert_eq!(ids, expected, "every record, once, in order");
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert_ne!(id, request_id());
    }
}
