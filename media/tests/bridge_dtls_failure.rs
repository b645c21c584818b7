//! A browser whose DTLS certificate does not match the fingerprint in its offer (RFC 8122
//! sec. 5, RFC 5763 sec. 5): ICE connects, DTLS must not, and the bridge reports DtlsFailed
//! (never DtlsConnected), within bounded virtual time.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent};

#[test]
fn fingerprint_mismatch_ends_in_dtls_failed() {
    let start = Instant::now();
    let mut browser = BrowserPeer::new(start, 0x0B0B_0009);
    let offer = browser.create_offer(start);
    // Flip one hex digit of the sha-256 fingerprint.
    let line = offer
        .lines()
        .find(|l| l.starts_with("a=fingerprint:sha-256 "))
        .expect("fingerprint")
        .to_owned();
    let mut tampered_line = line.clone();
    let last = tampered_line.pop().expect("digit");
    tampered_line.push(if last == '0' { '1' } else { '0' });
    let tampered = offer.replace(&line, &tampered_line);
    let (mut bridge, _) =
        Bridge::new_answerer(start, bridge_config(start, 61), &tampered).expect("new_answerer");
    bridge
        .add_remote_candidate(&browser.candidate_line())
        .expect("trickle");
    let answer = bridge
        .apply_sip_answer(start, &sip_answer_sdp(&[(0, "PCMU/8000")]))
        .expect("answer");
    browser.apply_answer(start, &answer);
    let mut sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(61, 0, Duration::from_millis(10)),
        events: Vec::new(),
    };
    let failed = sim.run_until(Duration::from_secs(60), |s| {
        s.has_event(BridgeEvent::DtlsFailed)
    });
    assert!(failed, "no DtlsFailed: {:?}", sim.events);
    assert!(sim.has_event(BridgeEvent::IceConnected), "{:?}", sim.events);
    assert!(
        !sim.has_event(BridgeEvent::DtlsConnected),
        "{:?}",
        sim.events
    );
    assert!(
        !sim.has_event(BridgeEvent::IceFailed),
        "a DTLS failure is not an ICE failure: {:?}",
        sim.events
    );
}
