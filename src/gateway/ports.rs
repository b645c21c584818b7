//! The media addresses of calls: even/odd port pairs from `media.rtp_ports`, and the bridge
//! configuration that goes with them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use engine::Rng;
use media::bridge::BridgeConfig;
use media::rtp_leg::{PortAllocator, RtpLegError};
use media::webrtc_leg::DtlsIdentity;

use crate::config::{MediaConfig, SipSrtp};
use crate::switchboard::MediaSocketKind;

/// `media.rtp_ports` cannot be used.
#[derive(Debug)]
pub struct PortRangeError(RtpLegError);

impl std::fmt::Display for PortRangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "media.rtp_ports: {}", self.0)
    }
}

impl std::error::Error for PortRangeError {}

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

/// The port range and the media settings.
pub(super) struct MediaPorts {
    pub config: MediaConfig,
    ports: PortAllocator,
    /// The certificate every call's DTLS presents (RFC 8827 sec. 6.5: one per process).
    identity: Arc<DtlsIdentity>,
}

impl MediaPorts {
    /// Ports over the configured range.
    pub fn new(
        config: MediaConfig,
        identity: Arc<DtlsIdentity>,
    ) -> Result<MediaPorts, PortRangeError> {
        let ports =
            PortAllocator::new(config.rtp_ports.0, config.rtp_ports.1).map_err(PortRangeError)?;
        Ok(MediaPorts {
            config,
            ports,
            identity,
        })
    }

    /// Free pairs.
    pub fn available(&self) -> usize {
        self.ports.available()
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
    pub fn bridge_config(&self, addrs: CallAddrs, wallclock: SystemTime, rng: Rng) -> BridgeConfig {
        let mut config = BridgeConfig::new(
            addrs.webrtc,
            addrs.audio,
            wallclock,
            rng,
            Arc::clone(&self.identity),
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
