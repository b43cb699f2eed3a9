//! The AWS stand-in (moto server) answers the real AWS wire protocols through
//! the AWS SDK for Rust: S3 (REST-XML), CloudWatch Logs (JSON 1.1) and STS
//! (Query) including AssumeRoleWithWebIdentity, as IRSA uses it.

use anyhow::{Context, Result, ensure};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_s3::primitives::ByteStream;
use sparkvc_cluster_tests::{LocalEnv, rand_u32};

#[tokio::test]
async fn s3_put_and_get_object() -> Result<()> {
    let s3 = LocalEnv::load()?.s3_client().await;
    let bucket = format!("sparkvc-test-{:08x}", rand_u32());
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .context("CreateBucket against the AWS stand-in")?;
    let key = "vc-1/jobs/job-1/containers/spark-1/driver/stdout.gz";
    let body = b"hello from the local S3".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(body.clone()))
        .send()
        .await?;
    let got = s3.get_object().bucket(&bucket).key(key).send().await?;
    let bytes = got.body.collect().await?.into_bytes();
    ensure!(bytes.as_ref() == body.as_slice(), "object body differs");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("vc-1/")
        .send()
        .await?;
    ensure!(
        listed.key_count() == Some(1),
        "list returned {:?}",
        listed.key_count()
    );
    s3.delete_object().bucket(&bucket).key(key).send().await?;
    s3.delete_bucket().bucket(&bucket).send().await?;
    Ok(())
}

#[tokio::test]
async fn cloudwatch_logs_group_stream_and_events() -> Result<()> {
    let env = LocalEnv::load()?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.aws_config().await);
    let group = format!("/sparkvc/test-{:08x}", rand_u32());
    let stream = "vc-1/jobs/job-1/containers/spark-1/driver/stdout";
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .context("CreateLogGroup")?;
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let events = ["line one", "line two"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(*m)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await?;
    let got = logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .start_from_head(true)
        .send()
        .await?;
    let messages: Vec<_> = got.events().iter().filter_map(|e| e.message()).collect();
    ensure!(messages == ["line one", "line two"], "got {messages:?}");
    logs.delete_log_group()
        .log_group_name(&group)
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn sts_assume_role_with_web_identity_returns_credentials() -> Result<()> {
    let env = LocalEnv::load()?;
    let sts = aws_sdk_sts::Client::new(&env.aws_config().await);
    let role = "arn:aws:iam::123456789012:role/sparkvc-job-role";
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name("sparkvc-test")
        .web_identity_token("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
        .send()
        .await
        .context("AssumeRoleWithWebIdentity against the AWS stand-in")?;
    let creds = out.credentials().context("no credentials returned")?;
    ensure!(!creds.access_key_id().is_empty(), "empty access key id");
    ensure!(!creds.secret_access_key().is_empty(), "empty secret key");
    ensure!(!creds.session_token().is_empty(), "empty session token");
    let assumed = out.assumed_role_user().context("no assumed role user")?;
    ensure!(
        assumed
            .arn()
            .contains("assumed-role/sparkvc-job-role/sparkvc-test"),
        "arn {}",
        assumed.arn()
    );
    let who = sts.get_caller_identity().send().await?;
    ensure!(
        who.account().is_some(),
        "GetCallerIdentity returned no account"
    );
    Ok(())
}
