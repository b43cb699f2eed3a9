//! Reads the user pod templates a job run names
//! (`spark.kubernetes.{driver,executor}.podTemplateFile`) as the tenant,
//! never with the server's own rights:
//! - an `s3://` (or `s3a://`) object is read with the run's execution role,
//!   assumed through STS, so a run reads only what its role may read;
//! - a local file only under a directory the operator allowed
//!   (`--pod-template-dir`; none by default), after resolving symlinks and
//!   `..`; any other path gets one answer whether or not a file is there,
//!   so a caller learns nothing about the server's files.
//!
//! Error messages name the location and the reason, never what a file
//! holds.

use std::path::{Component, Path, PathBuf};

/// A pod template larger than this is refused unread: it would not fit in
/// the run's ConfigMap anyway.
pub const MAX_TEMPLATE_BYTES: u64 = 512 * 1024;

/// Why a template could not be read; always the user's to fix.
#[derive(Debug, thiserror::Error)]
#[error("The {which} pod template {location} cannot be read: {reason}.")]
pub struct TemplateError {
    pub which: &'static str,
    pub location: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct TemplateReader {
    /// Directories local templates may come from, as the operator gave them.
    allowed_dirs: Vec<PathBuf>,
}

impl TemplateReader {
    /// A reader that takes local templates only from `allowed_dirs`.
    pub fn new(allowed_dirs: Vec<PathBuf>) -> Self {
        Self { allowed_dirs }
    }

    pub async fn read(
        &self,
        which: &'static str,
        location: Option<&str>,
        run: &sparkvc_proto::v1::JobRun,
    ) -> Result<Option<String>, TemplateError> {
        let Some(location) = location else {
            return Ok(None);
        };
        let text = match location
            .strip_prefix("s3://")
            .or_else(|| location.strip_prefix("s3a://"))
        {
            Some(rest) => read_s3(rest, run).await,
            None => self.read_local(location).await,
        };
        text.map(Some).map_err(|reason| TemplateError {
            which,
            location: location.to_string(),
            reason,
        })
    }

    async fn read_local(&self, location: &str) -> Result<String, String> {
        let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
        let refused = || {
            if self.allowed_dirs.is_empty() {
                "this server takes pod templates from S3 only (s3://<bucket>/<key>, read with the execution role)".to_string()
            } else {
                format!(
                    "this server takes local pod templates only from {} (or from S3)",
                    shown(&self.allowed_dirs)
                )
            }
        };
        let lexically_inside = path.is_absolute()
            && !path.components().any(|c| c == Component::ParentDir)
            && self.allowed_dirs.iter().any(|dir| path.starts_with(dir));
        if !lexically_inside {
            return Err(refused());
        }
        // Symlinks inside an allowed directory must not lead out of it.
        let real = tokio::fs::canonicalize(path)
            .await
            .map_err(|_| "no such file".to_string())?;
        let mut inside = false;
        for dir in &self.allowed_dirs {
            if let Ok(dir) = tokio::fs::canonicalize(dir).await {
                inside |= real.starts_with(&dir);
            }
        }
        if !inside {
            return Err(refused());
        }
        let size = tokio::fs::metadata(&real)
            .await
            .map_err(|e| e.kind().to_string())?
            .len();
        if size > MAX_TEMPLATE_BYTES {
            return Err(too_large(size));
        }
        let bytes = tokio::fs::read(&real)
            .await
            .map_err(|e| e.kind().to_string())?;
        utf8(bytes)
    }
}

async fn read_s3(rest: &str, run: &sparkvc_proto::v1::JobRun) -> Result<String, String> {
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| "expected s3://<bucket>/<key>".to_string())?;
    let base = crate::aws::sdk_config().await;
    let role = crate::aws::assume_execution_role(base, run)
        .await
        .map_err(|e| {
            format!(
                "sparkvc could not assume the execution role {} to read it (sts:AssumeRole): {e}",
                run.execution_role_arn
            )
        })?;
    let object = crate::aws::s3_client(&role)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "s3:GetObject as the execution role {} failed: {}",
                run.execution_role_arn,
                crate::aws::error_text(&e)
            )
        })?;
    let size = u64::try_from(object.content_length().unwrap_or(0)).unwrap_or(0);
    if size > MAX_TEMPLATE_BYTES {
        return Err(too_large(size));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("reading the object failed: {e}"))?
        .into_bytes();
    utf8(bytes.to_vec())
}

fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

fn too_large(size: u64) -> String {
    format!("it is {size} bytes, more than the {MAX_TEMPLATE_BYTES} a pod template may have")
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> sparkvc_proto::v1::JobRun {
        sparkvc_proto::v1::JobRun {
            id: "r".into(),
            execution_role_arn: "arn:aws:iam::123456789012:role/spark".into(),
            ..Default::default()
        }
    }

    async fn reason(reader: &TemplateReader, location: &str) -> String {
        reader
            .read("driver", Some(location), &run())
            .await
            .expect_err("refused")
            .reason
    }

    #[tokio::test]
    async fn no_local_file_is_read_unless_the_operator_allows_its_directory() {
        let reader = TemplateReader::default();
        let here = std::env::current_dir().unwrap();
        let existing = here.join("Cargo.toml");
        let answers = [
            reason(&reader, "/etc/shadow").await,
            reason(&reader, "/root/.bashrc").await,
            reason(&reader, "/no/such/file").await,
            reason(&reader, &format!("file://{}", existing.display())).await,
            reason(&reader, "relative/path.yaml").await,
        ];
        // One answer for all: nothing is learnt about which files exist.
        assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
        assert!(answers[0].contains("from S3 only"), "{}", answers[0]);
    }

    #[tokio::test]
    async fn an_allowed_directory_is_not_a_way_out() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.yaml");
        std::fs::write(&secret, "kind: Pod\n").unwrap();
        std::os::unix::fs::symlink(&secret, allowed.path().join("link.yaml")).unwrap();
        std::fs::write(allowed.path().join("driver.yaml"), "kind: Pod\n").unwrap();
        let reader = TemplateReader::new(vec![allowed.path().to_path_buf()]);
        let dir = allowed.path().display();

        let ok = reader
            .read("driver", Some(&format!("{dir}/driver.yaml")), &run())
            .await
            .unwrap();
        assert_eq!(ok.as_deref(), Some("kind: Pod\n"));
        let refused = reason(&reader, &secret.display().to_string()).await;
        assert!(refused.contains("only from"), "{refused}");
        for sneaky in [format!("{dir}/link.yaml"), format!("{dir}/../secret.yaml")] {
            assert_eq!(reason(&reader, &sneaky).await, refused, "{sneaky}");
        }
        assert_eq!(
            reason(&reader, &format!("{dir}/missing.yaml")).await,
            "no such file"
        );

        let big = allowed.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_TEMPLATE_BYTES as usize + 1]).unwrap();
        let too_big = reason(&reader, &big.display().to_string()).await;
        assert!(too_big.contains("more than the"), "{too_big}");
    }
}
