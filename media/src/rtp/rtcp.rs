//! RTCP compound packet views and writers (RFC 3550 section 6, RFC 4585, RFC 5104).
//!
//! Parsing never allocates: [`RtcpCompound`] walks a borrowed buffer and yields typed views.
//! Writers fill a caller-provided buffer and return the length written.

use super::RtpError;

/// RTCP packet type: sender report (RFC 3550 section 6.4.1).
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report (RFC 3550 section 6.4.2).
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description (RFC 3550 section 6.5).
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye (RFC 3550 section 6.6).
pub const PT_BYE: u8 = 203;
/// RTCP packet type: full intra-frame request of RFC 2032 section 5.2.1 (H.261, obsoleted by
/// RFC 4587 and superseded by RFC 5104's FIR). SIP peers without AVPF feedback still send it:
/// libre/baresip does whenever the peer's video m-line has no `a=rtcp-fb ... nack`. It parses
/// as [`RtcpPacket::Other`]; the RTP leg takes it as a key frame request.
pub const PT_FIR_RFC2032: u8 = 192;
/// RTCP packet type: transport-layer feedback (RFC 4585 section 6.2).
pub const PT_RTPFB: u8 = 205;
/// RTCP packet type: payload-specific feedback (RFC 4585 section 6.3).
pub const PT_PSFB: u8 = 206;
/// Most report blocks one SR/RR can carry (5-bit count).
pub const MAX_REPORT_BLOCKS: usize = 31;

const REPORT_BLOCK_LEN: usize = 24;

/// One reception report block (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max seq).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source (0 if none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (0 if none).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Option<Self> {
        let w = |i: usize| -> Option<u32> {
            let s = b.get(i..i + 4)?;
            Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        let lost = w(4)?;
        // Sign-extend the 24-bit cumulative count.
        let cumulative = ((lost << 8) as i32) >> 8;
        Some(Self {
            ssrc: w(0)?,
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost: cumulative,
            extended_highest_seq: w(8)?,
            jitter: w(12)?,
            last_sr: w(16)?,
            delay_since_last_sr: w(20)?,
        })
    }

    fn write(&self, out: &mut [u8]) {
        // Clamp to the 24-bit signed range (RFC 3550 section 6.4.1 / errata 3560).
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Report blocks of an SR or RR, parsed lazily.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
    remaining: u8,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        if self.remaining == 0 {
            return None;
        }
        let block = ReportBlock::parse(self.rest.get(..REPORT_BLOCK_LEN)?)?;
        self.rest = self.rest.get(REPORT_BLOCK_LEN..)?;
        self.remaining -= 1;
        Some(block)
    }
}

/// The sender info of an SR (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp, 32.32 fixed point seconds since 1900.
    pub ntp_timestamp: u64,
    /// The same instant in RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since the start of transmission.
    pub packet_count: u32,
    /// Payload octets sent since the start of transmission.
    pub octet_count: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// Sender info.
        info: SenderInfo,
        /// Reception report blocks.
        blocks: ReportBlocks<'a>,
    },
    /// Receiver report.
    ReceiverReport {
        /// Reporter SSRC.
        ssrc: u32,
        /// Reception report blocks.
        blocks: ReportBlocks<'a>,
    },
    /// Source description; `body` holds the chunks (RFC 3550 section 6.5).
    SourceDescription {
        /// Number of chunks.
        count: u8,
        /// The chunks.
        body: &'a [u8],
    },
    /// Goodbye; `ssrcs` holds `count` 32-bit SSRCs.
    Bye {
        /// Number of SSRCs leaving.
        count: u8,
        /// SSRC list followed by an optional reason.
        body: &'a [u8],
    },
    /// Picture loss indication (RFC 4585 section 6.3.1).
    Pli {
        /// Who asks.
        sender_ssrc: u32,
        /// The stream that should send a key frame.
        media_ssrc: u32,
    },
    /// Full intra request (RFC 5104 section 4.3.1); the FCI entries name the streams.
    Fir {
        /// Who asks.
        sender_ssrc: u32,
        /// FCI entries: (SSRC, command sequence number).
        entries: &'a [u8],
    },
    /// Generic NACK (RFC 4585 section 6.2.1); the FCI holds (PID, BLP) pairs.
    Nack {
        /// Who asks.
        sender_ssrc: u32,
        /// The stream with losses.
        media_ssrc: u32,
        /// FCI entries.
        entries: &'a [u8],
    },
    /// Anything else (APP, XR, REMB, TWCC...), skipped over.
    Other {
        /// Packet type.
        packet_type: u8,
        /// Count / FMT field.
        count_or_format: u8,
        /// Body after the 4-byte header.
        body: &'a [u8],
    },
}

impl RtcpPacket<'_> {
    /// FIR entries as (SSRC, sequence number) pairs.
    pub fn fir_entries(entries: &[u8]) -> impl Iterator<Item = (u32, u8)> + '_ {
        entries
            .chunks_exact(8)
            .map(|e| (u32::from_be_bytes([e[0], e[1], e[2], e[3]]), e[4]))
    }

    /// BYE SSRCs.
    pub fn bye_ssrcs(count: u8, body: &[u8]) -> impl Iterator<Item = u32> + '_ {
        body.chunks_exact(4)
            .take(usize::from(count))
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Iterator over the packets of a compound RTCP datagram (RFC 3550 section 6.1). Stops at the
/// first malformed packet, yielding the error once.
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Starts walking `datagram` (already SRTCP-decrypted).
    pub fn new(datagram: &'a [u8]) -> Self {
        Self { rest: datagram }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = parse_one(self.rest);
        match result {
            Ok((packet, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(packet))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn parse_one(b: &[u8]) -> Result<(RtcpPacket<'_>, usize), RtpError> {
    let header = b.get(..4).ok_or(RtpError::TooShort)?;
    if header[0] >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    let count = header[0] & 0x1f;
    let packet_type = header[1];
    let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
    let whole = b.get(..len).ok_or(RtpError::TooShort)?;
    let mut body = &whole[4..];
    if header[0] & 0x20 != 0 {
        let pad = usize::from(*whole.last().ok_or(RtpError::TooShort)?);
        if pad == 0 || pad > body.len() {
            return Err(RtpError::BadPadding);
        }
        body = &body[..body.len() - pad];
    }
    let blocks = |from: usize| -> Result<ReportBlocks<'_>, RtpError> {
        let rest = body.get(from..).ok_or(RtpError::TooShort)?;
        if rest.len() < usize::from(count) * REPORT_BLOCK_LEN {
            return Err(RtpError::TooShort);
        }
        Ok(ReportBlocks {
            rest,
            remaining: count,
        })
    };
    let ssrc_at = |at: usize| be32(body, at).ok_or(RtpError::TooShort);
    let packet = match packet_type {
        PT_SR => {
            let ntp_hi = ssrc_at(4)?;
            let ntp_lo = ssrc_at(8)?;
            RtcpPacket::SenderReport {
                ssrc: ssrc_at(0)?,
                info: SenderInfo {
                    ntp_timestamp: (u64::from(ntp_hi) << 32) | u64::from(ntp_lo),
                    rtp_timestamp: ssrc_at(12)?,
                    packet_count: ssrc_at(16)?,
                    octet_count: ssrc_at(20)?,
                },
                blocks: blocks(24)?,
            }
        }
        PT_RR => RtcpPacket::ReceiverReport {
            ssrc: ssrc_at(0)?,
            blocks: blocks(4)?,
        },
        PT_SDES => RtcpPacket::SourceDescription { count, body },
        PT_BYE => {
            if body.len() < usize::from(count) * 4 {
                return Err(RtpError::TooShort);
            }
            RtcpPacket::Bye { count, body }
        }
        PT_PSFB if count == 1 => RtcpPacket::Pli {
            sender_ssrc: ssrc_at(0)?,
            media_ssrc: ssrc_at(4)?,
        },
        PT_PSFB if count == 4 => RtcpPacket::Fir {
            sender_ssrc: ssrc_at(0)?,
            entries: body.get(8..).ok_or(RtpError::TooShort)?,
        },
        PT_RTPFB if count == 1 => RtcpPacket::Nack {
            sender_ssrc: ssrc_at(0)?,
            media_ssrc: ssrc_at(4)?,
            entries: body.get(8..).ok_or(RtpError::TooShort)?,
        },
        _ => RtcpPacket::Other {
            packet_type,
            count_or_format: count,
            body,
        },
    };
    Ok((packet, len))
}

fn write_header(out: &mut [u8], count: u8, packet_type: u8, len: usize) {
    out[0] = 0x80 | (count & 0x1f);
    out[1] = packet_type;
    let words = u16::try_from(len / 4 - 1).unwrap_or(u16::MAX);
    out[2..4].copy_from_slice(&words.to_be_bytes());
}

/// Writes a sender report (RFC 3550 section 6.4.1); returns its length.
pub fn write_sender_report(
    out: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtpError::TooManyReportBlocks);
    }
    let len = 28 + REPORT_BLOCK_LEN * blocks.len();
    let dst = out.get_mut(..len).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, blocks.len() as u8, PT_SR, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    dst[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
    dst[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    dst[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    dst[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut dst[28 + i * REPORT_BLOCK_LEN..28 + (i + 1) * REPORT_BLOCK_LEN]);
    }
    Ok(len)
}

/// Writes a receiver report (RFC 3550 section 6.4.2); returns its length.
pub fn write_receiver_report(
    out: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, RtpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtpError::TooManyReportBlocks);
    }
    let len = 8 + REPORT_BLOCK_LEN * blocks.len();
    let dst = out.get_mut(..len).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, blocks.len() as u8, PT_RR, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut dst[8 + i * REPORT_BLOCK_LEN..8 + (i + 1) * REPORT_BLOCK_LEN]);
    }
    Ok(len)
}

/// Writes an SDES packet with one CNAME item (RFC 3550 section 6.5.1), which every compound
/// RTCP packet must carry (section 6.1); returns its length.
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, RtpError> {
    let item_len = u8::try_from(cname.len()).map_err(|_| RtpError::BufferTooSmall)?;
    // Chunk: SSRC, item (type, length, text), then at least one null octet, padded to 32 bits.
    let chunk = 4 + 2 + cname.len() + 1;
    let len = 4 + chunk.div_ceil(4) * 4;
    let dst = out.get_mut(..len).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, 1, PT_SDES, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    dst[8] = 1; // CNAME
    dst[9] = item_len;
    dst[10..10 + cname.len()].copy_from_slice(cname);
    dst[10 + cname.len()..].fill(0);
    Ok(len)
}

/// Writes a BYE for one SSRC (RFC 3550 section 6.6); returns its length.
pub fn write_bye(out: &mut [u8], ssrc: u32) -> Result<usize, RtpError> {
    let dst = out.get_mut(..8).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, 1, PT_BYE, 8);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    Ok(8)
}

/// Writes a picture loss indication (RFC 4585 section 6.3.1); returns its length.
pub fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, RtpError> {
    let dst = out.get_mut(..12).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, 1, PT_PSFB, 12);
    dst[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    dst[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    Ok(12)
}

/// Writes a full intra request with one FCI entry (RFC 5104 section 4.3.1); the media source
/// field is 0 as section 4.3.1.2 requires, the target is in the FCI. `seq_nr` must increase
/// for every new request (section 4.3.1.1) so the receiver can tell repeats apart.
pub fn write_fir(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    seq_nr: u8,
) -> Result<usize, RtpError> {
    let dst = out.get_mut(..20).ok_or(RtpError::BufferTooSmall)?;
    write_header(dst, 4, PT_PSFB, 20);
    dst[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    dst[8..12].fill(0);
    dst[12..16].copy_from_slice(&media_ssrc.to_be_bytes());
    dst[16] = seq_nr;
    dst[17..20].fill(0);
    Ok(20)
}

enum Feedback {
    None,
    MediaSsrc,
    Fir,
}

/// Translates keyframe requests in a compound RTCP datagram for the other leg, in place:
/// the sender SSRC of every PLI/FIR/NACK becomes `sender_ssrc`, and the stream it targets
/// (PLI/NACK media SSRC, FIR FCI SSRC) becomes `media_ssrc`. Returns how many feedback
/// packets were rewritten.
pub fn rewrite_feedback_ssrcs(
    datagram: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
) -> Result<usize, RtpError> {
    let mut at = 0;
    let mut rewritten = 0;
    while at < datagram.len() {
        let (kind, len, fci_len) = {
            let (packet, len) = parse_one(datagram.get(at..).unwrap_or(&[]))?;
            match packet {
                RtcpPacket::Pli { .. } | RtcpPacket::Nack { .. } => (Feedback::MediaSsrc, len, 0),
                RtcpPacket::Fir { entries, .. } => (Feedback::Fir, len, entries.len()),
                _ => (Feedback::None, len, 0),
            }
        };
        // parse_one checked that PLI/NACK packets hold both SSRCs and FIR packets its FCI.
        let packet = datagram.get_mut(at..at + len).ok_or(RtpError::TooShort)?;
        match kind {
            Feedback::MediaSsrc => {
                packet[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
                packet[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
                rewritten += 1;
            }
            Feedback::Fir => {
                packet[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
                for entry in packet[12..12 + fci_len].chunks_exact_mut(8) {
                    entry[0..4].copy_from_slice(&media_ssrc.to_be_bytes());
                }
                rewritten += 1;
            }
            Feedback::None => {}
        }
        at += len;
    }
    Ok(rewritten)
}
