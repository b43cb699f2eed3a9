//! AWS's REST-JSON protocol (restJson1) on the API port, beside gRPC, so
//! that the AWS CLI, boto3 and the AWS SDKs work against sparkvc unchanged.
//!
//! A request is matched against the route table generated from the proto
//! (`sparkvc_proto::rest`), its path labels, query string and JSON body are
//! made into the operation's request shape, and the very gRPC service
//! method the gRPC protocol calls answers it: the two protocols are one
//! control plane. Authentication happened before (the auth layer, which
//! signs-checks REST requests as they arrived on the wire); authorization
//! happens inside the operation, as for gRPC.
//!
//! Errors are AWS's: the status, `x-amzn-ErrorType`, and `{"message": …}`
//! (`x-amzn-RequestId` is added by the auth layer).

use crate::api::{Api, limits::MAX_REQUEST_BYTES};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use sparkvc_proto::ERROR_TYPE_METADATA;
use sparkvc_proto::rest::{Kind, ROUTES, Route, UNIMPLEMENTED, dispatch};

/// Why a REST request failed: the answer's status, AWS error code and
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl RestError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    /// The REST form of a gRPC status from the service: the AWS name it
    /// carries, at the HTTP status AWS answers that error with.
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = status
            .metadata()
            .get(ERROR_TYPE_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| {
                match status.code() {
                    tonic::Code::InvalidArgument => "ValidationException",
                    tonic::Code::NotFound => "ResourceNotFoundException",
                    tonic::Code::PermissionDenied => "AccessDeniedException",
                    tonic::Code::ResourceExhausted => "ThrottlingException",
                    tonic::Code::Unavailable => "ServiceUnavailableException",
                    _ => "InternalServerException",
                }
                .to_string()
            });
        Self::new(http_status(&code, status.code()), &code, status.message())
    }

    /// The answer, with a body any AWS SDK reads.
    pub fn into_response<B: From<String>>(self) -> http::Response<B> {
        crate::aws_error::response(self.status, &self.code, &self.message)
    }
}

/// The HTTP status of an AWS error code, as emr-containers answers it
/// (ResourceNotFoundException is a 400 there, not a 404).
fn http_status(code: &str, fallback: tonic::Code) -> u16 {
    match code {
        "ValidationException" | "ResourceNotFoundException" | "RequestThrottledException" => 400,
        "AccessDeniedException" => 403,
        "ThrottlingException" | "EKSRequestThrottledException" => 429,
        "InternalServerException" => 500,
        "ServiceUnavailableException" => 503,
        _ => match fallback {
            tonic::Code::InvalidArgument | tonic::Code::NotFound => 400,
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => 403,
            tonic::Code::ResourceExhausted => 429,
            tonic::Code::Unavailable => 503,
            _ => 500,
        },
    }
}

/// What a path matched.
#[derive(Debug, PartialEq, Eq)]
enum Matched {
    Route(&'static Route, Labels),
    Unimplemented(&'static str),
    /// The path exists, but not for this method.
    WrongMethod,
    None,
}

/// Matches `method path` (the path as it arrived, percent-encoded) to a
/// route, and decodes its labels. A label is one whole, non-empty segment.
fn find(method: &str, path: &str) -> Matched {
    let segments: Vec<&str> = path.split('/').collect();
    let fits = |template: &str| -> Option<Vec<String>> {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut labels = Vec::new();
        for (part, segment) in parts.iter().zip(&segments) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(_) if segment.is_empty() => return None,
                Some(_) => {
                    labels.push(percent_decode_str(segment).decode_utf8_lossy().into_owned())
                }
                None if part == segment => {}
                None => return None,
            }
        }
        Some(labels)
    };
    let mut path_exists = false;
    for route in ROUTES {
        if let Some(values) = fits(route.path) {
            if route.method == method {
                let labels = route.labels().zip(values).collect();
                return Matched::Route(route, labels);
            }
            path_exists = true;
        }
    }
    for stub in UNIMPLEMENTED {
        if fits(stub.path).is_some() {
            if stub.method == method {
                return Matched::Unimplemented(stub.operation);
            }
            path_exists = true;
        }
    }
    if path_exists {
        Matched::WrongMethod
    } else {
        Matched::None
    }
}

/// The operation's request shape from its labels, query string and body.
/// Pure: every refusal names the member and the rule.
fn input(
    route: &Route,
    labels: Labels,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, RestError> {
    let mut object = Map::new();
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if route.uses_query() {
        if !blank && body != b"{}" {
            return Err(RestError::validation(format!(
                "1 validation error detected: a {} request has no body; {} takes its members from the query string",
                route.method, route.operation
            )));
        }
    } else if !blank {
        if let Some(content_type) = content_type {
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/json")
                && !essence.eq_ignore_ascii_case("application/x-amz-json-1.1")
            {
                return Err(RestError::new(
                    415,
                    "UnsupportedMediaTypeException",
                    format!(
                        "the body of {} must be application/json, not {essence}",
                        route.operation
                    ),
                ));
            }
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => object = members,
            Ok(_) => {
                return Err(RestError::new(
                    400,
                    "SerializationException",
                    format!("the body of {} must be a JSON object", route.operation),
                ));
            }
            Err(err) => {
                return Err(RestError::new(
                    400,
                    "SerializationException",
                    format!(
                        "the body of {} is not valid JSON (line {}, column {})",
                        route.operation,
                        err.line(),
                        err.column()
                    ),
                ));
            }
        }
    }
    for (name, _) in &labels {
        if object.contains_key(*name) {
            return Err(RestError::validation(format!(
                "1 validation error detected: '{name}' is given in the path of {}, not in its body",
                route.operation
            )));
        }
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if !route.uses_query() {
            return Err(RestError::validation(format!(
                "1 validation error detected: {} takes no query string; its members go in the body",
                route.operation
            )));
        }
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let member = route
                .members
                .iter()
                .find(|m| m.name == key && !labels.iter().any(|(l, _)| *l == m.name))
                .ok_or_else(|| {
                    RestError::validation(format!(
                        "1 validation error detected: '{}' is not a query parameter of {}",
                        bounded(&key),
                        route.operation
                    ))
                })?;
            let value = match member.kind {
                Kind::Integer => value.parse::<i64>().map(Value::from).map_err(|_| {
                    RestError::validation(format!(
                        "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must be an integer",
                        member.name
                    ))
                })?,
                Kind::Boolean => match value.as_ref() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(RestError::validation(format!(
                            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must be true or false",
                            member.name
                        )));
                    }
                },
                Kind::String | Kind::Timestamp | Kind::Structure => Value::String(value.into_owned()),
            };
            if member.list {
                match object
                    .entry(member.name)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(values) => values.push(value),
                    _ => unreachable!("list members are arrays"),
                }
            } else if object.insert(member.name.to_string(), value).is_some() {
                return Err(RestError::validation(format!(
                    "1 validation error detected: the query parameter '{}' is given more than once",
                    member.name
                )));
            }
        }
    }
    for (name, value) in labels {
        object.insert(name.to_string(), Value::String(value));
    }
    Ok(Value::Object(object))
}

/// A name from a request, cut short for an error message.
fn bounded(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// A path's labels, decoded: (member, value) in path order.
pub type Labels = Vec<(&'static str, String)>;

/// The route `method path` names, with its decoded labels, or the AWS
/// error for a path that names none.
pub fn route(method: &str, path: &str) -> Result<(&'static Route, Labels), RestError> {
    match find(method, path) {
        Matched::Route(route, labels) => Ok((route, labels)),
        Matched::Unimplemented(operation) => Err(RestError::validation(format!(
            "{operation} is not supported: sparkvc does not implement managed endpoints (EMR Studio interactive endpoints)"
        ))),
        Matched::WrongMethod => Err(RestError::new(
            405,
            "UnknownOperationException",
            format!("{} does not take {method}", bounded(path)),
        )),
        Matched::None => Err(RestError::new(
            404,
            "UnknownOperationException",
            format!(
                "no emr-containers operation is served at {method} {}",
                bounded(path)
            ),
        )),
    }
}

/// Everything the REST side reads from a request, up to the typed request
/// message: route, labels, query string, body, and their decoding into the
/// operation's request shape. Pure, for tests and the fuzzer; `handle` runs
/// the same steps, reading the body only once the route is known.
pub fn parse(
    method: &str,
    path: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<&'static Route, RestError> {
    let (route, labels) = route(method, path)?;
    let value = input(route, labels, query, content_type, body)?;
    sparkvc_proto::rest::decode_only(route.operation, value)
        .map_err(|status| RestError::from_status(&status))?;
    Ok(route)
}

/// Answers one REST request.
pub async fn handle(api: Api, request: Request) -> Response {
    if crate::aws_error::is_grpc(request.headers()) {
        return tonic::Status::unimplemented(format!("no gRPC method {}", request.uri().path()))
            .into_http();
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let (route, labels) = match route(method, path) {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return crate::aws_error::too_large(MAX_REQUEST_BYTES),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let input = match input(route, labels, parts.uri.query(), content_type, &body) {
        Ok(input) => input,
        Err(err) => return err.into_response(),
    };
    match dispatch(&api, route.operation, input, parts.extensions).await {
        Ok(mut output) => {
            if let Value::Object(members) = &mut output {
                for name in route.lists {
                    members
                        .entry(*name)
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
                for name in route.maps {
                    members
                        .entry(*name)
                        .or_insert_with(|| Value::Object(Map::new()));
                }
            }
            let mut response = Response::new(Body::from(output.to_string()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(status) => RestError::from_status(&status).into_response(),
    }
}

#[cfg(test)]
mod tests;
