//! What a hostile or broken client gets from the real server (issue 19):
//! an AWS error for every kind of bad input, bounded error messages, and
//! nothing stored.

use bytes::BufMut;
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends bytes as they are: what a client with a broken encoder sends.
#[derive(Debug, Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, _buf: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        Ok(Some(()))
    }
}

async fn send_raw(server: &Server, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .expect_err("the server refuses it")
}

#[tokio::test]
async fn undecodable_and_oversized_bodies_are_validation_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let method = "/sparkvc.v1.EmrContainers/CreateVirtualCluster";
    // Field 1 (name) as a string of two bytes that are not UTF-8; then a
    // length that runs past the end; then a group nested past prost's limit.
    let nested: Vec<u8> = std::iter::repeat_n(0x0b, 200).collect();
    for body in [vec![0x0a, 0x02, 0xff, 0x41], vec![0x0a, 0x7f, 0x41], nested] {
        let status = send_raw(&server, method, body.clone()).await;
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{body:02x?}: {status:?}"
        );
        assert_eq!(aws_error(&status), "ValidationException", "{status:?}");
        assert!(
            status
                .message()
                .contains("not a valid CreateVirtualClusterRequest"),
            "{}",
            status.message()
        );
    }
    let status = send_raw(&server, method, vec![b'x'; 5 * 1024 * 1024]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(aws_error(&status), "ValidationException");
    assert!(
        status.message().contains("4194304 bytes"),
        "{}",
        status.message()
    );

    // Nothing was stored, and the server still serves.
    let mut client = server.client().await;
    let listed = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.virtual_clusters.is_empty());
}

#[tokio::test]
async fn a_huge_bad_value_is_quoted_only_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let huge = "Q".repeat(1_000_000);
    let status = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            states: vec![huge],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_error(&status), "ValidationException");
    assert!(
        status.message().len() < 400,
        "{} bytes",
        status.message().len()
    );
}

#[tokio::test]
async fn far_future_and_malformed_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    // Year 9999: past the last time an ID can encode; means "no bound".
    let far = prost_types::Timestamp {
        seconds: 253_402_300_799,
        nanos: 0,
    };
    let listed = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            created_before: Some(far),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.virtual_clusters.len(), 1);
    assert_eq!(listed.virtual_clusters[0].id, vc);
    let none = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            created_after: Some(far),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.virtual_clusters.is_empty());
    let status = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            created_after: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 1_000_000_000,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(aws_error(&status), "ValidationException");
    assert!(
        status.message().contains("'createdAfter'"),
        "{}",
        status.message()
    );
}

/// A run is bounded (256 KiB of request), and a page of the largest runs
/// stays well inside the 4 MiB a gRPC client reads by default: the
/// listing pages by bytes as well as by count.
#[tokio::test]
async fn job_runs_and_their_pages_are_bounded() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    let with_args = |count: usize| {
        let mut req = start_request(&vc);
        let driver = req.job_driver.as_mut().unwrap();
        let submit = driver.spark_submit_job_driver.as_mut().unwrap();
        submit.entry_point_arguments = vec!["a".repeat(10_000); count];
        req
    };
    let status = client.start_job_run(with_args(400)).await.unwrap_err();
    assert_eq!(aws_error(&status), "ValidationException");
    assert!(
        status.message().contains("more than the 262144"),
        "{}",
        status.message()
    );

    // 25 runs of about 250 KB each, the most a run may be.
    for _ in 0..25 {
        client.start_job_run(with_args(25)).await.unwrap();
    }
    let mut pages = Vec::new();
    let mut next_token = String::new();
    loop {
        let page = client
            .list_job_runs(pb::ListJobRunsRequest {
                virtual_cluster_id: vc.clone(),
                max_results: Some(50),
                next_token: next_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push((page.job_runs.len(), page.encoded_len()));
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    let runs: usize = pages.iter().map(|p| p.0).sum();
    assert_eq!(runs, 25, "{pages:?}");
    let largest = pages.iter().map(|p| p.1).max().unwrap();
    println!("largest ListJobRuns page: {largest} bytes; pages (runs, bytes): {pages:?}");
    assert!(largest < 3 * 1024 * 1024, "{largest} bytes");
}

/// When the log store cannot be reached, GetJobRunLogs says so without the
/// server's network details (endpoint, address, the transport's error).
#[tokio::test]
async fn an_unreachable_log_store_is_reported_without_network_details() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback here.
    let server = Server::start_with_env(
        dir.path(),
        &[],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    let mut req = start_request(&vc);
    req.configuration_overrides = Some(
        serde_json::from_value(serde_json::json!({"monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": "s3://logs/team-a/"}
        }}))
        .unwrap(),
    );
    let run = client.start_job_run(req).await.unwrap().into_inner();
    let status = client
        .get_job_run_logs(pb::GetJobRunLogsRequest {
            virtual_cluster_id: vc,
            id: run.id,
            source: "S3".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let message = status.message();
    for detail in ["127.0.0.1", ":9", "onnection refused", "tcp", "dispatch"] {
        assert!(!message.contains(detail), "{detail:?} in: {message}");
    }
    assert!(message.contains("could not be reached"), "{message}");
}
