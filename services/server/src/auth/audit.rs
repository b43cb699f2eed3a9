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
use std::sync::{Arc, Mutex};

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

/// Where records go.
pub struct AuditLog {
    sink: Mutex<Sink>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    pub fn stderr() -> Self {
        Self {
            sink: Mutex::new(Sink::Stderr),
        }
    }

    /// Appends to `path`, rotating when it passes `max_bytes`.
    pub fn file(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            sink: Mutex::new(Sink::File {
                path: path.to_path_buf(),
                file,
                written,
                max_bytes,
                keep,
            }),
        })
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

    pub fn write(&self, record: &Record<'_>) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(err) => {
                tracing::error!(%err, "cannot encode an audit record");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = self.sink.lock().expect("audit log lock");
        let result = match &mut *sink {
            Sink::Stderr => std::io::stderr().write_all(&line),
            Sink::File {
                path,
                file,
                written,
                max_bytes,
                keep,
            } => {
                if *written + line.len() as u64 > *max_bytes && *written > 0 {
                    match rotate(path, *keep) {
                        Ok(fresh) => {
                            *file = fresh;
                            *written = 0;
                        }
                        Err(err) => tracing::error!(%err, "cannot rotate the audit log"),
                    }
                }
                *written += line.len() as u64;
                file.write_all(&line)
            }
        };
        if let Err(err) = result {
            tracing::error!(%err, "cannot write the audit log");
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

/// A request ID in AWS's shape (a UUID).
pub fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f | 0x40,
        b[7],
        b[8] & 0x3f | 0x80,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
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

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, request_id());
    }
}
