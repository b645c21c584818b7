//! The sans-IO resolver and locator driven over real UDP sockets against a tiny DNS responder
//! on 127.0.0.1, the way the reactor drives them: transmit, receive, feed, poll.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use engine::Rng;
use sip::dns::{wire, RecordData, RecordType, Resolver, ResolverConfig};
use sip::locate::{AddressFamilies, Locator, LocatorConfig, SipScheme, SipUriParts};
use sip::transport::Transport;

/// Blocking reads end after this, so a broken engine fails the test instead of hanging it.
const READ_LIMIT: Duration = Duration::from_secs(5);

fn bind_loopback() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    socket.set_read_timeout(Some(READ_LIMIT)).unwrap();
    socket
}

/// The answer a tiny authoritative server for `example.test` gives to `query`.
fn answer(query: &[u8]) -> Vec<u8> {
    let parsed = wire::parse_query(query).expect("the resolver sends valid queries");
    let name = parsed.question.name.as_str();
    let rtype = RecordType::from_code(parsed.question.rtype);
    // Each answer: owner = pointer to the question name at offset 12 (RFC 1035 4.1.4).
    let rdatas: Vec<(u16, Vec<u8>)> = match (name, rtype) {
        ("_sip._udp.example.test", Some(RecordType::Srv)) => {
            let mut rdata = vec![0, 10, 0, 5, 0x13, 0xd8]; // priority 10, weight 5, port 5080
            for label in ["sip", "example", "test"] {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            vec![(33, rdata)]
        }
        ("sip.example.test", Some(RecordType::A)) => vec![(1, vec![127, 0, 0, 1])],
        ("sip.example.test", Some(RecordType::Aaaa)) => {
            let mut loopback = vec![0; 15];
            loopback.push(1);
            vec![(28, loopback)]
        }
        _ => Vec::new(),
    };
    let mut out = query.to_vec(); // header + the single question
    out[2] = 0x81; // QR, RD
    out[3] = if rdatas.is_empty() && !name.ends_with("example.test") {
        0x83 // RA, NXDOMAIN
    } else {
        0x80 // RA, NOERROR
    };
    out[6..8].copy_from_slice(&(rdatas.len() as u16).to_be_bytes());
    for (rtype, rdata) in rdatas {
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]); // class IN, TTL 3600
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// Moves every pending datagram engine -> responder -> engine over the sockets, once.
fn exchange(
    client: &UdpSocket,
    server: &UdpSocket,
    mut transmit: impl FnMut() -> Option<(SocketAddr, Vec<u8>)>,
    mut deliver: impl FnMut(SocketAddr, &[u8]),
) -> usize {
    let mut count = 0;
    while let Some((destination, payload)) = transmit() {
        assert_eq!(destination, server.local_addr().unwrap());
        client.send_to(&payload, destination).unwrap();
        let mut buf = [0u8; 1500];
        let (len, from) = server
            .recv_from(&mut buf)
            .expect("query reached the responder");
        assert_eq!(from, client.local_addr().unwrap());
        server.send_to(&answer(&buf[..len]), from).unwrap();
        let (len, from) = client
            .recv_from(&mut buf)
            .expect("answer reached the resolver");
        deliver(from, &buf[..len]);
        count += 1;
    }
    count
}

#[test]
fn resolver_over_real_udp_ignores_a_forged_source_and_accepts_the_server() {
    let server = bind_loopback();
    let client = bind_loopback();
    let forger = bind_loopback();
    let config = ResolverConfig::with_nameservers(vec![server.local_addr().unwrap()]);
    let mut resolver = Resolver::new(config, Rng::seed_from_u64(0x0123_4567));
    let now = Instant::now();

    let query = resolver.query(now, "sip.example.test", RecordType::A);
    let transmit = resolver.poll_transmit().expect("a query to send");
    client
        .send_to(&transmit.payload, transmit.destination)
        .unwrap();
    let mut buf = [0u8; 1500];
    let (len, from) = server.recv_from(&mut buf).unwrap();
    let reply = answer(&buf[..len]);

    // The same answer from another port on the same host: not the server we asked.
    forger.send_to(&reply, from).unwrap();
    let (len, forged_from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(forged_from, forger.local_addr().unwrap());
    resolver.handle_datagram(now, forged_from, &buf[..len]);
    assert!(
        resolver.poll_event().is_none(),
        "forged source must be ignored"
    );

    server.send_to(&reply, from).unwrap();
    let (len, server_from) = client.recv_from(&mut buf).unwrap();
    resolver.handle_datagram(now, server_from, &buf[..len]);
    let event = resolver.poll_event().expect("the answer is accepted");
    assert_eq!(event.query, query);
    let records = event.result.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].ttl, 3600);
    assert_eq!(records[0].data, RecordData::A([127, 0, 0, 1].into()));
    assert_eq!(resolver.poll_timeout(), None);
}

#[test]
fn locator_over_real_udp_follows_naptr_srv_and_addresses() {
    let server = bind_loopback();
    let client = bind_loopback();
    let config = ResolverConfig::with_nameservers(vec![server.local_addr().unwrap()]);
    let resolver = Resolver::new(config, Rng::seed_from_u64(7));
    let mut locator = Locator::new(
        resolver,
        LocatorConfig {
            transports: vec![Transport::Udp, Transport::Tcp],
            outbound_proxy: None,
            address_families: AddressFamilies::Ipv4ThenIpv6,
        },
        Rng::seed_from_u64(11),
    );
    let now = Instant::now();
    let lookup = locator.locate(
        now,
        &SipUriParts {
            scheme: SipScheme::Sip,
            host: "example.test".into(),
            port: None,
            transport: None,
        },
    );
    let mut datagrams = 0;
    while locator.poll_timeout().is_some() {
        let sent = {
            let mut pending = Vec::new();
            while let Some(t) = locator.poll_transmit() {
                pending.push((t.destination, t.payload));
            }
            let mut replies = Vec::new();
            let n = exchange(
                &client,
                &server,
                || pending.pop(),
                |from, bytes| replies.push((from, bytes.to_vec())),
            );
            for (from, bytes) in replies {
                locator.handle_datagram(now, from, &bytes);
            }
            n
        };
        assert!(sent > 0, "queries outstanding but nothing to send");
        datagrams += sent;
    }
    // NAPTR (none), SRV _sip._udp and _sip._tcp, then A and AAAA of the SRV target.
    assert_eq!(datagrams, 5);
    let event = locator.poll_event().expect("lookup finished");
    assert_eq!(event.lookup, lookup);
    let mut targets = event.result.unwrap();
    let first = targets.next_target().unwrap();
    assert_eq!(
        (first.transport, first.address),
        (Transport::Udp, "127.0.0.1:5080".parse().unwrap())
    );
    let second = targets.next_target().unwrap();
    assert_eq!(
        second.address,
        "[::1]:5080".parse::<std::net::SocketAddr>().unwrap()
    );
    assert!(targets.next_target().is_none());
}
