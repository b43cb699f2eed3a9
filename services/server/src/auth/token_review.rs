//! Kubernetes bearer tokens (`authorization: Bearer …`), checked with a
//! TokenReview on the cluster the identity store names, so that in-cluster
//! clients (an Airflow worker, a CI job) authenticate with their
//! ServiceAccount token and no stored secret.
//!
//! A TokenReview stores nothing on the cluster: it asks the API server who
//! a token belongs to, with the audiences sparkvc accepts, so a token
//! meant for the API server itself (a pod's default token) is refused.
//! Answers are kept for `cache_seconds` (refusals for a few seconds), keyed
//! by the token's SHA-256, never the token; a flood of bad tokens then
//! costs the API server one review per distinct token per few seconds.

use super::AuthError;
use super::identities::TokenReviewSettings;
use crate::cluster::Clusters;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refusal is remembered.
const REFUSAL_CACHE: Duration = Duration::from_secs(5);
/// Cached answers at most; beyond it, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 10_000;
/// How long the API server gets to answer.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// The bearer token of a request, if it carries one.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[derive(Debug)]
struct Answer {
    until: Instant,
    /// The Kubernetes username; none if the token was refused.
    username: Option<String>,
}

/// Reviews tokens and remembers the answers.
#[derive(Debug)]
pub struct TokenReviewer {
    clusters: Clusters,
    answers: Mutex<HashMap<[u8; 32], Answer>>,
}

impl TokenReviewer {
    pub fn new(clusters: Clusters) -> Self {
        Self {
            clusters,
            answers: Mutex::default(),
        }
    }

    /// The Kubernetes username `token` belongs to, if the cluster says it
    /// is valid for one of `settings.audiences`.
    pub async fn review(
        &self,
        token: &str,
        settings: &TokenReviewSettings,
    ) -> Result<String, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(answer) = self.answers.lock().expect("answers lock").get(&key)
            && answer.until > now
        {
            return answer.username.clone().ok_or(AuthError::UnrecognizedClient);
        }
        let username = self.ask(token, settings).await?;
        let until = match &username {
            Some(_) => now + Duration::from_secs(settings.cache_seconds),
            None => now + REFUSAL_CACHE,
        };
        let mut answers = self.answers.lock().expect("answers lock");
        if answers.len() >= CACHE_ENTRIES {
            answers.retain(|_, a| a.until > now);
            if answers.len() >= CACHE_ENTRIES {
                answers.clear();
            }
        }
        answers.insert(
            key,
            Answer {
                until,
                username: username.clone(),
            },
        );
        username.ok_or(AuthError::UnrecognizedClient)
    }

    /// One TokenReview; `None` when the API server says the token is not
    /// valid (for these audiences).
    async fn ask(
        &self,
        token: &str,
        settings: &TokenReviewSettings,
    ) -> Result<Option<String>, AuthError> {
        let client = self.clusters.get(&settings.cluster).ok_or_else(|| {
            AuthError::Unavailable(format!(
                "bearer tokens are checked on cluster {}, which this server has no connection to",
                settings.cluster
            ))
        })?;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(settings.audiences.clone()),
            },
            ..Default::default()
        };
        let api = kube::Api::<TokenReview>::all(client.clone());
        let created = tokio::time::timeout(
            REVIEW_TIMEOUT,
            api.create(&kube::api::PostParams::default(), &review),
        )
        .await
        .map_err(|_| AuthError::Unavailable("the token review timed out".into()))?
        .map_err(|err| {
            tracing::warn!(cluster = %settings.cluster, error = %err, "token review failed");
            AuthError::Unavailable("the token review failed; try again".into())
        })?;
        let Some(status) = created.status else {
            return Ok(None);
        };
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        // The API server only says authenticated when the token is for one
        // of the audiences asked; check anyway, an old one may not.
        let accepted = status
            .audiences
            .as_ref()
            .is_none_or(|auds| auds.iter().any(|a| settings.audiences.contains(a)));
        if !accepted {
            return Ok(None);
        }
        Ok(status.user.and_then(|u| u.username))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_authorization_is_a_token() {
        let headers = |value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert_eq!(bearer_token(&headers("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(
            bearer_token(&headers(
                "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/iam/aws4_request"
            )),
            None
        );
        assert_eq!(bearer_token(&http::HeaderMap::new()), None);
    }
}
