//! The constraint primitives of the AWS model (length, pattern, range, enum,
//! count), each failing with AWS's own wording and the member's path, e.g.
//! `1 validation error detected: Value 'a b' at 'name' failed to satisfy
//! constraint: Member must satisfy regular expression pattern: ...`.

use crate::error::{ApiError, ApiResult};
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A string shape from the model: length bounds and a pattern. Patterns are
/// matched against the whole value.
#[derive(Debug, Clone, Copy)]
pub struct StringShape {
    pub min: usize,
    pub max: usize,
    pub pattern: &'static str,
    /// Sensitive members are never echoed back in messages or logs.
    pub sensitive: bool,
}

const fn shape(min: usize, max: usize, pattern: &'static str) -> StringShape {
    StringShape {
        min,
        max,
        pattern,
        sensitive: false,
    }
}

const fn secret(min: usize, max: usize, pattern: &'static str) -> StringShape {
    StringShape {
        min,
        max,
        pattern,
        sensitive: true,
    }
}

const NON_BLANK: &str = r".*\S.*";
const IAM_ROLE: &str = r"^arn:(aws[a-zA-Z0-9-]*):iam::(\d{12})?:(role((\u002F)|(\u002F[\u0021-\u007F]+\u002F))[\w+=,.@-]+)$";
const PARAMETRIC_ROLE: &str = r"(^arn:(aws[a-zA-Z0-9-]*):iam::(\d{12})?:(role((\u002F)|(\u002F[\u0021-\u007F]+\u002F))[\w+=,.@-]+)$)|([\.\-_\#A-Za-z0-9\$\{\}]+)";
const KMS_KEY: &str =
    r"^(arn:(aws[a-zA-Z0-9-]*):kms:.+:(\d{12})?:key\/[(0-9a-zA-Z)-?]+|\$\{[a-zA-Z]\w*\})$";
const SECRETS_MANAGER: &str =
    r"^arn:(aws[a-zA-Z0-9-]*):secretsmanager:.+:(\d{12}):secret:[0-9a-zA-Z/_+=.@-]+$";
const URI: &str = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\r\\n\\t]*";

pub const RESOURCE_ID: StringShape = shape(1, 64, "[0-9a-z]+");
pub const RESOURCE_NAME: StringShape = shape(1, 64, r"[\.\-_/#A-Za-z0-9]+");
pub const CLIENT_TOKEN: StringShape = shape(1, 64, NON_BLANK);
pub const CLUSTER_ID: StringShape = shape(1, 100, r"^[0-9A-Za-z][A-Za-z0-9\-_]*");
pub const KUBERNETES_NAMESPACE: StringShape = shape(1, 63, "[a-z0-9]([-a-z0-9]*[a-z0-9])?");
pub const NODE_LABEL: StringShape = shape(1, 64, "^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$");
pub const TAG_KEY: StringShape = shape(1, 128, NON_BLANK);
pub const TAG_VALUE: StringShape = shape(0, 256, NON_BLANK);
pub const IAM_ROLE_ARN: StringShape = shape(20, 2048, IAM_ROLE);
pub const PARAMETRIC_IAM_ROLE_ARN: StringShape = shape(4, 2048, PARAMETRIC_ROLE);
pub const RELEASE_LABEL: StringShape = shape(1, 64, r"[\.\-_/A-Za-z0-9]+");
pub const PARAMETRIC_RELEASE_LABEL: StringShape =
    shape(1, 64, r"([\.\-_/A-Za-z0-9]+|\$\{[a-zA-Z]\w*\})");
pub const ENTRY_POINT: StringShape = secret(1, 256, NON_BLANK);
pub const ENTRY_POINT_ARGUMENT: StringShape = secret(1, 10280, NON_BLANK);
pub const SPARK_PARAMETERS: StringShape = secret(1, 102_400, NON_BLANK);
pub const STRING_1024: StringShape = shape(1, 1024, NON_BLANK);
/// A value of a configuration's `properties` (the model's
/// SensitivePropertiesMap): it may be a password, so never echoed.
pub const PROPERTY_VALUE: StringShape = secret(1, 1024, NON_BLANK);
pub const STRING_256: StringShape = shape(1, 256, NON_BLANK);
pub const LOG_GROUP_NAME: StringShape = shape(1, 512, r"[\.\-_/#A-Za-z0-9]+");
pub const PARAMETRIC_LOG_GROUP_NAME: StringShape = shape(1, 512, r"[\.\-_/#A-Za-z0-9\$\{\}]+");
pub const URI_STRING: StringShape = shape(1, 10280, URI);
pub const ROTATION_SIZE: StringShape = shape(3, 12, r"^\d+(\.\d+)?[KMG][Bb]?$");
pub const KMS_KEY_ARN: StringShape = shape(3, 2048, KMS_KEY);
pub const NEXT_TOKEN: StringShape = shape(1, 1024, NON_BLANK);
pub const TEMPLATE_PARAMETER_NAME: StringShape = shape(1, 512, r"[\.\-_\#A-Za-z0-9]+");
pub const PARAMETRIC_PERSISTENT_APP_UI: StringShape = shape(1, 512, r"[\.\-_/#A-Za-z0-9\$\{\}]+");
pub const RESOURCE_ARN: StringShape = shape(
    60,
    500,
    r"^arn:(aws[a-zA-Z0-9-]*):emr-containers:.+:(\d{12}):/virtualclusters/.+$",
);
pub const SECRET_ARN: StringShape = shape(3, 2048, SECRETS_MANAGER);
pub const SESSION_TAG_VALUE: StringShape = shape(1, 512, r"[\.\-_/#A-Za-z0-9 ]+");
pub const IDENTITY_CENTER_INSTANCE_ARN: StringShape = shape(
    10,
    1224,
    r"^arn:(aws[a-zA-Z0-9-]*):sso:::instance/ssoins-[0-9a-zA-Z/\\\-_]+",
);
pub const IDENTITY_CENTER_APPLICATION_ARN: StringShape = shape(
    0,
    usize::MAX,
    r"^arn:(aws[a-zA-Z0-9-]*):sso:::application/ssoins-[0-9a-zA-Z/\\\-_]+/apl-[0-9a-zA-Z/\\\-_]+",
);

/// The compiled, fully anchored form of each pattern, built once.
fn regex_for(pattern: &'static str) -> &'static Regex {
    static CACHE: LazyLock<std::sync::Mutex<BTreeMap<&'static str, &'static Regex>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(pattern).or_insert_with(|| {
        let anchored = format!("^(?:{pattern})$");
        let regex =
            Regex::new(&anchored).unwrap_or_else(|e| panic!("bad model pattern {pattern}: {e}"));
        Box::leak(Box::new(regex))
    })
}

fn shown(value: &str, shape: &StringShape) -> String {
    if shape.sensitive {
        return String::new();
    }
    format!(" '{}'", echo(value))
}

pub use crate::error::{ECHO_CHARS, echo};

fn violation(value_text: String, field: &str, constraint: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value{value_text} at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

/// A member the model marks required was not given.
pub fn missing(field: &str) -> ApiError {
    violation(" null".into(), field, "Member must not be null")
}

/// Checks a member that may be absent (empty means absent).
pub fn optional(field: &str, value: &str, shape: StringShape) -> ApiResult<()> {
    if value.is_empty() && shape.min > 0 {
        return Ok(());
    }
    check(field, value, shape)
}

/// Checks a required member.
pub fn required(field: &str, value: &str, shape: StringShape) -> ApiResult<()> {
    if value.is_empty() && shape.min > 0 {
        return Err(missing(field));
    }
    check(field, value, shape)
}

fn check(field: &str, value: &str, shape: StringShape) -> ApiResult<()> {
    let len = value.chars().count();
    if len < shape.min {
        return Err(violation(
            shown(value, &shape),
            field,
            &format!(
                "Member must have length greater than or equal to {}",
                shape.min
            ),
        ));
    }
    if len > shape.max {
        return Err(violation(
            shown(value, &shape),
            field,
            &format!(
                "Member must have length less than or equal to {}",
                shape.max
            ),
        ));
    }
    if !value.is_empty() && !regex_for(shape.pattern).is_match(value) {
        return Err(violation(
            shown(value, &shape),
            field,
            &format!(
                "Member must satisfy regular expression pattern: {}",
                shape.pattern
            ),
        ));
    }
    Ok(())
}

/// Checks an enum member given as a string.
pub fn one_of(field: &str, value: &str, allowed: &[&str], required_member: bool) -> ApiResult<()> {
    if value.is_empty() {
        return if required_member {
            Err(missing(field))
        } else {
            Ok(())
        };
    }
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(violation(
        format!(" '{}'", echo(value)),
        field,
        &format!(
            "Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
    ))
}

/// Checks an integer against inclusive bounds.
pub fn in_range(field: &str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if value < min {
        return Err(violation(
            format!(" '{value}'"),
            field,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(violation(
            format!(" '{value}'"),
            field,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Checks how many entries a list or map has.
pub fn count(field: &str, len: usize, max: usize) -> ApiResult<()> {
    if len > max {
        return Err(violation(
            String::new(),
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Checks a string-to-string map: its size, then every key and value.
pub fn string_map(
    field: &str,
    map: &BTreeMap<String, String>,
    max_entries: usize,
    key: StringShape,
    value: StringShape,
) -> ApiResult<()> {
    count(field, map.len(), max_entries)?;
    for (k, v) in map {
        required(&format!("{field}.key"), k, key)?;
        required(&format!("{field}.{k}"), v, value)?;
    }
    Ok(())
}

/// AWS tag maps: at most 50 entries, keys 1-128, values 0-256 characters.
pub fn tags(field: &str, tags: &BTreeMap<String, String>) -> ApiResult<()> {
    string_map(field, tags, 50, TAG_KEY, TAG_VALUE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_quote_at_most_the_start_of_a_bad_value() {
        let huge = "x".repeat(1_000_000);
        let enum_error = one_of("state", &huge, &["RUNNING"], true)
            .unwrap_err()
            .to_string();
        assert!(enum_error.len() < 400, "{} characters", enum_error.len());
        assert!(
            enum_error.contains(&format!("'{}...'", "x".repeat(ECHO_CHARS))),
            "{enum_error}"
        );
        assert_eq!(echo("short"), "short");
        // Characters, not bytes: a multi-byte value is cut on a boundary.
        assert_eq!(
            echo(&"é".repeat(100)),
            format!("{}...", "é".repeat(ECHO_CHARS))
        );
    }

    use super::*;

    #[test]
    fn messages_name_the_member_and_the_rule() {
        let err = required("name", "bad name!", RESOURCE_NAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            r"1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+"
        );
        let err = required("name", &"a".repeat(65), RESOURCE_NAME).unwrap_err();
        assert!(
            err.to_string()
                .contains("Member must have length less than or equal to 64")
        );
        assert_eq!(
            required("clientToken", "", CLIENT_TOKEN)
                .unwrap_err()
                .to_string(),
            "1 validation error detected: Value null at 'clientToken' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn sensitive_values_are_not_echoed() {
        let err = required(
            "jobDriver.sparkSubmitJobDriver.entryPoint",
            "   ",
            ENTRY_POINT,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("'   '"), "{err}");
        assert!(
            err.to_string()
                .contains("at 'jobDriver.sparkSubmitJobDriver.entryPoint'")
        );
    }

    #[test]
    fn model_patterns_accept_what_aws_accepts() {
        assert!(
            required(
                "r",
                "arn:aws:iam::123456789012:role/EMRContainers-JobExecutionRole",
                IAM_ROLE_ARN
            )
            .is_ok()
        );
        assert!(
            required(
                "r",
                "arn:aws:iam::123456789012:role/path/to/Role",
                IAM_ROLE_ARN
            )
            .is_ok()
        );
        assert!(required("r", "arn:aws:iam::12345:role/x-role-name", IAM_ROLE_ARN).is_err());
        assert!(required("n", "spark-jobs", KUBERNETES_NAMESPACE).is_ok());
        assert!(required("n", "Spark", KUBERNETES_NAMESPACE).is_err());
        assert!(required("n", "-spark", KUBERNETES_NAMESPACE).is_err());
        assert!(required("s", "2KB", ROTATION_SIZE).is_ok());
        assert!(required("s", "2 KB", ROTATION_SIZE).is_err());
        assert!(required("p", "${Role}", PARAMETRIC_IAM_ROLE_ARN).is_ok());
        assert!(required("p", "${ReleaseLabel}", PARAMETRIC_RELEASE_LABEL).is_ok());
    }

    #[test]
    fn ranges_enums_and_counts() {
        assert!(
            in_range("m", 0, 1, 1000)
                .unwrap_err()
                .to_string()
                .contains("greater than or equal to 1")
        );
        assert!(
            in_range("m", 1001, 1, 1000)
                .unwrap_err()
                .to_string()
                .contains("less than or equal to 1000")
        );
        assert!(
            one_of("t", "GKE", &["EKS"], true)
                .unwrap_err()
                .to_string()
                .contains("enum value set: [EKS]")
        );
        assert!(
            one_of("t", "", &["EKS"], true)
                .unwrap_err()
                .to_string()
                .contains("must not be null")
        );
        let many: BTreeMap<_, _> = (0..51)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(
            tags("tags", &many)
                .unwrap_err()
                .to_string()
                .contains("at 'tags'")
        );
    }
}
