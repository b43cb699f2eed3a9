//! Fair share: a token bucket per principal. A call over its principal's
//! limit is refused before it does anything (`ThrottlingException`,
//! `RESOURCE_EXHAUSTED`), so one tenant flooding the API spends only its
//! own budget and the server's work stays bounded for everyone else.
//!
//! The buckets are kept in memory; a restart refills them, which errs on
//! the side of serving.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A principal's limit: a sustained rate and a burst on top.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub requests_per_second: f64,
    pub burst: u32,
}

impl Limit {
    /// When the identity file sets none: generous for a person or a
    /// scheduler, small next to what the server can take (thousands/s).
    pub const DEFAULT: Limit = Limit {
        requests_per_second: 200.0,
        burst: 400,
    };

    pub fn check(&self) -> Result<(), String> {
        if !(self.requests_per_second > 0.0 && self.requests_per_second.is_finite()) {
            return Err("requests_per_second must be a positive number".into());
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every principal that has called.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `principal`'s bucket; on refusal, how long
    /// until one is there.
    pub fn take(&self, principal: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let burst = f64::from(limit.burst);
        let bucket = buckets.entry(principal.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.requests_per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.requests_per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_and_principals_apart() {
        let limiter = RateLimiter::default();
        let limit = Limit {
            requests_per_second: 10.0,
            burst: 5,
        };
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take("a", limit, t0).is_ok());
        }
        let wait = limiter.take("a", limit, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Another principal has its own bucket.
        assert!(limiter.take("b", limit, t0).is_ok());
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.take("a", limit, t1).is_ok());
        assert!(limiter.take("a", limit, t1).is_err());
        // Idle for long, the bucket refills to its burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(limiter.take("a", limit, t2).is_ok());
        }
        assert!(limiter.take("a", limit, t2).is_err());
    }

    #[test]
    fn limits_are_checked() {
        assert!(Limit::DEFAULT.check().is_ok());
        let zero = Limit {
            requests_per_second: 0.0,
            burst: 1,
        };
        assert!(zero.check().is_err());
    }
}
