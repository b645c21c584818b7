//! The resolver against scripted nameservers, in virtual time.

use super::super::test_encoder::ResponseBuilder;
use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const NS1: &str = "192.0.2.53:53";
const NS2: &str = "[2001:db8::53]:53";
const SECOND: Duration = Duration::from_secs(1);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn resolver(nameservers: &[&str]) -> Resolver {
    let mut config =
        ResolverConfig::with_nameservers(nameservers.iter().map(|n| addr(n)).collect());
    config.timeout = Duration::from_secs(2);
    Resolver::new(config, Rng::seed_from_u64(42))
}

fn transmits(resolver: &mut Resolver) -> Vec<DnsTransmit> {
    std::iter::from_fn(|| resolver.poll_transmit()).collect()
}

fn events(resolver: &mut Resolver) -> Vec<DnsEvent> {
    std::iter::from_fn(|| resolver.poll_event()).collect()
}

fn a(ip: [u8; 4]) -> RecordData {
    RecordData::A(Ipv4Addr::from(ip))
}

fn only_transmit(resolver: &mut Resolver) -> DnsTransmit {
    let mut sent = transmits(resolver);
    assert_eq!(sent.len(), 1, "expected exactly one datagram: {sent:?}");
    sent.remove(0)
}

#[test]
fn answers_a_query_and_goes_idle() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    let query = r.query(t0, "SIP.Example.com.", RecordType::A);
    assert!(r.poll_event().is_none());
    let sent = only_transmit(&mut r);
    assert_eq!(sent.destination, addr(NS1));
    assert_eq!(r.poll_timeout(), Some(t0 + 2 * SECOND));
    let reply = ResponseBuilder::answering(&sent.payload)
        .answer("sip.example.com", 300, a([192, 0, 2, 10]))
        .answer("sip.example.com", 200, a([192, 0, 2, 11]))
        .build();
    r.handle_datagram(t0 + SECOND / 10, addr(NS1), &reply);
    let done = events(&mut r);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].query, query);
    assert_eq!(done[0].name, "sip.example.com");
    let records = done[0].result.as_ref().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].data, a([192, 0, 2, 11]));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn hosts_file_answers_before_any_query() {
    let t0 = Instant::now();
    let (config, warnings) =
        ResolverConfig::from_system("nameserver 192.0.2.53\n", "192.0.2.9 pbx.lan\n");
    assert!(warnings.is_empty());
    let mut r = Resolver::new(config, Rng::seed_from_u64(1));
    let query = r.query(t0, "PBX.lan", RecordType::A);
    assert!(transmits(&mut r).is_empty());
    let done = events(&mut r);
    assert_eq!(done[0].query, query);
    assert_eq!(done[0].result.as_ref().unwrap()[0].data, a([192, 0, 2, 9]));
    // No IPv6 entry for the name: DNS is asked.
    r.query(t0, "pbx.lan", RecordType::Aaaa);
    assert_eq!(only_transmit(&mut r).destination, addr(NS1));
}

#[test]
fn ignores_wrong_source_id_and_question() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    r.query(t0, "example.com", RecordType::A);
    let sent = only_transmit(&mut r);
    let good =
        ResponseBuilder::answering(&sent.payload).answer("example.com", 60, a([192, 0, 2, 1]));
    let query = wire::parse_query(&sent.payload).unwrap();

    r.handle_datagram(t0, addr("192.0.2.66:53"), &good.build());
    r.handle_datagram(t0, addr("192.0.2.53:5353"), &good.build());
    let wrong_id = ResponseBuilder::new(query.id.wrapping_add(1), "example.com", RecordType::A)
        .answer("example.com", 60, a([192, 0, 2, 2]));
    r.handle_datagram(t0, addr(NS1), &wrong_id.build());
    let wrong_name = ResponseBuilder::new(query.id, "example.org", RecordType::A).answer(
        "example.org",
        60,
        a([192, 0, 2, 3]),
    );
    r.handle_datagram(t0, addr(NS1), &wrong_name.build());
    let wrong_type = ResponseBuilder::new(query.id, "example.com", RecordType::Aaaa);
    r.handle_datagram(t0, addr(NS1), &wrong_type.build());
    r.handle_datagram(t0, addr(NS1), &sent.payload); // our own query echoed back
    r.handle_datagram(t0, addr(NS1), &[0xde, 0xad]);
    assert!(r.poll_event().is_none(), "nothing above answers the query");

    // A dual-stack socket reports an IPv4 server as ::ffff:a.b.c.d.
    r.handle_datagram(t0, addr("[::ffff:192.0.2.53]:53"), &good.build());
    let done = events(&mut r);
    assert_eq!(done[0].result.as_ref().unwrap()[0].data, a([192, 0, 2, 1]));
}

#[test]
fn retransmits_rotating_servers_then_times_out() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1, NS2]);
    r.query(t0, "slow.example.com", RecordType::Srv);
    let mut destinations = vec![only_transmit(&mut r).destination];
    let mut now = t0;
    for round in 1..=3 {
        // Early and spurious timeouts change nothing.
        r.handle_timeout(now + SECOND);
        assert!(transmits(&mut r).is_empty());
        now = r.poll_timeout().unwrap();
        assert_eq!(now, t0 + round * 2 * SECOND);
        r.handle_timeout(now);
        destinations.push(only_transmit(&mut r).destination);
        assert!(r.poll_event().is_none());
    }
    assert_eq!(
        destinations,
        vec![addr(NS1), addr(NS2), addr(NS1), addr(NS2)]
    );
    let last = r.poll_timeout().unwrap();
    assert_eq!(last, t0 + 8 * SECOND, "2 attempts x 2 servers x 2 s");
    r.handle_timeout(last);
    assert!(transmits(&mut r).is_empty());
    let done = events(&mut r);
    assert_eq!(
        done[0].result,
        Err(DnsError::Timeout {
            name: "slow.example.com".into()
        })
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn late_answer_from_earlier_server_is_accepted() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1, NS2]);
    r.query(t0, "example.com", RecordType::Aaaa);
    let first = only_transmit(&mut r);
    r.handle_timeout(t0 + 2 * SECOND);
    assert_eq!(only_transmit(&mut r).destination, addr(NS2));
    let reply = ResponseBuilder::answering(&first.payload)
        .answer("example.com", 60, RecordData::Aaaa(Ipv6Addr::LOCALHOST))
        .build();
    r.handle_datagram(t0 + 3 * SECOND, addr(NS1), &reply);
    assert!(events(&mut r)[0].result.is_ok());
}

#[test]
fn servfail_moves_on_and_is_reported_over_a_later_timeout() {
    let t0 = Instant::now();
    let mut config = ResolverConfig::with_nameservers(vec![addr(NS1), addr(NS2)]);
    config.attempts = 1;
    let mut r = Resolver::new(config, Rng::seed_from_u64(3));
    r.query(t0, "broken.example", RecordType::Naptr);
    let sent = only_transmit(&mut r);
    let servfail = ResponseBuilder::answering(&sent.payload).rcode(2).build();
    r.handle_datagram(t0, addr(NS1), &servfail);
    let retry = only_transmit(&mut r);
    assert_eq!(
        retry.destination,
        addr(NS2),
        "the next server is asked at once"
    );
    assert_eq!(retry.payload, sent.payload);
    assert!(r.poll_event().is_none());
    r.handle_timeout(r.poll_timeout().unwrap());
    let done = events(&mut r);
    assert_eq!(
        done[0].result,
        Err(DnsError::ServerFailure {
            name: "broken.example".into()
        })
    );
}

#[test]
fn malformed_answer_to_our_question_is_retried_then_reported() {
    let t0 = Instant::now();
    let mut config = ResolverConfig::with_nameservers(vec![addr(NS1)]);
    config.attempts = 2;
    let mut r = Resolver::new(config, Rng::seed_from_u64(4));
    r.query(t0, "bad.example", RecordType::A);
    let sent = only_transmit(&mut r);
    let mut broken = ResponseBuilder::answering(&sent.payload)
        .answer("bad.example", 60, a([192, 0, 2, 1]))
        .build();
    broken.truncate(broken.len() - 2);
    r.handle_datagram(t0, addr(NS1), &broken);
    assert_eq!(only_transmit(&mut r).destination, addr(NS1));
    r.handle_datagram(t0, addr(NS1), &broken);
    assert_eq!(
        events(&mut r)[0].result,
        Err(DnsError::Malformed {
            name: "bad.example".into(),
            reason: wire::ParseError::Truncated
        })
    );
}

#[test]
fn truncated_answer_is_an_error_without_retry() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1, NS2]);
    r.query(t0, "big.example", RecordType::Srv);
    let sent = only_transmit(&mut r);
    r.handle_datagram(
        t0,
        addr(NS1),
        &ResponseBuilder::answering(&sent.payload)
            .truncated()
            .build(),
    );
    assert!(transmits(&mut r).is_empty());
    assert_eq!(
        events(&mut r)[0].result,
        Err(DnsError::Truncated {
            name: "big.example".into()
        })
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn positive_answers_are_cached_until_their_ttl_expires() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    r.query(t0, "example.com", RecordType::A);
    let sent = only_transmit(&mut r);
    let reply = ResponseBuilder::answering(&sent.payload)
        .answer("example.com", 30, a([192, 0, 2, 1]))
        .build();
    r.handle_datagram(t0, addr(NS1), &reply);
    events(&mut r);

    r.query(t0 + 10 * SECOND, "EXAMPLE.com", RecordType::A);
    assert!(transmits(&mut r).is_empty(), "answered from the cache");
    let cached = events(&mut r);
    assert_eq!(
        cached[0].result.as_ref().unwrap()[0].ttl,
        20,
        "TTL counts down"
    );

    r.query(t0 + 30 * SECOND, "example.com", RecordType::A);
    assert_eq!(transmits(&mut r).len(), 1, "expired at its TTL");
    assert!(r.poll_event().is_none());
}

#[test]
fn cname_chain_in_answer_is_followed_and_bounds_the_cache_ttl() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS2]);
    r.query(t0, "www.example.com", RecordType::Aaaa);
    let sent = only_transmit(&mut r);
    assert_eq!(sent.destination, addr(NS2));
    let ip: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let reply = ResponseBuilder::answering(&sent.payload)
        .answer(
            "www.example.com",
            5,
            RecordData::Cname("edge.example.net".into()),
        )
        .answer(
            "edge.example.net",
            300,
            RecordData::Cname("host.example.net".into()),
        )
        .answer("host.example.net", 600, RecordData::Aaaa(ip))
        .answer(
            "other.example.net",
            600,
            RecordData::Aaaa(Ipv6Addr::LOCALHOST),
        )
        .build();
    r.handle_datagram(t0, addr(NS2), &reply);
    let records = events(&mut r).remove(0).result.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "host.example.net");
    assert_eq!(records[0].data, RecordData::Aaaa(ip));
    r.query(t0 + 5 * SECOND, "www.example.com", RecordType::Aaaa);
    assert_eq!(
        transmits(&mut r).len(),
        1,
        "the 5 s CNAME TTL limits the cache entry"
    );
}

#[test]
fn negative_answers_are_cached_briefly_only_with_soa() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    r.query(t0, "gone.example", RecordType::A);
    let sent = only_transmit(&mut r);
    let nxdomain = ResponseBuilder::answering(&sent.payload)
        .rcode(3)
        .soa(3600, 900)
        .build();
    r.handle_datagram(t0, addr(NS1), &nxdomain);
    let expected = Err(DnsError::NxDomain {
        name: "gone.example".into(),
    });
    assert_eq!(events(&mut r)[0].result, expected);

    r.query(t0 + 59 * SECOND, "gone.example", RecordType::A);
    assert!(transmits(&mut r).is_empty());
    assert_eq!(events(&mut r)[0].result, expected);
    r.query(t0 + 60 * SECOND, "gone.example", RecordType::A);
    let again = only_transmit(&mut r);

    // NODATA without an SOA: RFC 2308 section 5 says do not cache.
    let nodata = ResponseBuilder::answering(&again.payload).build();
    r.handle_datagram(t0 + 60 * SECOND, addr(NS1), &nodata);
    assert_eq!(
        events(&mut r)[0].result,
        Err(DnsError::NoRecords {
            name: "gone.example".into(),
            rtype: RecordType::A
        })
    );
    r.query(t0 + 61 * SECOND, "gone.example", RecordType::A);
    assert_eq!(transmits(&mut r).len(), 1);
}

#[test]
fn identical_queries_in_flight_share_one_datagram() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    let first = r.query(t0, "example.com", RecordType::Srv);
    let second = r.query(t0, "example.com.", RecordType::Srv);
    let other_type = r.query(t0, "example.com", RecordType::Naptr);
    let sent = transmits(&mut r);
    assert_eq!(sent.len(), 2);
    let reply = ResponseBuilder::answering(&sent[0].payload)
        .rcode(3)
        .build();
    r.handle_datagram(t0, addr(NS1), &reply);
    let done = events(&mut r);
    let ids: Vec<QueryId> = done.iter().map(|e| e.query).collect();
    assert_eq!(ids, vec![first, second]);
    assert_ne!(first, second);
    assert!(!ids.contains(&other_type));
}

#[test]
fn in_flight_and_cache_are_bounded() {
    let t0 = Instant::now();
    let mut config = ResolverConfig::with_nameservers(vec![addr(NS1)]);
    config.max_in_flight = 2;
    config.cache_capacity = 2;
    let mut r = Resolver::new(config, Rng::seed_from_u64(5));
    r.query(t0, "a.example", RecordType::A);
    r.query(t0, "b.example", RecordType::A);
    r.query(t0, "c.example", RecordType::A);
    assert_eq!(
        events(&mut r)[0].result,
        Err(DnsError::TooManyQueries {
            name: "c.example".into()
        })
    );
    let sent = transmits(&mut r);
    assert_eq!(sent.len(), 2);
    for (ttl, datagram) in [100, 50].into_iter().zip(&sent) {
        let query = wire::parse_query(&datagram.payload).unwrap();
        let reply = ResponseBuilder::answering(&datagram.payload)
            .answer(&query.question.name, ttl, a([192, 0, 2, 1]))
            .build();
        r.handle_datagram(t0, addr(NS1), &reply);
    }
    r.query(t0, "c.example", RecordType::A);
    let sent = only_transmit(&mut r);
    let reply = ResponseBuilder::answering(&sent.payload)
        .answer("c.example", 300, a([192, 0, 2, 3]))
        .build();
    r.handle_datagram(t0, addr(NS1), &reply);
    assert_eq!(r.cache.len(), 2);
    // The entry nearest expiry (TTL 50) was evicted; the others remain.
    let kept: Vec<u64> = r
        .cache
        .values()
        .map(|entry| (entry.expires - t0).as_secs())
        .collect();
    assert!(kept.contains(&100) && kept.contains(&300), "kept {kept:?}");
}

#[test]
fn rotate_starts_each_query_at_the_next_server() {
    let t0 = Instant::now();
    let (config, _) = ResolverConfig::from_system(
        "nameserver 192.0.2.53\nnameserver 2001:db8::53\noptions rotate\n",
        "",
    );
    let mut r = Resolver::new(config, Rng::seed_from_u64(6));
    r.query(t0, "one.example", RecordType::A);
    r.query(t0, "two.example", RecordType::A);
    r.query(t0, "three.example", RecordType::A);
    let destinations: Vec<SocketAddr> = transmits(&mut r).iter().map(|t| t.destination).collect();
    assert_eq!(destinations, vec![addr(NS1), addr(NS2), addr(NS1)]);
}

#[test]
fn invalid_names_fail_without_traffic() {
    let t0 = Instant::now();
    let mut r = resolver(&[NS1]);
    r.query(t0, "a..b", RecordType::A);
    assert!(transmits(&mut r).is_empty());
    assert_eq!(
        events(&mut r)[0].result,
        Err(DnsError::InvalidName {
            name: "a..b".into()
        })
    );
    assert_eq!(r.poll_timeout(), None);
}
