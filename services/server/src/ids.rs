//! Resource IDs and ARNs.
//!
//! IDs are lowercase base36, like AWS's: 25 characters for virtual clusters,
//! job templates and security configurations, 19 for job runs. The first 11
//! characters encode the creation time in microseconds, so IDs sort in
//! creation order: the store lists newest first by walking its keys
//! backwards, and a `createdBefore`/`createdAfter` filter becomes a key range.
//! The rest is random, so IDs are unique across processes and restarts.

use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Width of the time prefix: 36^11 microseconds is about 4,200 years.
pub const TIME_PREFIX_LEN: usize = 11;
/// The last microsecond a time prefix can hold (36^11 - 1, in the year 6140).
/// Later times are treated as this one, so that a far-future
/// `createdBefore` means "no upper bound" instead of wrapping around.
pub const MAX_ID_MICROS: u64 = 36u64.pow(TIME_PREFIX_LEN as u32) - 1;
pub const VIRTUAL_CLUSTER_ID_LEN: usize = 25;
pub const JOB_RUN_ID_LEN: usize = 19;
pub const TEMPLATE_ID_LEN: usize = 25;

/// A strictly increasing microsecond clock, so that two IDs made in the same
/// microsecond still sort in the order they were made.
///
/// It reads the system clock, or in tests a [`ManualTime`] that only moves
/// when told to: the executor's backoffs, timeouts and TTLs all read this
/// clock, so tests run them without waiting.
#[derive(Debug, Default)]
pub struct Clock {
    last_micros: AtomicU64,
    manual: Option<ManualTime>,
}

/// Time that moves only when a test advances it (microseconds since the
/// Unix epoch).
#[derive(Debug, Clone)]
pub struct ManualTime(Arc<AtomicU64>);

impl ManualTime {
    pub fn new(start_micros: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_micros)))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.0.fetch_add(micros, Ordering::Relaxed);
    }
}

impl Clock {
    /// A clock that reads `time` instead of the system clock.
    pub fn manual(time: &ManualTime) -> Self {
        Self {
            last_micros: AtomicU64::new(0),
            manual: Some(time.clone()),
        }
    }

    /// The wall time, as read: neither unique nor monotonic.
    fn wall_micros(&self) -> u64 {
        match &self.manual {
            Some(time) => time.0.load(Ordering::Relaxed),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        }
    }

    /// Microseconds since the Unix epoch, strictly increasing across calls,
    /// so that timestamps taken in one process never tie.
    pub fn now_micros(&self) -> u64 {
        let wall = self.wall_micros();
        let mut last = self.last_micros.load(Ordering::Relaxed);
        loop {
            let next = wall.max(last + 1);
            match self.last_micros.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// The time since the Unix epoch, for waits and deadlines. Unlike
    /// [`now_micros`](Self::now_micros) it is not made unique: a wait of
    /// 1 s must end 1 s later, however many timestamps were taken meanwhile.
    pub fn now(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.wall_micros())
    }
}

/// A new ID of `len` characters whose prefix encodes `micros`.
pub fn new_id(micros: u64, len: usize) -> String {
    let mut id = time_prefix(micros);
    let mut rng = rand::rng();
    while id.len() < len {
        id.push(ALPHABET[rng.random_range(0..36)] as char);
    }
    id
}

/// The 11-character base36 encoding of `micros` (at most
/// [`MAX_ID_MICROS`]), zero padded. Any ID made at or after `micros` sorts
/// at or after this prefix.
pub fn time_prefix(micros: u64) -> String {
    let mut digits = [b'0'; TIME_PREFIX_LEN];
    let mut n = micros.min(MAX_ID_MICROS);
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(digits.to_vec()).expect("base36 digits are ASCII")
}

/// The creation time (microseconds) encoded in an ID made by [`new_id`].
pub fn micros_of(id: &str) -> Option<u64> {
    let prefix = id.get(..TIME_PREFIX_LEN)?;
    prefix.bytes().try_fold(0u64, |acc, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        acc.checked_mul(36)?.checked_add(u64::from(digit))
    })
}

/// Builds ARNs for one partition, region and account.
#[derive(Debug, Clone)]
pub struct ArnBuilder {
    pub partition: String,
    pub region: String,
    pub account_id: String,
}

impl ArnBuilder {
    fn prefix(&self) -> String {
        format!(
            "arn:{}:emr-containers:{}:{}:",
            self.partition, self.region, self.account_id
        )
    }

    pub fn virtual_cluster(&self, id: &str) -> String {
        format!("{}/virtualclusters/{id}", self.prefix())
    }

    pub fn job_run(&self, vc_id: &str, id: &str) -> String {
        format!("{}/virtualclusters/{vc_id}/jobruns/{id}", self.prefix())
    }

    pub fn job_template(&self, id: &str) -> String {
        format!("{}/jobtemplates/{id}", self.prefix())
    }

    pub fn security_configuration(&self, id: &str) -> String {
        format!("{}/securityconfigurations/{id}", self.prefix())
    }

    /// What a taggable ARN names, if it belongs to this partition, region and
    /// account.
    pub fn parse_taggable(&self, arn: &str) -> Option<Taggable> {
        let rest = arn
            .strip_prefix(&self.prefix())?
            .strip_prefix("/virtualclusters/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [vc] => Some(Taggable::VirtualCluster((*vc).to_string())),
            [vc, "jobruns", run] => Some(Taggable::JobRun((*vc).to_string(), (*run).to_string())),
            _ => None,
        }
    }
}

/// A resource that TagResource can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taggable {
    VirtualCluster(String),
    /// (virtual cluster ID, job run ID)
    JobRun(String, String),
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_past_the_prefix_range_saturate_instead_of_wrapping() {
        assert_eq!(time_prefix(MAX_ID_MICROS), "zzzzzzzzzzz");
        assert_eq!(time_prefix(MAX_ID_MICROS + 1), "zzzzzzzzzzz");
        assert_eq!(time_prefix(u64::MAX), "zzzzzzzzzzz");
        assert!(time_prefix(MAX_ID_MICROS - 1) < time_prefix(u64::MAX));
        assert_eq!(micros_of(&time_prefix(123_456_789)), Some(123_456_789));
    }

    use super::*;

    #[test]
    fn ids_have_aws_lengths_and_alphabet() {
        let clock = Clock::default();
        let vc = new_id(clock.now_micros(), VIRTUAL_CLUSTER_ID_LEN);
        let run = new_id(clock.now_micros(), JOB_RUN_ID_LEN);
        assert_eq!(vc.len(), 25);
        assert_eq!(run.len(), 19);
        assert!(
            vc.chars()
                .chain(run.chars())
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn ids_sort_in_creation_order_and_encode_their_time() {
        let clock = Clock::default();
        let ids: Vec<_> = (0..1000)
            .map(|_| new_id(clock.now_micros(), JOB_RUN_ID_LEN))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let micros = clock.now_micros();
        assert_eq!(micros_of(&new_id(micros, 19)), Some(micros));
        assert!(time_prefix(micros) <= new_id(micros, 19));
    }

    #[test]
    fn arns_follow_the_aws_layout_and_parse_back() {
        let arns = ArnBuilder {
            partition: "aws".into(),
            region: "us-west-2".into(),
            account_id: "123456789012".into(),
        };
        let vc = arns.virtual_cluster("abc");
        assert_eq!(
            vc,
            "arn:aws:emr-containers:us-west-2:123456789012:/virtualclusters/abc"
        );
        assert_eq!(
            arns.parse_taggable(&vc),
            Some(Taggable::VirtualCluster("abc".into()))
        );
        let run = arns.job_run("abc", "def");
        assert_eq!(
            arns.parse_taggable(&run),
            Some(Taggable::JobRun("abc".into(), "def".into()))
        );
        assert_eq!(
            arns.parse_taggable(
                "arn:aws:emr-containers:eu-west-1:123456789012:/virtualclusters/abc"
            ),
            None
        );
    }
}
