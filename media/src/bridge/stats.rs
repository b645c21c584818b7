//! What the gateway can read about a call's media: per-leg counters.

use std::time::Duration;

use super::Bridge;

/// Counters of one leg, audio and video together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets received on the leg.
    pub packets_received: u64,
    /// Bytes received: whole RTP packets on the SIP leg (after SDES-SRTP removal), payload
    /// only on the WebRTC leg (`rtc` hands packets over parsed).
    pub bytes_received: u64,
    /// RTP packets sent on the leg.
    pub packets_sent: u64,
    /// Bytes sent, counted like `bytes_received`.
    pub bytes_sent: u64,
    /// Packets lost on the way in (RFC 3550 A.3, cumulative).
    pub packets_lost: i64,
    /// Interarrival jitter of the audio stream (RFC 3550 A.8).
    pub jitter: Duration,
}

/// Statistics of the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Toward the browser.
    pub webrtc: LegStats,
    /// Toward SIP.
    pub sip: LegStats,
    /// Packets dropped by the bridge (unmapped PT, queue overflow, no destination yet).
    pub dropped: u64,
}

impl Bridge {
    /// Per-leg statistics.
    pub fn stats(&self) -> BridgeStats {
        let mut out = BridgeStats {
            dropped: self.fwd.dropped + self.fwd.transmit.dropped(),
            ..BridgeStats::default()
        };
        for (i, s) in self.fwd.sip.iter().enumerate() {
            let Some(s) = s else { continue };
            let leg = s.leg.stats();
            out.sip.packets_received += leg.packets_received;
            out.sip.bytes_received += leg.bytes_received;
            out.sip.packets_sent += leg.packets_sent;
            out.sip.bytes_sent += leg.bytes_sent;
            out.sip.packets_lost += leg.packets_lost;
            out.dropped += leg.packets_dropped;
            if i == 0 {
                out.sip.jitter = Duration::from_micros(leg.jitter_us);
            }
        }
        for (i, s) in self.fwd.webrtc_streams.iter().enumerate() {
            let Some(s) = s else { continue };
            out.webrtc.packets_received += s.packets_received;
            out.webrtc.bytes_received += s.bytes_received;
            out.webrtc.packets_sent += s.packets_sent;
            out.webrtc.bytes_sent += s.bytes_sent;
            out.webrtc.packets_lost += s.lost();
            if i == 0 {
                out.webrtc.jitter = s.jitter();
            }
        }
        out
    }
}
