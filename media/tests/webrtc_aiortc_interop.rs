//! Interop with aiortc (an independent WebRTC implementation, PyPI) through real UDP
//! sockets on 127.0.0.1: the bridge completes ICE + DTLS-SRTP with aiortc in both roles and
//! a 440 Hz tone is verified in both directions (aiortc -> bridge -> SIP peer decoded here,
//! SIP peer -> bridge -> aiortc decoded there).
//!
//! Needs `python3` with `aiortc` (`pip install aiortc==1.16.0`, which `tests/run-all.sh`
//! installs); without them the test fails rather than passing untested. The python peer gets an empty ICE server list, so nothing leaves
//! loopback; the test kills only the child it started.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use engine::Output;
use media::bridge::{Bridge, BridgeConfig, BridgeEvent, MediaSocketKind};

/// Kills the python child (by its own handle, i.e. its own pid) if it outlives the test.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn aiortc_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiortc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Two sockets on consecutive ports (RTP, RTCP = RTP + 1, RFC 3550 sec. 11).
fn bind_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..100 {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = rtp.local_addr().expect("addr").port();
        if port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
    panic!("no consecutive port pair on 127.0.0.1");
}

/// G.711 mu-law (ITU-T G.711, the classic Sun reference algorithm).
fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32635) + BIAS) as u32;
    let exponent = (31 - s.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

fn tone_payload(start_sample: u32) -> Vec<u8> {
    (0..160u32)
        .map(|i| {
            let t = f64::from(start_sample + i) / 8000.0;
            ulaw_encode((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect()
}

/// RMS and zero-crossing frequency of decoded 8 kHz samples.
fn analyse(samples: &[i16]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let sumsq: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count();
    let secs = samples.len() as f64 / 8000.0;
    (
        (sumsq / samples.len() as f64).sqrt(),
        crossings as f64 / 2.0 / secs,
    )
}

fn send_sdp(child: &mut Child, sdp: &str) {
    let stdin = child.stdin.as_mut().expect("stdin");
    for line in sdp.lines() {
        writeln!(stdin, "{line}").expect("write sdp");
    }
    writeln!(stdin, ".").expect("write sdp end");
    stdin.flush().expect("flush");
}

fn recv_sdp(lines: &mpsc::Receiver<String>) -> String {
    let mut sdp = String::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("SDP from aiortc");
        if line == "." {
            return sdp;
        }
        sdp.push_str(&line);
        sdp.push_str("\r\n");
    }
}

struct Sockets {
    webrtc: UdpSocket,
    sip_rtp: UdpSocket,
    sip_rtcp: UdpSocket,
    peer_rtp: UdpSocket,
    peer_rtcp: UdpSocket,
}

impl Sockets {
    fn new() -> Self {
        let webrtc = UdpSocket::bind("127.0.0.1:0").expect("bind webrtc");
        let (sip_rtp, sip_rtcp) = bind_pair();
        let (peer_rtp, peer_rtcp) = bind_pair();
        for s in [&webrtc, &sip_rtp, &sip_rtcp, &peer_rtp, &peer_rtcp] {
            s.set_nonblocking(true).expect("nonblocking");
        }
        Self {
            webrtc,
            sip_rtp,
            sip_rtcp,
            peer_rtp,
            peer_rtcp,
        }
    }

    fn addr(s: &UdpSocket) -> SocketAddr {
        s.local_addr().expect("local addr")
    }

    fn config(&self, seed: u64) -> BridgeConfig {
        let identity = media::webrtc_leg::DtlsIdentity::generate().expect("DTLS identity");
        let mut config = BridgeConfig::new(
            Self::addr(&self.webrtc),
            Self::addr(&self.sip_rtp),
            SystemTime::now(),
            engine::Rng::seed_from_u64(seed),
            std::sync::Arc::new(identity),
        );
        config.codecs = vec!["PCMU".into(), "telephone-event".into()];
        // Reports every 0.5..1.5 s, so a 4 s call surely carries some.
        config.rtcp_interval = Duration::from_secs(1);
        config
    }

    fn peer_sdp(&self) -> String {
        let port = Self::addr(&self.peer_rtp).port();
        format!(
            "v=0\r\no=sip-peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )
    }
}

struct Outcome {
    events: Vec<BridgeEvent>,
    at_sip: Vec<i16>,
    sip_rtcp_packets: usize,
    result_line: String,
    srtp_profile: String,
}

/// The reactor of this test: one thread, non-blocking sockets, the bridge's deadlines.
fn drive(
    mut bridge: Bridge,
    sockets: &Sockets,
    lines: &mpsc::Receiver<String>,
    peer_bridge_addr: SocketAddr,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut buf = vec![0u8; 2048];
    let mut events = Vec::new();
    let mut at_sip = Vec::new();
    let mut sip_rtcp_packets = 0;
    let mut next_tone: Option<Instant> = None;
    let mut bridge_due: Option<Instant> = None;
    let (mut seq, mut sample) = (0u16, 0u32);
    let mut srtp_profile = String::new();
    let result_line = loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "interop call did not finish; events {events:?}"
        );
        if let Ok(line) = lines.try_recv() {
            if line.starts_with("RESULT") {
                break line;
            }
        }
        let webrtc_local = Sockets::addr(&sockets.webrtc);
        while let Ok((n, from)) = sockets.webrtc.recv_from(&mut buf) {
            let _ = bridge.handle_webrtc_datagram(Instant::now(), webrtc_local, from, &buf[..n]);
        }
        let rtp_local = Sockets::addr(&sockets.sip_rtp);
        while let Ok((n, from)) = sockets.sip_rtp.recv_from(&mut buf) {
            let _ = bridge.handle_rtp_datagram(Instant::now(), rtp_local, from, &mut buf[..n]);
        }
        let rtcp_local = Sockets::addr(&sockets.sip_rtcp);
        while let Ok((n, from)) = sockets.sip_rtcp.recv_from(&mut buf) {
            let _ = bridge.handle_rtcp_datagram(Instant::now(), rtcp_local, from, &mut buf[..n]);
        }
        // The SIP peer: decode what arrives, count RTCP.
        while let Ok((n, _)) = sockets.peer_rtp.recv_from(&mut buf) {
            if n > 12 && buf[1] & 0x7F == 0 {
                at_sip.extend(buf[12..n].iter().map(|b| ulaw_decode(*b)));
            }
        }
        while sockets.peer_rtcp.recv_from(&mut buf).is_ok() {
            sip_rtcp_packets += 1;
        }
        let now = Instant::now();
        if bridge_due.is_some_and(|t| t <= now) {
            let _ = bridge.handle_timeout(now);
        }
        // The SIP peer sends a 440 Hz PCMU tone every 20 ms once the call is up.
        if let Some(due) = next_tone {
            if now >= due {
                let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
                p[2..4].copy_from_slice(&seq.to_be_bytes());
                p[4..8].copy_from_slice(&sample.to_be_bytes());
                p.extend_from_slice(&tone_payload(sample));
                let _ = sockets.peer_rtp.send_to(&p, peer_bridge_addr);
                seq = seq.wrapping_add(1);
                sample = sample.wrapping_add(160);
                next_tone = Some(due + Duration::from_millis(20));
            }
        }
        bridge_due = loop {
            match bridge.poll_output() {
                Output::Transmit(t) => {
                    let socket = match t.socket {
                        MediaSocketKind::Webrtc => &sockets.webrtc,
                        MediaSocketKind::Rtp => &sockets.sip_rtp,
                        MediaSocketKind::Rtcp => &sockets.sip_rtcp,
                    };
                    let _ = socket.send_to(t.bytes, t.to);
                }
                Output::Event(e) => {
                    if e == BridgeEvent::DtlsConnected {
                        next_tone = Some(Instant::now());
                        srtp_profile = bridge.srtp_profile();
                    }
                    events.push(e);
                }
                Output::Timeout(at) => break at,
            }
        };
        // Wait for I/O (not a sleep): block on the WebRTC socket until the next deadline,
        // at most 2 ms so the other sockets and the tone are served too.
        let wait = bridge_due
            .map_or(Duration::from_millis(2), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_micros(100), Duration::from_millis(2));
        let _ = sockets.webrtc.set_nonblocking(false);
        let _ = sockets.webrtc.set_read_timeout(Some(wait));
        let mut peek = [0u8; 1];
        let _ = sockets.webrtc.peek_from(&mut peek);
        let _ = sockets.webrtc.set_nonblocking(true);
    };
    bridge.close(Instant::now());
    while let Output::Transmit(t) = bridge.poll_output() {
        if t.socket == MediaSocketKind::Webrtc {
            let _ = sockets.webrtc.send_to(t.bytes, t.to);
        }
    }
    Outcome {
        events,
        at_sip,
        sip_rtcp_packets,
        result_line,
        srtp_profile,
    }
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn spawn_peer(mode: &str) -> (ChildGuard, mpsc::Receiver<String>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aiortc/peer.py");
    let mut child = Command::new("python3")
        .args([script, mode, "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn aiortc peer");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (ChildGuard(child), rx)
}

fn check(outcome: &Outcome) {
    eprintln!(
        "aiortc: {} | bridge events {:?} | SRTP {} | SIP peer got {} samples, {} RTCP",
        outcome.result_line,
        outcome.events,
        outcome.srtp_profile,
        outcome.at_sip.len(),
        outcome.sip_rtcp_packets
    );
    assert!(
        outcome.events.contains(&BridgeEvent::IceConnected),
        "{:?}",
        outcome.events
    );
    assert!(
        outcome.events.contains(&BridgeEvent::DtlsConnected),
        "{:?}",
        outcome.events
    );
    assert!(
        outcome.result_line.contains("state=connected"),
        "{}",
        outcome.result_line
    );
    // SIP peer -> bridge -> aiortc: aiortc decoded our 440 Hz tone.
    let frames = field(&outcome.result_line, "frames");
    let rms = field(&outcome.result_line, "rms");
    let freq = field(&outcome.result_line, "freq");
    assert!(frames >= 50.0, "aiortc decoded only {frames} frames");
    assert!(rms > 1000.0, "aiortc heard silence (rms {rms})");
    assert!(
        (400.0..480.0).contains(&freq),
        "aiortc heard {freq} Hz, not 440"
    );
    // aiortc -> bridge -> SIP peer: we decode aiortc's 440 Hz sine from PCMU.
    let skip = outcome.at_sip.len().min(1600);
    let (rms, freq) = analyse(&outcome.at_sip[skip..]);
    assert!(
        outcome.at_sip.len() >= 8000,
        "SIP peer got only {} samples",
        outcome.at_sip.len()
    );
    assert!(rms > 1000.0, "SIP peer heard silence (rms {rms})");
    assert!(
        (400.0..480.0).contains(&freq),
        "SIP peer heard {freq} Hz, not 440"
    );
    assert!(
        outcome.sip_rtcp_packets >= 2,
        "too little RTCP on the SIP leg"
    );
}

#[test]
fn aiortc_offers_and_the_bridge_answers() {
    assert!(
        aiortc_available(),
        "python3 with aiortc is not installed: run tests/run-all.sh (it pip-installs aiortc==1.16.0)"
    );
    let sockets = Sockets::new();
    let (mut child, lines) = spawn_peer("offer");
    let offer = recv_sdp(&lines);
    let now = Instant::now();
    let (mut bridge, sip_offer) =
        Bridge::new_answerer(now, sockets.config(1), &offer).expect("new_answerer");
    assert!(sip_offer.contains("PCMU"), "{sip_offer}");
    let answer = bridge
        .apply_sip_answer(Instant::now(), &sockets.peer_sdp())
        .expect("apply_sip_answer");
    send_sdp(&mut child.0, &answer);
    let outcome = drive(bridge, &sockets, &lines, Sockets::addr(&sockets.sip_rtp));
    check(&outcome);
}

#[test]
fn the_bridge_offers_and_aiortc_answers() {
    assert!(
        aiortc_available(),
        "python3 with aiortc is not installed: run tests/run-all.sh (it pip-installs aiortc==1.16.0)"
    );
    let sockets = Sockets::new();
    let (mut child, lines) = spawn_peer("answer");
    let now = Instant::now();
    let (mut bridge, offer) =
        Bridge::new_offerer(now, sockets.config(2), &sockets.peer_sdp()).expect("new_offerer");
    send_sdp(&mut child.0, &offer);
    let answer = recv_sdp(&lines);
    let sip_answer = bridge
        .apply_webrtc_answer(Instant::now(), &answer)
        .expect("apply_webrtc_answer");
    assert!(sip_answer.contains("m=audio"), "{sip_answer}");
    let outcome = drive(bridge, &sockets, &lines, Sockets::addr(&sockets.sip_rtp));
    check(&outcome);
}
