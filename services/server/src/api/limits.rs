//! Requests larger than the server takes. tonic refuses a message over its
//! decoding limit (4 MiB, as AWS's request limit) before any handler runs,
//! with `OUT_OF_RANGE` and no AWS error name, which clients then cannot
//! classify. This layer gives that answer the shape of every other refusal:
//! a ValidationException (`INVALID_ARGUMENT` with `x-amzn-errortype`).
//!
//! Only tonic makes `OUT_OF_RANGE` here: sparkvc's own errors are mapped in
//! `api/status.rs`, always with an error name, and are left alone.

use http::HeaderValue;
use sparkvc_proto::ERROR_TYPE_METADATA;

/// The largest request body, in bytes (tonic's default decoding limit).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

const TOO_LARGE: &str =
    "1 validation error detected: the request is larger than the 4194304 bytes a request may have";

/// Rewrites a refused oversized request's answer (a trailers-only response,
/// so its status is in the headers).
pub fn name_oversized_requests<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers.get("grpc-status").is_some_and(|v| v == "11");
    if out_of_range && !headers.contains_key(ERROR_TYPE_METADATA) {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert("grpc-message", HeaderValue::from_static(TOO_LARGE));
        headers.insert(
            ERROR_TYPE_METADATA,
            HeaderValue::from_static("ValidationException"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &str, error_type: Option<&str>) -> http::Response<()> {
        let mut r = http::Response::new(());
        r.headers_mut()
            .insert("grpc-status", HeaderValue::from_str(status).unwrap());
        if let Some(t) = error_type {
            r.headers_mut()
                .insert(ERROR_TYPE_METADATA, HeaderValue::from_str(t).unwrap());
        }
        r
    }

    #[test]
    fn only_tonics_size_refusal_is_renamed() {
        let renamed = name_oversized_requests(response("11", None));
        assert_eq!(renamed.headers()["grpc-status"], "3");
        assert_eq!(
            renamed.headers()[ERROR_TYPE_METADATA],
            "ValidationException"
        );
        for (status, error_type) in [("11", Some("SomethingElse")), ("3", None), ("0", None)] {
            let kept = name_oversized_requests(response(status, error_type));
            assert_eq!(kept.headers()["grpc-status"], status);
        }
    }
}
