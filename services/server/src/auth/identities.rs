//! The identity store: principals, their access keys, groups and tags, read
//! from a TOML file named by the server config (`identities_file`).
//!
//! ```toml
//! [[principal]]
//! arn = "arn:aws:iam::111122223333:user/alice"
//! groups = ["team-a"]
//! tags = { team = "a" }
//!
//! [[principal.access_key]]
//! id = "AKIAALICEEXAMPLE0001"
//! secret = "…"
//! # Temporary credentials: the session token the request must carry, and
//! # when they stop working.
//! # session_token = "…"
//! # expires = "2026-12-31T00:00:00Z"
//!
//! # IAM policy documents (JSON, Version 2012-10-17), inline or in a file
//! # next to this one, attached to groups and principals (`policies = [...]`
//! # on a principal). A principal with no policy may do nothing.
//! [[policy]]
//! name = "team-a"
//! file = "policies/team-a.json"
//!
//! [[group]]
//! name = "team-a"
//! policies = ["team-a"]
//! ```
//!
//! Secrets never leave this module: they are compared here and their
//! `Debug` output is redacted.

use super::policy::{Context, Policy, PolicyError};
use super::rate_limit::Limit;
use super::sigv4::{self, KeySecret, SignedRequest};
use super::{Access, AuthError, AuthMethod, Caller};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use subtle::ConstantTimeEq;

/// A secret string; `Debug` shows only that it is there.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    principal: Vec<PrincipalEntry>,
    #[serde(default)]
    policy: Vec<PolicyEntry>,
    #[serde(default)]
    group: Vec<GroupEntry>,
    /// Every principal's limit unless its own or a group's says otherwise.
    #[serde(default)]
    rate_limit: Option<Limit>,
    /// Kubernetes bearer tokens, checked with a TokenReview.
    #[serde(default)]
    token_review: Option<TokenReviewSettings>,
    /// Which Kubernetes identity acts as which principal.
    #[serde(default)]
    kubernetes_identity: Vec<KubernetesIdentityEntry>,
}

/// `[token_review]`: where bearer tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenReviewSettings {
    /// A cluster of the server's configuration (`[[cluster]] id`).
    pub cluster: String,
    /// A token must be meant for one of these (its `aud`); a token for
    /// the API server itself is refused, so that a pod's default token
    /// cannot be replayed here.
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
    /// How long a reviewed token's answer is reused.
    #[serde(default = "default_review_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_audiences() -> Vec<String> {
    vec!["sparkvc".into()]
}

fn default_review_cache_seconds() -> u64 {
    30
}

/// `[[kubernetes_identity]]`: a Kubernetes user (a ServiceAccount, by
/// `namespace:name`, or any `username`) that acts as a principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KubernetesIdentityEntry {
    #[serde(default)]
    service_account: Option<String>,
    #[serde(default)]
    username: Option<String>,
    /// The ARN of a `[[principal]]` of this file.
    principal: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    name: String,
    /// The document's JSON text.
    #[serde(default)]
    document: Option<String>,
    /// A file holding it, relative to the identity file.
    #[serde(default)]
    file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    name: String,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    rate_limit: Option<Limit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalEntry {
    pub arn: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Policies attached to the principal itself (besides its groups').
    #[serde(default)]
    pub policies: Vec<String>,
    /// The principal's own limit; else the most generous of its groups';
    /// else the file's `[rate_limit]`; else [`Limit::DEFAULT`].
    #[serde(default)]
    pub rate_limit: Option<Limit>,
    #[serde(default)]
    pub access_key: Vec<AccessKeyEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyEntry {
    pub id: String,
    pub secret: Secret,
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// RFC 3339.
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Debug)]
struct AccessKey {
    principal: usize,
    secret: Secret,
    session_token: Option<Secret>,
    expires: Option<SystemTime>,
}

/// A bad identity file: which file, which entry, which field, which rule.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read identity file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("identity file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("identity file {path}: {source}")]
    Policy { path: String, source: PolicyError },
    #[error("identity file {path}: {what}: {rule}")]
    Reference {
        path: String,
        what: String,
        rule: String,
    },
    #[error("identity file {path}: principal {index} ({field}): {rule}")]
    Invalid {
        path: String,
        index: usize,
        field: &'static str,
        rule: String,
    },
}

/// Principals and their keys, looked up by access key ID.
#[derive(Debug, Default)]
pub struct Identities {
    principals: Vec<PrincipalEntry>,
    /// Each principal's policies (its own, then its groups'), by index.
    access: Vec<Arc<[Policy]>>,
    /// Each principal's request-rate limit, by index.
    limits: Vec<Limit>,
    /// Each principal's own condition keys, by index (made once here, not
    /// per call).
    contexts: Vec<Arc<Context>>,
    keys: HashMap<String, AccessKey>,
    /// The files this was read from: the identity file, then its policy
    /// files (what a reload watches).
    files: Vec<PathBuf>,
    token_review: Option<TokenReviewSettings>,
    /// Kubernetes username → principal index.
    kubernetes: HashMap<String, usize>,
}

impl Identities {
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut identities = Self::parse_in(&text, &shown, path.parent())?;
        identities.files.insert(0, path.to_path_buf());
        Ok(identities)
    }

    /// The files this was read from (none when parsed from text).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Parses and checks an identity file's text; `path` names it in errors.
    /// Policy files must then be inline.
    pub fn parse(text: &str, path: &str) -> Result<Self, IdentityError> {
        Self::parse_in(text, path, None)
    }

    fn parse_in(text: &str, path: &str, dir: Option<&Path>) -> Result<Self, IdentityError> {
        let file: File = toml::from_str(text).map_err(|e| IdentityError::Parse {
            path: path.to_string(),
            message: e.message().to_string(),
        })?;
        let mut out = Identities::default();
        let policies = load_policies(&file.policy, path, dir)?;
        if let Some(dir) = dir {
            out.files = file
                .policy
                .iter()
                .filter_map(|p| p.file.as_ref().map(|f| dir.join(f)))
                .collect();
        }
        let reference = |what: String, rule: String| IdentityError::Reference {
            path: path.to_string(),
            what,
            rule,
        };
        let default_limit = file.rate_limit.unwrap_or(Limit::DEFAULT);
        let check_limit = |what: String, limit: &Option<Limit>| match limit {
            Some(l) => l.check().map_err(|rule| reference(what, rule)),
            None => Ok(()),
        };
        check_limit("rate_limit".into(), &file.rate_limit)?;
        let mut groups: HashMap<&str, Vec<Policy>> = HashMap::new();
        let mut group_limits: HashMap<&str, Limit> = HashMap::new();
        for group in &file.group {
            check_limit(format!("group {}", group.name), &group.rate_limit)?;
            if let Some(limit) = group.rate_limit {
                group_limits.insert(group.name.as_str(), limit);
            }
            let attached = attach(&policies, &group.policies)
                .map_err(|rule| reference(format!("group {}", group.name), rule))?;
            if groups.insert(group.name.as_str(), attached).is_some() {
                return Err(reference(
                    format!("group {}", group.name),
                    "is defined twice".into(),
                ));
            }
        }
        for (index, mut principal) in file.principal.into_iter().enumerate() {
            let invalid = |field, rule: String| IdentityError::Invalid {
                path: path.to_string(),
                index,
                field,
                rule,
            };
            if !is_principal_arn(&principal.arn) {
                return Err(invalid(
                    "arn",
                    format!(
                        "{:?} is not an IAM or STS principal ARN (arn:<partition>:iam::<account>:user/…, role/…, or arn:<partition>:sts::<account>:assumed-role/…)",
                        principal.arn
                    ),
                ));
            }
            for key in std::mem::take(&mut principal.access_key) {
                if key.id.len() < 16
                    || key.id.len() > 128
                    || !key.id.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(invalid(
                        "access_key.id",
                        format!("{:?} must be 16 to 128 letters and digits", key.id),
                    ));
                }
                if key.secret.expose().is_empty() {
                    return Err(invalid(
                        "access_key.secret",
                        format!("the secret of {} is empty", key.id),
                    ));
                }
                let expires = key
                    .expires
                    .as_deref()
                    .map(|text| {
                        time::OffsetDateTime::parse(
                            text,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .map(SystemTime::from)
                        .map_err(|_| {
                            invalid(
                                "access_key.expires",
                                format!("{text:?} is not an RFC 3339 time"),
                            )
                        })
                    })
                    .transpose()?;
                if key.session_token.is_none() && expires.is_some() {
                    return Err(invalid(
                        "access_key.expires",
                        format!("{} expires but has no session_token", key.id),
                    ));
                }
                let id = key.id.clone();
                let entry = AccessKey {
                    principal: index,
                    secret: key.secret,
                    session_token: key.session_token,
                    expires,
                };
                if out.keys.insert(id.clone(), entry).is_some() {
                    return Err(invalid(
                        "access_key.id",
                        format!("{id} is listed more than once"),
                    ));
                }
            }
            let mut attached = attach(&policies, &principal.policies)
                .map_err(|rule| reference(format!("principal {}", principal.arn), rule))?;
            for group in &principal.groups {
                let of_group = groups.get(group.as_str()).ok_or_else(|| {
                    reference(
                        format!("principal {}", principal.arn),
                        format!("no group is named {group:?}"),
                    )
                })?;
                attached.extend(of_group.iter().cloned());
            }
            out.access.push(attached.into());
            check_limit(
                format!("principal {}", principal.arn),
                &principal.rate_limit,
            )?;
            let limit = principal.rate_limit.unwrap_or_else(|| {
                principal
                    .groups
                    .iter()
                    .filter_map(|g| group_limits.get(g.as_str()).copied())
                    .max_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second))
                    .unwrap_or(default_limit)
            });
            out.limits.push(limit);
            out.contexts
                .push(Caller::principal_context(&principal.arn, &principal.tags));
            out.principals.push(principal);
        }
        out.token_review = file.token_review;
        for (index, entry) in file.kubernetes_identity.iter().enumerate() {
            let invalid = |field: &str, rule: String| IdentityError::Reference {
                path: path.to_string(),
                what: format!("kubernetes_identity {index} ({field})"),
                rule,
            };
            let username = match (&entry.service_account, &entry.username) {
                (Some(sa), None) => match sa.split_once(':') {
                    Some((ns, name))
                        if !ns.is_empty() && !name.is_empty() && !name.contains(':') =>
                    {
                        format!("system:serviceaccount:{ns}:{name}")
                    }
                    _ => {
                        return Err(invalid(
                            "service_account",
                            format!("{sa:?} must be NAMESPACE:NAME"),
                        ));
                    }
                },
                (None, Some(username)) if !username.is_empty() => username.clone(),
                _ => {
                    return Err(invalid(
                        "service_account, username",
                        "needs exactly one of service_account and username".into(),
                    ));
                }
            };
            let principal = out
                .principals
                .iter()
                .position(|p| p.arn == entry.principal)
                .ok_or_else(|| {
                    invalid(
                        "principal",
                        format!("no [[principal]] has the ARN {}", entry.principal),
                    )
                })?;
            if out.kubernetes.insert(username.clone(), principal).is_some() {
                return Err(invalid(
                    "username",
                    format!("{username} is mapped more than once"),
                ));
            }
        }
        if out.token_review.is_none() && !out.kubernetes.is_empty() {
            return Err(IdentityError::Reference {
                path: path.to_string(),
                what: "kubernetes_identity".into(),
                rule: "needs a [token_review] table naming the cluster that checks the tokens"
                    .into(),
            });
        }
        Ok(out)
    }

    /// Where bearer tokens are checked, if they are accepted at all.
    pub fn token_review(&self) -> Option<&TokenReviewSettings> {
        self.token_review.as_ref()
    }

    /// The caller a reviewed Kubernetes user acts as, if it is mapped. Its
    /// tags gain `kubernetes-username` (and, for a ServiceAccount,
    /// `kubernetes-namespace`), for policies that scope by them.
    pub fn kubernetes_caller(&self, username: &str) -> Option<Caller> {
        let index = *self.kubernetes.get(username)?;
        let mut caller = self.caller_at(index, AuthMethod::KubernetesToken, None);
        caller
            .tags
            .insert("kubernetes-username".into(), username.to_string());
        if let Some(rest) = username.strip_prefix("system:serviceaccount:")
            && let Some((namespace, _)) = rest.split_once(':')
        {
            caller
                .tags
                .insert("kubernetes-namespace".into(), namespace.to_string());
        }
        caller.principal_context = Caller::principal_context(&caller.arn, &caller.tags);
        Some(caller)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn principal_count(&self) -> usize {
        self.principals.len()
    }

    /// The caller a principal ARN names, as if it had signed (for
    /// `sparkvc-policy simulate`).
    pub fn caller(&self, arn: &str) -> Option<Caller> {
        let index = self.principals.iter().position(|p| p.arn == arn)?;
        Some(self.caller_at(index, AuthMethod::SigV4, None))
    }

    /// The principal at `index` as a caller.
    fn caller_at(&self, index: usize, method: AuthMethod, access_key_id: Option<String>) -> Caller {
        let principal = &self.principals[index];
        Caller {
            arn: principal.arn.clone(),
            tags: principal.tags.clone(),
            groups: principal.groups.clone(),
            method,
            access_key_id,
            access: Access::Policies(self.access[index].clone()),
            rate_limit: Some(self.limits[index]),
            principal_context: self.contexts[index].clone(),
        }
    }

    /// Authenticates a SigV4-signed request.
    pub fn authenticate(
        &self,
        request: &SignedRequest<'_>,
        region: &str,
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        let scope = sigv4::Scope {
            region,
            service: sigv4::SERVICE,
        };
        let verified = sigv4::verify(request, scope, now, |id| {
            self.keys.get(id).map(|k| KeySecret {
                secret_access_key: k.secret.expose(),
            })
        })?;
        let key = &self.keys[&verified.access_key_id];
        match (&key.session_token, &verified.session_token) {
            (None, None) => {}
            (Some(expected), Some(given))
                if bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) =>
            {
                if key.expires.is_some_and(|at| at <= now) {
                    return Err(AuthError::ExpiredToken);
                }
            }
            _ => return Err(AuthError::UnrecognizedClient),
        }
        Ok(self.caller_at(
            key.principal,
            AuthMethod::SigV4,
            Some(verified.access_key_id),
        ))
    }
}

/// The policies `names` names, in order; the rule broken if one is unknown.
fn attach(policies: &HashMap<String, Policy>, names: &[String]) -> Result<Vec<Policy>, String> {
    names
        .iter()
        .map(|name| {
            policies
                .get(name.as_str())
                .cloned()
                .ok_or_else(|| format!("no policy is named {name:?}"))
        })
        .collect()
}

/// Every `[[policy]]`, parsed, by name.
fn load_policies(
    entries: &[PolicyEntry],
    path: &str,
    dir: Option<&Path>,
) -> Result<HashMap<String, Policy>, IdentityError> {
    let mut out = HashMap::new();
    for entry in entries {
        let invalid = |rule: String| IdentityError::Reference {
            path: path.to_string(),
            what: format!("policy {}", entry.name),
            rule,
        };
        let text = match (&entry.document, &entry.file) {
            (Some(document), None) => document.clone(),
            (None, Some(file)) => {
                let Some(dir) = dir else {
                    return Err(invalid("policy files need an identity file on disk".into()));
                };
                let full = dir.join(file);
                std::fs::read_to_string(&full)
                    .map_err(|e| invalid(format!("cannot read {}: {e}", full.display())))?
            }
            _ => return Err(invalid("needs exactly one of document and file".into())),
        };
        let policy = Policy::parse(&entry.name, &text).map_err(|source| IdentityError::Policy {
            path: path.to_string(),
            source,
        })?;
        if out.insert(entry.name.clone(), policy).is_some() {
            return Err(invalid("is defined twice".into()));
        }
    }
    Ok(out)
}

fn is_principal_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, service, "", account, resource] = parts[..] else {
        return false;
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let kind_ok = match service {
        "iam" => ["user/", "role/", "root"]
            .iter()
            .any(|p| resource.starts_with(p)),
        "sts" => resource.starts_with("assumed-role/"),
        _ => false,
    };
    partition.starts_with("aws") && account_ok && kind_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[policy]]
name = "read"
document = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"emr-containers:Describe*","Resource":"*"}}'

[[group]]
name = "team-a"
policies = ["read"]

[[principal]]
arn = "arn:aws:iam::111122223333:user/alice"
groups = ["team-a"]
tags = { team = "a" }

[[principal.access_key]]
id = "AKIAALICEEXAMPLE0001"
secret = "alice-secret"

[[principal]]
arn = "arn:aws:sts::111122223333:assumed-role/airflow/worker"

[[principal.access_key]]
id = "ASIAAIRFLOWEXAMPLE01"
secret = "airflow-secret"
session_token = "token-1"
expires = "2030-01-01T00:00:00Z"
"#;

    #[test]
    fn a_good_file_loads_and_hides_its_secrets() {
        let ids = Identities::parse(FILE, "ids.toml").unwrap();
        assert_eq!(ids.principal_count(), 2);
        let shown = format!("{ids:?}");
        assert!(!shown.contains("alice-secret"), "{shown}");
        assert!(!shown.contains("token-1"), "{shown}");
    }

    #[test]
    fn bad_files_name_the_entry_and_the_rule() {
        let err = |text: &str| Identities::parse(text, "ids.toml").unwrap_err().to_string();
        assert_eq!(
            err("[[principal]]\narn = \"alice\"\n"),
            "identity file ids.toml: principal 0 (arn): \"alice\" is not an IAM or STS principal ARN (arn:<partition>:iam::<account>:user/…, role/…, or arn:<partition>:sts::<account>:assumed-role/…)"
        );
        let dup = "[[principal]]\narn = \"arn:aws:iam::111122223333:user/a\"\n[[principal.access_key]]\nid = \"AKIAEXAMPLEEXAMPLE\"\nsecret = \"s\"\n[[principal.access_key]]\nid = \"AKIAEXAMPLEEXAMPLE\"\nsecret = \"t\"\n";
        assert!(err(dup).contains("AKIAEXAMPLEEXAMPLE is listed more than once"));
        assert!(
            err("[[principal]]\narn = \"arn:aws:iam::111122223333:user/a\"\nfrob = 1\n")
                .contains("unknown field `frob`")
        );
        let group =
            "[[principal]]\narn = \"arn:aws:iam::111122223333:user/a\"\npolicies = [\"nope\"]\n";
        assert!(
            err(group).contains(
                "principal arn:aws:iam::111122223333:user/a: no policy is named \"nope\""
            )
        );
        let bad_policy = "[[policy]]\nname = \"p\"\ndocument = '{\"Statement\":{\"Effect\":\"Maybe\",\"Action\":\"*\",\"Resource\":\"*\"}}'\n";
        assert_eq!(
            err(bad_policy),
            "identity file ids.toml: policy p: Statement[0].Effect: must be \"Allow\" or \"Deny\""
        );
        let short = "[[principal]]\narn = \"arn:aws:iam::111122223333:user/a\"\n[[principal.access_key]]\nid = \"AK\"\nsecret = \"s\"\n";
        assert!(err(short).contains("(access_key.id)"));
    }

    #[test]
    fn kubernetes_identities_map_to_principals_and_bring_their_namespace() {
        let base = "[[principal]]\narn = \"arn:aws:iam::111122223333:role/airflow\"\ntags = { team = \"data\" }\n";
        let text = format!(
            "[token_review]\ncluster = \"local\"\n{base}[[kubernetes_identity]]\nservice_account = \"airflow:worker\"\nprincipal = \"arn:aws:iam::111122223333:role/airflow\"\n"
        );
        let ids = Identities::parse(&text, "ids.toml").unwrap();
        let review = ids.token_review().unwrap();
        assert_eq!(review.audiences, ["sparkvc"]);
        assert_eq!(review.cache_seconds, 30);
        let caller = ids
            .kubernetes_caller("system:serviceaccount:airflow:worker")
            .unwrap();
        assert_eq!(caller.arn, "arn:aws:iam::111122223333:role/airflow");
        assert_eq!(caller.method, AuthMethod::KubernetesToken);
        assert_eq!(caller.tags["team"], "data");
        assert_eq!(caller.tags["kubernetes-namespace"], "airflow");
        assert!(
            ids.kubernetes_caller("system:serviceaccount:airflow:other")
                .is_none()
        );

        let err = |text: &str| Identities::parse(text, "ids.toml").unwrap_err().to_string();
        let mapping = |body: &str| {
            format!("[token_review]\ncluster = \"local\"\n{base}[[kubernetes_identity]]\n{body}")
        };
        assert_eq!(
            err(&mapping(
                "service_account = \"worker\"\nprincipal = \"arn:aws:iam::111122223333:role/airflow\"\n"
            )),
            "identity file ids.toml: kubernetes_identity 0 (service_account): \"worker\" must be NAMESPACE:NAME"
        );
        assert!(
            err(&mapping(
                "service_account = \"a:b\"\nprincipal = \"arn:aws:iam::111122223333:role/nobody\"\n"
            ))
            .contains("no [[principal]] has the ARN arn:aws:iam::111122223333:role/nobody")
        );
        assert!(
            err(&mapping(
                "principal = \"arn:aws:iam::111122223333:role/airflow\"\n"
            ))
            .contains("needs exactly one of service_account and username")
        );
        let unreviewed = format!(
            "{base}[[kubernetes_identity]]\nusername = \"jane\"\nprincipal = \"arn:aws:iam::111122223333:role/airflow\"\n"
        );
        assert!(err(&unreviewed).contains("needs a [token_review] table"));
    }
}
