//! The browsers: N `rtc` peer connections multiplexed on one mio loop in the bench's main
//! thread. Each has its own UDP socket and its own sylkRTC-2 WebSocket (one call per
//! connection, as a browser tab would). The loop follows the two rules of
//! shared/design/media-rtc.md: `handle_timeout(now)` again after any event, and a guard
//! against an expired deadline that does not move.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

pub const ACCOUNT: &str = "load@example.test";
const HA1: &str = "0123456789abcdef0123456789abcdef";
/// 20 ms of PCMU silence: a 160-byte payload, shared by every packet (no allocation).
static PAYLOAD: [u8; 160] = [0xFF; 160];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    Idle,
    /// session-create sent, waiting for `accepted`.
    Offered,
    /// Answer applied, waiting for `established`.
    Accepted,
    Established,
    Terminating,
    Terminated,
    Failed,
}

/// Received RTP of one SSRC: loss by sequence gaps.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqStats {
    pub ssrc: u32,
    pub first: u64,
    pub highest: u64,
    pub received: u64,
}

impl SeqStats {
    pub fn expected(&self) -> u64 {
        self.highest - self.first + 1
    }
}

pub struct Browser {
    pub ws: WebSocket<TcpStream>,
    pub udp: UdpSocket,
    pub local: SocketAddr,
    pub pc: Option<RTCPeerConnection>,
    pub sender: Option<RTCRtpSenderId>,
    pub session: String,
    pub state: CallState,
    pub error: Option<String>,
    pub t_create: Option<Instant>,
    pub t_accepted: Option<Instant>,
    pub t_pc_connected: Option<Instant>,
    pub t_established: Option<Instant>,
    pub pc_connected: bool,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub sent: u64,
    pub rx: Vec<SeqStats>,
    pub rx_total: u64,
    pub send_drops: u64,
    /// ICE reached Connected on our side.
    pub ice_connected: bool,
    /// DTLS records that arrived before our ICE was connected, replayed once it is (see
    /// `on_udp`); how many were replayed.
    early_dtls: Vec<(SocketAddr, Vec<u8>)>,
    pub early_dtls_replayed: u64,
    deadline: Option<Instant>,
    expired_repeats: u32,
    tx: u64,
}

/// Tokens: browser i owns 2i (WebSocket) and 2i+1 (UDP).
fn ws_token(i: usize) -> Token {
    Token(2 * i)
}
fn udp_token(i: usize) -> Token {
    Token(2 * i + 1)
}

pub struct Browsers {
    pub poll: Poll,
    events: Events,
    pub b: Vec<Browser>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    pub uri: String,
    /// When true, every established browser sends one packet per 20 ms in its slot.
    pub media_on: bool,
    next_media_tick: Instant,
    media_slot: u64,
    /// Calls started so far (browsers 0..started).
    pub started: usize,
    pub ws_errors: u64,
}

impl Browsers {
    /// Connects `n` WebSockets (blocking handshake, ready-event, account-add), then switches
    /// them to non-blocking and registers them with mio.
    pub fn connect(n: usize, ws_url: &str, uri: String) -> Browsers {
        let poll = Poll::new().expect("poll");
        let mut b = Vec::with_capacity(n);
        for i in 0..n {
            let mut req = ws_url.into_client_request().unwrap();
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("sylkRTC-2"),
            );
            let stream = TcpStream::connect(req.uri().authority().unwrap().as_str())
                .expect("connect to the gateway's ws listener");
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let (mut ws, _) = tungstenite::client(req, stream).expect("WebSocket handshake");
            let ready = read_json_blocking(&mut ws);
            assert_eq!(ready["sylkrtc"], "ready-event", "{ready}");
            send_json(
                &mut ws,
                &json!({"sylkrtc":"account-add","transaction":"a","account":ACCOUNT,"password":HA1}),
            );
            let ack = read_json_blocking(&mut ws);
            assert_eq!(ack["sylkrtc"], "ack", "account-add: {ack}");
            ws.get_ref().set_nonblocking(true).unwrap();
            let fd = ws.get_ref().as_raw_fd();
            poll.registry()
                .register(
                    &mut SourceFd(&fd),
                    ws_token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .unwrap();
            let mut udp = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).expect("bind UDP");
            let _ = socket2::SockRef::from(&udp).set_recv_buffer_size(1 << 20);
            let local = udp.local_addr().unwrap();
            poll.registry()
                .register(&mut udp, udp_token(i), Interest::READABLE)
                .unwrap();
            b.push(Browser {
                ws,
                udp,
                local,
                pc: None,
                sender: None,
                session: format!("load-{i}"),
                state: CallState::Idle,
                error: None,
                t_create: None,
                t_accepted: None,
                t_pc_connected: None,
                t_established: None,
                pc_connected: false,
                ssrc: 0x1000_0000 + i as u32,
                seq: (i as u16).wrapping_mul(7919),
                ts: 0,
                sent: 0,
                rx: Vec::new(),
                rx_total: 0,
                send_drops: 0,
                ice_connected: false,
                early_dtls: Vec::new(),
                early_dtls_replayed: 0,
                deadline: None,
                expired_repeats: 0,
                tx: 0,
            });
        }
        Browsers {
            poll,
            events: Events::with_capacity(1024),
            b,
            timers: BinaryHeap::new(),
            uri,
            media_on: false,
            next_media_tick: Instant::now(),
            media_slot: 0,
            started: 0,
            ws_errors: 0,
        }
    }

    pub fn count(&self, s: CallState) -> usize {
        self.b.iter().filter(|b| b.state == s).count()
    }

    /// Starts the next call: builds the pc, sends session-create with the offer, trickles the
    /// host candidate and end-of-candidates (pipelined, acks are checked as they come).
    pub fn start_next(&mut self, now: Instant) {
        let i = self.started;
        self.started += 1;
        let uri = self.uri.clone();
        let br = &mut self.b[i];
        let mut pc = new_pc(now, br.ssrc);
        let track = MediaStreamTrack::new(
            "load".to_owned(),
            "load-audio".to_owned(),
            "load-audio".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(br.ssrc),
                    ..Default::default()
                },
                ..Default::default()
            }],
        );
        br.sender = Some(pc.add_track(track).expect("add track"));
        let offer = pc.create_offer(None).expect("offer");
        pc.set_local_description(now, offer.clone())
            .expect("set local offer");
        let cand = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: br.local.ip().to_string(),
                port: br.local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .expect("candidate");
        let init = RTCIceCandidate::from(&cand)
            .to_json()
            .expect("candidate json");
        let line = init.candidate.clone();
        pc.add_local_candidate(init).expect("local candidate");
        br.pc = Some(pc);
        br.state = CallState::Offered;
        br.t_create = Some(now);
        let session = br.session.clone();
        br.request(
            json!({"sylkrtc":"session-create","account":ACCOUNT,"session":session,
            "uri":uri,"sdp":offer.sdp}),
        );
        br.request(json!({"sylkrtc":"session-trickle","session":session,
            "candidates":[{"candidate":line,"sdpMid":"0","sdpMLineIndex":0}]}));
        br.request(json!({"sylkrtc":"session-trickle","session":session,"candidates":[]}));
        self.pump(i, now);
    }

    pub fn terminate(&mut self, i: usize) {
        let br = &mut self.b[i];
        if matches!(
            br.state,
            CallState::Offered | CallState::Accepted | CallState::Established
        ) {
            br.state = CallState::Terminating;
            let session = br.session.clone();
            br.request(json!({"sylkrtc":"session-terminate","session":session}));
        }
    }

    /// Runs the loop until `done` or `until`; `starter` may start calls each iteration.
    pub fn drive(
        &mut self,
        until: Instant,
        mut starter: impl FnMut(&mut Browsers, Instant),
        done: impl Fn(&Browsers) -> bool,
    ) {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(1));
        loop {
            let now = Instant::now();
            if now >= until || done(self) {
                break;
            }
            starter(self, now);
            if self.media_on && now >= self.next_media_tick {
                self.media_tick(now);
            }
            self.run_timers(now);
            let mut wake = until.min(now + Duration::from_millis(5));
            if self.media_on {
                wake = wake.min(self.next_media_tick);
            }
            if let Some(Reverse((t, _))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                panic!("poll: {e}");
            }
            let now = Instant::now();
            for ev in events.iter() {
                let i = ev.token().0 / 2;
                if ev.token().0 % 2 == 0 {
                    self.on_ws(i, now);
                } else {
                    self.on_udp(i, now);
                }
            }
        }
        self.events = events;
    }

    /// One 1 ms slot: browsers with index = slot mod 20 send their packet.
    fn media_tick(&mut self, now: Instant) {
        let slot = (self.media_slot % 20) as usize;
        self.media_slot += 1;
        self.next_media_tick += Duration::from_millis(1);
        if self.next_media_tick + Duration::from_millis(20) < now {
            // Fell behind by more than a frame: skip ahead rather than burst.
            self.next_media_tick = now + Duration::from_millis(1);
        }
        let mut i = slot;
        while i < self.b.len() {
            if self.b[i].state == CallState::Established {
                self.send_rtp(i, now);
            }
            i += 20;
        }
    }

    pub fn start_media(&mut self) {
        self.media_on = true;
        self.next_media_tick = Instant::now();
    }

    fn send_rtp(&mut self, i: usize, now: Instant) {
        let br = &mut self.b[i];
        let (Some(pc), Some(sender)) = (br.pc.as_mut(), br.sender) else {
            return;
        };
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 0,
                sequence_number: br.seq,
                timestamp: br.ts,
                ssrc: br.ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(&PAYLOAD),
        };
        br.seq = br.seq.wrapping_add(1);
        br.ts = br.ts.wrapping_add(160);
        if let Some(mut s) = pc.rtp_sender(sender) {
            if s.write_rtp(now, packet).is_ok() {
                br.sent += 1;
            }
        }
        self.pump(i, now);
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, i))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.b[i].deadline != Some(t) {
                continue; // stale entry
            }
            self.b[i].deadline = None;
            if let Some(pc) = self.b[i].pc.as_mut() {
                if pc.handle_timeout(now).is_err() {
                    self.b[i].fail("handle_timeout error");
                }
            }
            self.pump(i, now);
            // Expired-deadline guard: the same past deadline twice in a row backs off.
            let br = &mut self.b[i];
            if br.deadline == Some(t) {
                br.expired_repeats += 1;
                let backoff = now + Duration::from_millis(10);
                br.deadline = Some(backoff);
                self.timers.push(Reverse((backoff, i)));
            } else {
                br.expired_repeats = 0;
            }
        }
    }

    fn on_udp(&mut self, i: usize, now: Instant) {
        let mut buf = [0u8; 2048];
        loop {
            let br = &mut self.b[i];
            match br.udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if debug(i) {
                        let t = br.t_create.map(|t| now - t);
                        eprintln!("browser {i} +{t:?}: datagram {n} B, first byte {}", buf[0]);
                    }
                    // The gateway's DTLS ClientHello can overtake its STUN success response;
                    // rtc drops DTLS before its ICE is connected and the peer retransmits only
                    // after 1 s. Browsers keep such records; so do we (RFC 7983 demux: 20-63).
                    if !br.ice_connected && (20..=63).contains(&buf[0]) {
                        if br.early_dtls.len() < 16 {
                            br.early_dtls.push((from, buf[..n].to_vec()));
                        }
                        continue;
                    }
                    br.feed(now, from, &buf[..n]);
                    self.pump(i, now);
                    let br = &mut self.b[i];
                    if br.ice_connected && !br.early_dtls.is_empty() {
                        for (from, d) in std::mem::take(&mut br.early_dtls) {
                            br.early_dtls_replayed += 1;
                            br.feed(now, from, &d);
                        }
                        self.pump(i, now);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn on_ws(&mut self, i: usize, now: Instant) {
        loop {
            let msg = match self.b[i].ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.ws_errors += 1;
                    let br = &mut self.b[i];
                    if !matches!(br.state, CallState::Terminated | CallState::Failed) {
                        br.fail(&format!("websocket: {e}"));
                    }
                    let fd = br.ws.get_ref().as_raw_fd();
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                    return;
                }
            };
            let Ok(v) = serde_json::from_str::<Value>(&msg) else {
                continue;
            };
            self.on_message(i, &v, now);
        }
        // Writable (or a pending write after WouldBlock): push out what tungstenite buffered.
        let _ = self.b[i].ws.flush();
    }

    fn on_message(&mut self, i: usize, v: &Value, now: Instant) {
        let br = &mut self.b[i];
        match v["sylkrtc"].as_str() {
            Some("error") => {
                let e = format!("error reply: {}", v["error"]);
                if br.state != CallState::Terminating {
                    br.fail(&e);
                }
            }
            Some("session-event") if v["event"] == "state" => {
                let state = v["state"].as_str().unwrap_or("");
                match state {
                    "accepted" if br.state == CallState::Offered => {
                        let sdp = v["sdp"].as_str().unwrap_or("").to_owned();
                        let ok = RTCSessionDescription::answer(sdp)
                            .ok()
                            .and_then(|a| br.pc.as_mut()?.set_remote_description(now, a).ok());
                        if ok.is_some() {
                            br.state = CallState::Accepted;
                            br.t_accepted = Some(now);
                            self.pump(i, now);
                        } else {
                            br.fail("could not apply the accepted answer");
                        }
                    }
                    "established" if br.state == CallState::Accepted => {
                        br.state = CallState::Established;
                        br.t_established = Some(now);
                    }
                    "terminated" => {
                        if br.state == CallState::Terminating {
                            br.state = CallState::Terminated;
                        } else {
                            let reason = v["reason"].as_str().unwrap_or("?").to_owned();
                            br.fail(&format!("terminated early: {reason}"));
                        }
                        if let Some(pc) = br.pc.as_mut() {
                            let _ = pc.close();
                        }
                        self.pump(i, now);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Drains writes, events and reads of browser i; re-arms its timer.
    fn pump(&mut self, i: usize, now: Instant) {
        let br = &mut self.b[i];
        let Some(pc) = br.pc.as_mut() else { return };
        for _ in 0..8 {
            while let Some(t) = pc.poll_write() {
                if br.udp.send_to(&t.message, t.transport.peer_addr).is_err() {
                    br.send_drops += 1;
                }
            }
            let mut n = 0;
            while let Some(e) = pc.poll_event() {
                n += 1;
                if debug(i) {
                    eprintln!("browser {i} +{:?}: {e:?}", br.t_create.map(|t| now - t));
                }
                match e {
                    RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(
                        RTCIceConnectionState::Connected,
                    ) => br.ice_connected = true,
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) => {
                        br.pc_connected = true;
                        br.t_pc_connected.get_or_insert(now);
                    }
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Failed,
                    ) if br.state != CallState::Terminated => {
                        br.state = CallState::Failed;
                        br.error.get_or_insert_with(|| "pc failed".to_owned());
                    }
                    _ => {}
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
                if let RTCMessage::RtpPacket(_, p) = message {
                    br.rx_total += 1;
                    count_seq(&mut br.rx, p.header.ssrc, p.header.sequence_number);
                }
            }
            while let Some(t) = pc.poll_write() {
                if br.udp.send_to(&t.message, t.transport.peer_addr).is_err() {
                    br.send_drops += 1;
                }
            }
            if n == 0 {
                break;
            }
            if pc.handle_timeout(now).is_err() {
                break;
            }
        }
        if let Some(t) = pc.poll_timeout() {
            if br.deadline.is_none_or(|d| t < d) {
                br.deadline = Some(t);
                self.timers.push(Reverse((t, i)));
            }
        }
    }
}

impl Browser {
    fn feed(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if let Some(pc) = self.pc.as_mut() {
            let _ = pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(bytes),
            });
        }
    }

    fn request(&mut self, mut v: Value) {
        self.tx += 1;
        v["transaction"] = format!("t{}", self.tx).into();
        if let Err(e) = self.ws.send(Message::Text(v.to_string().into())) {
            if !matches!(&e, tungstenite::Error::Io(io) if io.kind() == ErrorKind::WouldBlock) {
                self.fail(&format!("send: {e}"));
            }
        }
    }

    fn fail(&mut self, why: &str) {
        self.state = CallState::Failed;
        self.error.get_or_insert_with(|| why.to_owned());
    }
}

/// `LOAD_DEBUG=1` traces browser 0, `LOAD_DEBUG=all` every browser.
fn debug(i: usize) -> bool {
    static MODE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    match MODE.get_or_init(|| std::env::var("LOAD_DEBUG").ok().map(|v| v == "all")) {
        Some(true) => true,
        Some(false) => i == 0,
        None => false,
    }
}

/// Extends the 16-bit sequence number and counts it for its SSRC.
fn count_seq(rx: &mut Vec<SeqStats>, ssrc: u32, seq: u16) {
    let s = match rx.iter_mut().rev().find(|s| s.ssrc == ssrc) {
        Some(s) => s,
        None => {
            rx.push(SeqStats {
                ssrc,
                first: 65536 + u64::from(seq),
                highest: 65536 + u64::from(seq),
                received: 0,
            });
            rx.last_mut().unwrap()
        }
    };
    let cycle = s.highest & !0xFFFF;
    let mut ext = cycle | u64::from(seq);
    // Pick the extension closest to the highest seen.
    if ext + 0x8000 < s.highest {
        ext += 0x1_0000;
    } else if ext > s.highest + 0x8000 && ext >= 0x1_0000 {
        ext -= 0x1_0000;
    }
    s.highest = s.highest.max(ext);
    s.first = s.first.min(ext);
    s.received += 1;
}

/// The browser's pc: PCMU only (the SIP echo answers PCMU), no interceptors (no NACK/TWCC/
/// report generation: the generator must stay cheaper than the gateway).
fn new_pc(now: Instant, _ssrc: u32) -> RTCPeerConnection {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "audio/PCMU".to_owned(),
                clock_rate: 8000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: 0,
        },
        RtpCodecKind::Audio,
    )
    .expect("register PCMU");
    RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        // The gateway's checks reach us before its answer does, so its address is first
        // learned as peer-reflexive; pion's default 1 s prflx acceptance wait would then delay
        // nomination by 1 s (Chrome has no such wait). See the report of the first runs.
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
                .with_host_acceptance_min_wait(Some(Duration::ZERO))
                .build(),
        )
        .with_media_engine(me)
        .with_interceptor_registry(Registry::new())
        .build(now)
        .expect("browser pc")
}

fn read_json_blocking(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().expect("WebSocket read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("json"),
            _ => continue,
        }
    }
}

fn send_json(ws: &mut WebSocket<TcpStream>, v: &Value) {
    ws.send(Message::Text(v.to_string().into()))
        .expect("WebSocket send");
}
