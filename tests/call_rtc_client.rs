//! Outgoing calls from a WebRTC client built on webrtc-rs `rtc` (the call load tool's browser,
//! `benches/call_load/browser.rs`) through the real gateway to a SIPp UAS with RTP echo: ICE,
//! DTLS-SRTP, the sylkRTC events, and the client's own packets coming back through SIP.

#[path = "../benches/call_load/browser.rs"]
#[allow(dead_code)]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::{Browsers, CallState};
use common::peers::{free_udp_range, Sipp};
use common::Gateway;

#[test]
fn rtc_clients_call_sipp_echo_and_get_their_audio_back() {
    let base = free_udp_range(40);
    let gw = Gateway::start(
        &format!("[media]\nrtp_ports = \"{base}-{}\"\n", base + 39),
        &[],
    );
    let uas = Sipp::echo_uas("uas_echo.xml");
    let calls = 2;
    let mut br = Browsers::connect(calls, &gw.ws_url(), format!("echo@{}", uas.sip_addr()));
    let start = Instant::now();
    br.drive(
        start + Duration::from_secs(20),
        |br, now| {
            if br.started < br.b.len() {
                br.start_next(now);
            }
        },
        |br| br.count(CallState::Established) == calls,
    );
    assert_eq!(
        br.count(CallState::Established),
        calls,
        "calls not established"
    );
    br.start_media();
    let media_start = Instant::now();
    br.drive(media_start + Duration::from_secs(2), |_, _| {}, |_| false);
    for (i, b) in br.b.iter().enumerate() {
        let received: u64 = b.rx.iter().map(|s| s.received).sum();
        // 50 pps for 2 s: most of our 100 packets came back through the SIP echo.
        assert!(
            received >= 60,
            "browser {i} got only {received} echoed packets back"
        );
    }
    for i in 0..calls {
        br.terminate(i);
    }
    br.drive(
        Instant::now() + Duration::from_secs(10),
        |_, _| {},
        |br| br.count(CallState::Terminated) == calls,
    );
    assert_eq!(br.count(CallState::Terminated), calls);
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
}
