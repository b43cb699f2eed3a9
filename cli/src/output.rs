//! Printing responses the way the aws CLI does: the AWS response shape,
//! filtered by `--query` (JMESPath) and printed as `--output` says: `json`
//! (2-space indent, members in the order of the proto messages), `yaml`,
//! `text` (the aws CLI's tab-separated rows) or `table`. An empty response
//! prints nothing. The renderers are pure functions of a JSON value.

use crate::error::CliError;
use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;
use std::io::Write;
use std::sync::OnceLock;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Json,
    Text,
    Table,
    Yaml,
}

struct Settings {
    format: Format,
    query: Option<jmespath::Expression<'static>>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets how this process prints responses; a `--query` that does not
/// compile is a usage error naming it.
pub fn configure(format: Format, query: Option<&str>) -> Result<(), CliError> {
    let query = query
        .map(|q| {
            jmespath::compile(q)
                .map_err(|e| CliError::Usage(format!("Bad value for --query {q}: {}", e.reason)))
        })
        .transpose()?;
    let _ = SETTINGS.set(Settings { format, query });
    Ok(())
}

/// Renders a response as JSON; `None` when it has no members.
pub fn render<T: Serialize + ?Sized>(response: &T) -> Option<String> {
    let text = serde_json::to_string_pretty(response).ok()?;
    (text != "{}" && text != "null").then_some(text)
}

/// Renders a response in `format` after `query`; `None` prints nothing.
pub fn render_as(
    value: Value,
    format: Format,
    query: Option<&jmespath::Expression<'_>>,
) -> Option<String> {
    let value = match query {
        // A query's answer is printed even when empty, as the aws CLI does.
        Some(query) => match query.search(value) {
            Ok(found) => serde_json::to_value(&*found).unwrap_or(Value::Null),
            Err(err) => {
                eprintln!("--query: {}", err.reason);
                return None;
            }
        },
        None if value == Value::Object(Default::default()) || value.is_null() => return None,
        None => value,
    };
    Some(match format {
        Format::Json => serde_json::to_string_pretty(&value).ok()?,
        Format::Yaml => yaml(&value),
        Format::Text => text(&value),
        Format::Table => table(&value),
    })
    .map(|text| text.trim_end_matches('\n').to_string())
}

/// Prints a response on stdout. A closed stdout (`| head`) is not an error.
pub fn print<T: Serialize + ?Sized>(response: &T) {
    let settings = SETTINGS.get();
    let text = match settings {
        None
        | Some(Settings {
            format: Format::Json,
            query: None,
        }) => render(response),
        Some(settings) => serde_json::to_value(response)
            .ok()
            .and_then(|value| render_as(value, settings.format, settings.query.as_ref())),
    };
    if let Some(text) = text {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}

/// Prints a `--generate-cli-skeleton` shape as the aws CLI does: JSON with a
/// 4-space indent, members in the API's order, whatever `--output` says.
pub fn print_skeleton(skeleton: &crate::skeleton::Node) {
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    if serde::Serialize::serialize(skeleton, &mut serializer).is_ok() {
        let mut out = std::io::stdout().lock();
        let _ = out
            .write_all(&text)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
    }
}

/// A scalar as the aws CLI's text and table output show it (Python's
/// `str()`: `True`, `None`).
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// `--output text`: the aws CLI's rows. An object's scalars go on one line,
/// tab-separated in key order, after the upper-cased name of the member
/// that holds the object; its lists and objects follow, each under its own
/// name. The objects of a list share one column set (every scalar key any
/// of them has), so their rows line up.
pub fn text(value: &Value) -> String {
    let mut out = String::new();
    text_of(value, None, None, &mut out);
    out
}

fn text_of(value: &Value, name: Option<&str>, columns: Option<&[String]>, out: &mut String) {
    match value {
        Value::Object(members) => {
            let mut row: Vec<String> = Vec::new();
            let mut nested: Vec<(&str, &Value)> = Vec::new();
            match columns {
                None => {
                    let mut keys: Vec<&String> = members.keys().collect();
                    keys.sort();
                    for key in keys {
                        let v = &members[key];
                        if is_scalar(v) {
                            row.push(scalar(v));
                        } else {
                            nested.push((key, v));
                        }
                    }
                }
                Some(columns) => {
                    for key in columns {
                        row.push(members.get(key).map(scalar).unwrap_or_default());
                    }
                    let mut rest: Vec<&String> =
                        members.keys().filter(|k| !columns.contains(k)).collect();
                    rest.sort();
                    nested.extend(rest.into_iter().map(|k| (k.as_str(), &members[k])));
                }
            }
            if !row.is_empty() {
                if let Some(name) = name {
                    row.insert(0, name.to_uppercase());
                }
                out.push_str(&row.join("\t"));
                out.push('\n');
            }
            for (key, v) in nested {
                text_of(v, Some(key), None, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let columns = scalar_columns(items);
            for item in items {
                text_of(item, name, Some(&columns), out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_array) => {
            for item in items {
                text_of(item, name, None, out);
            }
        }
        Value::Array(items) => {
            let mut row: Vec<String> = name.map(str::to_uppercase).into_iter().collect();
            row.extend(items.iter().map(scalar));
            out.push_str(&row.join("\t"));
            out.push('\n');
        }
        scalar_value => {
            out.push_str(&scalar(scalar_value));
            out.push('\n');
        }
    }
}

/// The keys with scalar values in any object of `items`, sorted.
fn scalar_columns(items: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = items
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|o| {
            o.iter()
                .filter(|(_, v)| is_scalar(v))
                .map(|(k, _)| k.clone())
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `--output yaml`: block style; strings plain where YAML reads them back
/// as the same string, double-quoted (JSON escapes) where it would not.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if m.is_empty() => out.push_str("{}\n"),
        Value::Array(a) if a.is_empty() => out.push_str("[]\n"),
        Value::Object(_) | Value::Array(_) => yaml_block(value, 0, &mut out),
        scalar_value => {
            out.push_str(&yaml_scalar(scalar_value));
            out.push('\n');
        }
    }
    out
}

fn yaml_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(members) => {
            for (key, v) in members {
                out.push_str(&format!("{pad}{}:", yaml_string(key)));
                yaml_child(v, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    // An object's first member goes on the dash's line.
                    Value::Object(m) if !m.is_empty() => {
                        let mut nested = String::new();
                        yaml_block(item, indent + 2, &mut nested);
                        out.push(' ');
                        out.push_str(&nested[indent + 2..]);
                    }
                    _ => yaml_child(item, indent, out),
                }
            }
        }
        _ => unreachable!("yaml_block takes collections"),
    }
}

/// What follows `key:` or `-`: a scalar or empty collection on the same
/// line, else a block on the next lines.
fn yaml_child(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if m.is_empty() => out.push_str(" {}\n"),
        Value::Array(a) if a.is_empty() => out.push_str(" []\n"),
        Value::Object(_) => {
            out.push('\n');
            yaml_block(value, indent + 2, out);
        }
        // Lists under a key sit at the key's indent, as PyYAML writes them.
        Value::Array(_) => {
            out.push('\n');
            yaml_block(value, indent, out);
        }
        scalar_value => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar_value));
            out.push('\n');
        }
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => yaml_string(s),
        other => other.to_string(),
    }
}

/// A string as YAML reads it back unchanged.
fn yaml_string(s: &str) -> String {
    const WORDS: &[&str] = &[
        "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n",
    ];
    let plain = !WORDS.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
        // A leading digit could read as a number, date or time (YAML 1.1).
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "/._".contains(c))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " /._-:=@+,()${}".contains(c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #");
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// `--output table`: boxes like the aws CLI's. An object's scalars are
/// `key | value` rows; a list of objects is one row per object under a
/// header of their scalar keys; nested members are sections titled by
/// their name.
pub fn table(value: &Value) -> String {
    let mut lines = Vec::new();
    table_section("", value, &mut lines);
    let width = lines.iter().map(|l: &Line| l.width()).max().unwrap_or(0);
    let mut out = String::new();
    let rule = format!("+{}+\n", "-".repeat(width.saturating_sub(2)));
    out.push_str(&rule);
    for line in &lines {
        out.push_str(&line.render(width));
        out.push('\n');
        if matches!(line, Line::Title(_) | Line::Header(_)) {
            out.push_str(&rule);
        }
    }
    out.push_str(&rule);
    out
}

enum Line {
    Title(String),
    Header(Vec<(String, usize)>),
    Row(Vec<(String, usize)>),
}

impl Line {
    fn width(&self) -> usize {
        match self {
            Line::Title(t) => t.chars().count() + 4,
            Line::Header(cells) | Line::Row(cells) => {
                cells.iter().map(|(_, w)| w + 3).sum::<usize>() + 1
            }
        }
    }

    fn render(&self, width: usize) -> String {
        match self {
            Line::Title(t) => {
                let inner = width.saturating_sub(2);
                format!("|{:^inner$}|", t)
            }
            Line::Header(cells) | Line::Row(cells) => {
                let mut line = String::from("|");
                let used = self.width();
                let extra = width.saturating_sub(used);
                let n = cells.len().max(1);
                for (i, (text, w)) in cells.iter().enumerate() {
                    let w = w + extra / n + usize::from(i < extra % n);
                    if matches!(self, Line::Header(_)) {
                        line.push_str(&format!(" {text:^w$} |"));
                    } else {
                        line.push_str(&format!(" {text:<w$} |"));
                    }
                }
                line
            }
        }
    }
}

fn table_section(title: &str, value: &Value, lines: &mut Vec<Line>) {
    match value {
        Value::Object(members) => {
            if !title.is_empty() {
                lines.push(Line::Title(title.to_string()));
            }
            let scalars: Vec<(&String, &Value)> =
                members.iter().filter(|(_, v)| is_scalar(v)).collect();
            let key_width = scalars
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            let value_width = scalars
                .iter()
                .map(|(_, v)| scalar(v).chars().count())
                .max()
                .unwrap_or(0);
            for (key, v) in scalars {
                lines.push(Line::Row(vec![
                    ((*key).clone(), key_width),
                    (scalar(v), value_width),
                ]));
            }
            for (key, v) in members.iter().filter(|(_, v)| !is_scalar(v)) {
                table_section(key, v, lines);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            if !title.is_empty() {
                lines.push(Line::Title(title.to_string()));
            }
            let columns = scalar_columns(items);
            let cell = |item: &Value, key: &str| item.get(key).map(scalar).unwrap_or_default();
            let widths: Vec<usize> = columns
                .iter()
                .map(|c| {
                    items
                        .iter()
                        .map(|i| cell(i, c).chars().count())
                        .chain([c.chars().count()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            if !columns.is_empty() {
                lines.push(Line::Header(
                    columns
                        .iter()
                        .cloned()
                        .zip(widths.iter().copied())
                        .collect(),
                ));
                for item in items {
                    lines.push(Line::Row(
                        columns
                            .iter()
                            .map(|c| cell(item, c))
                            .zip(widths.iter().copied())
                            .collect(),
                    ));
                }
            }
            for item in items {
                if let Value::Object(members) = item {
                    for (key, v) in members.iter().filter(|(_, v)| !is_scalar(v)) {
                        table_section(key, v, lines);
                    }
                }
            }
        }
        Value::Array(items) => {
            if !title.is_empty() {
                lines.push(Line::Title(title.to_string()));
            }
            let width = items
                .iter()
                .map(|i| scalar(i).chars().count())
                .max()
                .unwrap_or(0);
            for item in items {
                match item {
                    Value::Array(_) => table_section("", item, lines),
                    _ => lines.push(Line::Row(vec![(scalar(item), width)])),
                }
            }
        }
        scalar_value => {
            if !title.is_empty() {
                lines.push(Line::Title(title.to_string()));
            }
            let text = scalar(scalar_value);
            let width = text.chars().count();
            lines.push(Line::Row(vec![(text, width)]));
        }
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
    use serde_json::json;

    fn run() -> Value {
        json!({"jobRuns": [
            {"id": "r1", "name": "pi", "state": "COMPLETED", "tags": {"team": "a"}},
            {"id": "r2", "name": "etl", "state": "RUNNING", "releaseLabel": "emr-7.9.0-latest"}
        ], "nextToken": "t"})
    }

    #[test]
    fn text_is_the_aws_clis_rows() {
        assert_eq!(
            text(&run()),
            "t\nJOBRUNS\tr1\tpi\t\tCOMPLETED\nTAGS\ta\nJOBRUNS\tr2\tetl\temr-7.9.0-latest\tRUNNING\n"
        );
        assert_eq!(text(&json!(["a", "b"])), "a\tb\n");
        assert_eq!(
            text(&json!({"states": ["A", "B"], "ok": true})),
            "True\nSTATES\tA\tB\n"
        );
    }

    #[test]
    fn queries_pick_members_and_print_in_any_format() {
        let query = jmespath::compile("jobRuns[].id").unwrap();
        assert_eq!(
            render_as(run(), Format::Json, Some(&query)).unwrap(),
            "[\n  \"r1\",\n  \"r2\"\n]"
        );
        assert_eq!(
            render_as(run(), Format::Text, Some(&query)).unwrap(),
            "r1\tr2"
        );
        let state = jmespath::compile("jobRuns[?state=='RUNNING'].name | [0]").unwrap();
        assert_eq!(render_as(run(), Format::Text, Some(&state)).unwrap(), "etl");
        assert_eq!(render_as(json!({}), Format::Yaml, None), None);
        assert!(
            configure(Format::Json, Some("jobRuns["))
                .unwrap_err()
                .to_string()
                .contains("--query")
        );
    }

    #[test]
    fn yaml_reads_back_as_the_same_document() {
        let doc = json!({"jobRun": {"id": "r1", "state": "RUNNING", "weird": "yes", "n": "12",
            "empty": "", "colon": "a: b", "args": ["10", "x y"], "tags": {}, "list": [],
            "history": [{"state": "PENDING", "at": "2026-01-01T00:00:00.000000+00:00"}, {"state": "RUNNING"}],
            "attempts": 2, "ok": true, "none": null}});
        let text = yaml(&doc);
        for line in [
            "jobRun:",
            "  id: r1",
            "  weird: \"yes\"",
            "  \"n\": \"12\"",
            "  colon: \"a: b\"",
            "  - \"10\"",
            "  - x y",
            "  - at: \"2026-01-01T00:00:00.000000+00:00\"",
            "    state: PENDING",
            "  tags: {}",
            "  none: null",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, doc, "{text}");
    }

    #[test]
    fn tables_box_objects_and_lists() {
        let t = table(&json!({"virtualCluster": {"id": "v1", "state": "RUNNING"}}));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].contains("virtualCluster"), "{t}");
        assert!(t.contains("| id    | v1      |"), "{t}");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count()),
            "{t}"
        );
        let t = table(&run());
        assert!(
            t.contains("jobRuns") && t.contains(" id ") && t.contains("| r2 "),
            "{t}"
        );
        assert!(t.lines().all(|l| l.starts_with(['|', '+'])), "{t}");
    }
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
