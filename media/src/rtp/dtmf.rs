//! RFC 4733 telephone-event payloads (DTMF).
//!
//! Events pass through the bridge like any other payload: only the payload type is remapped
//! ([`super::PayloadTypeMap`]) and SSRC/sequence/timestamp follow the stream. The view exists
//! so the gateway can log or surface key presses and so tests can check what went through.

use super::RtpError;

/// One telephone-event payload block (RFC 4733 section 2.3, figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D (RFC 4733 section 3.2).
    pub event: u8,
    /// E bit: the last packets of the event (sent three times, section 2.5.1.4).
    pub end: bool,
    /// Power level in -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (redundant blocks of RFC 2198 are not used
    /// by the peers we bridge).
    pub fn parse(payload: &[u8]) -> Result<Self, RtpError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(Self {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(RtpError::TooShort),
        }
    }

    /// The DTMF digit for events 0..=15, `None` for other events.
    pub fn digit(&self) -> Option<char> {
        b"0123456789*#ABCD"
            .get(usize::from(self.event))
            .map(|&c| char::from(c))
    }
}
