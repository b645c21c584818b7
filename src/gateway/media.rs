//! The gateway's media plumbing: port allocation, the bridge per call, datagrams in,
//! transmits out, and bridge timers.
//!
//! The gateway picks every media address itself (even/odd pairs from `media.rtp_ports`) and
//! asks the reactor to bind them with [`GatewayOutput::OpenMedia`]; the reactor hands
//! datagrams back with a [`MediaRef`] and drains [`Gateway::drain_media`]. Lookups
//! on this path are O(1) and nothing here allocates per packet.

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use engine::Output;
use media::bridge::{BridgeConfig, BridgeTransmit};
use media::rtp_leg::PortAllocator;
use media::webrtc_leg::DtlsIdentity;

use super::{Gateway, GatewayOutput};
use crate::config::{MediaConfig, SipSrtp};

/// Identifies one call's media for the reactor; never reused within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaRef(pub u64);

/// A map keyed by [`MediaRef`], looked up several times per media packet. The keys are our
/// own counter, never chosen by a peer, so SipHash's flooding resistance buys nothing here
/// and a multiplicative hash (one multiply instead of ~150 instructions) does.
pub type MediaMap<V> = std::collections::HashMap<MediaRef, V, MediaRefHash>;

/// Fibonacci hashing for [`MediaRef`]: the multiply by an odd constant is a bijection on the
/// low bits, so consecutive refs land in distinct buckets, and it mixes the high bits that
/// hashbrown uses as tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaRefHash;

impl std::hash::BuildHasher for MediaRefHash {
    type Hasher = MediaRefHasher;

    fn build_hasher(&self) -> MediaRefHasher {
        MediaRefHasher(0)
    }
}

/// The hasher of [`MediaRefHash`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaRefHasher(u64);

impl std::hash::Hasher for MediaRefHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by MediaRef (which writes one u64); correct for anything else.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What a media socket is for: the media crate's one name for it.
pub use media::bridge::MediaSocketKind;

/// The local addresses of one call's sockets (RTCP on the port after each SIP RTP port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CallAddrs {
    /// The WebRTC leg's socket.
    pub webrtc: SocketAddr,
    /// SIP-side audio RTP.
    pub audio: SocketAddr,
    /// SIP-side video RTP, for calls whose offer has video.
    pub video: Option<SocketAddr>,
}

/// The ports one call holds, returned to the allocator when it ends.
#[derive(Debug, Default)]
pub(super) struct CallPorts {
    /// RTP ports of the pairs taken (the WebRTC socket uses the even port of its own pair):
    /// WebRTC, audio and, for video calls, video.
    pub pairs: Vec<u16>,
}

/// Media state of the gateway.
pub(super) struct MediaState {
    pub config: MediaConfig,
    /// The DTLS certificate every call's WebRTC leg presents.
    pub identity: Arc<DtlsIdentity>,
    pub ports: PortAllocator,
    pub next_ref: u64,
    /// Min-heap of (deadline, media ref); stale entries are skipped when popped.
    pub timers: std::collections::BinaryHeap<Reverse<(Instant, MediaRef)>>,
    /// Calls whose bridge may have transmits queued, for the reactor to drain.
    pub dirty: Vec<MediaRef>,
}

impl std::fmt::Debug for MediaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaState")
            .field("config", &self.config)
            .field("next_ref", &self.next_ref)
            .finish()
    }
}

impl MediaState {
    /// Media state over the configured port range.
    pub fn new(config: MediaConfig, identity: Arc<DtlsIdentity>) -> Result<MediaState, String> {
        let ports = PortAllocator::new(config.rtp_ports.0, config.rtp_ports.1)
            .map_err(|e| format!("media.rtp_ports: {e}"))?;
        Ok(MediaState {
            config,
            identity,
            ports,
            next_ref: 1,
            timers: Default::default(),
            dirty: Vec::new(),
        })
    }

    /// Takes the addresses of one call: the WebRTC socket, the SIP RTP/RTCP pair for audio
    /// and, when `video` (the offer has an active video m-line), one more pair for video.
    /// `None` when the range is exhausted (every taken pair is given back); a call whose video
    /// pair is not available goes on with audio only (the bridge then rejects video, port 0).
    pub fn allocate(&mut self, video: bool) -> Option<(CallPorts, CallAddrs)> {
        let ip = self.config.address;
        let webrtc = self.ports.allocate()?;
        let Some(audio) = self.ports.allocate() else {
            let _ = self.ports.release(webrtc.rtp);
            return None;
        };
        let video = if video { self.ports.allocate() } else { None };
        let mut pairs = vec![webrtc.rtp, audio.rtp];
        pairs.extend(video.map(|v| v.rtp));
        Some((
            CallPorts { pairs },
            CallAddrs {
                webrtc: SocketAddr::new(ip, webrtc.rtp),
                audio: SocketAddr::new(ip, audio.rtp),
                video: video.map(|v| SocketAddr::new(ip, v.rtp)),
            },
        ))
    }

    /// Returns a call's ports.
    pub fn release(&mut self, ports: &CallPorts) {
        for &p in &ports.pairs {
            let _ = self.ports.release(p);
        }
    }

    /// The bridge configuration for a call on these addresses.
    pub fn bridge_config(
        &self,
        addrs: CallAddrs,
        wallclock: std::time::SystemTime,
        rng: engine::Rng,
    ) -> BridgeConfig {
        let mut config = BridgeConfig::new(
            addrs.webrtc,
            addrs.audio,
            wallclock,
            rng,
            self.identity.clone(),
        );
        config.sip_video_local = addrs.video;
        config.webrtc.advertised_ip = self.config.advertised_address;
        config.webrtc.ice_lite = self.config.ice_lite;
        config.sip_advertised_ip = self.config.advertised_address;
        config.inactivity_timeout = self.config.inactivity_timeout;
        // "auto" starts plain and switches only after a 488 (see `create_session`).
        config.sip_offer_sdes = self.config.sip_srtp == SipSrtp::Mandatory;
        config
    }

    /// The sockets the reactor must bind for a call.
    pub fn sockets(addrs: CallAddrs) -> Vec<(MediaSocketKind, SocketAddr)> {
        let mut sockets = vec![(MediaSocketKind::Webrtc, addrs.webrtc)];
        for rtp in [Some(addrs.audio), addrs.video].into_iter().flatten() {
            sockets.push((MediaSocketKind::Rtp, rtp));
            sockets.push((
                MediaSocketKind::Rtcp,
                SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
            ));
        }
        sockets
    }
}

/// Whether an offer has an active video m-line, so the call needs a SIP video port pair.
/// An offer that does not parse gets none (the bridge refuses it anyway).
pub(super) fn offers_video(sdp: &str) -> bool {
    media::sdp::SessionDescription::parse(sdp.as_bytes()).is_ok_and(|d| d.has_active_video())
}

impl Gateway {
    /// A datagram arrived on one of a call's media sockets. A bad packet is a counted drop
    /// inside the bridge; the call goes on. The caller drains the call with
    /// [`drain_media`](Self::drain_media) right after.
    pub fn handle_media_datagram(
        &mut self,
        now: Instant,
        media: MediaRef,
        kind: MediaSocketKind,
        local: SocketAddr,
        from: SocketAddr,
        data: &mut [u8],
    ) {
        let Some(&key) = self.calls_by_media.get(&media) else {
            return;
        };
        let Some(bridge) = self.calls.get_mut(key).and_then(|c| c.bridge.as_mut()) else {
            return;
        };
        let _ = match kind {
            MediaSocketKind::Webrtc => bridge.handle_webrtc_datagram(now, local, from, data),
            MediaSocketKind::Rtp => bridge.handle_rtp_datagram(now, local, from, data),
            MediaSocketKind::Rtcp => bridge.handle_rtcp_datagram(now, local, from, data),
        };
    }

    /// The reactor could not bind a call's sockets: the call cannot have media.
    pub fn handle_media_unavailable(&mut self, now: Instant, media: MediaRef) {
        if let Some(&key) = self.calls_by_media.get(&media) {
            self.fail_call(now, key, "503 Media ports unavailable");
        }
    }

    /// Drains a call's bridge through its one output ([`media::bridge::Bridge::poll_output`]):
    /// every datagram to `send` (borrowed, no allocation), every event to the call, and its
    /// deadline into the media timers. The reactor calls it right after every datagram it
    /// hands in, for every call [`poll_media_dirty`](Self::poll_media_dirty) lists, and
    /// before it closes a finished call's sockets (whose bridge still sends RTCP BYE and
    /// DTLS close_notify).
    pub fn drain_media(
        &mut self,
        now: Instant,
        media: MediaRef,
        mut send: impl FnMut(BridgeTransmit<'_>),
    ) {
        loop {
            // Looked up again each time: an event may end the call, which moves its bridge
            // to the closing ones.
            let key = self.calls_by_media.get(&media).copied();
            let bridge = match key {
                Some(key) => match self
                    .calls
                    .get_mut(key)
                    .and_then(|c| c.bridge.as_deref_mut())
                {
                    Some(bridge) => bridge,
                    None => return,
                },
                None => match self.closing_bridges.get_mut(&media) {
                    Some(closing) => &mut *closing.0,
                    None => return,
                },
            };
            match bridge.poll_output() {
                Output::Transmit(t) => send(t),
                Output::Event(event) => {
                    if let Some(key) = key {
                        self.handle_bridge_event(now, key, event);
                    }
                }
                Output::Timeout(deadline) => {
                    if let Some(key) = key {
                        self.arm_media_timer(key, deadline);
                    }
                    return;
                }
            }
        }
    }

    /// A call whose bridge had input from the gateway itself (SDP, timers); drain it with
    /// [`drain_media`](Self::drain_media). A call is listed once however many inputs it had
    /// since the last drain. After [`handle_media_datagram`](Self::handle_media_datagram)
    /// the caller drains that call at once instead.
    pub fn poll_media_dirty(&mut self) -> Option<MediaRef> {
        let media = self.media.dirty.pop()?;
        if let Some(call) = self
            .calls_by_media
            .get(&media)
            .and_then(|&key| self.calls.get_mut(key))
        {
            call.dirty = false;
        }
        Some(media)
    }

    /// Runs the bridge timers that are due.
    pub(super) fn handle_media_timeouts(&mut self, now: Instant) {
        while let Some(Reverse((at, media))) = self.media.timers.peek().copied() {
            if at > now {
                break;
            }
            self.media.timers.pop();
            let Some(&key) = self.calls_by_media.get(&media) else {
                continue;
            };
            let Some(call) = self.calls.get_mut(key) else {
                continue;
            };
            if call.media_armed != Some(at) {
                continue;
            }
            call.media_armed = None;
            if let Some(bridge) = call.bridge.as_mut() {
                let _ = bridge.handle_timeout(now);
            }
            self.after_bridge_input(key);
        }
    }

    /// The earliest bridge deadline.
    pub(super) fn media_poll_timeout(&self) -> Option<Instant> {
        self.media.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// After the gateway's own input to a bridge: list it for the reactor's drain.
    pub(super) fn after_bridge_input(&mut self, key: usize) {
        if let Some(call) = self.calls.get_mut(key) {
            if !call.dirty {
                call.dirty = true;
                self.media.dirty.push(call.media_ref);
            }
        }
    }

    /// Re-arms a call's media timer at the deadline its bridge reported.
    fn arm_media_timer(&mut self, key: usize, deadline: Option<Instant>) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        if deadline != call.media_armed {
            call.media_armed = deadline;
            if let Some(at) = deadline {
                self.media.timers.push(Reverse((at, call.media_ref)));
            }
        }
    }

    /// Asks the reactor for a call's sockets.
    pub(super) fn open_media(&mut self, media: MediaRef, addrs: CallAddrs) {
        self.outputs.push_back(GatewayOutput::OpenMedia {
            media,
            sockets: MediaState::sockets(addrs),
        });
    }
}
