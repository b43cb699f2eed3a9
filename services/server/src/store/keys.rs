//! Key layouts of the store's trees, and the opaque pagination tokens built
//! from them.
//!
//! IDs begin with their creation time (see `ids`), so within a tree, or
//! within one virtual cluster's slice of the job-run tree, key order is
//! creation order: listing newest first walks keys backwards, and a
//! `createdAfter`/`createdBefore` window is a key range.

use crate::ids;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `<vcId>/<jobRunId>`: one virtual cluster's runs are one contiguous range.
pub fn job_run(vc_id: &str, run_id: &str) -> Vec<u8> {
    format!("{vc_id}/{run_id}").into_bytes()
}

pub fn job_run_prefix(vc_id: &str) -> Vec<u8> {
    format!("{vc_id}/").into_bytes()
}

/// A state-index key, `<prefix><state>/<suffix>`, for the record stored
/// under `<prefix><suffix>`: `<vcId>/<state>/<jobRunId>` for a job run,
/// `<state>/<vcId>` for a virtual cluster. The records of one state (of one
/// virtual cluster, for runs) are one contiguous range, in the same order as
/// their own keys, so a listing by state walks only them.
pub fn by_state(prefix: &[u8], state: &str, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + state.len() + 1 + suffix.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(state.as_bytes());
    key.push(b'/');
    key.extend_from_slice(suffix);
    key
}

/// A timer key: the due time first, so a range scan finds what is due.
pub fn timer(due_micros: u64, vc_id: &str, run_id: &str) -> Vec<u8> {
    format!("{due_micros:016x}/{vc_id}/{run_id}").into_bytes()
}

/// The first timer key after everything due at or before `now_micros`.
pub fn timer_bound(now_micros: u64) -> Vec<u8> {
    format!("{:016x}/", now_micros.saturating_add(1)).into_bytes()
}

/// Splits a timer key into (due time, virtual cluster ID, job run ID).
pub fn split_timer(key: &[u8]) -> Option<(u64, String, String)> {
    let text = std::str::from_utf8(key).ok()?;
    let (due, rest) = text.split_once('/')?;
    let (vc, run) = rest.split_once('/')?;
    let due = u64::from_str_radix(due, 16).ok()?;
    Some((due, vc.to_string(), run.to_string()))
}

/// Splits a job-run key into (virtual cluster ID, job run ID).
pub fn split_job_run(key: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(key).ok()?;
    let (vc, run) = text.split_once('/')?;
    Some((vc.to_string(), run.to_string()))
}

/// `<containerProviderId>/<namespace>`: which live virtual cluster owns a namespace.
pub fn namespace(provider_id: &str, namespace: &str) -> Vec<u8> {
    format!("{provider_id}/{namespace}").into_bytes()
}

/// `<operation>/<scope>/<clientToken>`.
pub fn client_token(operation: &str, scope: &str, token: &str) -> Vec<u8> {
    format!("{operation}/{scope}/{token}").into_bytes()
}

/// Key bounds, within `prefix`, of the resources created in a time window
/// (both ends inclusive, microseconds since the epoch).
pub fn time_window(prefix: &[u8], after: Option<u64>, before: Option<u64>) -> (Vec<u8>, Vec<u8>) {
    let mut low = prefix.to_vec();
    low.extend_from_slice(ids::time_prefix(after.unwrap_or(0)).as_bytes());
    let mut high = prefix.to_vec();
    match before {
        Some(b) => high.extend_from_slice(ids::time_prefix(b.saturating_add(1)).as_bytes()),
        // Past every base36 digit.
        None => high.push(b'~'),
    }
    (low, high)
}

/// Where a listing stopped: the last key it returned. Tokens are bound to
/// the listing they came from, so one cannot be replayed against another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub after: Vec<u8>,
}

impl Cursor {
    pub fn to_token(&self, listing: &str) -> String {
        let mut raw = format!("{listing}\n").into_bytes();
        raw.extend_from_slice(&self.after);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a token made by [`Cursor::to_token`] for the same listing.
    pub fn from_token(token: &str, listing: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let split = raw.iter().position(|b| *b == b'\n')?;
        if &raw[..split] != listing.as_bytes() {
            return None;
        }
        let after = raw[split + 1..].to_vec();
        let valid = !after.is_empty()
            && after
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'/');
        valid.then_some(Self { after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_for_their_listing() {
        let cursor = Cursor {
            after: job_run("vc", "run"),
        };
        let token = cursor.to_token("jobruns/vc");
        assert_eq!(Cursor::from_token(&token, "jobruns/vc"), Some(cursor));
        assert_eq!(Cursor::from_token(&token, "jobruns/other"), None);
        assert_eq!(Cursor::from_token("not a token!", "jobruns/vc"), None);
    }

    #[test]
    fn time_windows_bound_ids_made_in_them() {
        let (low, high) = time_window(b"vc/", Some(100), Some(200));
        let inside = job_run("vc", &ids::new_id(150, 19));
        let at_end = job_run("vc", &ids::new_id(200, 19));
        let later = job_run("vc", &ids::new_id(201, 19));
        assert!(low <= inside && inside < high);
        assert!(at_end < high);
        assert!(later >= high);
    }
}
