//! Smoke test of the real-peer harness itself (tests/common/peers.rs, tests/peers/), without
//! the gateway: Kamailio registers and proxies, SIPp calls through it with digest auth and RTP
//! echo, baresip registers and answers, and parallel Kamailios do not collide.
//!
//! A peer that is not installed fails these tests (run tests/run-all.sh to install them).

mod common;

use std::time::{Duration, Instant};

use common::peers::*;

/// Kamailio, SIPp UAS registered as bob, SIPp UAC alice -> bob via Kamailio with digest auth
/// (407 on INVITE), RTP echoed on the negotiated address, clean BYE.
#[test]
fn sipp_call_through_kamailio_with_rtp_echo() {
    let t0 = Instant::now();
    let kam = Kamailio::start(KamailioOpts {
        proxy_auth: true,
        ..KamailioOpts::default()
    });
    eprintln!("kamailio up in {:?}", t0.elapsed());

    let t = Instant::now();
    let mut uas = Sipp::echo_uas("uas_echo.xml");
    uas.register_at(&kam, "bob");
    eprintln!("sipp uas up and registered in {:?}", t.elapsed());

    let mut uac = Sipp::uac(
        "uac_call.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_millis(1500)),
            ..SippOpts::call("alice", "bob")
        },
    );
    // While the call is up: the answer's media address is the UAS's echo port, and RTP sent
    // there comes back.
    let trace = uac.wait_for_message("SIP/2.0 200 OK", Duration::from_secs(5));
    let answer = &trace[trace.find("SIP/2.0 200 OK").unwrap()..];
    assert_eq!(sdp_audio_addr(answer), Some(uas.rtp_addr()), "{answer}");
    assert_eq!(
        rtp_echo_count(uas.rtp_addr(), 10, Duration::from_secs(2)),
        10
    );

    assert_eq!(
        uac.wait_exit(Duration::from_secs(10)),
        0,
        "uac failed:\n{}\n{}",
        uac.errors(),
        uac.messages()
    );
    let m = uac.messages();
    assert!(m.contains("SIP/2.0 407"), "no proxy challenge:\n{m}");
    assert!(
        m.contains("Proxy-Authorization: Digest username=\"alice\""),
        "{m}"
    );
    // the UAS saw the call through Kamailio (Record-Route) and its end
    let u = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert!(u.contains("Record-Route: <sip:127.0.0.1:"), "{u}");
    assert!(uas.is_running(), "the UAS serves more calls");
    eprintln!("whole call test {:?}", t0.elapsed());
}

/// The same over TCP: a TCP UAS registers a `transport=TCP` contact, and the call runs over
/// TCP on both legs.
#[test]
fn sipp_call_over_tcp() {
    let kam = Kamailio::start(KamailioOpts::default());
    let uas = Sipp::uas(
        "uas_echo.xml",
        SippOpts {
            transport: Transport::Tcp,
            ..SippOpts::default()
        },
    );
    uas.register_at(&kam, "bob");
    let mut opts = SippOpts::call("alice", "bob");
    opts.transport = Transport::Tcp;
    opts.pause = Some(Duration::from_millis(300));
    let mut uac = Sipp::uac("uac_call.xml", kam.sip_addr(), opts);
    assert_eq!(
        uac.wait_exit(Duration::from_secs(10)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
    let u = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert!(u.contains("TCP message received"), "{u}");
    assert!(u.contains("Via: SIP/2.0/TCP 127.0.0.1:"), "{u}");
}

/// The scenarios a call test needs, against each other through Kamailio: busy, CANCEL of a
/// ringing call, early media, opus answer, a callee that hangs up.
#[test]
fn sipp_scenarios_busy_cancel_early_media_opus_bye() {
    let kam = Kamailio::start(KamailioOpts::default());
    let call = |uas_scenario: &str, uac_scenario: &str, pause_ms: u64| {
        let uas = Sipp::uas(
            uas_scenario,
            SippOpts {
                rtp_echo: true,
                pause: Some(Duration::from_millis(pause_ms)),
                ..SippOpts::default()
            },
        );
        uas.register_at(&kam, "carol");
        let mut uac = Sipp::uac(
            uac_scenario,
            kam.sip_addr(),
            SippOpts {
                pause: Some(Duration::from_millis(pause_ms)),
                ..SippOpts::call("alice", "carol")
            },
        );
        let code = uac.wait_exit(Duration::from_secs(10));
        // the next scenario's UAS registers carol again: calls must not fork to this one
        uas.unregister_at(&kam, "carol");
        (code, uac.messages(), uas)
    };

    let (code, m, _) = call("uas_busy.xml", "uac_call.xml", 200);
    assert_eq!(code, 1, "uac_call does not expect 486:\n{m}");
    assert!(m.contains("SIP/2.0 486 Busy Here"), "{m}");

    let (code, m, _) = call("uas_ring_forever.xml", "uac_cancel.xml", 200);
    assert_eq!(code, 0, "{m}");
    for status in ["SIP/2.0 180 Ringing", "CANCEL sip:", "SIP/2.0 487"] {
        assert!(m.contains(status), "no {status}:\n{m}");
    }

    let (code, m, _) = call("uas_early_media.xml", "uac_call.xml", 300);
    assert_eq!(code, 0, "{m}");
    let early = &m[m.find("SIP/2.0 183").expect("183")..];
    assert!(sdp_audio_addr(early).is_some(), "183 without SDP:\n{early}");

    let (code, m, _) = call("uas_echo_opus.xml", "uac_call.xml", 200);
    assert_eq!(code, 0, "{m}");
    assert!(m.contains("a=rtpmap:111 opus/48000/2"), "{m}");

    // uac_call.xml does not expect the callee's BYE (sipp answers it and counts the call as
    // failed); what matters is that the BYE arrives through Kamailio and is answered
    let (_, m, uas) = call("uas_bye.xml", "uac_call.xml", 300);
    assert!(m.contains("BYE sip:alice@127.0.0.1:"), "{m}");
    uas.wait_for_sequence(&["BYE sip:alice@", "SIP/2.0 200"], Duration::from_secs(5));
}

/// baresip registers as carol at its own Kamailio, answers a SIPp call automatically (and
/// receives its RTP tone), and takes commands over ctrl_tcp.
#[test]
fn baresip_registers_and_answers() {
    let kam = Kamailio::start(KamailioOpts::default());
    let t = Instant::now();
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "carol".into(),
            wav_audio: true,
            record_audio: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    eprintln!("baresip up and registered in {:?}", t.elapsed());
    let reginfo = bs.command("reginfo").expect("reginfo");
    assert!(reginfo.contains("carol@example.test"), "{reginfo}");

    let mut uac = Sipp::uac(
        "uac_call.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_millis(1000)),
            ..SippOpts::call("alice", "carol")
        },
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(10)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
    bs.wait_for_log("Call established", Duration::from_secs(2));
    // sndfile dumps what baresip decoded: SIPp's tone for about 1 s (8 kHz, 16 bit)
    let decoded = std::fs::read_dir(bs.dir())
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"))
        .expect("no decoded-audio dump")
        .metadata()
        .unwrap()
        .len();
    assert!(decoded > 8000, "only {decoded} bytes of received audio");
    assert!(
        bs.command("no-such-command").is_err(),
        "unknown ctrl_tcp command accepted"
    );
}

/// Two Kamailios at once get their own ports and databases: a user registered at one is
/// unknown at the other.
#[test]
fn parallel_kamailios_do_not_collide() {
    let a = Kamailio::start(KamailioOpts::default());
    let mut b = Kamailio::start(KamailioOpts {
        xcap: true,
        ..KamailioOpts::default()
    });
    assert_ne!(a.sip_addr(), b.sip_addr());
    assert!(a.xcap_addr().is_none());
    std::net::TcpStream::connect(b.xcap_addr().unwrap()).expect("XCAP listener");
    assert_ne!(a.dir(), b.dir());
    assert_eq!(a.ha1("alice"), b.ha1("alice"));
    assert_eq!(a.ha1("alice").len(), 32);

    let uas = Sipp::uas("uas_echo.xml", SippOpts::default());
    uas.register_at(&a, "bob");
    let mut uac = Sipp::uac(
        "uac_call.xml",
        b.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_millis(100)),
            ..SippOpts::call("alice", "bob")
        },
    );
    assert_eq!(uac.wait_exit(Duration::from_secs(10)), 1);
    let m = uac.messages();
    assert!(
        m.contains("SIP/2.0 404 Not Found"),
        "bob is not registered at b:\n{m}"
    );

    // stopping one leaves the other serving, and its log readable
    b.stop();
    assert!(b.log().contains("INFO"), "{}", b.log());
    uas.unregister_at(&a, "bob");
}

/// The hold/unhold scenarios against baresip: SIPp as caller (uac_hold.xml) and as callee
/// (uas_hold.xml, called by baresip's `dial`) each send a=sendonly then a=sendrecv re-INVITEs
/// through Kamailio, and baresip answers them.
#[test]
fn sipp_hold_unhold_with_baresip() {
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bs = Baresip::start(&kam, BaresipOpts::default()); // bob
    bs.wait_for_registration(Duration::from_secs(10));

    let mut uac = Sipp::uac(
        "uac_hold.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_millis(300)),
            ..SippOpts::call("alice", "bob")
        },
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(10)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
    let m = uac.messages();
    assert!(m.contains("a=sendonly") && m.contains("a=recvonly"), "{m}");

    let uas = Sipp::uas(
        "uas_hold.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            pause: Some(Duration::from_millis(300)),
            ..SippOpts::default()
        },
    );
    uas.register_at(&kam, "carol");
    bs.command("dial sip:carol@example.test").expect("dial");
    // sipp's hold sequence takes 2 x 300 ms and ends with the ACK of the unhold re-INVITE
    uas.wait_for_sequence(
        &["a=sendonly", "a=recvonly", "a=sendrecv", "CSeq: 2 ACK"],
        Duration::from_secs(5),
    );
    bs.command("hangup").expect("hangup");
    uas.wait_for_sequence(&["BYE sip:", "SIP/2.0 200 OK"], Duration::from_secs(5));
}

/// A peer binary that is not installed fails the test with the way to install it.
#[test]
#[should_panic(expected = "is not installed: run tests/run-all.sh")]
fn missing_peer_binary_fails_with_install_hint() {
    require("sylk-no-such-peer-binary");
}
