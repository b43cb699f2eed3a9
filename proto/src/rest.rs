//! The REST-JSON (restJson1) shape of the API: the route of every
//! operation, generated from the rpcs' `(http)` options, and a dispatcher
//! that calls the gRPC service's method with the request a JSON input
//! decodes to. The HTTP side (matching paths, reading query strings and
//! bodies, error headers) is the server's.

use crate::codec::validation_status;
use serde::{Serialize, de::DeserializeOwned};

/// How a member's value is written in a query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    Timestamp,
    /// A structure, list of structures or map: body only.
    Structure,
}

/// One member of an operation's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The JSON (AWS) member name.
    pub name: &'static str,
    pub kind: Kind,
    pub list: bool,
}

/// An operation's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub operation: &'static str,
    pub method: &'static str,
    /// With `{member}` labels, one path segment each.
    pub path: &'static str,
    pub members: &'static [Member],
    /// Top-level lists of the response, sent even when empty.
    pub lists: &'static [&'static str],
    /// Top-level maps of the response, sent even when empty.
    pub maps: &'static [&'static str],
}

impl Route {
    /// Whether the members other than labels travel in the query string.
    pub fn uses_query(&self) -> bool {
        matches!(self.method, "GET" | "DELETE")
    }

    /// The members bound to path labels, in path order.
    pub fn labels(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

/// An AWS operation sparkvc does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unimplemented {
    pub operation: &'static str,
    pub method: &'static str,
    pub path: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/rest_routes.rs"));

/// The request of `operation` from its JSON shape; a mismatch is a
/// ValidationException naming the member and the rule, never its value
/// (values may be secrets).
fn decode<T: DeserializeOwned>(
    operation: &str,
    input: serde_json::Value,
) -> Result<T, tonic::Status> {
    serde_path_to_error::deserialize(input).map_err(|err| {
        let path = err.path().to_string();
        let rule = rule(&err.inner().to_string());
        let at = if path == "." {
            String::new()
        } else {
            format!(" at '{}'", bounded(&path, 200))
        };
        validation_status(format!(
            "1 validation error detected: the {operation} request is not valid{at}: {}",
            bounded(&rule, 400)
        ))
    })
}

/// `text` cut to `max` characters: paths and rules name the caller's keys,
/// which may be of any length.
fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// serde's complaint without the value it quotes.
fn rule(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {expected}");
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {expected}");
    }
    message.to_string()
}

/// The response's JSON shape, with timestamps as the REST protocol writes
/// them.
fn encode<T: Serialize>(response: &T) -> Result<serde_json::Value, tonic::Status> {
    crate::json::timestamp::in_wire_format(|| serde_json::to_value(response))
        .map_err(|e| tonic::Status::internal(format!("encoding the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_every_label_is_a_member() {
        let mut seen = std::collections::BTreeSet::new();
        for route in ROUTES.iter() {
            let shape: Vec<&str> = route
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect();
            assert!(
                seen.insert((route.method, shape)),
                "{} collides",
                route.operation
            );
            for label in route.labels() {
                assert!(
                    route
                        .members
                        .iter()
                        .any(|m| m.name == label && m.kind == Kind::String),
                    "{}: label {label} is not a string member",
                    route.operation
                );
            }
        }
        assert_eq!(ROUTES.len(), 22);
        assert_eq!(UNIMPLEMENTED.len(), 5);
    }

    #[test]
    fn decoding_errors_name_the_member_but_not_the_value() {
        let err = decode::<crate::v1::StartJobRunRequest>(
            "StartJobRun",
            serde_json::json!({"name": "secret-value-1", "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": 7}}}),
        )
        .unwrap_err();
        assert!(
            err.message()
                .contains("jobDriver.sparkSubmitJobDriver.entryPoint"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("secret-value-1"));
        let err = decode::<crate::v1::StartJobRunRequest>(
            "StartJobRun",
            serde_json::json!({"tags": {"k": "hunter2"}, "nmae": "x"}),
        )
        .unwrap_err();
        assert!(err.message().contains("nmae"), "{}", err.message());
        assert!(!err.message().contains("hunter2"));
    }
}
