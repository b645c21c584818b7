//! The resource-lists parse allocates a fixed number of times per contact entry, however
//! long the document, with a bounded peak heap: the regression guard for the copies that
//! made a 1,000-contact parse superlinear (README, "Benchmarks": every kept extension
//! element was cloned out of the element tree, and past glibc's trim threshold the larger
//! peak was faulted in again on every parse). Counted, not timed.
//!
//! The unsafe code is the counting allocator shim only; the crate forbids unsafe code.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use presence::resource_lists::ResourceLists;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

// `try_with`: during thread teardown the slots may be gone; those allocations are not ours.
fn count(allocated: bool, delta: i64) {
    if allocated {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + delta);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; only const-initialised
// thread-local Cells (whose access does not allocate) are added.
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

/// A contacts list as the gateway writes it (benches/xcap_documents.rs's shape).
fn document(contacts: usize) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n  <list name=\"contacts\">\n",
    );
    for i in 0..contacts {
        doc.push_str(&format!(
            "    <entry uri=\"sip:user{i}@example.test\"><display-name>User {i}</display-name>\
             <contact xmlns=\"urn:ag-projects:xml:ns:sylk-gateway:addressbook\" id=\"c{i}\">\
             {{\"uris\":[{{\"id\":\"u1\",\"uri\":\"sip:user{i}@example.test\"}}],\
             \"presence\":{{\"policy\":\"allow\",\"subscribe\":true}}}}</contact></entry>\n"
        ));
    }
    doc.push_str("  </list>\n</resource-lists>\n");
    doc
}

/// Allocations and peak heap growth (bytes) of one parse, the result kept.
fn parse_cost(doc: &str) -> (u64, i64, ResourceLists) {
    let (a0, live0) = (ALLOCATIONS.with(Cell::get), LIVE.with(Cell::get));
    PEAK.with(|p| p.set(live0));
    let lists = ResourceLists::parse(doc.as_bytes()).unwrap();
    let allocations = ALLOCATIONS.with(Cell::get) - a0;
    (allocations, PEAK.with(Cell::get) - live0, lists)
}

#[test]
fn parse_allocates_a_fixed_amount_per_contact() {
    let (small, large) = (document(100), document(1000));
    let (a_small, peak_small, l_small) = parse_cost(&small);
    let (a_large, peak_large, l_large) = parse_cost(&large);
    assert_eq!(l_small.lists[0].entries.len(), 100);
    assert_eq!(l_large.lists[0].entries.len(), 1000);
    let per_contact = (a_large - a_small) as f64 / 900.0;
    println!(
        "allocations per contact {per_contact:.1}; peak heap {} / {} bytes per document byte",
        peak_small as f64 / small.len() as f64,
        peak_large as f64 / large.len() as f64
    );
    // Per entry: the entry, display-name and contact elements (name, attributes, children,
    // text) and the typed entry, the list's growth amortised: 18. Copying the kept elements
    // out of the tree took 30 and a peak heap of 10 bytes per document byte (now 6.2-6.4).
    assert!(per_contact <= 20.0, "{per_contact} allocations per contact");
    for (peak, doc) in [(peak_small, &small), (peak_large, &large)] {
        let per_byte = peak as f64 / doc.len() as f64;
        assert!(
            per_byte <= 8.0,
            "peak heap {per_byte} bytes per document byte"
        );
    }
}
