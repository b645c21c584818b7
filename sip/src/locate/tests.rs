//! RFC 3263 location against a scripted recursive server, in virtual time.

use super::super::dns::test_encoder::{naptr, srv, ResponseBuilder};
use super::super::dns::{wire, ResolverConfig};
use super::*;
use std::time::Duration;

const NS: &str = "192.0.2.53:53";

/// A scripted recursive server: answers from a zone, NXDOMAIN (with SOA) for anything
/// else, silence for names listed as unreachable.
#[derive(Default)]
struct Zone {
    records: Vec<(String, u32, RecordData)>,
    silent: Vec<String>,
    asked: Vec<(String, RecordType)>,
}

impl Zone {
    fn add(&mut self, owner: &str, data: RecordData) -> &mut Self {
        self.records.push((owner.to_string(), 300, data));
        self
    }

    /// Answers every query the locator sent, repeatedly, until it sends no more.
    fn serve(&mut self, locator: &mut Locator, now: Instant) {
        while let Some(transmit) = locator.poll_transmit() {
            assert_eq!(
                transmit.destination,
                NS.parse::<std::net::SocketAddr>().unwrap()
            );
            let query = wire::parse_query(&transmit.payload).unwrap();
            let name = query.question.name.clone();
            let rtype = RecordType::from_code(query.question.rtype).unwrap();
            self.asked.push((name.clone(), rtype));
            if self.silent.contains(&name) {
                continue;
            }
            let mut reply = ResponseBuilder::answering(&transmit.payload);
            let mut found = false;
            for (owner, ttl, data) in &self.records {
                if *owner == name && data.rtype() == rtype {
                    reply = reply.answer(owner, *ttl, data.clone());
                    found = true;
                }
            }
            let exists = self.records.iter().any(|(owner, ..)| *owner == name);
            if !found {
                reply = reply.rcode(if exists { 0 } else { 3 }).soa(60, 60);
            }
            locator.handle_datagram(now, NS.parse().unwrap(), &reply.build());
        }
    }
}

fn locator(transports: &[Transport]) -> Locator {
    let resolver = Resolver::new(
        ResolverConfig::with_nameservers(vec![NS.parse().unwrap()]),
        Rng::seed_from_u64(9),
    );
    let config = LocatorConfig {
        transports: transports.to_vec(),
        outbound_proxy: None,
        address_families: AddressFamilies::Ipv4ThenIpv6,
    };
    Locator::new(resolver, config, Rng::seed_from_u64(77))
}

fn uri(scheme: SipScheme, host: &str, port: Option<u16>, transport: Option<&str>) -> SipUriParts {
    SipUriParts {
        scheme,
        host: host.to_string(),
        port,
        transport: transport.map(str::to_string),
    }
}

fn sip(host: &str) -> SipUriParts {
    uri(SipScheme::Sip, host, None, None)
}

fn a(ip: [u8; 4]) -> RecordData {
    RecordData::A(ip.into())
}

fn outcome(
    locator: &mut Locator,
    lookup: LookupId,
) -> Result<Vec<(Transport, SocketAddr)>, LocateError> {
    let event = locator.poll_event().expect("the lookup finished");
    assert_eq!(event.lookup, lookup);
    assert!(locator.poll_event().is_none());
    event.result.map(|mut list| {
        std::iter::from_fn(|| list.next_target())
            .map(|t| (t.transport, t.address))
            .collect()
    })
}

fn target(transport: Transport, address: &str) -> (Transport, SocketAddr) {
    (transport, address.parse().unwrap())
}

const ALL: &[Transport] = &[Transport::Tls, Transport::Tcp, Transport::Udp];

#[test]
fn numeric_hosts_need_no_dns() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let cases = [
        (
            uri(SipScheme::Sip, "192.0.2.1", None, None),
            target(Transport::Udp, "192.0.2.1:5060"),
        ),
        (
            uri(SipScheme::Sips, "192.0.2.1", None, None),
            target(Transport::Tls, "192.0.2.1:5061"),
        ),
        (
            uri(SipScheme::Sip, "[2001:db8::1]", Some(5070), Some("TCP")),
            target(Transport::Tcp, "[2001:db8::1]:5070"),
        ),
        (
            uri(SipScheme::Sips, "2001:db8::1", None, Some("tcp")),
            target(Transport::Tls, "[2001:db8::1]:5061"),
        ),
        (
            uri(SipScheme::Sip, "192.0.2.1", None, Some("tls")),
            target(Transport::Tls, "192.0.2.1:5061"),
        ),
    ];
    for (input, expected) in cases {
        let lookup = l.locate(now, &input);
        assert_eq!(outcome(&mut l, lookup), Ok(vec![expected]), "{input:?}");
    }
    assert!(l.poll_transmit().is_none());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn explicit_port_asks_only_for_addresses() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add("pbx.example.com", a([192, 0, 2, 5])).add(
        "pbx.example.com",
        RecordData::Aaaa("2001:db8::5".parse().unwrap()),
    );
    let lookup = l.locate(
        now,
        &uri(SipScheme::Sip, "PBX.example.com.", Some(5080), None),
    );
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Udp, "192.0.2.5:5080"),
            target(Transport::Udp, "[2001:db8::5]:5080"),
        ])
    );
    let asked: Vec<RecordType> = zone.asked.iter().map(|(_, t)| *t).collect();
    assert_eq!(asked, vec![RecordType::A, RecordType::Aaaa]);
}

#[test]
fn naptr_srv_address_chain_honours_order_preference_and_transports() {
    let now = Instant::now();
    let mut l = locator(&[Transport::Udp, Transport::Tcp]);
    let mut zone = Zone::default();
    zone.add(
        "example.com",
        naptr(10, 30, "S", "SIP+D2U", "_sip._udp.example.com"),
    )
    .add(
        "example.com",
        naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.example.com"),
    )
    .add(
        "example.com",
        naptr(10, 20, "s", "SIP+D2T", "_sip._tcp.example.com"),
    )
    .add(
        "example.com",
        naptr(10, 5, "S", "SIP+D2S", "_sip._sctp.example.com"),
    )
    .add(
        "example.com",
        naptr(10, 1, "A", "SIP+D2U", "a-flag.example.com"),
    )
    .add(
        "example.com",
        naptr(20, 1, "S", "SIP+D2U", "_later._udp.example.com"),
    )
    .add(
        "_sip._tcp.example.com",
        srv(20, 0, 5062, "backup.example.com"),
    )
    .add(
        "_sip._tcp.example.com",
        srv(10, 0, 5060, "main.example.com"),
    )
    .add(
        "_sip._udp.example.com",
        srv(10, 0, 5060, "main.example.com"),
    )
    .add("main.example.com", a([192, 0, 2, 1]))
    .add("backup.example.com", a([192, 0, 2, 2]));
    let lookup = l.locate(now, &sip("example.com"));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Tcp, "192.0.2.1:5060"),
            target(Transport::Tcp, "192.0.2.2:5062"),
            target(Transport::Udp, "192.0.2.1:5060"),
        ])
    );
    let srv_asked: Vec<&str> = zone
        .asked
        .iter()
        .filter(|(_, t)| *t == RecordType::Srv)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        srv_asked,
        vec!["_sip._tcp.example.com", "_sip._udp.example.com"],
        "TLS is disabled; SCTP, the A flag and order 20 are not used"
    );
}

#[test]
fn sips_uri_uses_only_sips_naptr_and_srv() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add(
        "example.com",
        naptr(10, 10, "S", "SIP+D2U", "_sip._udp.example.com"),
    )
    .add(
        "example.com",
        naptr(10, 20, "S", "SIPS+D2T", "_sips._tcp.example.com"),
    )
    .add("_sips._tcp.example.com", srv(0, 0, 5061, "tls.example.com"))
    .add("_sip._udp.example.com", srv(0, 0, 5060, "udp.example.com"))
    .add("tls.example.com", a([192, 0, 2, 3]))
    .add("udp.example.com", a([192, 0, 2, 4]));
    let lookup = l.locate(now, &uri(SipScheme::Sips, "example.com", None, None));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![target(Transport::Tls, "192.0.2.3:5061")])
    );
}

#[test]
fn without_naptr_srv_is_asked_per_transport_in_preference_order() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add("example.org", a([192, 0, 2, 99]))
        .add("_sip._udp.example.org", srv(0, 0, 5070, "sip.example.org"))
        .add("_sips._tcp.example.org", srv(0, 0, 5071, "sip.example.org"))
        .add("sip.example.org", a([192, 0, 2, 7]));
    let lookup = l.locate(now, &sip("example.org"));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Tls, "192.0.2.7:5071"),
            target(Transport::Udp, "192.0.2.7:5070"),
        ])
    );
    let asked: Vec<(&str, RecordType)> = zone
        .asked
        .iter()
        .map(|(n, t)| (n.as_str(), *t))
        .take(4)
        .collect();
    assert_eq!(
        asked,
        vec![
            ("example.org", RecordType::Naptr),
            ("_sips._tcp.example.org", RecordType::Srv),
            ("_sip._tcp.example.org", RecordType::Srv),
            ("_sip._udp.example.org", RecordType::Srv),
        ]
    );
}

#[test]
fn without_srv_the_host_itself_is_used_on_the_default_port() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add(
        "example.net",
        RecordData::Aaaa("2001:db8::9".parse().unwrap()),
    )
    .add("example.net", a([192, 0, 2, 9]));
    let lookup = l.locate(now, &sip("example.net"));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Udp, "192.0.2.9:5060"),
            target(Transport::Udp, "[2001:db8::9]:5060"),
        ])
    );

    let lookup = l.locate(now, &uri(SipScheme::Sips, "example.net", None, None));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Tls, "192.0.2.9:5061"),
            target(Transport::Tls, "[2001:db8::9]:5061"),
        ])
    );
}

#[test]
fn explicit_transport_without_port_asks_that_srv_only() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add("example.com", a([192, 0, 2, 1]));
    let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("tcp")));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![target(Transport::Tcp, "192.0.2.1:5060")])
    );
    assert_eq!(
        zone.asked[0],
        ("_sip._tcp.example.com".to_string(), RecordType::Srv)
    );
    assert!(zone.asked.iter().all(|(_, t)| *t != RecordType::Naptr));
}

#[test]
fn outbound_proxy_is_located_instead_of_the_uri() {
    let now = Instant::now();
    let mut l = locator(ALL);
    l.config.outbound_proxy = Some(uri(
        SipScheme::Sip,
        "proxy.example.net",
        Some(5080),
        Some("tcp"),
    ));
    let mut zone = Zone::default();
    zone.add("proxy.example.net", a([192, 0, 2, 80]));
    let lookup = l.locate(now, &sip("callee.example.com"));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![target(Transport::Tcp, "192.0.2.80:5080")])
    );
    assert!(zone
        .asked
        .iter()
        .all(|(name, _)| name == "proxy.example.net"));
}

#[test]
fn nxdomain_everywhere_reads_as_no_records() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let lookup = l.locate(now, &sip("example.invalid"));
    Zone::default().serve(&mut l, now);
    let error = outcome(&mut l, lookup).unwrap_err();
    assert_eq!(
        format!("DNS lookup error: {error}"),
        "DNS lookup error: no records for example.invalid"
    );
}

#[test]
fn srv_target_dot_means_not_available() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add("example.com", a([192, 0, 2, 1]))
        .add("_sip._udp.example.com", srv(0, 0, 0, ""));
    let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("udp")));
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Err(LocateError::NoRecords {
            host: "example.com".into()
        })
    );
}

#[test]
fn unanswered_dns_is_a_timeout_error() {
    let t0 = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.silent.push("slow.example".to_string());
    let lookup = l.locate(t0, &uri(SipScheme::Sip, "slow.example", Some(5060), None));
    let mut now = t0;
    while let Some(deadline) = l.poll_timeout() {
        zone.serve(&mut l, now);
        now = deadline;
        l.handle_timeout(now);
    }
    assert_eq!(now, t0 + Duration::from_secs(10), "2 attempts x 5 s");
    let error = outcome(&mut l, lookup).unwrap_err();
    assert_eq!(error.to_string(), "timeout resolving slow.example");
}

#[test]
fn uri_errors_are_reported_without_dns() {
    let now = Instant::now();
    let mut l = locator(&[Transport::Udp, Transport::Tcp]);
    let cases = [
        (
            uri(SipScheme::Sips, "example.com", None, Some("udp")),
            "unsupported transport udp for example.com",
        ),
        (
            uri(SipScheme::Sip, "example.com", None, Some("sctp")),
            "unsupported transport sctp for example.com",
        ),
        (
            uri(SipScheme::Sips, "example.com", None, None),
            "no supported transport for example.com",
        ),
        (
            uri(SipScheme::Sip, "a..b", None, None),
            "invalid host \"a..b\"",
        ),
        (uri(SipScheme::Sip, "", None, None), "invalid host \"\""),
        (
            uri(SipScheme::Sip, "[example.com]", None, None),
            "invalid host \"[example.com]\"",
        ),
    ];
    for (input, text) in cases {
        let lookup = l.locate(now, &input);
        assert_eq!(outcome(&mut l, lookup).unwrap_err().to_string(), text);
    }
    assert!(l.poll_transmit().is_none());
}

#[test]
fn target_list_is_walked_for_failover() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let mut zone = Zone::default();
    zone.add("_sip._udp.example.com", srv(1, 0, 5060, "one.example.com"))
        .add("_sip._udp.example.com", srv(2, 0, 5060, "two.example.com"))
        .add("one.example.com", a([192, 0, 2, 1]))
        .add("two.example.com", a([192, 0, 2, 2]));
    let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("udp")));
    zone.serve(&mut l, now);
    let event = l.poll_event().unwrap();
    assert_eq!(event.lookup, lookup);
    let mut list = event.result.unwrap();
    assert_eq!(list.len(), 2);
    let first = list.next_target().unwrap();
    assert_eq!(
        first.address,
        "192.0.2.1:5060".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(first.domain, "example.com", "TLS checks the URI's domain");
    // 503 or timeout from the first: move on.
    assert_eq!(
        list.next_target().unwrap().address,
        "192.0.2.2:5060".parse::<std::net::SocketAddr>().unwrap()
    );
    assert!(list.next_target().is_none());
    assert!(list.is_empty());
}

#[test]
fn cancelled_lookup_produces_no_event() {
    let now = Instant::now();
    let mut l = locator(ALL);
    let lookup = l.locate(now, &sip("example.com"));
    l.cancel(lookup);
    Zone::default().serve(&mut l, now);
    assert!(l.poll_event().is_none());
    assert!(l.lookups.is_empty() && l.owners.is_empty());
}

#[test]
fn second_lookup_is_served_from_the_cache() {
    let now = Instant::now();
    let mut l = locator(&[Transport::Udp]);
    let mut zone = Zone::default();
    zone.add("_sip._udp.example.com", srv(0, 0, 5060, "sip.example.com"))
        .add("sip.example.com", a([192, 0, 2, 1]));
    let first = l.locate(now, &sip("example.com"));
    zone.serve(&mut l, now);
    let expected = Ok(vec![target(Transport::Udp, "192.0.2.1:5060")]);
    assert_eq!(outcome(&mut l, first), expected);
    let asked = zone.asked.len();
    let second = l.locate(now + Duration::from_secs(30), &sip("example.com"));
    assert!(
        l.poll_transmit().is_none(),
        "NAPTR NXDOMAIN, SRV and A are all cached"
    );
    assert_eq!(outcome(&mut l, second), expected);
    assert_eq!(zone.asked.len(), asked);
}

#[test]
fn srv_order_respects_priority_and_weights() {
    let records = vec![
        Srv {
            priority: 20,
            weight: 100,
            port: 1,
            target: "late".into(),
        },
        Srv {
            priority: 10,
            weight: 90,
            port: 2,
            target: "heavy".into(),
        },
        Srv {
            priority: 10,
            weight: 10,
            port: 3,
            target: "light".into(),
        },
        Srv {
            priority: 10,
            weight: 0,
            port: 4,
            target: "zero".into(),
        },
    ];
    let mut rng = Rng::seed_from_u64(1);
    let mut heavy_first = 0;
    let mut zero_first = 0;
    for _ in 0..10_000 {
        let order: Vec<String> = order_srv_records(records.clone(), &mut rng)
            .into_iter()
            .map(|s| s.target)
            .collect();
        assert_eq!(order.len(), 4);
        assert_eq!(order[3], "late", "priority 20 always last");
        heavy_first += usize::from(order[0] == "heavy");
        zero_first += usize::from(order[0] == "zero");
    }
    // RFC 2782: the draw is uniform in 0..=100 (the weight sum); 0 picks the weight-0
    // record listed first, 1..=90 the heavy one: expect 1/101 and 90/101 of the rounds.
    assert!(
        (8_700..=9_100).contains(&heavy_first),
        "heavy first {heavy_first}"
    );
    assert!((50..=150).contains(&zero_first), "zero first {zero_first}");
    // Deterministic for a given seed.
    let again = |seed| order_srv_records(records.clone(), &mut Rng::seed_from_u64(seed));
    assert_eq!(again(5), again(5));
}

#[test]
fn hosts_file_names_skip_naptr_and_srv() {
    let now = Instant::now();
    let (mut config, _) = ResolverConfig::from_system("", "127.0.0.1 localhost\n::1 localhost\n");
    config.nameservers = vec![NS.parse().unwrap()];
    let transports = vec![Transport::Udp];
    let mut l = Locator::new(
        Resolver::new(config, Rng::seed_from_u64(1)),
        LocatorConfig {
            transports,
            outbound_proxy: None,
            address_families: AddressFamilies::Ipv6ThenIpv4,
        },
        Rng::seed_from_u64(2),
    );
    let lookup = l.locate(now, &sip("localhost"));
    assert!(l.poll_transmit().is_none(), "no DNS traffic at all");
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![
            target(Transport::Udp, "[::1]:5060"),
            target(Transport::Udp, "127.0.0.1:5060"),
        ])
    );
}

#[test]
fn ipv6_only_asks_for_aaaa_only() {
    let now = Instant::now();
    let mut l = locator(ALL);
    l.config.address_families = AddressFamilies::Ipv6Only;
    let mut zone = Zone::default();
    zone.add("v6.example", a([192, 0, 2, 1])).add(
        "v6.example",
        RecordData::Aaaa("2001:db8::6".parse().unwrap()),
    );
    let lookup = l.locate(
        now,
        &uri(SipScheme::Sip, "v6.example", Some(5060), Some("tcp")),
    );
    zone.serve(&mut l, now);
    assert_eq!(
        outcome(&mut l, lookup),
        Ok(vec![target(Transport::Tcp, "[2001:db8::6]:5060")])
    );
    assert_eq!(
        zone.asked,
        vec![("v6.example".to_string(), RecordType::Aaaa)]
    );
}
