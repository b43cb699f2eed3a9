//! A small version of the aws CLI's shorthand syntax, for flag values that
//! do not start with `{`, `[` or `"`:
//!
//! ```text
//! k1=v1,k2=v2                               a map or structure
//! id=c1,type=EKS,info={eksInfo={namespace=ns}}   nested structures in braces
//! entryPointArguments=[a,b]  or  entryPointArguments=a,b   a list
//! key="a, quoted value"  or  key='literal'  quoting for , { } [ =
//! ```
//!
//! Keys are the AWS member names. Every value is text until the target type
//! asks for something else: [`Shorthand`] is a serde `Deserializer` that
//! turns `"3"` into a number or `"true"` into a boolean when the member is
//! one, so `maxAttempts=3` fills an `int32`.

use serde::de::{
    self, Deserializer, IntoDeserializer, Unexpected, Visitor,
    value::{Error as DeError, MapDeserializer, SeqDeserializer},
};

/// A parsed shorthand value.
#[derive(Debug, Clone, PartialEq)]
pub enum Shorthand {
    /// A bare or quoted word.
    Scalar(String),
    /// `[a,b]`, or `a,b` after a key.
    List(Vec<Shorthand>),
    /// `k=v,...` at the top level or in braces, in the order written.
    Map(Vec<(String, Shorthand)>),
}

/// Parses a top-level `key=value,...` shorthand string.
pub fn parse(text: &str) -> Result<Shorthand, String> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    parser.map_body(None)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// Characters that cannot appear in an unquoted key.
const KEY_STOP: &[char] = &['=', ',', '{', '}', '[', ']', '"', '\''];

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(c) => format!("'{c}' at position {}", self.pos + 1),
        }
    }

    /// `key=value` pairs separated by commas, up to `close` (or the end).
    fn map_body(&mut self, close: Option<char>) -> Result<Shorthand, String> {
        let mut entries = Vec::new();
        loop {
            self.skip_whitespace();
            match (self.peek(), close) {
                (None, None) => break,
                (None, Some(c)) => return Err(format!("expected '{c}', found end of input")),
                (Some(c), Some(want)) if c == want => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            let key = self.key()?;
            let value = self.value(close)?;
            entries.push((key, value));
            self.skip_whitespace();
            match (self.peek(), close) {
                (Some(','), _) => self.pos += 1,
                (None, _) => {}
                (Some(c), Some(want)) if c == want => {}
                _ => {
                    return Err(format!(
                        "expected ',' after a value, found {}",
                        self.found()
                    ));
                }
            }
        }
        Ok(Shorthand::Map(entries))
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !KEY_STOP.contains(&c)) {
            self.pos += 1;
        }
        let key: String = self.chars[start..self.pos].iter().collect();
        let key = key.trim().to_string();
        if key.is_empty() || self.peek() != Some('=') {
            return Err(format!(
                "expected key=value, found {}",
                self.found_from(start)
            ));
        }
        self.pos += 1;
        Ok(key)
    }

    fn found_from(&self, start: usize) -> String {
        let rest: String = self.chars[start..].iter().take(20).collect();
        if rest.is_empty() {
            "end of input".to_string()
        } else {
            format!("{rest:?}")
        }
    }

    /// A value after `key=`; `a,b` (followed by no `key=`) becomes a list.
    fn value(&mut self, close: Option<char>) -> Result<Shorthand, String> {
        let first = self.single_value(close)?;
        let mut items = vec![first];
        while self.peek() == Some(',') && self.scalar_follows(close) {
            self.pos += 1;
            items.push(self.single_value(close)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Shorthand::List(items)
        })
    }

    /// After a comma: is the next item another value rather than a `key=`?
    fn scalar_follows(&self, close: Option<char>) -> bool {
        let mut pos = self.pos + 1;
        while self.chars.get(pos).is_some_and(|c| c.is_whitespace()) {
            pos += 1;
        }
        match self.chars.get(pos) {
            None => false,
            Some(c) if Some(*c) == close => false,
            _ => {
                let start = pos;
                while self.chars.get(pos).is_some_and(|c| !KEY_STOP.contains(c)) {
                    pos += 1;
                }
                !(pos > start && self.chars.get(pos) == Some(&'='))
            }
        }
    }

    fn single_value(&mut self, close: Option<char>) -> Result<Shorthand, String> {
        self.skip_whitespace();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.map_body(Some('}'))
            }
            Some('[') => {
                self.pos += 1;
                self.list_body()
            }
            Some(quote @ ('"' | '\'')) => {
                self.pos += 1;
                self.quoted(quote).map(Shorthand::Scalar)
            }
            _ => Ok(Shorthand::Scalar(self.bare(close))),
        }
    }

    fn list_body(&mut self) -> Result<Shorthand, String> {
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Err("expected ']', found end of input".to_string()),
                Some(']') => {
                    self.pos += 1;
                    return Ok(Shorthand::List(items));
                }
                _ => {}
            }
            items.push(self.single_value(Some(']'))?);
            self.skip_whitespace();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {}
                None => return Err("expected ']', found end of input".to_string()),
                _ => return Err(format!("expected ',' or ']', found {}", self.found())),
            }
        }
    }

    /// A quoted value; in double quotes a backslash escapes the next character.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(format!("missing closing {quote}")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') if quote == '"' && self.pos + 1 < self.chars.len() => {
                    out.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// An unquoted value: everything up to a comma or the closing bracket.
    fn bare(&mut self, close: Option<char>) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ',' && Some(c) != close) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.trim().to_string()
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Shorthand {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// Numbers and booleans are parsed from the text when the target asks for them.
macro_rules! deserialize_parsed {
    ($($method:ident => $visit:ident($ty:ty)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self {
                Shorthand::Scalar(text) => match text.trim().parse::<$ty>() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&text), &visitor)),
                },
                other => other.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Shorthand {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Shorthand::Scalar(text) => visitor.visit_string(text),
            Shorthand::List(items) => {
                SeqDeserializer::new(items.into_iter()).deserialize_any(visitor)
            }
            Shorthand::Map(entries) => {
                MapDeserializer::new(entries.into_iter()).deserialize_any(visitor)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Shorthand::Scalar(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                _ => Err(de::Error::invalid_value(Unexpected::Str(&text), &visitor)),
            },
            other => other.deserialize_any(visitor),
        }
    }

    deserialize_parsed! {
        deserialize_i8 => visit_i8(i8),
        deserialize_i16 => visit_i16(i16),
        deserialize_i32 => visit_i32(i32),
        deserialize_i64 => visit_i64(i64),
        deserialize_u8 => visit_u8(u8),
        deserialize_u16 => visit_u16(u16),
        deserialize_u32 => visit_u32(u32),
        deserialize_u64 => visit_u64(u64),
        deserialize_f32 => visit_f32(f32),
        deserialize_f64 => visit_f64(f64),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    /// A single value where a list is expected is a list of one.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            scalar @ Shorthand::Scalar(_) => {
                SeqDeserializer::new(std::iter::once(scalar)).deserialize_any(visitor)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use sparkvc_proto::v1::{
        ContainerProvider, RetryPolicyConfiguration, SchedulerConfiguration, SparkSubmitJobDriver,
    };
    use std::collections::BTreeMap;

    fn scalar(s: &str) -> Shorthand {
        Shorthand::Scalar(s.to_string())
    }

    #[test]
    fn parses_flat_and_nested_maps() {
        assert_eq!(
            parse("a=1, b = x y ,c={d=[e,f]}").unwrap(),
            Shorthand::Map(vec![
                ("a".into(), scalar("1")),
                ("b".into(), scalar("x y")),
                (
                    "c".into(),
                    Shorthand::Map(vec![(
                        "d".into(),
                        Shorthand::List(vec![scalar("e"), scalar("f")])
                    )])
                ),
            ])
        );
    }

    #[test]
    fn values_may_contain_equals_and_quoted_commas() {
        let parsed = parse(r#"k=--conf a=b --conf c=d,q="x, {y}",s='a\b'"#).unwrap();
        assert_eq!(
            parsed,
            Shorthand::Map(vec![
                ("k".into(), scalar("--conf a=b --conf c=d")),
                ("q".into(), scalar("x, {y}")),
                ("s".into(), scalar(r"a\b")),
            ])
        );
    }

    #[test]
    fn commas_without_a_following_key_make_a_list() {
        assert_eq!(
            parse("args=a,b,c,k=v").unwrap(),
            Shorthand::Map(vec![
                (
                    "args".into(),
                    Shorthand::List(vec![scalar("a"), scalar("b"), scalar("c")])
                ),
                ("k".into(), scalar("v")),
            ])
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(
            parse("justaword").unwrap_err(),
            "expected key=value, found \"justaword\""
        );
        assert!(parse("a={b=c").unwrap_err().contains("expected '}'"));
        assert!(parse("a=[b").unwrap_err().contains("expected ']'"));
        assert!(parse("a=\"b").unwrap_err().contains("missing closing"));
        assert!(parse("a={b=c}x").unwrap_err().contains("expected ','"));
    }

    #[test]
    fn fills_proto_structures_with_typed_members() {
        let provider = ContainerProvider::deserialize(
            parse("id=c1,type=EKS,info={eksInfo={namespace=ns}}").unwrap(),
        )
        .unwrap();
        assert_eq!(provider.id, "c1");
        assert_eq!(provider.r#type, "EKS");
        assert_eq!(provider.info.unwrap().eks_info.unwrap().namespace, "ns");

        let retry = RetryPolicyConfiguration::deserialize(parse("maxAttempts=3").unwrap()).unwrap();
        assert_eq!(retry.max_attempts, 3);
        let scheduler = SchedulerConfiguration::deserialize(
            parse("maxConcurrentJobRuns=5,maxInQueueJobRuns=10").unwrap(),
        )
        .unwrap();
        assert_eq!(scheduler.max_concurrent_job_runs, Some(5));
        assert_eq!(scheduler.max_in_queue_job_runs, Some(10));

        let driver = SparkSubmitJobDriver::deserialize(
            parse("entryPoint=local:///app.py,entryPointArguments=100").unwrap(),
        )
        .unwrap();
        assert_eq!(driver.entry_point_arguments, vec!["100".to_string()]);

        let tags = BTreeMap::<String, String>::deserialize(parse("a=1,b=").unwrap()).unwrap();
        assert_eq!(tags["a"], "1");
        assert_eq!(tags["b"], "");
    }

    #[test]
    fn type_errors_and_unknown_members_are_reported() {
        let err = RetryPolicyConfiguration::deserialize(parse("maxAttempts=many").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid value: string \"many\""), "{err}");
        let err = ContainerProvider::deserialize(parse("idd=c1").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `idd`"), "{err}");
    }
}
