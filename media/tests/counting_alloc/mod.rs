//! A counting `#[global_allocator]` shared by the zero-allocation tests (performance.md P3):
//! it forwards every call to the system allocator and counts, per thread, allocations and
//! the live heap bytes, so the test harness's other threads cannot disturb a count.
//!
//! Including this module (`mod counting_alloc;`) installs the allocator for that test binary;
//! other crates' tests include it by path (`presence/tests/parse_allocations.rs`).
//! The unsafe code is the allocator shim only; the crates themselves forbid unsafe code.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<i64> = const { Cell::new(0) };
}

// `try_with`: during thread teardown the slots may be gone; those allocations are not ours.
fn count(allocated: bool, delta: i64) {
    if allocated {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }
    let _ = LIVE_BYTES.try_with(|c| {
        c.set(c.get() + delta);
        let _ = PEAK_BYTES.try_with(|p| p.set(p.get().max(c.get())));
    });
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; only counters that are
// const-initialised thread-local Cells (whose access does not allocate) are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(true, layout.size() as i64);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(false, -(layout.size() as i64));
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(true, new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations (and reallocations) made by this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Heap bytes this thread allocated and has not freed.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.with(Cell::get)
}

/// The most heap bytes this thread held live since [`reset_peak`] (or the thread's start).
pub fn peak_bytes() -> i64 {
    PEAK_BYTES.with(Cell::get)
}

/// Starts a new peak from what this thread holds live now.
pub fn reset_peak() {
    PEAK_BYTES.with(|p| p.set(live_bytes()));
}
