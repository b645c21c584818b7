//! An outgoing call through `SipStack` to a real SIPp UAS on 127.0.0.1, over real UDP
//! sockets: INVITE -> 180 -> 200 -> ACK -> BYE -> 200, and SIPp must exit 0 (its scenario
//! fails on anything unexpected, e.g. a missing ACK or BYE).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::{Output, Rng};
use sip::auth::Ha1;
use sip::call::CallEvent;
use sip::dns::{Resolver, ResolverConfig};
use sip::stack::{AccountIdentity, SipEvent, SipStack, StackConfig};
use sip::transport::Transport;
use sip::transport::{LocalAddresses, SipTransmit};

/// Stops the SIPp child if the test fails half-way (only the process this test started).
struct Sipp(Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

fn start_sipp(port: u16) -> Sipp {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sipp_uas_call.xml");
    let child = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(c) => Sipp(c),
        Err(e) => panic!(
            "cannot start sipp ({e}): install SIPp (Debian package sip-tester) by running tests/run-all.sh"
        ),
    }
}

#[test]
fn outgoing_call_to_sipp_uas() {
    let sipp_port = free_udp_port();
    let mut sipp = start_sipp(sipp_port);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let mut stack = SipStack::new(
        StackConfig {
            local: LocalAddresses {
                udp_tcp: local,
                tls: None,
                advertised_host: None,
            },
            transports: vec![Transport::Udp],
            outbound_proxy: None,
            register_expires: 600,
            user_agent: "sylk-gateway-test".into(),
        },
        Resolver::new(
            ResolverConfig::with_nameservers(vec!["127.0.0.1:53".parse().unwrap()]),
            Rng::seed_from_u64(3),
        ),
        Rng::seed_from_u64(99),
    );
    let identity = AccountIdentity {
        user: "alice".into(),
        domain: "127.0.0.1".into(),
        display_name: Some("Alice".into()),
        user_agent: None,
        ha1: Ha1::from_hex("0123456789abcdef0123456789abcdef").unwrap(),
    };
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n";
    let start = Instant::now();
    let mut notices = Vec::new();
    // SIPp needs a moment to bind its socket; until then our INVITE is retransmitted by
    // Timer A, so no wait is needed here.
    let call = stack
        .invite(
            start,
            &identity,
            &format!("service@127.0.0.1:{sipp_port}"),
            offer.into(),
        )
        .unwrap();
    let deadline = start + Duration::from_secs(25);
    let mut buf = vec![0u8; 65536];
    let mut hung_up = false;
    let sipp_status = loop {
        assert!(
            Instant::now() < deadline,
            "call did not finish: {notices:?}"
        );
        // The stack's output until its deadline; the hangup is an input, so polling goes on.
        let next_timeout = loop {
            match stack.poll_output() {
                Output::Transmit(SipTransmit::Datagram { to, bytes }) => {
                    socket.send_to(&bytes, to).unwrap();
                }
                Output::Transmit(other) => panic!("unexpected socket action {other:?}"),
                Output::Event(SipEvent::Call { call: c, event }) => {
                    assert_eq!(c, call);
                    if matches!(event, CallEvent::Accepted { .. }) && !hung_up {
                        hung_up = true;
                        stack.hangup(Instant::now(), call).unwrap();
                    }
                    notices.push(event);
                }
                Output::Event(other) => panic!("unexpected event {other:?}"),
                Output::Timeout(at) => break at,
            }
        };
        // SIPp leaves once it answered our BYE (then a 200 ms timewait).
        if let Some(status) = sipp.0.try_wait().unwrap() {
            break status;
        }
        let wait = next_timeout
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait)).unwrap();
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => stack.handle_datagram(Instant::now(), from, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
        stack.handle_timeout(Instant::now());
    };
    let mut stderr = String::new();
    if let Some(mut e) = sipp.0.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(sipp_status.success(), "sipp failed: {sipp_status} {stderr}");
    let kinds: Vec<String> = notices
        .iter()
        .map(|n| match n {
            CallEvent::Progress { code, .. } => format!("progress {code}"),
            CallEvent::Accepted { sdp, .. } => {
                assert!(sdp.as_deref().is_some_and(|s| s.contains("m=audio 9")));
                "accepted".into()
            }
            CallEvent::Terminated(end) => format!("terminated {end}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["progress 180", "accepted", "terminated 200 Local hangup"],
        "{notices:?}"
    );
    assert_eq!(stack.call_count(), 0);
    assert_eq!(stack.dialog_count(), 0);
    // Timers M (INVITE) and K (BYE) are the only things left; nothing survives them.
    stack.handle_timeout(Instant::now() + Duration::from_secs(40));
    assert_eq!(stack.transaction_count(), 0);
}
