//! An error as AWS's REST services answer one: the HTTP status, the error
//! code in `x-amzn-ErrorType`, and `{"message": …}` — what every AWS SDK
//! reads (the code from the header first).

use http::{HeaderValue, StatusCode, header};

pub fn response<B: From<String>>(status: u16, code: &str, message: &str) -> http::Response<B> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(code) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

/// The answer to a REST body over `max` bytes: 413, as a
/// ValidationException (which every SDK models). The rest of the body is
/// not read, so the connection cannot carry another request: it is closed,
/// and the client is told so rather than left to find a dead connection.
pub fn too_large<B: From<String>>(max: usize) -> http::Response<B> {
    let mut response = response(
        413,
        "ValidationException",
        &format!(
            "1 validation error detected: the request is larger than the {max} bytes a request may have, or its body could not be read"
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether a request speaks gRPC; everything else on the API port is
/// AWS's REST protocol.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}
