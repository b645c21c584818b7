//! A table of deadlines keyed by an id: arm, re-arm, cancel and pop the due ones.
//!
//! Re-arming is O(log n) without searching the heap: each key's current deadline is
//! remembered and heap entries that no longer match it are skipped when they surface
//! (the lazy-deletion scheme quinn and tokio-util's `DelayQueue` avoid needing by other
//! means; here it keeps one small type serving every table).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines keyed by `K`; at most one live deadline per key.
#[derive(Debug, Clone)]
pub struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    armed: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            armed: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Deadlines<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline to `at` (`None`: cancels it). Setting the deadline it already
    /// has is free, which lets callers re-arm from an engine's `poll_timeout` after every
    /// input without growing the heap.
    pub fn set(&mut self, key: K, at: Option<Instant>) {
        match at {
            Some(at) => {
                if self.armed.insert(key, at) != Some(at) {
                    self.heap.push(Reverse((at, key)));
                }
            }
            None => self.cancel(key),
        }
    }

    /// Cancels `key`'s deadline, if any.
    pub fn cancel(&mut self, key: K) {
        self.armed.remove(&key);
        self.compact_if_sparse();
    }

    /// The deadline armed for `key`.
    pub fn get(&self, key: K) -> Option<Instant> {
        self.armed.get(&key).copied()
    }

    /// The earliest live deadline.
    pub fn earliest(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns a key whose deadline is at or before `now`; call until `None`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.skip_stale();
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.armed.remove(&key);
        Some(key)
    }

    /// Number of keys with a live deadline.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// Whether no deadline is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Drops heap entries superseded by a re-arm or a cancel, until the top is live.
    fn skip_stale(&mut self) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.armed.get(key) == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Bounds the heap: with many cancels and re-arms of keys that never come due, stale
    /// entries would otherwise pile up under a live top.
    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 4 * self.armed.len() {
            let armed = &self.armed;
            self.heap
                .retain(|Reverse((at, key))| armed.get(key) == Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::new();
        d.set(1u32, Some(ms(30)));
        d.set(2, Some(ms(10)));
        d.set(3, Some(ms(20)));
        assert_eq!(d.earliest(), Some(ms(10)));
        assert_eq!(d.pop_due(ms(5)), None);
        assert_eq!(d.pop_due(ms(25)), Some(2));
        assert_eq!(d.pop_due(ms(25)), Some(3));
        assert_eq!(d.pop_due(ms(25)), None);
        assert_eq!(d.len(), 1);
        assert_eq!(d.pop_due(ms(30)), Some(1));
        assert!(d.is_empty());
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn rearm_and_cancel_supersede_earlier_entries() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::new();
        d.set(1u32, Some(ms(10)));
        d.set(1, Some(ms(50)));
        d.set(2, Some(ms(20)));
        d.cancel(2);
        assert_eq!(d.earliest(), Some(ms(50)));
        assert_eq!(d.pop_due(ms(40)), None);
        assert_eq!(d.get(1), Some(ms(50)));
        d.set(1, None);
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn setting_the_same_deadline_again_does_not_grow_the_heap() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        for _ in 0..1000 {
            d.set(7u32, Some(t0));
        }
        assert_eq!(d.heap.len(), 1);
    }

    #[test]
    fn heap_stays_bounded_under_churn() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        for i in 0..10_000u64 {
            d.set(i % 8, Some(t0 + Duration::from_millis(i)));
            d.cancel(i % 8);
        }
        assert!(d.heap.len() <= 64 + 8, "heap grew to {}", d.heap.len());
    }
}
