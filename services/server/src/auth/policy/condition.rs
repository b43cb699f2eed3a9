//! The `Condition` block: operators, `…IfExists`, `Null` and the set
//! qualifiers `ForAnyValue:` / `ForAllValues:`.
//!
//! For one key: with the key absent, a plain operator is false, a negated
//! one (`StringNotEquals`, `ArnNotLike`, …) true, `…IfExists` true,
//! `ForAllValues:` true and `ForAnyValue:` false (an empty list counts as
//! absent). Present, a plain operator holds if some request value matches
//! some policy value, a negated one if none does; `ForAllValues:` needs
//! every request value to satisfy the operator, `ForAnyValue:` one.

use super::Context;
use super::pattern::Pattern;
use serde_json::Value;
use std::cmp::Ordering;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Arn,
    Numeric(Compare),
    Date(Compare),
    Bool,
    IpAddress,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    None,
    AnyValue,
    AllValues,
}

/// One operator applied to one key.
#[derive(Debug, Clone)]
pub struct Condition {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    set: Set,
    /// Lower-cased once here: context keys are case-insensitive.
    key: String,
    values: Vec<String>,
}

/// `(field, rule)` of a bad condition.
type ParseError = (String, String);

fn operator(name: &str) -> Option<(Kind, bool)> {
    use Compare::*;
    Some(match name {
        "StringEquals" => (Kind::StringEquals, false),
        "StringNotEquals" => (Kind::StringEquals, true),
        "StringEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, true),
        "StringLike" => (Kind::StringLike, false),
        "StringNotLike" => (Kind::StringLike, true),
        // IAM treats ArnEquals like ArnLike.
        "ArnEquals" | "ArnLike" => (Kind::Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Kind::Arn, true),
        "NumericEquals" => (Kind::Numeric(Equals), false),
        "NumericNotEquals" => (Kind::Numeric(Equals), true),
        "NumericLessThan" => (Kind::Numeric(LessThan), false),
        "NumericLessThanEquals" => (Kind::Numeric(LessThanEquals), false),
        "NumericGreaterThan" => (Kind::Numeric(GreaterThan), false),
        "NumericGreaterThanEquals" => (Kind::Numeric(GreaterThanEquals), false),
        "DateEquals" => (Kind::Date(Equals), false),
        "DateNotEquals" => (Kind::Date(Equals), true),
        "DateLessThan" => (Kind::Date(LessThan), false),
        "DateLessThanEquals" => (Kind::Date(LessThanEquals), false),
        "DateGreaterThan" => (Kind::Date(GreaterThan), false),
        "DateGreaterThanEquals" => (Kind::Date(GreaterThanEquals), false),
        "Bool" => (Kind::Bool, false),
        "IpAddress" => (Kind::IpAddress, false),
        "NotIpAddress" => (Kind::IpAddress, true),
        "Null" => (Kind::Null, false),
        _ => return None,
    })
}

pub fn parse(block: &Value) -> Result<Vec<Condition>, ParseError> {
    let Value::Object(block) = block else {
        return Err((String::new(), "must be an object of operators".into()));
    };
    let mut out = Vec::new();
    for (name, keys) in block {
        let field = format!(".{name}");
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Set::AnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Set::AllValues, rest)
        } else {
            (Set::None, name.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (kind, negated) = operator(base).ok_or_else(|| {
            (
                field.clone(),
                format!("{name:?} is not a condition operator"),
            )
        })?;
        if kind == Kind::Null && (if_exists || set != Set::None) {
            return Err((field, "Null takes no IfExists and no set qualifier".into()));
        }
        let Value::Object(keys) = keys else {
            return Err((field, "must map condition keys to values".into()));
        };
        for (key, values) in keys {
            let values = match values {
                Value::Array(list) if !list.is_empty() => list.iter().map(scalar).collect(),
                Value::Array(_) => None,
                one => scalar(one).map(|v| vec![v]),
            }
            .ok_or_else(|| {
                (
                    format!("{field}.{key}"),
                    "must be a string, number or boolean, or a list of them".to_string(),
                )
            })?;
            if kind == Kind::IpAddress
                && let Some(bad) = values.iter().find(|v| cidr(v).is_none())
            {
                return Err((
                    format!("{field}.{key}"),
                    format!("{bad:?} is not an IP address or CIDR block"),
                ));
            }
            out.push(Condition {
                kind,
                negated,
                if_exists,
                set,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Condition {
    pub fn holds(&self, context: &Context, variables: Option<&Context>) -> bool {
        let present = context.get(&self.key).filter(|v| !v.is_empty());
        if self.kind == Kind::Null {
            return self.values.iter().any(|v| {
                let want_absent = v.eq_ignore_ascii_case("true");
                want_absent == present.is_none()
            });
        }
        let Some(request_values) = present else {
            return match self.set {
                Set::AllValues => true,
                Set::AnyValue => false,
                Set::None => self.if_exists || self.negated,
            };
        };
        let matches_some = |request_value: &str| {
            self.values
                .iter()
                .any(|policy_value| self.matches(request_value, policy_value, variables))
        };
        match (self.set, self.negated) {
            (Set::AllValues, false) => request_values.iter().all(|v| matches_some(v)),
            (Set::AllValues, true) => request_values.iter().all(|v| !matches_some(v)),
            (Set::AnyValue, false) | (Set::None, false) => {
                request_values.iter().any(|v| matches_some(v))
            }
            (Set::AnyValue, true) => request_values.iter().any(|v| !matches_some(v)),
            (Set::None, true) => !request_values.iter().any(|v| matches_some(v)),
        }
    }

    fn matches(&self, request: &str, policy: &str, variables: Option<&Context>) -> bool {
        match self.kind {
            Kind::StringEquals => {
                Pattern::compile_exact(policy, variables).is_some_and(|p| p.matches(request))
            }
            Kind::StringEqualsIgnoreCase => Pattern::compile_exact(policy, variables)
                .is_some_and(|p| p.text().to_lowercase() == request.to_lowercase()),
            Kind::StringLike => {
                Pattern::compile(policy, variables).is_some_and(|p| p.matches(request))
            }
            Kind::Arn => arn_like(request, policy, variables),
            Kind::Numeric(cmp) => match (request.parse::<f64>(), policy.parse::<f64>()) {
                (Ok(r), Ok(p)) => r.partial_cmp(&p).is_some_and(|o| compare(cmp, o)),
                _ => false,
            },
            Kind::Date(cmp) => match (date(request), date(policy)) {
                (Some(r), Some(p)) => compare(cmp, r.cmp(&p)),
                _ => false,
            },
            Kind::Bool => request.eq_ignore_ascii_case(policy),
            Kind::IpAddress => match (request.parse::<IpAddr>(), cidr(policy)) {
                (Ok(ip), Some((net, bits))) => in_network(ip, net, bits),
                _ => false,
            },
            Kind::Null => unreachable!("Null is decided in holds"),
        }
    }
}

fn compare(cmp: Compare, ordering: Ordering) -> bool {
    match cmp {
        Compare::Equals => ordering == Ordering::Equal,
        Compare::LessThan => ordering == Ordering::Less,
        Compare::LessThanEquals => ordering != Ordering::Greater,
        Compare::GreaterThan => ordering == Ordering::Greater,
        Compare::GreaterThanEquals => ordering != Ordering::Less,
    }
}

/// ARNs match part by part (`arn:partition:service:region:account:resource`),
/// each part a wildcard pattern.
fn arn_like(request: &str, policy: &str, variables: Option<&Context>) -> bool {
    let request: Vec<&str> = request.splitn(6, ':').collect();
    let policy: Vec<&str> = policy.splitn(6, ':').collect();
    if policy.len() == 1 {
        // A bare `*`.
        return Pattern::compile(policy[0], variables)
            .is_some_and(|p| p.matches(&request.join(":")));
    }
    request.len() == 6
        && policy.len() == 6
        && request
            .iter()
            .zip(&policy)
            .all(|(r, p)| Pattern::compile(p, variables).is_some_and(|pattern| pattern.matches(r)))
}

/// RFC 3339 or epoch seconds, as Unix seconds.
fn date(text: &str) -> Option<i128> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(i128::from(seconds) * 1_000_000_000);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

fn cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?),
        None => {
            let addr = text.parse::<IpAddr>().ok()?;
            (addr, if addr.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (ip >> shift) == (net >> shift)
}
