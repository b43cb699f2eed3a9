//! The release catalogue: which Spark image and version each release label
//! means. Loaded from a TOML file (`deploy/releases.toml` is the default,
//! compiled in) so operators can add labels or point at their own images.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

const DEFAULT_CATALOGUE: &str = include_str!("../../../deploy/releases.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub label: String,
    pub spark_version: String,
    pub image: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    release: Vec<Release>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read release catalogue {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("release catalogue {path} is not valid: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("release catalogue {path}: label {label:?} is listed twice")]
    Duplicate { path: String, label: String },
}

/// A release label the catalogue does not have (the API answers it as a
/// ResourceNotFoundException).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Release {0} doesn't exist.")]
pub struct UnknownRelease(pub String);

#[derive(Debug, Clone)]
pub struct Catalogue {
    by_label: BTreeMap<String, Release>,
}

impl Catalogue {
    /// The catalogue shipped with sparkvc.
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_CATALOGUE, "<built-in deploy/releases.toml>")
            .expect("the built-in release catalogue is valid")
    }

    pub fn load(path: &Path) -> Result<Self, CatalogueError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    fn parse(text: &str, path: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text).map_err(|source| CatalogueError::Parse {
            path: path.into(),
            source,
        })?;
        let mut by_label = BTreeMap::new();
        for release in file.release {
            for label in std::iter::once(&release.label).chain(&release.aliases) {
                if by_label.insert(label.clone(), release.clone()).is_some() {
                    return Err(CatalogueError::Duplicate {
                        path: path.into(),
                        label: label.clone(),
                    });
                }
            }
        }
        Ok(Self { by_label })
    }

    pub fn resolve(&self, label: &str) -> Result<&Release, UnknownRelease> {
        self.by_label
            .get(label)
            .ok_or_else(|| UnknownRelease(label.to_string()))
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_resolves_latest_and_dated_labels() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.resolve("emr-7.9.0-latest").unwrap().spark_version,
            "3.5.5"
        );
        assert_eq!(
            c.resolve("emr-7.9.0-20250601").unwrap().label,
            "emr-7.9.0-latest"
        );
        assert_eq!(
            c.resolve("emr-1.0.0-latest").unwrap_err().to_string(),
            "Release emr-1.0.0-latest doesn't exist."
        );
    }

    #[test]
    fn duplicate_labels_are_refused() {
        let text = "[[release]]\nlabel='a'\nspark_version='1'\nimage='i'\n[[release]]\nlabel='b'\nspark_version='1'\nimage='i'\naliases=['a']\n";
        assert!(matches!(
            Catalogue::parse(text, "x"),
            Err(CatalogueError::Duplicate { .. })
        ));
    }
}
