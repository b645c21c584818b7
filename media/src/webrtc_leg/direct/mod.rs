//! The direct WebRTC engine: `rtc`'s sans-IO ICE agent (`rtc::ice`, RFC 8445) and DTLS
//! endpoint (`rtc::dtls`, RFC 6347) driven directly, with SRTP keyed from the DTLS exporter
//! (RFC 5764 sec. 4.2) and done in place by [`crate::srtp`].
//!
//! Why not `RTCPeerConnection`: its media path allocates several times per packet and costs
//! more than twice the SRTP work itself, and it keeps the SRTP keys to itself, so that path
//! cannot be bypassed. A bridge needs none of what sits there (transceivers, interceptors,
//! data channels, renegotiation): one BUNDLEd transport, one audio and one video stream, and
//! key frame requests. Here the per-packet path is: classify (RFC 7983), check the source
//! against ICE, SRTP in place, parse the header, hand the payload out; no heap allocation.
//!
//! RTCP toward the browser is our own (RFC 3550 sec. 6.4 SR/RR with SDES CNAME, every
//! [`RTCP_INTERVAL`] on average); the browser's PLI/FIR come out as
//! [`WebrtcMedia::KeyframeRequest`] and its SRs feed our LSR/DLSR.

mod description;
mod identity;

pub use identity::DtlsIdentity;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use engine::Rng;
use rtc::crypto::HashAlgorithm;
use rtc::dtls::config::{
    ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig,
    VerifyPeerCertificateFn,
};
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::agent::{Agent, Event as IceEvent};
use rtc::ice::candidate::candidate_host::CandidateHostConfig;
use rtc::ice::candidate::{unmarshal_candidate, CandidateConfig, CandidateType};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::ice::state::ConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use self::description::{DtlsRole, LocalSource, LocalTransport, RemoteTransport};
use self::identity::hex_fingerprint;
use super::{
    CodecSpec, MediaKind, OutgoingRtp, ReceivedRtp, WebrtcLegConfig, WebrtcLegEvent, WebrtcMedia,
    WebrtcTransportInfo,
};
use crate::bridge::MediaSocketKind;
use crate::error::WebrtcError;
use crate::rtp::rtcp::{
    write_pli, write_receiver_report, write_sdes_cname, write_sender_report, RtcpCompound,
    RtcpPacket,
};
use crate::rtp::{classify_datagram, DatagramKind};
use crate::rtp::{write_rtp_packet, NtpClock, ReceptionStats, RtpPacket, SendStats};
use crate::srtp::{SrtpProfile, SrtpSession};
use crate::transmit_queue::TransmitQueue;

/// Mean interval of our RTCP reports toward the browser. RFC 3550 sec. 6.2's 5 s minimum
/// may be scaled down for high-bandwidth sessions, and browsers report about every second;
/// their statistics (`remote-inbound-rtp`, RTT) are only as fresh as our reports.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(1);
/// Largest datagram handled; anything bigger cannot come from a 1500-byte MTU path.
const MAX_DATAGRAM: usize = 1600;
/// Outgoing datagrams waiting for the reactor (it drains after every input).
const OUT_QUEUE_SLOTS: usize = 8;
/// Control-plane events kept until polled.
const MAX_EVENTS: usize = 16;
/// Key frame requests kept until polled (one compound RTCP rarely carries more than two).
const MAX_KEYFRAME_REQUESTS: usize = 4;
/// ICE timing: a check every 50 ms while connecting, consent (RFC 7675) every 2 s after;
/// disconnected after 5 s without a response, failed after 25 s (RFC 7675 sec. 5.1's 30 s
/// consent timeout, less the first interval).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);
const ICE_DISCONNECTED: Duration = Duration::from_secs(5);
const ICE_FAILED: Duration = Duration::from_secs(25);
/// Once connected, the agent is run at most this often. `rtc`'s agent asks for a tick every
/// 200 ms whatever its keepalive interval (its timeout interval never exceeds its default
/// check interval), about 4,400 instructions each: most of an idle call's CPU. Consent
/// (every [`ICE_KEEPALIVE`]) and the disconnected/failed timers need no finer grain.
const ICE_CONNECTED_TICK: Duration = Duration::from_millis(1000);

/// Everything a failed handshake step can be reported as.
fn engine_err(op: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> WebrtcError {
    move |source| WebrtcError::Engine { op, source }
}

/// One stream we send toward the browser.
#[derive(Debug)]
struct OutStream {
    ssrc: u32,
    stats: SendStats,
    clock_rate: u32,
}

/// One stream the browser sends.
#[derive(Debug)]
struct InStream {
    stats: Option<ReceptionStats>,
}

/// An RTP packet decrypted into `scratch`, waiting for `poll_media`.
#[derive(Debug, Clone, Copy)]
struct PendingRtp {
    header: ReceivedRtp,
    payload_start: usize,
}

/// The direct engine; see the module docs.
pub struct WebrtcLeg {
    identity: Arc<DtlsIdentity>,
    agent: Agent,
    /// The address written in our candidate; the agent knows the socket by it.
    candidate_addr: SocketAddr,
    local_ufrag: String,
    local_pwd: String,
    controlling: bool,
    /// We answer as an ICE-lite agent (RFC 8445 sec. 2.5).
    lite: bool,
    remote: Option<RemoteTransport>,
    /// DTLS client role: the handshake config, used once ICE connects.
    client_config: Option<Arc<HandshakeConfig>>,
    dtls: Option<Endpoint>,
    dtls_role: Option<DtlsRole>,
    /// DTLS runs over the ICE transport, not a 5-tuple (RFC 8445 sec. 12): one connection
    /// keyed by this fixed address whatever pair ICE selects.
    dtls_key: SocketAddr,
    srtp: Option<SrtpSession>,
    srtp_profile: Option<SrtpProfile>,
    /// Where media and DTLS go: the selected pair's remote candidate.
    peer: Option<SocketAddr>,
    /// Payload type -> stream kind, from the negotiated codecs (unique within a BUNDLE
    /// group, RFC 8843 sec. 9.1).
    pt_kind: [Option<MediaKind>; 128],
    clock_rates: [u32; 128],
    codecs: Vec<CodecSpec>,
    /// Offerer role: the kinds of our m-lines in order, and the codecs we offered.
    offered: Option<(Vec<MediaKind>, Vec<CodecSpec>)>,
    out_streams: [Option<OutStream>; 2],
    in_streams: [InStream; 2],
    /// The browser's SSRC per kind once seen, for PLI targets and report blocks.
    remote_ssrcs: [Option<u32>; 2],
    ntp: NtpClock,
    cname: String,
    rtcp_due: Option<Instant>,
    /// The leg's own random source (RTCP interval jitter); SSRCs and ICE credentials were
    /// drawn from it at construction.
    rng: Rng,
    scratch: Box<[u8]>,
    pending_rtp: Option<PendingRtp>,
    keyframe_requests: VecDeque<WebrtcMedia>,
    /// Datagrams for the reactor; pre-allocated, so sending allocates nothing.
    out: TransmitQueue,
    events: VecDeque<WebrtcLegEvent>,
    ice_connected: bool,
    ice_failed: bool,
    dtls_connected: bool,
    dtls_failed: bool,
    dtls_deadline: Option<Instant>,
    dtls_timeout: Duration,
    closed: bool,
    /// When the agent's `handle_timeout` last ran (see [`ICE_CONNECTED_TICK`]).
    last_agent_tick: Instant,
    /// `poll_timeout`'s last answer, `None` once control-plane input may have moved it.
    cached_deadline: Option<Option<Instant>>,
    /// The latest `now` seen, for `close()` (which takes none) to stamp its close_notify.
    last_now: Instant,
    /// Datagrams dropped: unknown source, SRTP failures, malformed packets.
    dropped: u64,
}

/// Lengths of our ICE username fragment and password in `ice-char`s (RFC 8839 sec. 5.4: at
/// least 4 and 22). The password authenticates connectivity checks (RFC 8445 sec. 7.2.2),
/// so it comes from the injected CSPRNG: 32 letters and digits are about 190 bits.
const ICE_UFRAG_LEN: usize = 16;
const ICE_PWD_LEN: usize = 32;

impl WebrtcLeg {
    fn build(
        now: Instant,
        config: &WebrtcLegConfig,
        mut rng: Rng,
        ntp: NtpClock,
        codecs: &[CodecSpec],
        controlling: bool,
    ) -> Result<Self, WebrtcError> {
        let identity = config.identity.clone();
        // Letters and digits are `ice-char`s (RFC 8839 sec. 5.4).
        let local_ufrag = rng.token(ICE_UFRAG_LEN);
        let local_pwd = rng.token(ICE_PWD_LEN);
        let agent_config = AgentConfig {
            lite: config.ice_lite,
            is_controlling: controlling && !config.ice_lite,
            local_ufrag: local_ufrag.clone(),
            local_pwd: local_pwd.clone(),
            candidate_types: vec![CandidateType::Host],
            network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
            multicast_dns_mode: MulticastDnsMode::Disabled,
            check_interval: ICE_CHECK_INTERVAL,
            keepalive_interval: Some(ICE_KEEPALIVE),
            disconnected_timeout: Some(ICE_DISCONNECTED),
            failed_timeout: Some(ICE_FAILED),
            ..Default::default()
        };
        let mut agent = Agent::new(now, Arc::new(agent_config), identity.provider.clone())
            .map_err(engine_err("create the ICE agent"))?;
        let ip = config.advertised_ip.unwrap_or(config.local_addr.ip());
        let candidate_addr = SocketAddr::new(ip, config.local_addr.port());
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: ip.to_string(),
                port: config.local_addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(engine_err("create the host candidate"))?;
        agent
            .add_local_candidate(candidate)
            .map_err(engine_err("add the host candidate"))?;

        let mut out_streams: [Option<OutStream>; 2] = [None, None];
        for kind in MediaKind::ALL {
            if codecs
                .iter()
                .any(|c| c.kind == kind && !c.is_telephone_event())
            {
                // RFC 3550 sec. 8.1: SSRCs are random; 0 is avoided as some stacks treat it
                // as unset.
                let ssrc = rng.next_u32().max(1);
                out_streams[kind.index()] = Some(OutStream {
                    ssrc,
                    stats: SendStats::default(),
                    clock_rate: 0,
                });
            }
        }
        let mut leg = Self {
            identity,
            agent,
            candidate_addr,
            local_ufrag,
            local_pwd,
            controlling: controlling && !config.ice_lite,
            lite: config.ice_lite,
            remote: None,
            client_config: None,
            dtls: None,
            dtls_role: None,
            dtls_key: SocketAddr::from(([192, 0, 2, 1], 9)),
            srtp: None,
            srtp_profile: None,
            peer: None,
            pt_kind: [None; 128],
            clock_rates: [0; 128],
            codecs: Vec::new(),
            offered: None,
            out_streams,
            in_streams: [InStream { stats: None }, InStream { stats: None }],
            remote_ssrcs: [None, None],
            ntp,
            cname: description::STREAM_ID.to_owned(),
            rtcp_due: None,
            rng,
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            pending_rtp: None,
            keyframe_requests: VecDeque::with_capacity(MAX_KEYFRAME_REQUESTS),
            out: TransmitQueue::new(OUT_QUEUE_SLOTS),
            events: VecDeque::with_capacity(MAX_EVENTS),
            ice_connected: false,
            ice_failed: false,
            dtls_connected: false,
            dtls_failed: false,
            dtls_deadline: None,
            dtls_timeout: config.dtls_timeout,
            closed: false,
            last_now: now,
            last_agent_tick: now,
            cached_deadline: None,
            dropped: 0,
        };
        leg.set_codecs(codecs);
        Ok(leg)
    }

    fn set_codecs(&mut self, codecs: &[CodecSpec]) {
        self.pt_kind = [None; 128];
        self.clock_rates = [0; 128];
        for c in codecs {
            let pt = usize::from(c.payload_type & 0x7f);
            self.pt_kind[pt] = Some(c.kind);
            self.clock_rates[pt] = c.clock_rate;
        }
        self.codecs = codecs.to_vec();
    }

    fn local_transport<'a>(
        &'a self,
        setup: &'static str,
        candidate: &'a str,
    ) -> LocalTransport<'a> {
        LocalTransport {
            ufrag: &self.local_ufrag,
            pwd: &self.local_pwd,
            fingerprint: &self.identity.fingerprint,
            setup,
            candidate,
            address: self.candidate_addr.ip(),
            port: self.candidate_addr.port(),
            ice_lite: self.lite,
        }
    }

    fn sources(&self) -> Vec<LocalSource<'_>> {
        MediaKind::ALL
            .into_iter()
            .filter_map(|kind| {
                self.out_streams[kind.index()]
                    .as_ref()
                    .map(|s| LocalSource {
                        kind,
                        ssrc: s.ssrc,
                        cname: &self.cname,
                    })
            })
            .collect()
    }

    fn candidate_line(&self) -> String {
        self.agent
            .get_local_candidates()
            .first()
            .map(|c| c.marshal())
            .unwrap_or_default()
    }

    fn session_id(&self) -> u64 {
        u64::from(
            self.out_streams
                .iter()
                .flatten()
                .map(|s| s.ssrc)
                .next()
                .unwrap_or(1),
        )
    }

    /// Answerer role (outgoing call: the browser offered). `codecs` are the ones the SIP side
    /// accepted, with the browser's payload types. Returns the leg and the complete answer.
    pub fn answer(
        now: Instant,
        config: &WebrtcLegConfig,
        rng: Rng,
        ntp: NtpClock,
        offer_sdp: &str,
        codecs: &[CodecSpec],
    ) -> Result<(Self, String), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let offer = description::parse(offer_sdp)?;
        let accepted = description::accepted_offer_lines(&offer, codecs);
        let remote = description::remote_transport(&offer, &accepted)?;
        // The offerer controls unless it is lite (RFC 8445 sec. 6.1.1).
        let controlling = remote.ice_lite;
        let mut leg = Self::build(now, config, rng, ntp, codecs, controlling)?;
        let role = description::answerer_dtls_role(&remote.setup);
        let setup = match role {
            DtlsRole::Client => "active",
            DtlsRole::Server => "passive",
        };
        let candidate = leg.candidate_line();
        let sources = leg.sources();
        let answer = description::write_answer(
            &offer,
            &accepted,
            codecs,
            &leg.local_transport(setup, &candidate),
            &sources,
            leg.session_id(),
        );
        drop(sources);
        leg.start(now, remote, role)?;
        Ok((leg, answer))
    }

    /// Offerer role (incoming SIP call: the gateway offers to the browser). Returns the leg
    /// and the complete offer (candidates and end-of-candidates included).
    pub fn offer(
        now: Instant,
        config: &WebrtcLegConfig,
        rng: Rng,
        ntp: NtpClock,
        codecs: &[CodecSpec],
    ) -> Result<(Self, String), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let mut leg = Self::build(now, config, rng, ntp, codecs, true)?;
        let candidate = leg.candidate_line();
        let sources = leg.sources();
        let (offer, kinds) = description::write_offer(
            codecs,
            &leg.local_transport("actpass", &candidate),
            &sources,
            leg.session_id(),
        );
        drop(sources);
        leg.offered = Some((kinds, codecs.to_vec()));
        Ok((leg, offer))
    }

    /// Remote description known: start ICE and prepare DTLS in `role`.
    fn start(
        &mut self,
        now: Instant,
        remote: RemoteTransport,
        role: DtlsRole,
    ) -> Result<(), WebrtcError> {
        for c in &remote.candidates {
            if let Err(e) = self.add_candidate_line(c) {
                log::debug!("remote candidate {c:?} skipped: {e}");
            }
        }
        let config = self.handshake_config(&remote.fingerprint, role)?;
        let server_config = (role == DtlsRole::Server).then(|| config.clone());
        self.dtls = Some(Endpoint::new(
            self.candidate_addr,
            TransportProtocol::UDP,
            server_config,
        ));
        self.client_config = (role == DtlsRole::Client).then_some(config);
        self.dtls_role = Some(role);
        self.agent
            .start_connectivity_checks(
                now,
                self.controlling,
                remote.ufrag.clone(),
                remote.pwd.clone(),
            )
            .map_err(engine_err("start ICE"))?;
        self.remote = Some(remote);
        self.drain_ice(now);
        Ok(())
    }

    /// DTLS settings for this call: our certificate, the SRTP profiles we accept (AEAD
    /// first, about half the CPU of AES-CM + HMAC-SHA1), mutual authentication, and the check
    /// of the peer's certificate against the SDP fingerprint (RFC 8122 sec. 5, RFC 5763
    /// sec. 5): without it anybody reaching the port could take the call's media.
    fn handshake_config(
        &self,
        fingerprint: &str,
        role: DtlsRole,
    ) -> Result<Arc<HandshakeConfig>, WebrtcError> {
        let expected: String = fingerprint.chars().filter(|c| !c.is_whitespace()).collect();
        let provider = self.identity.provider.clone();
        let verify: VerifyPeerCertificateFn = Arc::new(
            move |certs: &[Vec<u8>],
                  _chains: &[rustls::pki_types::CertificateDer<'static>]|
                  -> Result<(), rtc::shared::error::Error> {
                let cert = certs
                    .first()
                    .ok_or(rtc::shared::error::Error::ErrNonCertificate)?;
                let digest = provider
                    .crypto()
                    .hash(HashAlgorithm::Sha256, cert)
                    .map_err(|e| rtc::shared::error::Error::Other(e.to_string()))?;
                if hex_fingerprint(&digest).eq_ignore_ascii_case(&expected) {
                    Ok(())
                } else {
                    Err(rtc::shared::error::Error::ErrNoMatchingCertificateFingerprint)
                }
            },
        );
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.identity.provider.clone())
            .with_certificates(vec![self.identity.certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(role == DtlsRole::Client, None)
            .map_err(engine_err("configure DTLS"))?;
        Ok(Arc::new(config))
    }

    fn add_candidate_line(&mut self, line: &str) -> Result<(), WebrtcError> {
        let value = line.trim();
        let value = value.strip_prefix("a=").unwrap_or(value);
        let value = value.strip_prefix("candidate:").unwrap_or(value);
        let candidate = unmarshal_candidate(value).map_err(WebrtcError::InvalidCandidate)?;
        // Only UDP reaches our socket; mDNS names (`.local`) cannot be resolved with mDNS
        // off, and peer-reflexive discovery (RFC 8445 sec. 7.3.1.3) finds those peers anyway.
        if !matches!(
            candidate.network_type(),
            NetworkType::Udp4 | NetworkType::Udp6
        ) {
            return Ok(());
        }
        if candidate.address().parse::<IpAddr>().is_err() {
            return Ok(());
        }
        if self.agent.get_remote_candidates().len() >= description::MAX_REMOTE_CANDIDATES {
            return Err(WebrtcError::WrongState("too many remote candidates"));
        }
        self.agent
            .add_remote_candidate(candidate)
            .map(|_| ())
            .map_err(WebrtcError::InvalidCandidate)
    }

    fn push_event(&mut self, event: WebrtcLegEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }

    fn transport(&self, from: SocketAddr) -> TransportContext {
        TransportContext {
            local_addr: self.candidate_addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        }
    }

    /// Move the ICE agent's datagrams and events out; start DTLS once a pair is selected.
    fn drain_ice(&mut self, now: Instant) {
        while let Some(msg) = self.agent.poll_write() {
            queue_copy(
                &mut self.out,
                self.candidate_addr,
                msg.transport.peer_addr,
                &msg.message,
            );
        }
        while let Some(event) = self.agent.poll_event() {
            match event.event {
                IceEvent::SelectedCandidatePairChange(_, remote) => {
                    self.peer = Some(remote.addr());
                }
                IceEvent::ConnectionStateChange(state) => match state {
                    ConnectionState::Connected if !self.ice_connected => {
                        self.ice_connected = true;
                        if let Some((_, remote)) = self.agent.get_selected_candidate_pair() {
                            self.peer = Some(remote.addr());
                        }
                        self.dtls_deadline = Some(now + self.dtls_timeout);
                        self.push_event(WebrtcLegEvent::IceConnected);
                        self.start_dtls_client(now);
                    }
                    ConnectionState::Failed if !self.ice_failed => {
                        self.ice_failed = true;
                        self.dtls_deadline = None;
                        self.push_event(WebrtcLegEvent::IceFailed);
                    }
                    _ => {}
                },
                IceEvent::RoleChange(controlling) => self.controlling = controlling,
                _ => {}
            }
        }
    }

    /// RFC 5763 sec. 5: the active side starts the handshake once ICE has a working pair
    /// (sending the ClientHello earlier would only be dropped by the browser).
    fn start_dtls_client(&mut self, now: Instant) {
        let (Some(config), Some(endpoint)) = (self.client_config.clone(), self.dtls.as_mut())
        else {
            return;
        };
        if let Err(e) = endpoint.connect(now, self.dtls_key, config, None) {
            log::debug!("DTLS connect: {e}");
        }
        self.client_config = None;
        self.drain_dtls();
    }

    /// Queue the DTLS endpoint's datagrams toward the selected pair.
    fn drain_dtls(&mut self) {
        let Some(endpoint) = self.dtls.as_mut() else {
            return;
        };
        while let Some(msg) = endpoint.poll_transmit() {
            if let Some(to) = self.peer {
                queue_copy(&mut self.out, self.candidate_addr, to, &msg.message);
            }
        }
    }

    fn handle_dtls(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), WebrtcError> {
        if self.peer.is_none() {
            // The controlled side may see the peer's ClientHello before its own checks
            // finished; the source passed a check (validated by the caller).
            self.peer = Some(from);
        }
        let Some(endpoint) = self.dtls.as_mut() else {
            return Ok(());
        };
        let result = endpoint.read(now, self.dtls_key, None, BytesMut::from(bytes));
        self.drain_dtls();
        match result {
            Ok(events) => {
                for event in events {
                    match event {
                        EndpointEvent::HandshakeComplete => self.on_handshake_complete(now),
                        EndpointEvent::PeerClosed => {
                            log::debug!("browser closed DTLS (RFC 5246 sec. 7.2.1 close_notify)");
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Err(e) => {
                // A fatal alert or a certificate that does not match the fingerprint ends
                // the handshake: report it now instead of waiting for the deadline.
                if !self.dtls_connected && !self.dtls_failed && is_fatal_dtls_error(&e) {
                    self.dtls_failed = true;
                    self.dtls_deadline = None;
                    self.push_event(WebrtcLegEvent::DtlsFailed);
                }
                Err(WebrtcError::Engine {
                    op: "read DTLS",
                    source: e,
                })
            }
        }
    }

    /// The agent's own deadline, spaced by [`ICE_CONNECTED_TICK`] once ICE is connected.
    fn agent_deadline(&mut self) -> Option<Instant> {
        let deadline = self.agent.poll_timeout()?;
        if self.ice_connected && !self.ice_failed {
            Some(deadline.max(self.last_agent_tick + ICE_CONNECTED_TICK))
        } else {
            Some(deadline)
        }
    }

    /// Derive the SRTP keys (RFC 5764 sec. 4.2) and start media.
    fn on_handshake_complete(&mut self, now: Instant) {
        if self.dtls_connected || self.dtls_failed {
            return;
        }
        let keyed = self.dtls.as_ref().and_then(|endpoint| {
            let state = endpoint.get_connection_state(self.dtls_key)?;
            let id = state.srtp_protection_profile() as u16;
            let profile = SrtpProfile::from_dtls_id(id)?;
            let material = state
                .export_keying_material(
                    "EXTRACTOR-dtls_srtp",
                    &[],
                    SrtpSession::dtls_keying_material_len(profile),
                )
                .ok()?;
            let session = SrtpSession::from_dtls_keying_material(
                profile,
                material.as_ref(),
                state.is_client(),
            )
            .ok()?;
            Some((profile, session))
        });
        match keyed {
            Some((profile, session)) => {
                self.srtp = Some(session);
                self.srtp_profile = Some(profile);
                self.dtls_connected = true;
                self.dtls_deadline = None;
                // RFC 3550 sec. 6.2: the first report after half an interval.
                let first = self.next_rtcp_interval() / 2;
                self.rtcp_due = Some(now + first);
                self.push_event(WebrtcLegEvent::DtlsConnected);
            }
            None => {
                // No SRTP profile negotiated (RFC 5764 sec. 4.1.1 makes use_srtp mandatory
                // for DTLS-SRTP) or no keys: media cannot flow.
                self.dtls_failed = true;
                self.dtls_deadline = None;
                self.push_event(WebrtcLegEvent::DtlsFailed);
            }
        }
    }

    /// Whether `from` may send us DTLS or media: the current pair, or a candidate ICE knows
    /// (which also refreshes that candidate's last-received time).
    fn source_allowed(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.peer == Some(from) {
            return true;
        }
        let transport = self.transport(from);
        self.agent.is_valid_non_stun_traffic(now, transport)
    }

    fn handle_srtp(&mut self, now: Instant, bytes: &[u8], rtcp: bool) -> Result<(), WebrtcError> {
        let Some(srtp) = self.srtp.as_mut() else {
            self.dropped += 1;
            return Ok(());
        };
        let Some(buf) = self.scratch.get_mut(..bytes.len()) else {
            self.dropped += 1;
            return Err(WebrtcError::WrongState("datagram too large"));
        };
        buf.copy_from_slice(bytes);
        if rtcp {
            let len = match srtp.inbound.unprotect_rtcp(buf) {
                Ok(len) => len,
                Err(e) => {
                    self.dropped += 1;
                    return Err(WebrtcError::Srtp(e));
                }
            };
            self.handle_rtcp(now, len);
            return Ok(());
        }
        let len = match srtp.inbound.unprotect_rtp(buf) {
            Ok(len) => len,
            Err(e) => {
                self.dropped += 1;
                return Err(WebrtcError::Srtp(e));
            }
        };
        let Some(plain) = self.scratch.get(..len) else {
            self.dropped += 1;
            return Ok(());
        };
        let Ok(packet) = RtpPacket::parse(plain) else {
            self.dropped += 1;
            return Ok(());
        };
        let pt = packet.payload_type();
        let Some(kind) = self.pt_kind[usize::from(pt & 0x7f)] else {
            self.dropped += 1;
            return Ok(());
        };
        let header = ReceivedRtp {
            kind,
            marker: packet.marker(),
            payload_type: pt,
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
            payload_len: packet.payload().len(),
            arrival: now,
        };
        let payload_start = packet.payload_offset();
        let clock_rate = self.clock_rates[usize::from(pt & 0x7f)];
        let index = kind.index();
        self.remote_ssrcs[index] = Some(header.ssrc);
        let stream = &mut self.in_streams[index];
        match stream.stats.as_mut() {
            Some(stats) if stats.ssrc() == header.ssrc => {
                stats.record(
                    now,
                    header.sequence_number,
                    header.timestamp,
                    clock_rate,
                    header.payload_len,
                );
            }
            _ => {
                let mut stats = ReceptionStats::new(now, header.ssrc, header.sequence_number);
                stats.record(
                    now,
                    header.sequence_number,
                    header.timestamp,
                    clock_rate,
                    header.payload_len,
                );
                stream.stats = Some(stats);
            }
        }
        if self.pending_rtp.is_some() {
            // The caller did not drain the previous packet (see `poll_media`).
            self.dropped += 1;
        }
        self.pending_rtp = Some(PendingRtp {
            header,
            payload_start,
        });
        Ok(())
    }

    /// The browser's RTCP: key frame requests go to the bridge, SRs feed LSR/DLSR.
    fn handle_rtcp(&mut self, now: Instant, len: usize) {
        let Self {
            scratch,
            in_streams,
            out_streams,
            keyframe_requests,
            dropped,
            ..
        } = self;
        let Some(plain) = scratch.get(..len) else {
            return;
        };
        let mut request = |media_ssrc: u32, full_intra: bool| {
            let kind = MediaKind::ALL.into_iter().find(|k| {
                out_streams[k.index()]
                    .as_ref()
                    .is_some_and(|s| s.ssrc == media_ssrc)
            });
            if let Some(kind) = kind {
                if keyframe_requests.len() < MAX_KEYFRAME_REQUESTS {
                    keyframe_requests.push_back(WebrtcMedia::KeyframeRequest { kind, full_intra });
                }
            }
        };
        for packet in RtcpCompound::new(plain) {
            let Ok(packet) = packet else {
                *dropped += 1;
                break;
            };
            match packet {
                RtcpPacket::SenderReport { ssrc, info, .. } => {
                    for stream in in_streams.iter_mut() {
                        if let Some(stats) = stream.stats.as_mut().filter(|s| s.ssrc() == ssrc) {
                            stats.record_sender_report(now, info.ntp_timestamp);
                        }
                    }
                }
                RtcpPacket::Pli { media_ssrc, .. } => request(media_ssrc, false),
                RtcpPacket::Fir { entries, .. } => {
                    for (ssrc, _) in RtcpPacket::fir_entries(entries).take(2) {
                        request(ssrc, true);
                    }
                }
                _ => {}
            }
        }
    }

    /// Protect `len` bytes of plain RTCP written by `write` and queue them.
    fn send_rtcp(&mut self, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let (Some(srtp), Some(to)) = (self.srtp.as_mut(), self.peer) else {
            return false;
        };
        queue_rtcp(&mut self.out, srtp, self.candidate_addr, to, write)
    }

    /// Our periodic report: an SR per stream we sent on (RFC 3550 sec. 6.4.1), else an RR
    /// (sec. 6.4.2), each with report blocks about the browser's streams, plus SDES CNAME.
    fn send_report(&mut self, now: Instant) {
        let mut blocks = [crate::rtp::rtcp::ReportBlock::default(); 2];
        let mut count = 0;
        for stream in &mut self.in_streams {
            if let Some(stats) = stream.stats.as_mut() {
                blocks[count] = stats.report_block(now);
                count += 1;
            }
        }
        let blocks = &blocks[..count];
        let reporter = self.out_streams.iter().flatten().map(|s| s.ssrc).next();
        let Some(reporter) = reporter else {
            return;
        };
        let senders: [Option<(u32, crate::rtp::rtcp::SenderInfo)>; 2] = [0, 1].map(|i| {
            self.out_streams[i]
                .as_ref()
                .filter(|s| s.stats.packets() > 0)
                .map(|s| (s.ssrc, s.stats.sender_info(now, &self.ntp)))
        });
        let (Some(srtp), Some(to)) = (self.srtp.as_mut(), self.peer) else {
            return;
        };
        let cname = self.cname.as_bytes();
        queue_rtcp(&mut self.out, srtp, self.candidate_addr, to, |buf| {
            let mut len = 0;
            let mut reported = false;
            for (ssrc, info) in senders.iter().flatten() {
                let b = if reported { &[][..] } else { blocks };
                len += write_sender_report(buf.get_mut(len..)?, *ssrc, info, b).ok()?;
                reported = true;
            }
            if !reported {
                len += write_receiver_report(buf.get_mut(len..)?, reporter, blocks).ok()?;
            }
            len += write_sdes_cname(buf.get_mut(len..)?, reporter, cname).ok()?;
            Some(len)
        });
    }

    fn next_rtcp_interval(&mut self) -> Duration {
        // RFC 3550 sec. 6.3.1: randomise to 0.5..1.5 of the interval against synchronisation.
        let r = self.rng.next_u32() % 1000;
        RTCP_INTERVAL / 2 + RTCP_INTERVAL * r / 1000
    }
}

/// Queue a copy of a datagram the ICE agent or the DTLS endpoint produced.
fn queue_copy(out: &mut TransmitQueue, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
    out.push_with(MediaSocketKind::Webrtc, |buf| {
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some((bytes.len(), from, to))
    });
}

/// Let `write` put a plain compound RTCP packet into the next slot, protect it (RFC 3711
/// sec. 3.4) and queue it; false when it did not fit or SRTCP refused it.
fn queue_rtcp(
    out: &mut TransmitQueue,
    srtp: &mut SrtpSession,
    from: SocketAddr,
    to: SocketAddr,
    write: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> bool {
    out.push_with(MediaSocketKind::Webrtc, |buf| {
        let len = write(buf)?;
        let len = srtp.outbound.protect_rtcp(buf, len).ok()?;
        Some((len, from, to))
    })
}

fn is_fatal_dtls_error(e: &rtc::shared::error::Error) -> bool {
    use rtc::shared::error::Error as E;
    matches!(
        e,
        E::ErrNoMatchingCertificateFingerprint
            | E::ErrNonCertificate
            | E::ErrAlertFatalOrClose
            | E::ErrCipherSuiteNoIntersection
            | E::ErrServerNoMatchingSrtpProfile
            | E::ErrClientNoMatchingSrtpProfile
            | E::ErrServerRequiredButNoClientEms
            | E::ErrClientRequiredButNoServerEms
            | E::ErrNoCertificates
            | E::ErrInvalidCertificate
            | E::ErrClientCertificateRequired
    )
}

/// The leg's interface to the bridge. Sans-IO: every input carries the caller's `now`,
/// nothing here touches a socket or reads the clock.
impl WebrtcLeg {
    /// Feed one datagram received on the leg's socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), WebrtcError> {
        if self.closed {
            return Ok(());
        }
        self.last_now = now;
        match classify_datagram(bytes) {
            DatagramKind::Stun => {
                self.cached_deadline = None;
                let result = self.agent.handle_read(TaggedBytesMut {
                    now,
                    transport: self.transport(from),
                    message: BytesMut::from(bytes),
                });
                self.drain_ice(now);
                result.map_err(engine_err("read STUN"))
            }
            DatagramKind::Dtls => {
                if !self.source_allowed(now, from) {
                    self.dropped += 1;
                    return Ok(());
                }
                self.cached_deadline = None;
                self.handle_dtls(now, from, bytes)
            }
            kind @ (DatagramKind::Rtp | DatagramKind::Rtcp) => {
                if !self.source_allowed(now, from) {
                    self.dropped += 1;
                    return Ok(());
                }
                self.handle_srtp(now, bytes, kind == DatagramKind::Rtcp)
            }
            _ => {
                self.dropped += 1;
                Ok(())
            }
        }
    }

    /// Advance timers; call when [`WebrtcLeg::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebrtcError> {
        if self.closed {
            return Ok(());
        }
        self.last_now = now;
        self.cached_deadline = None;
        if self.dtls_deadline.is_some_and(|d| d <= now) {
            self.dtls_deadline = None;
            if !self.dtls_connected && !self.dtls_failed {
                self.dtls_failed = true;
                self.push_event(WebrtcLegEvent::DtlsFailed);
            }
        }
        if self.agent_deadline().is_some_and(|t| t <= now) {
            self.last_agent_tick = now;
            if let Err(e) = self.agent.handle_timeout(now) {
                log::debug!("ICE timeout: {e}");
            }
            self.drain_ice(now);
        }
        if let Some(endpoint) = self.dtls.as_mut() {
            if endpoint
                .poll_timeout(&self.dtls_key)
                .is_some_and(|t| t <= now)
            {
                if let Err(e) = endpoint.handle_timeout(self.dtls_key, now) {
                    log::debug!("DTLS timeout: {e}");
                }
                self.drain_dtls();
            }
        }
        if self.rtcp_due.is_some_and(|due| due <= now) {
            self.send_report(now);
            let next = self.next_rtcp_interval();
            self.rtcp_due = Some(now + next);
        }
        Ok(())
    }

    /// Next datagram to send: copied into `buf`, returns destination and length.
    pub fn poll_datagram(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        self.out.pop_into(buf).map(|(_, _, to, len)| (to, len))
    }

    /// Next state change.
    pub fn poll_event(&mut self) -> Option<WebrtcLegEvent> {
        self.events.pop_front()
    }

    /// Next decrypted media input; an RTP payload is copied into `payload`. Drain it after
    /// every [`WebrtcLeg::handle_datagram`]: the leg holds only the packet that datagram
    /// carried.
    pub fn poll_media(&mut self, payload: &mut [u8]) -> Option<WebrtcMedia> {
        if let Some(p) = self.pending_rtp.take() {
            let src = self
                .scratch
                .get(p.payload_start..p.payload_start + p.header.payload_len)?;
            let dst = payload.get_mut(..src.len())?;
            dst.copy_from_slice(src);
            return Some(WebrtcMedia::Rtp(p.header));
        }
        self.keyframe_requests.pop_front()
    }

    /// Encrypt and queue one RTP packet toward the browser.
    pub fn send_rtp(
        &mut self,
        now: Instant,
        rtp: OutgoingRtp,
        payload: &[u8],
    ) -> Result<(), WebrtcError> {
        let index = rtp.kind.index();
        let clock_rate = self.clock_rates[usize::from(rtp.payload_type & 0x7f)];
        let (Some(srtp), Some(to), Some(stream)) = (
            self.srtp.as_mut(),
            self.peer,
            self.out_streams[index].as_mut(),
        ) else {
            return Err(WebrtcError::WrongState("DTLS not connected yet"));
        };
        let ssrc = stream.ssrc;
        let from = self.candidate_addr;
        let mut failed = None;
        let queued = self.out.push_with(MediaSocketKind::Webrtc, |buf| {
            let len = write_rtp_packet(
                buf,
                rtp.payload_type,
                rtp.marker,
                rtp.sequence_number,
                rtp.timestamp,
                ssrc,
                payload,
            )
            .ok()?;
            match srtp.outbound.protect_rtp(buf, len) {
                Ok(n) => Some((n, from, to)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failed {
            return Err(WebrtcError::Srtp(e));
        }
        if !queued {
            return Err(WebrtcError::WrongState("packet does not fit"));
        }
        stream
            .stats
            .record(now, rtp.timestamp, clock_rate, payload.len());
        stream.clock_rate = clock_rate;
        Ok(())
    }

    /// Ask the browser for a key frame on `kind` (PLI, RFC 4585 sec. 6.3.1).
    pub fn request_keyframe(&mut self, _now: Instant, kind: MediaKind) -> Result<(), WebrtcError> {
        let index = kind.index();
        let Some(media_ssrc) = self.remote_ssrcs[index] else {
            return Ok(());
        };
        let sender_ssrc = self.local_ssrc(kind).unwrap_or(0);
        if self.send_rtcp(|buf| write_pli(buf, sender_ssrc, media_ssrc).ok()) {
            Ok(())
        } else {
            Err(WebrtcError::WrongState("DTLS not connected yet"))
        }
    }

    /// Earliest instant [`WebrtcLeg::handle_timeout`] must be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        // Media packets move no deadline, so the answer is cached until control-plane input
        // (STUN, DTLS, timers, candidates) may have changed one: the reactor asks after
        // every datagram, and the ICE agent and DTLS endpoint are not free to ask.
        if let Some(cached) = self.cached_deadline {
            return cached;
        }
        let dtls = self
            .dtls
            .as_ref()
            .and_then(|e| e.poll_timeout(&self.dtls_key));
        let next = [
            self.agent_deadline(),
            dtls,
            self.dtls_deadline,
            self.rtcp_due,
        ]
        .into_iter()
        .flatten()
        .min();
        self.cached_deadline = Some(next);
        next
    }

    /// A trickled remote candidate (RFC 8838); empty = end-of-candidates.
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), WebrtcError> {
        if self.remote.is_none() {
            return Err(WebrtcError::NoRemoteDescription);
        }
        // Empty = end-of-candidates (RFC 8838 sec. 4.3): nothing to do, checks go on.
        let trimmed = candidate.trim().trim_start_matches("a=");
        if trimmed.is_empty() || trimmed == "end-of-candidates" {
            return Ok(());
        }
        self.cached_deadline = None;
        self.add_candidate_line(trimmed)
    }

    /// Apply the browser's answer (offerer role only).
    pub fn apply_remote_answer(&mut self, now: Instant, sdp: &str) -> Result<(), WebrtcError> {
        if self.remote.is_some() {
            return Err(WebrtcError::WrongState(
                "remote description already applied",
            ));
        }
        let Some((kinds, offered)) = self.offered.clone() else {
            return Err(WebrtcError::WrongState("not the offerer"));
        };
        let answer = description::parse(sdp)?;
        let accepted: Vec<usize> = answer
            .media
            .iter()
            .enumerate()
            .take(kinds.len())
            .filter(|(_, m)| !m.is_port_zero())
            .map(|(i, _)| i)
            .collect();
        let remote = description::remote_transport(&answer, &accepted)?;
        let codecs = description::answered_codecs(&answer, &kinds, &offered);
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        self.last_now = now;
        self.cached_deadline = None;
        self.set_codecs(&codecs);
        // A lite browser leaves control to us; a full one too, as answerer (RFC 8445 sec. 6.1.1).
        let role = description::offerer_dtls_role(&remote.setup);
        self.start(now, remote, role)
    }

    /// Our SSRC toward the browser for `kind`, if the leg sends that kind.
    pub fn local_ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.out_streams[kind.index()].as_ref().map(|s| s.ssrc)
    }

    /// The codecs negotiated with the browser, with the browser-side payload types.
    pub fn negotiated_codecs(&self) -> Vec<CodecSpec> {
        self.codecs.clone()
    }

    /// DTLS/SRTP facts once connected.
    pub fn transport_info(&self) -> WebrtcTransportInfo {
        WebrtcTransportInfo {
            srtp_profile: self
                .srtp_profile
                .map(|p| p.name().to_owned())
                .unwrap_or_default(),
        }
    }

    /// Close the leg: queues DTLS close_notify (drain [`WebrtcLeg::poll_datagram`]
    /// afterwards) and reports [`WebrtcLegEvent::Closed`] once.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        if let Some(endpoint) = self.dtls.as_mut() {
            // close_notify (RFC 6347 sec. 4.1 via RFC 5246 sec. 7.2.1) so the browser stops
            // at once instead of waiting for consent to expire.
            let _ = endpoint.close(self.last_now);
        }
        self.drain_dtls();
        let _ = self.agent.close();
        self.closed = true;
        self.push_event(WebrtcLegEvent::Closed);
    }
}

impl std::fmt::Debug for WebrtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebrtcLeg")
            .field("candidate", &self.candidate_addr)
            .field("ice_connected", &self.ice_connected)
            .field("dtls_connected", &self.dtls_connected)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
