//! The identity store in force, replaced when its files change or on
//! SIGHUP: principals, keys and policies can be added, rotated and revoked
//! without a restart. A change that does not load (a typo, a policy that
//! does not parse) is logged and counted, and the previous store stays in
//! force: nobody is locked out by a half-written file.

use super::identities::{Identities, IdentityError};
use crate::reload::{Outcome, Seen, fingerprint, stamp};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug)]
pub struct IdentityStore {
    path: PathBuf,
    current: RwLock<Arc<Identities>>,
    seen: Mutex<Seen>,
}

impl IdentityStore {
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let identities = Identities::load(path)?;
        let seen = Seen::new(fingerprint(identities.files()));
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(identities)),
            seen: Mutex::new(seen),
        })
    }

    /// The store in force (a reload does not change what a call in flight
    /// holds).
    pub fn current(&self) -> Arc<Identities> {
        self.current.read().expect("identities lock").clone()
    }

    /// Loads the files again if they changed since the last load or the
    /// last failed one (or if `force`, as on SIGHUP).
    pub fn reload(&self, force: bool) -> Outcome {
        let mut seen = self.seen.lock().expect("seen lock");
        let watched = self.current().files().to_vec();
        // Reading a large store every few seconds costs more than a stat.
        if seen.same_stamp(stamp(&watched)) && !force {
            return Outcome::Unchanged;
        }
        let before = fingerprint(&watched);
        if !force && !seen.is_new(&before) {
            return Outcome::Unchanged;
        }
        match Identities::load(&self.path) {
            Ok(identities) => {
                // The new store may name other policy files.
                let after = fingerprint(identities.files());
                tracing::info!(
                    file = %self.path.display(),
                    principals = identities.principal_count(),
                    "identities reloaded"
                );
                *self.current.write().expect("identities lock") = Arc::new(identities);
                seen.loaded(after);
                Outcome::Reloaded
            }
            Err(err) => {
                tracing::error!(error = %err, "identities not reloaded; the previous ones stay in force");
                seen.failed(before);
                Outcome::Failed
            }
        }
    }

    /// Reloads on change (polled) and on SIGHUP, telling `report` what each
    /// attempt did, until the returned task is aborted.
    pub fn watch(
        self: &Arc<Self>,
        report: impl Fn(Outcome) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        crate::reload::watch(true, move |forced| report(store.reload(forced)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
[[policy]]
name = "p"
file = "p.json"

[[principal]]
arn = "arn:aws:iam::123456789012:user/a"
policies = ["p"]
[[principal.access_key]]
id = "AKIAONEEXAMPLE0001"
secret = "s"
"#;

    #[test]
    fn changes_to_the_file_or_its_policy_files_are_loaded_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.toml");
        let policy = dir.path().join("p.json");
        std::fs::write(&path, ONE).unwrap();
        let allow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
        std::fs::write(&policy, allow).unwrap();
        let store = IdentityStore::load(&path).unwrap();
        assert_eq!(store.current().files(), [path.clone(), policy.clone()]);
        assert_eq!(store.reload(false), Outcome::Unchanged);

        // A second principal.
        let two = format!("{ONE}\n[[principal]]\narn = \"arn:aws:iam::123456789012:user/b\"\n");
        std::fs::write(&path, &two).unwrap();
        assert_eq!(store.reload(false), Outcome::Reloaded);
        assert_eq!(store.current().principal_count(), 2);

        // A policy file that no longer parses: refused once, then quiet;
        // the two principals stay.
        std::fs::write(&policy, "{not json").unwrap();
        assert_eq!(store.reload(false), Outcome::Failed);
        assert_eq!(store.reload(false), Outcome::Unchanged);
        assert_eq!(store.current().principal_count(), 2);

        // Put back: the files are what is loaded again, nothing to do.
        // SIGHUP loads even when nothing changed.
        std::fs::write(&policy, allow).unwrap();
        assert_eq!(store.reload(false), Outcome::Unchanged);
        assert_eq!(store.reload(true), Outcome::Reloaded);

        // The identity file removed: refused, the store stays.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.reload(false), Outcome::Failed);
        assert_eq!(store.current().principal_count(), 2);
    }
}
