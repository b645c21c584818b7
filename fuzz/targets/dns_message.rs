// DNS response parsing and the resolver's datagram path on arbitrary bytes: nothing a server
// sends may panic. Run with `cargo +nightly fuzz run dns_message` from the repository root.
//
// The body of fuzz target `dns_message`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/dns_message.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::time::Instant;

use sip::dns::{wire, RecordType, Resolver, ResolverConfig};

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let _ = wire::parse_query(data);
    let _ = wire::parse_response_question(data);
    if let Ok(response) = wire::parse_response(data) {
        // A name is at most 255 octets on the wire; escaping at most quadruples it.
        for record in &response.answers {
            assert!(record.name.len() <= 4 * 255);
        }
    }

    // The same bytes as an answer to a query in flight: patch in the id the resolver chose so
    // that the parse, CNAME, cache and retry paths behind the id check are reached too.
    let server = "127.0.0.1:53".parse().unwrap();
    let mut resolver = Resolver::new(
        ResolverConfig::with_nameservers(vec![server]),
        engine::Rng::seed_from_u64(1),
    );
    let now = Instant::now();
    resolver.query(now, "example.com", RecordType::Srv);
    let Some(query) = resolver.poll_transmit() else {
        return;
    };
    let mut datagram = data.to_vec();
    if let (Some(id), Some(slot)) = (query.payload.get(..2), datagram.get_mut(..2)) {
        slot.copy_from_slice(id);
    }
    resolver.handle_datagram(now, server, &datagram);
    while resolver.poll_event().is_some() {}
    while resolver.poll_transmit().is_some() {}
}
