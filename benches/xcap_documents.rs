//! CPU cost on the reactor thread of an addressbook on an XCAP server: an HTTP response
//! carrying a user's resource-lists document read by the XCAP client's response reader
//! (chunked, as servers stream large documents), the document parsed, and written again (what
//! every update PUTs). Sizes: 50, 200 (the default `presence.max_subscriptions_per_account`)
//! and 1,000 contacts (the default `addressbook.max_entries`), each entry with the gateway's
//! JSON extension element as `tests/contacts_xcap.rs` sees it written.
//!
//! Run: `cargo bench --bench xcap_documents`. Reports thread CPU per operation; the reactor
//! budget is 2 ms per turn (README, "Running in production").

use std::hint::black_box;

use presence::resource_lists::ResourceLists;
use xcap::response::ResponseParser;

/// CPU time of this thread (ns), from /proc (no unsafe clock_gettime needed).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn document(contacts: usize) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n  <list name=\"contacts\">\n",
    );
    for i in 0..contacts {
        doc.push_str(&format!(
            "    <entry uri=\"sip:user{i}@example.test\"><display-name>User {i}</display-name>\
             <contact xmlns=\"urn:ag-projects:xml:ns:sylk-gateway:addressbook\" id=\"c{i}\">\
             {{\"uris\":[{{\"id\":\"u1\",\"uri\":\"sip:user{i}@example.test\",\"type\":\"sip\",\"default\":true}}],\
             \"dialog\":{{\"policy\":\"default\",\"subscribe\":false}},\
             \"presence\":{{\"policy\":\"allow\",\"subscribe\":true}},\"attributes\":{{\"color\":\"red\"}}}}\
             </contact></entry>\n"
        ));
    }
    doc.push_str("  </list>\n</resource-lists>\n");
    doc
}

/// The document as a chunked HTTP response in 4 KiB chunks.
fn response(doc: &str) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Type: application/resource-lists+xml\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in doc.as_bytes().chunks(4096) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Thread CPU per call of `f`, over at least half a second of calls (the scheduler
/// accounts CPU time at its own ticks, so short runs would read as zero).
fn measure(label: &str, mut f: impl FnMut()) {
    f();
    let wall = std::time::Instant::now();
    let start = thread_cpu_ns();
    let mut rounds = 0u64;
    while wall.elapsed() < std::time::Duration::from_millis(500) {
        f();
        rounds += 1;
    }
    let per = (thread_cpu_ns() - start) / rounds;
    println!("{label:<44} {:>9.1} us", per as f64 / 1000.0);
}

fn main() {
    for contacts in [50, 200, 1000] {
        let doc = document(contacts);
        let bytes = response(&doc);
        println!("{contacts} contacts: document {} KiB", doc.len() / 1024);
        measure("  response read (16 KiB reads, chunked)", || {
            let mut p = ResponseParser::new(16 * 1024 * 1024);
            let mut got = None;
            for read in bytes.chunks(16 * 1024) {
                if let Some(r) = p.push(read).unwrap() {
                    got = Some(r);
                }
            }
            black_box(got.unwrap());
        });
        measure("  resource-lists parsed", || {
            black_box(ResourceLists::parse(doc.as_bytes()).unwrap());
        });
        let lists = ResourceLists::parse(doc.as_bytes()).unwrap();
        measure("  resource-lists written", || {
            black_box(lists.to_xml());
        });
    }
}
