//! Zero-copy RTP header view and in-place rewrite (RFC 3550 section 5.1).

use super::RtpError;

/// Fixed RTP header length (RFC 3550 section 5.1).
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// A validated RTP packet over a borrowed buffer: `&[u8]` to read, `&mut [u8]` to rewrite
/// header fields in place. Parsing checks every length once, so the accessors cannot fail.
#[derive(Debug)]
pub struct RtpPacket<B> {
    buf: B,
    payload_offset: usize,
    payload_end: usize,
}

impl<B: AsRef<[u8]>> RtpPacket<B> {
    /// Validates the header: version 2, CSRC list, header extension and padding all inside
    /// the buffer (RFC 3550 section 5.1 and 5.3.1). The payload may be empty.
    pub fn parse(buf: B) -> Result<Self, RtpError> {
        let b = buf.as_ref();
        let first = *b.first().ok_or(RtpError::TooShort)?;
        if b.len() < RTP_FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        if first >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let csrc_count = usize::from(first & 0x0f);
        let mut offset = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
        if first & 0x10 != 0 {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words (section 5.3.1).
            let ext = b.get(offset..offset + 4).ok_or(RtpError::TooShort)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            offset += 4 + 4 * words;
        }
        if offset > b.len() {
            return Err(RtpError::TooShort);
        }
        let mut payload_end = b.len();
        if first & 0x20 != 0 {
            // The last octet counts the padding, itself included (section 5.1, P bit).
            let pad = usize::from(*b.last().ok_or(RtpError::TooShort)?);
            if pad == 0 || pad > b.len() - offset {
                return Err(RtpError::BadPadding);
            }
            payload_end -= pad;
        }
        Ok(Self {
            buf,
            payload_offset: offset,
            payload_end,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn word(&self, at: usize) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Padding bit.
    pub fn padding(&self) -> bool {
        self.bytes()[0] & 0x20 != 0
    }

    /// Extension bit.
    pub fn extension(&self) -> bool {
        self.bytes()[0] & 0x10 != 0
    }

    /// Number of CSRC identifiers.
    pub fn csrc_count(&self) -> u8 {
        self.bytes()[0] & 0x0f
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.bytes()[1] & 0x80 != 0
    }

    /// Payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.bytes()[1] & 0x7f
    }

    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        let b = self.bytes();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        self.word(4)
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        self.word(8)
    }

    /// Offset of the payload from the start of the packet.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }

    /// The payload without header, extension or padding.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[self.payload_offset..self.payload_end]
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }

    /// Packet length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Always false: a parsed packet has at least the fixed header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<B> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Rewrites the payload type, keeping the marker bit.
    pub fn set_payload_type(&mut self, pt: u8) {
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x80) | (pt & 0x7f);
    }

    /// Sets or clears the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Rewrites the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.bytes_mut()[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Rewrites the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.bytes_mut()[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Rewrites the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.bytes_mut()[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.payload_offset, self.payload_end);
        &mut self.bytes_mut()[start..end]
    }
}

/// Writes a 12-byte RTP header (no CSRC, no extension) followed by `payload` into `out`,
/// returning the packet length. For building packets from header fields, e.g. what the
/// WebRTC stack hands over already parsed.
#[allow(clippy::too_many_arguments)]
pub fn write_rtp_packet(
    out: &mut [u8],
    payload_type: u8,
    marker: bool,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Result<usize, RtpError> {
    let len = RTP_FIXED_HEADER_LEN + payload.len();
    let dst = out.get_mut(..len).ok_or(RtpError::BufferTooSmall)?;
    dst[0] = 0x80;
    dst[1] = (payload_type & 0x7f) | if marker { 0x80 } else { 0 };
    dst[2..4].copy_from_slice(&sequence_number.to_be_bytes());
    dst[4..8].copy_from_slice(&timestamp.to_be_bytes());
    dst[8..12].copy_from_slice(&ssrc.to_be_bytes());
    dst[RTP_FIXED_HEADER_LEN..].copy_from_slice(payload);
    Ok(len)
}

/// Removes the header extension (RFC 3550 section 5.3.1) from the packet at the start of
/// `packet` in place, clearing the X bit, and returns the new length (unchanged when there
/// is none).
///
/// The SIP leg never negotiates `a=extmap` (the translation drops it), so extensions the
/// browser adds (audio level, abs-send-time, transport-wide cc, mid) mean nothing to the SIP
/// peer and RFC 8285 section 4.1.1 says not to send them. Removing them also keeps what reaches
/// `rtc::srtp` well-formed: its encrypt path re-derives the header size from its own parse of
/// the extension and panics (slice index) when a malformed one makes that larger than the
/// packet.
pub fn remove_header_extension(packet: &mut [u8]) -> Result<usize, RtpError> {
    let (first, csrc_count) = {
        let view = RtpPacket::parse(&*packet)?;
        (view.bytes()[0], usize::from(view.csrc_count()))
    };
    let len = packet.len();
    if first & 0x10 == 0 {
        return Ok(len);
    }
    let start = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    // parse() checked that the extension header and its declared words are inside the packet.
    let words = usize::from(u16::from_be_bytes([packet[start + 2], packet[start + 3]]));
    let ext_len = 4 + 4 * words;
    packet.copy_within(start + ext_len..len, start);
    packet[0] = first & !0x10;
    Ok(len - ext_len)
}
