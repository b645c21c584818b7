//! Payload type remapping and SSRC/sequence/timestamp continuity across source changes.

use std::time::Instant;

use super::header::RtpPacket;
use crate::sdp::Codec;

/// Marks a payload type with no mapping.
const UNMAPPED: u8 = 0xff;

/// Payload type translation between the legs: a 128-entry table, O(1) per packet.
///
/// Both legs may use different numbers for the same codec (dynamic types, RFC 3551
/// section 3, and RFC 3264 section 6.1 lets an answerer pick its own numbers), so every
/// forwarded packet passes through one of these. Unmapped types are dropped by the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadTypeMap {
    table: [u8; 128],
}

impl std::fmt::Debug for PayloadTypeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.table
                    .iter()
                    .enumerate()
                    .filter(|(_, to)| **to != UNMAPPED),
            )
            .finish()
    }
}

impl Default for PayloadTypeMap {
    fn default() -> Self {
        Self::empty()
    }
}

impl PayloadTypeMap {
    /// A map where nothing is mapped.
    pub fn empty() -> Self {
        Self {
            table: [UNMAPPED; 128],
        }
    }

    /// Maps `from` to `to`; numbers above 127 are ignored (RTP has 7-bit payload types).
    pub fn insert(&mut self, from: u8, to: u8) {
        if let Some(slot) = self.table.get_mut(usize::from(from)) {
            if to < 128 {
                *slot = to;
            }
        }
    }

    /// Maps every codec of `from` to the codec of `to` with the same encoding
    /// ([`Codec::same_encoding`]), e.g. the browser's payload types to the SIP peer's.
    /// Codecs without a counterpart stay unmapped.
    pub fn from_codecs(from: &[Codec], to: &[Codec]) -> Self {
        let mut map = Self::empty();
        for f in from {
            if let Some(t) = to.iter().find(|t| t.same_encoding(f)) {
                map.insert(f.payload_type, t.payload_type);
            }
        }
        map
    }

    /// The outgoing payload type for `pt`, `None` if it is not negotiated on the other leg.
    pub fn map(&self, pt: u8) -> Option<u8> {
        self.table
            .get(usize::from(pt))
            .copied()
            .filter(|&to| to != UNMAPPED)
    }

    /// Rewrites the packet's payload type; `false` (packet untouched) when it is unmapped.
    pub fn apply<B: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut RtpPacket<B>) -> bool {
        match self.map(packet.payload_type()) {
            Some(pt) => {
                packet.set_payload_type(pt);
                true
            }
            None => false,
        }
    }
}

/// The input stream currently mapped onto the output stream.
#[derive(Debug, Clone, Copy)]
struct MappedSource {
    input_ssrc: u32,
    seq_delta: u16,
    ts_delta: u32,
}

/// Rewrites SSRC, sequence number and timestamp so the stream one leg sends stays one
/// continuous RTP stream even when the other leg's source changes (a browser renegotiates, a
/// SIP peer transfers or re-INVITEs to another media server).
///
/// RFC 3550 section 8.2 only requires a new SSRC on collision; receivers such as SIP phones
/// and browsers' jitter buffers, however, handle a jump in sequence number or timestamp under
/// the same SSRC badly. So the output keeps our own SSRC and, when the input SSRC changes, the
/// new source is offset to continue right after the last packet sent: the next sequence number,
/// and the timestamp advanced by the wall-clock time since the last packet at the media clock
/// rate (RFC 3550 section 5.1: timestamps follow the sampling clock).
#[derive(Debug, Clone)]
pub struct SsrcRewriter {
    output_ssrc: u32,
    source: Option<MappedSource>,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
    /// The next packet starts a new mapping even from the same input SSRC (a codec change).
    rebase: bool,
}

impl SsrcRewriter {
    /// A rewriter that sends as `output_ssrc`. The first source's numbers pass through
    /// unchanged (they are already random per RFC 3550 section 5.1).
    pub fn new(output_ssrc: u32) -> Self {
        Self {
            output_ssrc,
            source: None,
            last_seq: 0,
            last_ts: 0,
            last_at: None,
            rebase: false,
        }
    }

    /// The stream changes codec (an offer/answer changed it, RFC 3264 section 8.3.2): the
    /// next packet is mapped as if from a new source, whatever its SSRC, so the output goes
    /// on at the next sequence number and at the last timestamp advanced by the time since
    /// at the new codec's clock rate (RFC 7160 section 4.2: one SSRC, several clock rates).
    /// The sender's own numbers for the new codec may restart anywhere.
    pub fn rebase(&mut self) {
        self.rebase = self.source.is_some();
    }

    /// The SSRC written into every packet.
    pub fn output_ssrc(&self) -> u32 {
        self.output_ssrc
    }

    /// Rewrites one packet in place. `clock_rate` is the RTP clock of the packet's payload type
    /// (used only when the source changes). Returns the output sequence number.
    pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        clock_rate: u32,
        packet: &mut RtpPacket<B>,
    ) -> u16 {
        let in_seq = packet.sequence_number();
        let in_ts = packet.timestamp();
        let source = match self.source {
            Some(s) if s.input_ssrc == packet.ssrc() && !self.rebase => s,
            Some(_) => {
                self.rebase = false;
                let elapsed = self
                    .last_at
                    .map_or(0, |t| now.saturating_duration_since(t).as_micros());
                // At least one tick, so the first packet of the new source is strictly newer.
                let advance = (elapsed * u128::from(clock_rate) / 1_000_000)
                    .clamp(1, u128::from(u32::MAX / 2));
                let advance = u32::try_from(advance).unwrap_or(1);
                let s = MappedSource {
                    input_ssrc: packet.ssrc(),
                    seq_delta: self.last_seq.wrapping_add(1).wrapping_sub(in_seq),
                    ts_delta: self.last_ts.wrapping_add(advance).wrapping_sub(in_ts),
                };
                self.source = Some(s);
                s
            }
            None => {
                let s = MappedSource {
                    input_ssrc: packet.ssrc(),
                    seq_delta: 0,
                    ts_delta: 0,
                };
                self.source = Some(s);
                self.last_seq = in_seq.wrapping_sub(1);
                self.last_ts = in_ts;
                s
            }
        };
        let out_seq = in_seq.wrapping_add(source.seq_delta);
        let out_ts = in_ts.wrapping_add(source.ts_delta);
        packet.set_ssrc(self.output_ssrc);
        packet.set_sequence_number(out_seq);
        packet.set_timestamp(out_ts);
        // Only newer packets move the reference point; reordered ones must not pull it back.
        if (out_seq.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_at = Some(now);
        }
        out_seq
    }
}
