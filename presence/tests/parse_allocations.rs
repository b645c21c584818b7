//! The resource-lists parse allocates a fixed number of times per contact entry, however
//! long the document, with a bounded peak heap: the regression guard for the copies that
//! made a 1,000-contact parse superlinear (README, "Benchmarks": every kept extension
//! element was cloned out of the element tree, and past glibc's trim threshold the larger
//! peak was faulted in again on every parse). Counted, not timed.
//!
//! The counting allocator is the media crate's (one shim for every allocation test).

#[path = "../../media/tests/counting_alloc/mod.rs"]
mod counting_alloc;

use presence::resource_lists::ResourceLists;

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
    let (a0, live0) = (counting_alloc::allocations(), counting_alloc::live_bytes());
    counting_alloc::reset_peak();
    let lists = ResourceLists::parse(doc.as_bytes()).unwrap();
    let allocations = counting_alloc::allocations() - a0;
    (allocations, counting_alloc::peak_bytes() - live0, lists)
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
