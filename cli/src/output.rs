//! Printing responses the way the aws CLI does with `--output json`: the
//! AWS response shape, pretty-printed with a 2-space indent; nothing at all
//! for an empty response. Members keep the order of the proto messages.

use serde::{Serialize, Serializer, ser::SerializeMap};
use std::io::Write;

/// Renders a response; `None` when it has no members.
pub fn render<T: Serialize + ?Sized>(response: &T) -> Option<String> {
    let text = serde_json::to_string_pretty(response).ok()?;
    (text != "{}" && text != "null").then_some(text)
}

/// Prints a response on stdout. A closed stdout (`| head`) is not an error.
pub fn print<T: Serialize + ?Sized>(response: &T) {
    if let Some(text) = render(response) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}

/// An object whose main member is printed even when empty, as AWS returns it
/// (`{"virtualClusters": []}`, `{"tags": {}}`), with an optional token after
/// it: `NextToken` for a listing cut by `--max-items`, `nextToken` for a
/// `--no-paginate` page.
#[derive(Debug)]
pub struct Keyed<'a, V: ?Sized> {
    pub key: &'static str,
    pub value: &'a V,
    pub token_key: &'static str,
    pub token: Option<&'a str>,
}

impl<V: Serialize + ?Sized> Serialize for Keyed<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let token = self.token.filter(|t| !t.is_empty());
        let mut map = serializer.serialize_map(Some(1 + usize::from(token.is_some())))?;
        map.serialize_entry(self.key, self.value)?;
        if let Some(token) = token {
            map.serialize_entry(self.token_key, token)?;
        }
        map.end()
    }
}

impl<'a, V: ?Sized> Keyed<'a, V> {
    /// Just `{"<key>": value}`.
    pub fn new(key: &'static str, value: &'a V) -> Self {
        Self {
            key,
            value,
            token_key: "NextToken",
            token: None,
        }
    }

    /// With a token member after the main one (left out when empty).
    pub fn with_token(mut self, token_key: &'static str, token: Option<&'a str>) -> Self {
        self.token_key = token_key;
        self.token = token;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkvc_proto::v1::{
        DeleteVirtualClusterResponse, ListTagsForResourceResponse, TagResourceResponse,
        VirtualCluster,
    };

    #[test]
    fn empty_responses_print_nothing() {
        assert_eq!(render(&TagResourceResponse {}), None);
    }

    #[test]
    fn responses_are_indented_by_two_spaces_in_proto_order() {
        let response = DeleteVirtualClusterResponse { id: "abc".into() };
        assert_eq!(render(&response).unwrap(), "{\n  \"id\": \"abc\"\n}");
        let cluster = VirtualCluster {
            id: "i".into(),
            name: "n".into(),
            arn: "a".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&cluster).unwrap(),
            r#"{"id":"i","name":"n","arn":"a"}"#
        );
    }

    #[test]
    fn lists_always_have_their_key_and_a_token_when_cut_short() {
        let empty: Vec<VirtualCluster> = vec![];
        assert_eq!(
            render(&Keyed::new("virtualClusters", &empty)).unwrap(),
            "{\n  \"virtualClusters\": []\n}"
        );
        let one = vec![VirtualCluster {
            id: "a".into(),
            ..Default::default()
        }];
        let keyed = Keyed::new("virtualClusters", &one).with_token("NextToken", Some("tok"));
        assert_eq!(
            serde_json::to_string(&keyed).unwrap(),
            r#"{"virtualClusters":[{"id":"a"}],"NextToken":"tok"}"#
        );
        let keyed = Keyed::new("virtualClusters", &one).with_token("nextToken", Some(""));
        assert_eq!(
            serde_json::to_string(&keyed).unwrap(),
            r#"{"virtualClusters":[{"id":"a"}]}"#
        );
    }

    #[test]
    fn tags_are_printed_even_when_there_are_none() {
        let response = ListTagsForResourceResponse::default();
        assert_eq!(
            render(&Keyed::new("tags", &response.tags)).unwrap(),
            "{\n  \"tags\": {}\n}"
        );
    }
}
