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

/// Whether a local UDP address can be bound now. The reactor's implementation binds and
/// releases a socket; the gateway asks before it hands out a pair, because the SDP with the
/// ports goes out before the reactor binds them, and a port another process holds (the
/// kernel's ephemeral ports may overlap `media.rtp_ports`) would otherwise fail the call.
pub trait PortProbe {
    /// False when binding `addr` fails with "address in use".
    fn is_free(&mut self, addr: SocketAddr) -> bool;
}

/// The probe of engines that bind nothing (tests): every port is free.
#[derive(Debug, Default)]
pub struct AssumeFree;

impl PortProbe for AssumeFree {
    fn is_free(&mut self, _addr: SocketAddr) -> bool {
        true
    }
}

/// The port range and the media settings.
pub(super) struct MediaPorts {
    pub config: MediaConfig,
    ports: PortAllocator,
    pub probe: Box<dyn PortProbe>,
    /// The certificate every call's DTLS presents (RFC 8827 sec. 6.5: one per process).
    identity: Arc<DtlsIdentity>,
}

impl std::fmt::Debug for MediaPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPorts")
            .field("config", &self.config)
            .field("available", &self.ports.available())
            .finish()
    }
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
            probe: Box::new(AssumeFree),
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
        let webrtc = self.take_pair()?;
        let Some(audio) = self.take_pair() else {
            let _ = self.ports.release(webrtc.rtp);
            return None;
        };
        let video = if video { self.take_pair() } else { None };
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

    /// One more pair for a call's video (a renegotiation adds video): recorded in `ports`,
    /// `None` when the range is exhausted.
    pub fn allocate_video(&mut self, ports: &mut CallPorts) -> Option<SocketAddr> {
        let pair = self.take_pair()?;
        ports.pairs.push(pair.rtp);
        Some(SocketAddr::new(self.config.address, pair.rtp))
    }

    /// The RTP and RTCP sockets of one SIP-side pair.
    pub fn pair_sockets(rtp: SocketAddr) -> Vec<(MediaSocketKind, SocketAddr)> {
        vec![
            (MediaSocketKind::Rtp, rtp),
            (
                MediaSocketKind::Rtcp,
                SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
            ),
        ]
    }

    /// The next pair whose two ports can be bound, as Janus does: a pair another process
    /// holds goes back to the end of the free list (it may be free again by its turn).
    fn take_pair(&mut self) -> Option<media::rtp_leg::PortPair> {
        let ip = self.config.address;
        let mut busy = Vec::new();
        let mut found = None;
        for _ in 0..self.ports.available() {
            let Some(pair) = self.ports.allocate() else {
                break;
            };
            let rtcp = pair.rtcp;
            if self.probe.is_free(SocketAddr::new(ip, pair.rtp))
                && self.probe.is_free(SocketAddr::new(ip, rtcp))
            {
                found = Some(pair);
                break;
            }
            log::info!(
                "media: ports {}-{rtcp} are in use elsewhere; trying the next pair",
                pair.rtp
            );
            busy.push(pair.rtp);
        }
        for rtp in busy {
            let _ = self.ports.release(rtp);
        }
        found
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe that reports `busy` ports as held by another process.
    struct Busy(Vec<u16>);

    impl PortProbe for Busy {
        fn is_free(&mut self, addr: SocketAddr) -> bool {
            !self.0.contains(&addr.port())
        }
    }

    /// Issue 16: a media port held by another process failed the call with 503 instead of
    /// the next free pair being tried (as Janus does).
    #[test]
    fn pairs_in_use_elsewhere_are_skipped_and_kept_for_later() {
        let config = MediaConfig {
            rtp_ports: (40000, 40009),
            ..crate::config::Config::default().media
        };
        let identity = Arc::new(media::webrtc_leg::DtlsIdentity::generate().expect("identity"));
        let mut ports = MediaPorts::new(config, identity).expect("range");
        // The first pair's RTCP port and the third pair's RTP port are taken.
        ports.probe = Box::new(Busy(vec![40001, 40004]));
        let (taken, addrs) = ports.allocate(false).expect("a call's ports");
        assert_eq!(addrs.webrtc.port(), 40002);
        assert_eq!(addrs.audio.port(), 40006);
        assert_eq!(ports.available(), 3, "the busy pairs stay in the pool");
        ports.release(&taken);
        ports.probe = Box::new(AssumeFree);
        let (_, addrs) = ports.allocate(false).expect("ports");
        assert_eq!(addrs.webrtc.port(), 40008, "busy pairs went to the back");
        // Every pair busy: no ports, nothing lost.
        ports.probe = Box::new(Busy((40000..40010).collect()));
        assert!(ports.allocate(false).is_none());
        assert_eq!(ports.available(), 3);
    }
}
