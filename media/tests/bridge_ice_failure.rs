//! A browser that never answers connectivity checks: the bridge reports ICE failure (and
//! never DTLS connected) within bounded virtual time, without spinning.

mod bridge_sim;

use std::time::Duration;

use bridge_sim::*;
use media::bridge::BridgeEvent;

#[test]
fn silent_browser_ends_in_ice_failed() {
    let (mut sim, _, _) = answerer_sim(21, 0, &sip_answer_sdp(&[(0, "PCMU/8000")]));
    sim.net.blackhole = Some(addr(BROWSER));
    let failed = sim.run_until(Duration::from_secs(90), |s| {
        s.has_event(BridgeEvent::IceFailed)
    });
    assert!(failed, "no IceFailed after 90 s virtual: {:?}", sim.events);
    let at = sim
        .events
        .iter()
        .find(|(_, e)| *e == BridgeEvent::IceFailed)
        .map(|(t, _)| *t);
    eprintln!("IceFailed after {at:?} of virtual time");
    assert!(!sim.has_event(BridgeEvent::DtlsConnected));
    assert!(!sim.has_event(BridgeEvent::IceConnected));
    // After failure the timer must not spin (media-rtc.md rule 2, webrtc-rs/rtc#158): drive
    // one virtual second purely from the bridge's timeout and count the wake-ups.
    let end = sim.now + Duration::from_secs(1);
    let mut wakeups = 0u32;
    loop {
        let due = drain(&mut sim.bridge).unwrap_or(end).max(sim.now);
        if due >= end {
            break;
        }
        sim.now = due;
        let _ = sim.bridge.handle_timeout(due);
        drain(&mut sim.bridge);
        wakeups += 1;
        assert!(wakeups < 1000, "bridge timer spins on an expired deadline");
    }
    eprintln!("{wakeups} wake-ups in the second after ICE failure");
}
