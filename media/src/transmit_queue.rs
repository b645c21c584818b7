//! A bounded ring of pre-allocated datagram slots: the bridge's own outputs (RTP and RTCP
//! toward SIP) and the direct WebRTC engine's (ICE, DTLS, SRTP) wait here until the reactor
//! drains them. Allocated once per call, so the steady-state path does not touch the heap.

use std::net::{Ipv4Addr, SocketAddr};

use crate::bridge::MediaSocketKind;

/// Big enough for any RTP packet on a 1500-byte MTU path plus slack.
pub(crate) const SLOT_SIZE: usize = 1600;

#[derive(Debug)]
struct Slot {
    socket: MediaSocketKind,
    from: SocketAddr,
    to: SocketAddr,
    len: usize,
    buf: Box<[u8]>,
}

/// Ring of `capacity` slots; when full, the oldest datagram is dropped (old media is
/// worthless, and the reactor drains after every input, so this only bites if it stalls).
#[derive(Debug)]
pub(crate) struct TransmitQueue {
    slots: Vec<Slot>,
    head: usize,
    len: usize,
    dropped: u64,
}

impl TransmitQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let slots = (0..capacity.max(1))
            .map(|_| Slot {
                socket: MediaSocketKind::Rtp,
                from: unspecified,
                to: unspecified,
                len: 0,
                buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            })
            .collect();
        Self {
            slots,
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Reserve the next slot and let `fill` write the datagram; `fill` returns its length,
    /// source and destination, or `None` to abandon the slot.
    pub(crate) fn push_with(
        &mut self,
        socket: MediaSocketKind,
        fill: impl FnOnce(&mut [u8]) -> Option<(usize, SocketAddr, SocketAddr)>,
    ) -> bool {
        let cap = self.slots.len();
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            self.dropped += 1;
        }
        let index = (self.head + self.len) % cap;
        let slot = &mut self.slots[index];
        match fill(&mut slot.buf) {
            Some((len, from, to)) if len <= slot.buf.len() => {
                slot.socket = socket;
                slot.from = from;
                slot.to = to;
                slot.len = len;
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Copy the oldest datagram into `out`; returns (socket, from, to, len).
    pub(crate) fn pop_into(
        &mut self,
        out: &mut [u8],
    ) -> Option<(MediaSocketKind, SocketAddr, SocketAddr, usize)> {
        while self.len > 0 {
            let slot = &self.slots[self.head];
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
            if let (Some(dst), Some(src)) = (out.get_mut(..slot.len), slot.buf.get(..slot.len)) {
                dst.copy_from_slice(src);
                return Some((slot.socket, slot.from, slot.to, slot.len));
            }
            self.dropped += 1;
        }
        None
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
