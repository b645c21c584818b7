//! The media port range: even/odd RTP/RTCP pairs (RFC 3550 section 11) handed out and
//! taken back in O(1).

use std::collections::VecDeque;

use super::RtpLegError;

/// An RTP port and its RTCP companion (RFC 3550 section 11: RTP on an even port, RTCP on the
/// next odd one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPair {
    /// Even RTP port.
    pub rtp: u16,
    /// `rtp + 1`.
    pub rtcp: u16,
}

/// Hands out even/odd port pairs from the configured `--rtp-ports MIN-MAX` range. It only
/// tracks numbers; the reactor binds the sockets (and releases a pair it could not bind).
///
/// Released pairs go to the back of the queue, so a port is reused as late as possible and
/// stray packets of an ended call are unlikely to reach the next one. All operations are O(1).
#[derive(Debug, Clone)]
pub struct PortAllocator {
    first: u16,
    free: VecDeque<u16>,
    in_use: Vec<bool>,
}

impl PortAllocator {
    /// Pairs `(p, p + 1)` with `p` even, `min <= p` and `p + 1 <= max`.
    pub fn new(min: u16, max: u16) -> Result<Self, RtpLegError> {
        let first = min.saturating_add(min & 1);
        if first == u16::MAX || first.saturating_add(1) > max || first < min {
            return Err(RtpLegError::EmptyPortRange);
        }
        // In u32: the range 0..=65535 holds 32768 pairs, one more than u16 arithmetic allows.
        let pairs = (u32::from(max) - u32::from(first)).div_ceil(2) as usize;
        Ok(Self {
            first,
            free: (0..pairs as u16).collect(),
            in_use: vec![false; pairs],
        })
    }

    /// The next free pair, `None` when the range is exhausted (the gateway answers 503 or 488).
    pub fn allocate(&mut self) -> Option<PortPair> {
        let index = self.free.pop_front()?;
        if let Some(slot) = self.in_use.get_mut(usize::from(index)) {
            *slot = true;
        }
        let rtp = self.first + 2 * index;
        Some(PortPair { rtp, rtcp: rtp + 1 })
    }

    /// Returns a pair by its RTP port. Releasing twice or a foreign port is an error, so a
    /// double free cannot hand one pair to two calls.
    pub fn release(&mut self, rtp_port: u16) -> Result<(), RtpLegError> {
        let offset = rtp_port
            .checked_sub(self.first)
            .ok_or(RtpLegError::PortNotAllocated)?;
        if offset % 2 != 0 {
            return Err(RtpLegError::PortNotAllocated);
        }
        let index = offset / 2;
        match self.in_use.get_mut(usize::from(index)) {
            Some(slot) if *slot => {
                *slot = false;
                self.free.push_back(index);
                Ok(())
            }
            _ => Err(RtpLegError::PortNotAllocated),
        }
    }

    /// Pairs currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}
