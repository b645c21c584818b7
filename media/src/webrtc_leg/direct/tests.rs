//! Two WebRTC legs talking to each other over an in-memory link with virtual time: one
//! offers (DTLS server after the answer's `a=setup:active`), one answers (DTLS client). This
//! covers what the bridge tests (whose browser is `rtc`'s RTCPeerConnection) cannot see from
//! outside: our own RTCP reaching the other side, PLI targets, the fingerprint check, source
//! checks.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::rtp::{classify_datagram, DatagramKind};
use crate::webrtc_leg::OutgoingRtp;

const OFFERER: &str = "127.0.0.1:41000";
const ANSWERER: &str = "127.0.0.1:42000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// One identity for every leg of the test binary, as the application makes one at start-up.
fn identity() -> Arc<DtlsIdentity> {
    static IDENTITY: std::sync::OnceLock<Arc<DtlsIdentity>> = std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| Arc::new(DtlsIdentity::generate().expect("DTLS identity")))
        .clone()
}

fn config(local: &str) -> WebrtcLegConfig {
    WebrtcLegConfig {
        local_addr: addr(local),
        advertised_ip: None,
        ice_lite: false,
        dtls_timeout: Duration::from_secs(10),
        identity: identity(),
    }
}

fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

fn ntp(now: Instant) -> NtpClock {
    let unix = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_942_400);
    NtpClock::new(
        now,
        unix.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

fn codec(kind: MediaKind, name: &str, clock_rate: u32, channels: u16, pt: u8) -> CodecSpec {
    CodecSpec {
        kind,
        name: name.to_owned(),
        clock_rate,
        channels,
        fmtp: String::new(),
        payload_type: pt,
    }
}

fn codecs() -> Vec<CodecSpec> {
    vec![
        codec(MediaKind::Audio, "PCMU", 8000, 1, 0),
        codec(MediaKind::Audio, "telephone-event", 8000, 1, 101),
        codec(MediaKind::Video, "VP8", 90000, 0, 96),
    ]
}

struct Pair {
    now: Instant,
    offerer: WebrtcLeg,
    answerer: WebrtcLeg,
    offerer_events: Vec<WebrtcLegEvent>,
    answerer_events: Vec<WebrtcLegEvent>,
    /// Media each side received: (kind, payload type, payload).
    offerer_media: Vec<(MediaKind, u8, Vec<u8>)>,
    answerer_media: Vec<(MediaKind, u8, Vec<u8>)>,
    offerer_keyframe_requests: Vec<(MediaKind, bool)>,
}

fn pair_with(tamper_answer: impl FnOnce(String) -> String) -> Pair {
    let now = Instant::now();
    let (mut offerer, offer) =
        WebrtcLeg::offer(now, &config(OFFERER), rng(1), ntp(now), &codecs()).expect("offer");
    // What travels is text: each side parses the other's description once.
    let offer = SessionDescription::parse(offer.to_sdp_string().as_bytes()).expect("offer");
    let (answerer, answer) =
        WebrtcLeg::answer(now, &config(ANSWERER), rng(2), ntp(now), &offer, &codecs())
            .expect("answer");
    let answer = tamper_answer(answer.to_sdp_string());
    let answer = SessionDescription::parse(answer.as_bytes()).expect("answer");
    offerer
        .apply_remote_answer(now, &answer)
        .expect("apply answer");
    Pair {
        now,
        offerer,
        answerer,
        offerer_events: Vec::new(),
        answerer_events: Vec::new(),
        offerer_media: Vec::new(),
        answerer_media: Vec::new(),
        offerer_keyframe_requests: Vec::new(),
    }
}

impl Pair {
    /// Deliver everything queued, run due timers, advance 1 ms.
    fn step(&mut self) {
        let now = self.now;
        for leg in [&mut self.offerer, &mut self.answerer] {
            if leg.poll_timeout().is_some_and(|t| t <= now) {
                let _ = leg.handle_timeout(now);
            }
        }
        let mut buf = vec![0u8; 2048];
        loop {
            let mut moved = false;
            // One datagram at a time, media drained after each: the engine holds one
            // decrypted packet (the bridge drains after every input).
            while let Some((to, len)) = self.offerer.poll_datagram(&mut buf) {
                moved = true;
                if to == addr(ANSWERER) {
                    let _ = self.answerer.handle_datagram(
                        now,
                        addr(ANSWERER),
                        addr(OFFERER),
                        &buf[..len],
                    );
                    self.drain_media();
                }
            }
            while let Some((to, len)) = self.answerer.poll_datagram(&mut buf) {
                moved = true;
                if to == addr(OFFERER) {
                    let _ = self.offerer.handle_datagram(
                        now,
                        addr(OFFERER),
                        addr(ANSWERER),
                        &buf[..len],
                    );
                    self.drain_media();
                }
            }
            if !moved {
                break;
            }
        }
        self.drain_media();
        self.now += Duration::from_millis(1);
    }

    fn drain_media(&mut self) {
        let mut payload = vec![0u8; 2048];
        while let Some(m) = self.answerer.poll_media(&mut payload) {
            if let WebrtcMedia::Rtp(r) = m {
                self.answerer_media.push((
                    r.kind,
                    r.payload_type,
                    payload[..r.payload_len].to_vec(),
                ));
            }
        }
        while let Some(m) = self.offerer.poll_media(&mut payload) {
            match m {
                WebrtcMedia::Rtp(r) => self.offerer_media.push((
                    r.kind,
                    r.payload_type,
                    payload[..r.payload_len].to_vec(),
                )),
                WebrtcMedia::KeyframeRequest { kind, full_intra } => {
                    self.offerer_keyframe_requests.push((kind, full_intra));
                }
            }
        }
        while let Some(e) = self.offerer.poll_event() {
            self.offerer_events.push(e);
        }
        while let Some(e) = self.answerer.poll_event() {
            self.answerer_events.push(e);
        }
    }

    fn run_until(&mut self, limit: Duration, done: impl Fn(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn connected(&self) -> bool {
        self.offerer_events.contains(&WebrtcLegEvent::DtlsConnected)
            && self
                .answerer_events
                .contains(&WebrtcLegEvent::DtlsConnected)
    }
}

fn rtp(kind: MediaKind, pt: u8, seq: u16) -> OutgoingRtp {
    OutgoingRtp {
        kind,
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: u32::from(seq) * 160,
    }
}

#[test]
fn our_descriptions_read_back_as_written() {
    // The bridge sends the leg's descriptions without re-parsing them: what the browser
    // reads must be exactly the model the leg built.
    let now = Instant::now();
    let (_, offer) =
        WebrtcLeg::offer(now, &config(OFFERER), rng(3), ntp(now), &codecs()).expect("offer");
    let reread = SessionDescription::parse(offer.to_sdp_string().as_bytes()).expect("offer");
    assert_eq!(reread, offer);
    let (_, answer) =
        WebrtcLeg::answer(now, &config(ANSWERER), rng(4), ntp(now), &reread, &codecs())
            .expect("answer");
    let reread = SessionDescription::parse(answer.to_sdp_string().as_bytes()).expect("answer");
    assert_eq!(reread, answer);
}

#[test]
fn offerer_and_answerer_connect_and_carry_audio_and_video_both_ways() {
    let mut p = pair_with(|a| a);
    assert!(
        p.run_until(Duration::from_secs(5), Pair::connected),
        "{:?} {:?}",
        p.offerer_events,
        p.answerer_events
    );
    assert!(p.offerer_events.contains(&WebrtcLegEvent::IceConnected));
    // Both prefer AEAD-GCM (RFC 7714), AES-128 first.
    assert_eq!(
        p.offerer.transport_info().srtp_profile,
        "SRTP_AEAD_AES_128_GCM"
    );
    assert_eq!(
        p.answerer.transport_info().srtp_profile,
        "SRTP_AEAD_AES_128_GCM"
    );
    assert_eq!(p.offerer.dtls_role, Some(DtlsRole::Server));
    assert_eq!(p.answerer.dtls_role, Some(DtlsRole::Client));

    for seq in 0..20u16 {
        let now = p.now;
        let audio = vec![seq as u8; 160];
        p.offerer
            .send_rtp(now, rtp(MediaKind::Audio, 0, seq), &audio)
            .expect("send audio");
        p.answerer
            .send_rtp(now, rtp(MediaKind::Audio, 0, seq), &audio)
            .expect("send audio");
        p.offerer
            .send_rtp(now, rtp(MediaKind::Video, 96, seq), &[9u8; 900])
            .expect("send video");
        p.step();
    }
    let audio_at_answerer: Vec<_> = p
        .answerer_media
        .iter()
        .filter(|(k, pt, _)| *k == MediaKind::Audio && *pt == 0)
        .collect();
    assert_eq!(audio_at_answerer.len(), 20);
    assert!(audio_at_answerer
        .iter()
        .enumerate()
        .all(|(i, (_, _, data))| data == &vec![i as u8; 160]));
    assert_eq!(
        p.answerer_media
            .iter()
            .filter(|(k, pt, d)| *k == MediaKind::Video && *pt == 96 && d.len() == 900)
            .count(),
        20
    );
    assert_eq!(p.offerer_media.len(), 20);
    assert_eq!(p.offerer.negotiated_codecs().len(), 3);
}

#[test]
fn our_reports_reach_the_other_side_and_pli_names_our_stream() {
    let mut p = pair_with(|a| a);
    assert!(p.run_until(Duration::from_secs(5), Pair::connected));
    for seq in 0..150u16 {
        let now = p.now;
        p.offerer
            .send_rtp(now, rtp(MediaKind::Video, 96, seq), &[1u8; 300])
            .expect("video");
        p.answerer
            .send_rtp(now, rtp(MediaKind::Audio, 0, seq), &[2u8; 160])
            .expect("audio");
        for _ in 0..20 {
            p.step();
        }
    }
    // 3 s: several SRs each way; the answerer recorded the offerer's SR for its LSR
    // (RFC 3550 sec. 6.4.1), so its report blocks about the offerer are complete.
    let now = p.now;
    let block = p.answerer.in_streams[1]
        .stats
        .as_mut()
        .expect("video stream seen")
        .report_block(now);
    assert_ne!(block.last_sr, 0, "no SR from the offerer arrived");
    let block = p.offerer.in_streams[0]
        .stats
        .as_mut()
        .expect("audio stream seen")
        .report_block(now);
    assert_ne!(block.last_sr, 0, "no SR from the answerer arrived");

    // The answerer asks for a key frame: the offerer learns it is about its video.
    p.answerer
        .request_keyframe(now, MediaKind::Video)
        .expect("PLI");
    p.step();
    assert_eq!(p.offerer_keyframe_requests, vec![(MediaKind::Video, false)]);
}

#[test]
fn a_certificate_that_does_not_match_the_fingerprint_fails_dtls_at_once() {
    // RFC 8122 sec. 5 / RFC 5763 sec. 5: the answer claims another certificate.
    let mut p = pair_with(|answer| {
        answer
            .lines()
            .map(|l| {
                if l.starts_with("a=fingerprint:sha-256 ") {
                    format!("a=fingerprint:sha-256 {}", ["00"; 32].join(":"))
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    });
    let failed = p.run_until(Duration::from_secs(3), |p| {
        p.offerer_events.contains(&WebrtcLegEvent::DtlsFailed)
    });
    assert!(failed, "{:?}", p.offerer_events);
    assert!(!p.offerer_events.contains(&WebrtcLegEvent::DtlsConnected));
    let now = p.now;
    assert!(p
        .offerer
        .send_rtp(now, rtp(MediaKind::Audio, 0, 1), &[0u8; 160])
        .is_err());
}

#[test]
fn media_from_an_address_ice_never_saw_is_dropped() {
    let mut p = pair_with(|a| a);
    assert!(p.run_until(Duration::from_secs(5), Pair::connected));
    let now = p.now;
    p.answerer
        .send_rtp(now, rtp(MediaKind::Audio, 0, 7), &[3u8; 160])
        .expect("audio");
    let mut buf = [0u8; 2048];
    let (_, len) = p.answerer.poll_datagram(&mut buf).expect("a packet");
    let dropped = p.offerer.dropped;
    let stranger = addr("127.0.0.1:43000");
    let _ = p
        .offerer
        .handle_datagram(now, addr(OFFERER), stranger, &buf[..len]);
    let mut payload = [0u8; 2048];
    assert!(p.offerer.poll_media(&mut payload).is_none());
    assert_eq!(p.offerer.dropped, dropped + 1);
    // The same datagram from the real peer is accepted.
    let _ = p
        .offerer
        .handle_datagram(now, addr(OFFERER), addr(ANSWERER), &buf[..len]);
    assert!(matches!(
        p.offerer.poll_media(&mut payload),
        Some(WebrtcMedia::Rtp(_))
    ));
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut p = pair_with(|a| a);
    assert!(p.run_until(Duration::from_secs(5), Pair::connected));
    let now = p.now;
    let mut noise = rng(7);
    for len in 0..400usize {
        let mut d = vec![0u8; len];
        noise.fill(&mut d);
        if let Some(first) = d.first_mut() {
            // Walk every RFC 7983 range: STUN, DTLS, RTP/RTCP and the rest.
            *first = [0u8, 1, 22, 23, 128, 129, 0x90, 200, 255][len % 9];
        }
        let _ = p
            .offerer
            .handle_datagram(now, addr(OFFERER), addr(ANSWERER), &d);
        let mut payload = [0u8; 2048];
        while p.offerer.poll_media(&mut payload).is_some() {}
    }
    // The call survives: media still flows.
    p.answerer
        .send_rtp(now, rtp(MediaKind::Audio, 0, 99), &[5u8; 160])
        .expect("audio");
    p.step();
    assert!(p.offerer_media.iter().any(|(_, _, d)| d == &vec![5u8; 160]));
}

#[test]
fn close_sends_close_notify_and_reports_closed_once() {
    let mut p = pair_with(|a| a);
    assert!(p.run_until(Duration::from_secs(5), Pair::connected));
    p.offerer.close();
    p.offerer.close();
    let mut buf = [0u8; 2048];
    let (_, len) = p.offerer.poll_datagram(&mut buf).expect("close_notify");
    assert!(matches!(classify_datagram(&buf[..len]), DatagramKind::Dtls));
    let mut closed = 0;
    while let Some(e) = p.offerer.poll_event() {
        closed += usize::from(e == WebrtcLegEvent::Closed);
    }
    assert_eq!(closed, 1);
    assert_eq!(p.offerer.poll_timeout(), None);
}

#[test]
fn a_connected_idle_leg_wakes_about_twice_a_second() {
    let mut p = pair_with(|a| a);
    assert!(p.run_until(Duration::from_secs(5), Pair::connected));
    // 20 s without media: the agent ticks at most once a second (consent every 2 s) and
    // RTCP goes out about once a second; rtc's agent alone would ask every 200 ms.
    let end = p.now + Duration::from_secs(20);
    let mut wakeups = 0u32;
    while p.now < end {
        if p.offerer.poll_timeout().is_some_and(|t| t <= p.now) {
            wakeups += 1;
        }
        p.step();
    }
    assert!((20..=60).contains(&wakeups), "{wakeups} wake-ups in 20 s");
    // Consent kept the pair alive all along (RFC 7675).
    assert!(!p.offerer_events.contains(&WebrtcLegEvent::IceFailed));
    let now = p.now;
    p.answerer
        .send_rtp(now, rtp(MediaKind::Audio, 0, 500), &[8u8; 160])
        .expect("audio");
    p.step();
    assert!(p.offerer_media.iter().any(|(_, _, d)| d == &vec![8u8; 160]));
}
