//! Token-bucket rate limits by key (an account, a SIP sender): `rate` tokens a second, at
//! most `rate` saved up. The table is bounded: when it is full, keys whose bucket has
//! refilled (idle senders) are dropped first.

use std::collections::HashMap;
use std::time::Instant;

/// Most keys remembered.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit over many keys.
#[derive(Debug)]
pub(super) struct RateLimiter {
    rate: f64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    pub(super) fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `key`; `false` when it has none left.
    pub(super) fn allow(&mut self, now: Instant, key: &str) -> bool {
        if self.buckets.len() >= MAX_KEYS && !self.buckets.contains_key(key) {
            let rate = self.rate;
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < rate
            });
            if self.buckets.len() >= MAX_KEYS {
                return false;
            }
        }
        let rate = self.rate;
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let mut r = RateLimiter::new(5);
        let t = Instant::now();
        assert!((0..5).all(|_| r.allow(t, "a")));
        assert!(!r.allow(t, "a"));
        assert!(r.allow(t, "b"), "keys are independent");
        assert!(
            r.allow(t + Duration::from_millis(200), "a"),
            "one token in 200 ms"
        );
        assert!(!r.allow(t + Duration::from_millis(200), "a"));
    }
}
