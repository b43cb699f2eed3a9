//! Kubernetes' syntax for the values users hand to sparkvc that end up in
//! object fields: resource quantities, label keys and values, annotation keys.
//! Checked when a run is rendered so that a bad value fails the run with a
//! message naming the setting instead of the API server refusing the pod.

use super::RenderError;

/// A Kubernetes resource quantity (`500m`, `1`, `1.5`, `512Mi`, `2G`, `1e3`).
pub fn check_quantity(field: &str, value: &str) -> Result<(), RenderError> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$",
        )
        .expect("quantity regex")
    });
    if RE.is_match(value) {
        Ok(())
    } else {
        Err(RenderError::user(
            field,
            format!("{field}: the value is not a Kubernetes quantity (such as 500m or 512Mi)"),
        ))
    }
}

/// A label key (optionally prefixed `dns.subdomain/`) and value.
pub fn check_label(field: &str, key: &str, value: &str) -> Result<(), RenderError> {
    static VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
            .expect("label regex")
    });
    if !is_qualified_name(key) {
        return Err(RenderError::user(
            field,
            format!("{field}: {key:?} is not a valid label key"),
        ));
    }
    if !VALUE.is_match(value) {
        return Err(RenderError::user(
            field,
            format!(
                "{field}: the value is not a valid label value (at most 63 characters: letters, digits, -, _ and ., beginning and ending with a letter or digit)"
            ),
        ));
    }
    Ok(())
}

/// Kubernetes' "qualified name": `[prefix/]name`.
pub fn is_qualified_name(key: &str) -> bool {
    static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$").expect("name regex")
    });
    static PREFIX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
            .expect("prefix regex")
    });
    match key.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253 && PREFIX.is_match(prefix) && NAME.is_match(name)
        }
        None => NAME.is_match(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["1", "500m", "0.5", ".5", "512Mi", "2G", "1e3", "+1"] {
            assert!(check_quantity("f", ok).is_ok(), "{ok}");
        }
        for bad in ["", "m", "1mi", "-1", "1 Gi", "1.2.3", "lots"] {
            assert!(check_quantity("f", bad).is_err(), "{bad}");
        }
    }
}
