//! Printing responses the way the aws CLI does with `--output json`: the
//! AWS response shape, pretty-printed with a 2-space indent; nothing at all
//! for an empty response.

use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;

/// Renders a response; `None` when the response is empty.
pub fn render(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) if map.is_empty() => None,
        Value::Null => None,
        other => serde_json::to_string_pretty(other).ok(),
    }
}

/// The JSON value of a response message.
pub fn to_value<T: Serialize>(response: &T) -> Value {
    serde_json::to_value(response).unwrap_or(Value::Null)
}

/// A list command's output: `{"<key>": [...]}`, the key always present, plus
/// `NextToken` when `--max-items` stopped the listing early.
pub fn list<T: Serialize>(key: &str, items: &[T], next_token: Option<String>) -> Value {
    let mut map = Map::new();
    map.insert(
        key.to_string(),
        Value::Array(items.iter().map(to_value).collect()),
    );
    if let Some(token) = next_token {
        map.insert("NextToken".to_string(), Value::String(token));
    }
    Value::Object(map)
}

/// A response whose `key` member is printed even when empty, as AWS returns
/// it (`{"tags": {}}`, `{"jobRuns": []}` from `--no-paginate`).
pub fn with_member<T: Serialize>(response: &T, key: &str, empty: Value) -> Value {
    let mut value = to_value(response);
    if let Value::Object(map) = &mut value {
        map.entry(key.to_string()).or_insert(empty);
    }
    value
}

/// Prints a response on stdout. A closed stdout (`| head`) is not an error.
pub fn print(value: &Value) {
    if let Some(text) = render(value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sparkvc_proto::v1::{
        DeleteVirtualClusterResponse, ListTagsForResourceResponse, TagResourceResponse,
        VirtualCluster,
    };

    #[test]
    fn empty_responses_print_nothing() {
        assert_eq!(render(&to_value(&TagResourceResponse {})), None);
    }

    #[test]
    fn responses_are_indented_by_two_spaces() {
        let value = to_value(&DeleteVirtualClusterResponse { id: "abc".into() });
        assert_eq!(render(&value).unwrap(), "{\n  \"id\": \"abc\"\n}");
    }

    #[test]
    fn lists_always_have_their_key_and_a_next_token_when_cut_short() {
        let empty: Vec<VirtualCluster> = vec![];
        assert_eq!(
            list("virtualClusters", &empty, None),
            json!({"virtualClusters": []})
        );
        let one = vec![VirtualCluster {
            id: "a".into(),
            ..Default::default()
        }];
        assert_eq!(
            list("virtualClusters", &one, Some("tok".into())),
            json!({"virtualClusters": [{"id": "a"}], "NextToken": "tok"})
        );
    }

    #[test]
    fn tags_are_printed_even_when_there_are_none() {
        let value = with_member(&ListTagsForResourceResponse::default(), "tags", json!({}));
        assert_eq!(render(&value).unwrap(), "{\n  \"tags\": {}\n}");
    }
}
