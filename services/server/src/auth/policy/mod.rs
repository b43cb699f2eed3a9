//! IAM policy documents: the JSON grammar (Version 2012-10-17) and IAM's
//! evaluation logic for identity-based policies.
//!
//! - Default deny; any matching `Deny` wins; otherwise one matching `Allow`
//!   suffices.
//! - `Action`/`NotAction` match case-insensitively with `*` and `?`;
//!   `Resource`/`NotResource` match case-sensitively, `*` running past `/`
//!   and `:`.
//! - Conditions: operators ANDed, keys within one ANDed, values for one key
//!   ORed (see `condition.rs` for the operators, `IfExists`, `Null` and the
//!   `ForAnyValue:`/`ForAllValues:` set qualifiers).
//! - Policy variables (`${aws:username}`, `${aws:PrincipalTag/team}`, …,
//!   with `${*}`, `${?}`, `${$}` as escapes and `${key, 'default'}`) in
//!   `Resource` and condition values of 2012-10-17 documents, never in
//!   `Action`. What a variable expands to is matched literally.
//!
//! Parsing is strict: an unknown element, a wrong type or an unknown
//! operator is an error naming the statement and the field.

mod condition;
mod pattern;

use condition::Condition;
pub use pattern::Pattern;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The request context: condition keys (lower-cased) and their values.
/// Single-valued keys have one value; `aws:TagKeys` may have many.
///
/// A context may sit on top of a shared one (its `parent`) whose keys it
/// sees unless it sets them itself: a principal's own keys are made once
/// when the identity store loads, a call's (source address, time) once per
/// call, and only each permission's keys (resource tags, request tags) per
/// question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
    parent: Option<Arc<Context>>,
}

impl Context {
    /// An empty context that sees `parent`'s keys.
    pub fn over(parent: Arc<Context>) -> Self {
        Self {
            values: BTreeMap::new(),
            parent: Some(parent),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    pub fn set_many(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    /// The values of `key` (case-insensitive); None when absent.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lookup(&key.to_ascii_lowercase())
        } else {
            self.lookup(key)
        }
    }

    fn lookup(&self, lowercase_key: &str) -> Option<&[String]> {
        match self.values.get(lowercase_key) {
            Some(values) => Some(values),
            None => self.parent.as_deref()?.lookup(lowercase_key),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One parsed statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    actions: Matcher,
    resources: Matcher,
    conditions: Vec<Condition>,
}

/// `Action` or `NotAction` (likewise for resources).
#[derive(Debug, Clone)]
struct Matcher {
    negated: bool,
    patterns: Vec<String>,
    /// Each pattern compiled once, at parse time; none for a pattern with
    /// policy variables, which is compiled per call from its context.
    fixed: Vec<Option<Pattern>>,
}

impl Matcher {
    /// Actions are matched case-insensitively (`lowercase`); resource
    /// patterns with `${…}` in a document with variables wait for a call.
    fn new(negated: bool, patterns: Vec<String>, lowercase: bool, variables: bool) -> Self {
        let fixed = patterns
            .iter()
            .map(|p| {
                if lowercase {
                    Some(Pattern::literal_with_wildcards(&p.to_ascii_lowercase()))
                } else if variables && p.contains("${") {
                    None
                } else {
                    Some(Pattern::literal_with_wildcards(p))
                }
            })
            .collect();
        Self {
            negated,
            patterns,
            fixed,
        }
    }

    /// Whether any pattern matches the whole of `text`.
    fn hit(&self, text: &str, variables: Option<&Context>) -> bool {
        self.patterns
            .iter()
            .zip(&self.fixed)
            .any(|(text_pattern, fixed)| match fixed {
                Some(pattern) => pattern.matches(text),
                None => Pattern::compile(text_pattern, variables)
                    .is_some_and(|pattern| pattern.matches(text)),
            })
    }
}

/// A policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// Whether policy variables are substituted (Version 2012-10-17).
    variables: bool,
    pub statements: Vec<Statement>,
}

/// What a policy set says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { policy: String, sid: Option<String> },
    ExplicitDeny { policy: String, sid: Option<String> },
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// `policy#sid` of the statement that decided, if one did.
    pub fn statement(&self) -> Option<String> {
        match self {
            Decision::Allow { policy, sid } | Decision::ExplicitDeny { policy, sid } => {
                Some(match sid {
                    Some(sid) => format!("{policy}#{sid}"),
                    None => policy.clone(),
                })
            }
            Decision::ImplicitDeny => None,
        }
    }

    /// `allow`, `explicit-deny` or `implicit-deny` (the audit log's words).
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::ExplicitDeny { .. } => "explicit-deny",
            Decision::ImplicitDeny => "implicit-deny",
        }
    }

    /// Why `principal` may not do `action` on `resource`, in IAM's words
    /// (`AccessDeniedException`), or None if it may.
    pub fn denial(&self, principal: &str, action: &str, resource: &str) -> Option<String> {
        let why = match self {
            Decision::Allow { .. } => return None,
            Decision::ExplicitDeny { .. } => {
                "with an explicit deny in an identity-based policy".to_string()
            }
            Decision::ImplicitDeny => {
                format!("because no identity-based policy allows the {action} action")
            }
        };
        Some(format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
        ))
    }
}

/// A mistake in a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy}: {location}: {rule}")]
pub struct PolicyError {
    pub policy: String,
    /// `Statement[2].Condition.StringEquals`, …
    pub location: String,
    pub rule: String,
}

const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl Policy {
    /// Parses a policy document's JSON text.
    pub fn parse(name: &str, text: &str) -> Result<Self, PolicyError> {
        let err = |location: &str, rule: String| PolicyError {
            policy: name.to_string(),
            location: location.to_string(),
            rule,
        };
        let doc: Value = serde_json::from_str(text).map_err(|e| err("document", e.to_string()))?;
        let Value::Object(doc) = doc else {
            return Err(err("document", "must be a JSON object".into()));
        };
        for key in doc.keys() {
            if !["Version", "Id", "Statement"].contains(&key.as_str()) {
                return Err(err(key, "is not an element of a policy document".into()));
            }
        }
        let variables = match doc.get("Version") {
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            None => false,
            Some(other) => {
                return Err(err(
                    "Version",
                    format!("{other} is not 2012-10-17 or 2008-10-17"),
                ));
            }
        };
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => {
                return Err(err(
                    "Statement",
                    "is required: an object or a list of objects".into(),
                ));
            }
        };
        let mut parsed = Vec::with_capacity(statements.len());
        for (i, statement) in statements.iter().enumerate() {
            let at = |field: &str| format!("Statement[{i}].{field}");
            let Value::Object(st) = statement else {
                return Err(err(&format!("Statement[{i}]"), "must be an object".into()));
            };
            if let Some(key) = st.keys().find(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
                return Err(err(
                    &at(key),
                    if key == "Principal" || key == "NotPrincipal" {
                        "identity-based policies name no principal".into()
                    } else {
                        "is not an element of a statement".into()
                    },
                ));
            }
            let sid = match st.get("Sid") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(err(&at("Sid"), "must be a string".into())),
            };
            let effect = match st.get("Effect") {
                Some(Value::String(e)) if e == "Allow" => Effect::Allow,
                Some(Value::String(e)) if e == "Deny" => Effect::Deny,
                _ => return Err(err(&at("Effect"), "must be \"Allow\" or \"Deny\"".into())),
            };
            let matcher = |yes: &str, no: &str| -> Result<Matcher, PolicyError> {
                let lowercase = yes == "Action";
                match (st.get(yes), st.get(no)) {
                    (Some(v), None) => Ok(Matcher::new(
                        false,
                        strings(v).ok_or_else(|| {
                            err(&at(yes), "must be a string or a list of strings".into())
                        })?,
                        lowercase,
                        variables,
                    )),
                    (None, Some(v)) => Ok(Matcher::new(
                        true,
                        strings(v).ok_or_else(|| {
                            err(&at(no), "must be a string or a list of strings".into())
                        })?,
                        lowercase,
                        variables,
                    )),
                    _ => Err(err(
                        &at(yes),
                        format!("a statement needs exactly one of {yes} and {no}"),
                    )),
                }
            };
            let actions = matcher("Action", "NotAction")?;
            if let Some(bad) = actions
                .patterns
                .iter()
                .find(|a| *a != "*" && !a.contains(':'))
            {
                return Err(err(
                    &at("Action"),
                    format!("{bad:?} is not service:action (or *)"),
                ));
            }
            let resources = matcher("Resource", "NotResource")?;
            let conditions = match st.get("Condition") {
                None => Vec::new(),
                Some(v) => condition::parse(v)
                    .map_err(|(field, rule)| err(&at(&format!("Condition{field}")), rule))?,
            };
            parsed.push(Statement {
                sid,
                effect,
                actions,
                resources,
                conditions,
            });
        }
        Ok(Policy {
            name: name.to_string(),
            variables,
            statements: parsed,
        })
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// One authorization question: may the caller do `action` on `resource`?
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// `emr-containers:StartJobRun`.
    pub action: &'a str,
    /// An ARN, or `*` for actions on no particular resource.
    pub resource: &'a str,
    pub context: &'a Context,
}

/// Evaluates `question` against every statement of `policies`.
pub fn evaluate(policies: &[Policy], question: Question<'_>) -> Decision {
    // Actions match case-insensitively; the patterns are lowercased at
    // parse time, the action once per question.
    let action = question.action.to_ascii_lowercase();
    let question = Question {
        action: &action,
        ..question
    };
    let mut allow = None;
    for policy in policies {
        for statement in &policy.statements {
            if !applies(policy, statement, question) {
                continue;
            }
            match statement.effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: policy.name.clone(),
                        sid: statement.sid.clone(),
                    };
                }
                Effect::Allow if allow.is_none() => {
                    allow = Some(Decision::Allow {
                        policy: policy.name.clone(),
                        sid: statement.sid.clone(),
                    });
                }
                Effect::Allow => {}
            }
        }
    }
    allow.unwrap_or(Decision::ImplicitDeny)
}

fn applies(policy: &Policy, statement: &Statement, q: Question<'_>) -> bool {
    if statement.actions.hit(q.action, None) == statement.actions.negated {
        return false;
    }
    let variables = policy.variables.then_some(q.context);
    if statement.resources.hit(q.resource, variables) == statement.resources.negated {
        return false;
    }
    statement
        .conditions
        .iter()
        .all(|c| c.holds(q.context, variables))
}

#[cfg(test)]
mod tests;
