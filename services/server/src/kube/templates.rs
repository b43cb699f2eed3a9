//! Fetches the user pod templates a job run names
//! (`spark.kubernetes.{driver,executor}.podTemplateFile`): a local path on the
//! server, or an `s3://bucket/key` object read with the AWS SDK using the
//! server's AWS credentials (standard chain; `AWS_ENDPOINT_URL` is honoured,
//! which is how the tests reach the local AWS stand-in).

use aws_sdk_s3::Client as S3;
use tokio::sync::OnceCell;

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
    s3: OnceCell<S3>,
}

impl TemplateReader {
    async fn s3(&self) -> &S3 {
        self.s3
            .get_or_init(|| async { crate::aws::s3_client(crate::aws::sdk_config().await) })
            .await
    }

    pub async fn read(
        &self,
        which: &'static str,
        location: Option<&str>,
    ) -> Result<Option<String>, TemplateError> {
        let Some(location) = location else {
            return Ok(None);
        };
        let fail = |reason: String| TemplateError {
            which,
            location: location.to_string(),
            reason,
        };
        if let Some(rest) = location
            .strip_prefix("s3://")
            .or_else(|| location.strip_prefix("s3a://"))
        {
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| fail("expected s3://<bucket>/<key>".into()))?;
            let object = self
                .s3()
                .await
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| fail(crate::aws::error_text(&e)))?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| fail(e.to_string()))?
                .into_bytes();
            return String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|_| fail("it is not UTF-8 text".into()));
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        tokio::fs::read_to_string(path)
            .await
            .map(Some)
            .map_err(|e| fail(e.to_string()))
    }
}
