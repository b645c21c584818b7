//! A fixed-bucket latency histogram for the metrics endpoint: engines and the reactor
//! [`observe`](Histogram::observe) durations where they happen, and the renderer reads the
//! cumulative buckets at scrape time (the Prometheus histogram model: `le` upper bounds,
//! cumulative counts, a sum and a count).
//!
//! The bucket array is allocated once, by [`Histogram::new`]; observing is a bounded scan
//! over at most a few dozen bounds and three additions, with no allocation, no atomics and
//! no clock reads (the caller passes the measured duration).

use std::time::Duration;

/// Bounds (in microseconds) for work that should take well under a millisecond: one
/// reactor iteration, one request. 5 us to 1 s.
pub const FAST_BOUNDS_US: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];

/// Bounds (in microseconds) for network round trips and human-scale waits: call setup, a
/// store write. 1 ms to 60 s.
pub const SLOW_BOUNDS_US: &[u64] = &[
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Counts of durations per upper bound, with their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Upper bounds in microseconds, ascending.
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: Box<[u64]>,
    sum: Duration,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds_us` (ascending upper bounds in microseconds, e.g.
    /// [`FAST_BOUNDS_US`]).
    pub fn new(bounds_us: &'static [u64]) -> Histogram {
        debug_assert!(
            bounds_us.windows(2).all(|w| w[0] < w[1]),
            "ascending bounds"
        );
        Histogram {
            bounds: bounds_us,
            counts: vec![0; bounds_us.len() + 1].into_boxed_slice(),
            sum: Duration::ZERO,
            count: 0,
        }
    }

    /// Records one duration.
    pub fn observe(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // Prometheus buckets are "less than or equal" (`le`).
        let slot = self
            .bounds
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum = self.sum.saturating_add(d);
        self.count += 1;
    }

    /// `(upper bound, cumulative count)` per bucket, ascending, without the `+Inf` bucket
    /// (which is [`count`](Self::count)).
    pub fn cumulative(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        let mut running = 0;
        self.bounds
            .iter()
            .zip(self.counts.iter())
            .map(move |(&b, &c)| {
                running += c;
                (Duration::from_micros(b), running)
            })
    }

    /// Sum of every observation.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let mut h = Histogram::new(&[10, 100, 1000]);
        h.observe(Duration::from_micros(10)); // on the bound: counts in `le=10`
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_micros(999));
        h.observe(Duration::from_secs(5)); // above every bound: only in +Inf
        let b: Vec<(u64, u64)> = h
            .cumulative()
            .map(|(d, n)| (d.as_micros() as u64, n))
            .collect();
        assert_eq!(b, [(10, 1), (100, 2), (1000, 3)]);
        assert_eq!(h.count(), 4);
        assert_eq!(
            h.sum(),
            Duration::from_micros(10 + 11 + 999) + Duration::from_secs(5)
        );
    }

    #[test]
    fn the_shared_bounds_ascend() {
        for bounds in [FAST_BOUNDS_US, SLOW_BOUNDS_US] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
            let mut h = Histogram::new(bounds);
            h.observe(Duration::MAX);
            assert_eq!(h.cumulative().last().map(|(_, n)| n), Some(0));
            assert_eq!(h.count(), 1);
        }
    }
}
