//! Per-partner rate limits: a token bucket per partner holding up to one
//! minute's allowance, refilled continuously. Time is passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: DateTime<Utc>,
}

/// The limiter shared by all requests.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token for `partner` allowed `per_minute` requests; `Err(seconds)`
    /// to wait when the bucket is empty.
    pub fn check(&self, partner: &str, per_minute: i64, now: DateTime<Utc>) -> Result<(), u64> {
        if per_minute <= 0 {
            return Err(60);
        }
        let capacity = per_minute as f64;
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(partner.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = (now - bucket.updated).num_milliseconds().max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / per_second).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    #[test]
    fn a_burst_beyond_the_allowance_waits_and_refills() {
        let limiter = RateLimiter::default();
        let t0 = Utc.with_ymd_and_hms(2024, 10, 8, 9, 0, 0).single().expect("time");
        for _ in 0..60 {
            assert_eq!(limiter.check("court-a", 60, t0), Ok(()));
        }
        assert_eq!(limiter.check("court-a", 60, t0), Err(1));
        assert_eq!(limiter.check("court-b", 60, t0), Ok(()), "partners have separate buckets");
        assert_eq!(limiter.check("court-a", 60, t0 + TimeDelta::seconds(2)), Ok(()));
    }
}
