//! Zero heap allocations per packet on the plain RTP leg in steady state (issue 4, item 6),
//! counted by a global allocator wrapper: receive, map, rewrite, send, and the periodic RTCP.

use std::time::{Duration, Instant};

use media::rtp::{write_rtp_packet, NtpClock, PayloadTypeMap};
use media::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};

mod counting_alloc;
use counting_alloc::*;

#[test]
fn steady_state_rtp_leg_allocates_nothing_per_packet() {
    let t0 = Instant::now();
    let ntp = NtpClock::new(t0, Duration::from_secs(1_767_225_600));
    let mut leg = RtpLeg::new(
        t0,
        RtpLegConfig::new(
            "198.51.100.5:40000".parse().expect("addr"),
            0x1234,
            "gw",
            ntp,
        ),
    );
    let peer = "192.0.2.10:4000".parse().expect("addr");
    leg.set_remote(
        t0,
        RtpRemote {
            rtp: peer,
            rtcp: None,
            rtcp_mux: false,
            sending: true,
        },
    );
    let mut map = PayloadTypeMap::empty();
    map.insert(111, 96);
    map.insert(96, 111);
    leg.set_send_payload_map(map.clone());
    leg.set_receive_payload_map(map);
    leg.set_clock_rate(96, 48_000);
    leg.set_clock_rate(111, 48_000);

    let mut inbound = [0u8; 1500];
    let mut from_webrtc = [0u8; 1500];
    let mut out = [0u8; 1500];
    let payload = [0x55u8; 120];
    let mut step = |i: u32, now: Instant| {
        let seq = i as u16;
        let len = write_rtp_packet(&mut inbound, 96, false, seq, i * 960, 0xfeed, &payload)
            .expect("fits");
        let got = leg
            .handle_rtp(now, peer, &mut inbound[..len])
            .expect("valid")
            .expect("forwarded");
        assert_eq!(got.payload_type(), 111);
        let len = write_rtp_packet(&mut from_webrtc, 111, false, seq, i * 960, 0xb0b, &payload)
            .expect("fits");
        leg.send_rtp(now, &from_webrtc[..len], &mut out)
            .expect("ok")
            .expect("sent");
        if leg.poll_timeout().is_some_and(|t| t <= now) {
            leg.handle_timeout(now);
        }
        while leg.poll_transmit(now, &mut out).expect("ok").is_some() {}
        while leg.poll_event().is_some() {}
    };
    // Warm-up: latching, the first report, statistics objects, the event queue.
    for i in 0..500 {
        step(i, t0 + Duration::from_millis(20 * u64::from(i)));
    }
    let before = allocations();
    // 20 000 packets each way = 400 s of 20 ms audio, spanning ~80 RTCP reports and a
    // sequence number wrap.
    for i in 500..70_500 {
        step(i, t0 + Duration::from_millis(20 * u64::from(i)));
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "heap allocations in the steady-state packet path"
    );
    assert_eq!(leg.stats().packets_received, 70_500);
    assert_eq!(leg.stats().packets_sent, 70_500);
    // The counter itself works: one boxed value is one allocation.
    let boxed = std::hint::black_box(Box::new(after));
    assert!(allocations() > after, "allocator is counting ({boxed})");
}
