//! The sparkvc gRPC API: Amazon EMR on EKS (`emr-containers`) operations and
//! shapes, as prost messages and tonic client/server stubs.
//!
//! Every message also (de)serialises to the AWS JSON shape (camelCase member
//! names, ISO 8601 timestamps, absent members left out), which is what the
//! `sparkvc` CLI reads from `--cli-input-json` and prints.

pub mod codec;
pub mod failure;
pub mod json;
pub mod limits;
pub mod rest;

/// Generated from `proto/sparkvc/v1/emr_containers.proto`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("sparkvc.v1");
}

/// The encoded file descriptor set, for the gRPC reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sparkvc_descriptor");

/// Name of the metadata entry that carries the AWS error type of a failed call.
pub const ERROR_TYPE_METADATA: &str = "x-amzn-errortype";

pub use failure::FailureReason;
pub use v1::emr_containers_client::EmrContainersClient;
pub use v1::emr_containers_server::{EmrContainers, EmrContainersServer};
