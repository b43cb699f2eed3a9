//! Reading flag values: `file://` paths, JSON, shorthand, lists, maps and
//! timestamps. Pure functions (apart from reading `file://` paths); every
//! error names the flag it came from.

use crate::error::CliError;
use crate::shorthand;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Replaces a `file://PATH` value by the contents of PATH.
pub fn resolve_file(flag: &str, value: &str) -> Result<String, CliError> {
    match value.strip_prefix("file://") {
        None => Ok(value.to_string()),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::param(flag, format!("Unable to load paramfile {value}: {e}"))),
    }
}

/// Whether a (resolved) value is JSON rather than shorthand.
fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{' | '[' | '"'))
}

/// Parses JSON text into `T`, telling syntax errors from shape errors.
pub fn parse_json<T: DeserializeOwned>(flag: &str, text: &str) -> Result<T, CliError> {
    serde_json::from_str(text).map_err(|e| {
        let message = if e.is_syntax() || e.is_eof() {
            format!("Invalid JSON: {e}")
        } else {
            e.to_string()
        };
        CliError::param(flag, message)
    })
}

/// A structure flag (`--job-driver`, `--container-provider`, ...): JSON
/// (inline or `file://`) or shorthand.
pub fn parse_structure<T: DeserializeOwned>(flag: &str, raw: &str) -> Result<T, CliError> {
    let text = resolve_file(flag, raw)?;
    if text.trim().is_empty() {
        return Err(CliError::param(flag, "expected a value, found nothing"));
    }
    if looks_like_json(&text) {
        return parse_json(flag, &text);
    }
    let parsed = shorthand::parse(&text).map_err(|e| CliError::param(flag, e))?;
    T::deserialize(parsed).map_err(|e| CliError::param(flag, e.to_string()))
}

/// A map-of-strings flag (`--tags`, `--job-template-parameters`): each value
/// is JSON (`{"k":"v"}`), shorthand (`k1=v1,k2=v2`) or `file://`; several
/// values are merged, later keys winning.
pub fn parse_string_map(flag: &str, raws: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for raw in raws {
        out.extend(parse_structure::<BTreeMap<String, String>>(flag, raw)?);
    }
    Ok(out)
}

/// A list-of-strings flag (`--states`, `--tag-keys`): space-separated
/// values, each of which may also be `a,b`, a JSON list or `file://`.
pub fn parse_string_list(flag: &str, raws: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for raw in raws {
        let text = resolve_file(flag, raw)?;
        if looks_like_json(&text) {
            out.extend(parse_json::<Vec<String>>(flag, &text)?);
        } else {
            out.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string),
            );
        }
    }
    Ok(out)
}

/// A timestamp flag: ISO 8601 (`2026-01-02T03:04:05Z`), a date
/// (`2026-01-02`) or seconds since the epoch. Returns the text, checked, in
/// the form `--cli-input-json` also accepts.
pub fn parse_timestamp(flag: &str, raw: &str) -> Result<String, CliError> {
    sparkvc_proto::json::timestamp::parse(raw).map_err(|e| CliError::param(flag, e))?;
    Ok(raw.trim().to_string())
}

/// The `--cli-input-json` value: a JSON object (inline or `file://`).
pub fn parse_cli_input(raw: &str) -> Result<Map<String, Value>, CliError> {
    const FLAG: &str = "--cli-input-json";
    let text = resolve_file(FLAG, raw)?;
    match parse_json::<Value>(FLAG, &text)? {
        Value::Object(map) => Ok(map),
        _ => Err(CliError::param(FLAG, "expected a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkvc_proto::v1::{ContainerProvider, JobDriver};
    use std::io::Write;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn temp_file(contents: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "sparkvc-cli-test-{}-{}.json",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(contents.as_bytes())
            .unwrap();
        path
    }

    #[test]
    fn file_urls_are_read() {
        let path = temp_file(r#"{"sparkSubmitJobDriver": {"entryPoint": "s3://a/b.py"}}"#);
        let driver: JobDriver =
            parse_structure("--job-driver", &format!("file://{}", path.display())).unwrap();
        assert_eq!(
            driver.spark_submit_job_driver.unwrap().entry_point,
            "s3://a/b.py"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn missing_files_name_the_flag_and_the_path() {
        let err = parse_structure::<JobDriver>("--job-driver", "file:///nonexistent/x.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Error parsing parameter '--job-driver': Unable to load paramfile \
                 file:///nonexistent/x.json: "
            ),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_and_unknown_members_are_reported() {
        let err = parse_structure::<JobDriver>("--job-driver", "{\"sparkSubmitJobDriver\": ")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Error parsing parameter '--job-driver': Invalid JSON: "),
            "{err}"
        );
        let err = parse_structure::<JobDriver>("--job-driver", r#"{"sparkSubmitJobDrivr": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Error parsing parameter '--job-driver': unknown field `sparkSubmitJobDrivr`"
            ),
            "{err}"
        );
    }

    #[test]
    fn structures_accept_shorthand() {
        let provider: ContainerProvider = parse_structure(
            "--container-provider",
            "id=c1,type=EKS,info={eksInfo={namespace=ns}}",
        )
        .unwrap();
        assert_eq!(provider.info.unwrap().eks_info.unwrap().namespace, "ns");
        let err = parse_structure::<ContainerProvider>("--container-provider", "c1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Error parsing parameter '--container-provider': expected key=value, found \"c1\""
        );
    }

    #[test]
    fn string_maps_accept_shorthand_json_and_repeats() {
        let tags = parse_string_map(
            "--tags",
            &strings(&["k1=v1,k2=v2", r#"{"k3": "v3"}"#, "k1=x"]),
        )
        .unwrap();
        assert_eq!(
            tags,
            BTreeMap::from([
                ("k1".to_string(), "x".to_string()),
                ("k2".to_string(), "v2".to_string()),
                ("k3".to_string(), "v3".to_string()),
            ])
        );
        let err = parse_string_map("--tags", &strings(&[r#"{"k": 1}"#]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid type: integer `1`"), "{err}");
    }

    #[test]
    fn string_lists_accept_spaces_commas_and_json() {
        let states = parse_string_list(
            "--states",
            &strings(&["PENDING", "RUNNING,FAILED", r#"["COMPLETED"]"#]),
        )
        .unwrap();
        assert_eq!(
            states,
            strings(&["PENDING", "RUNNING", "FAILED", "COMPLETED"])
        );
    }

    #[test]
    fn timestamps_are_checked() {
        assert_eq!(
            parse_timestamp("--created-after", "2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05Z"
        );
        assert!(parse_timestamp("--created-after", "2026-01-02").is_ok());
        assert!(parse_timestamp("--created-after", "1767225600").is_ok());
        let err = parse_timestamp("--created-after", "yesterday")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Error parsing parameter '--created-after': invalid timestamp"),
            "{err}"
        );
    }

    #[test]
    fn cli_input_must_be_an_object() {
        assert!(
            parse_cli_input(r#"{"id": "x"}"#)
                .unwrap()
                .contains_key("id")
        );
        assert_eq!(
            parse_cli_input("[1]").unwrap_err().to_string(),
            "Error parsing parameter '--cli-input-json': expected a JSON object"
        );
    }
}
