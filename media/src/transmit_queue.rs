//! A bounded ring of datagram slots: the bridge's own outputs (RTP and RTCP toward SIP) and
//! the direct WebRTC engine's (ICE, DTLS, SRTP) wait here until the reactor drains them.
//!
//! A slot's buffer is allocated the first time the slot is used and kept, so the
//! steady-state path does not touch the heap. The reactor drains after every input, so the
//! ring rarely holds more than a datagram or two; an emptied ring starts again at its first
//! slot, and the deeper slots (there for bursts) cost nothing until a burst needs them.
//! Calls hold only what their traffic uses (performance.md P6).

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
                buf: Box::default(),
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
        if slot.buf.is_empty() {
            slot.buf = vec![0u8; SLOT_SIZE].into_boxed_slice();
        }
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
            self.len -= 1;
            // Emptied: the next datagram reuses the first slot's buffer.
            self.head = if self.len == 0 {
                0
            } else {
                (self.head + 1) % self.slots.len()
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn push(q: &mut TransmitQueue, byte: u8) -> bool {
        q.push_with(MediaSocketKind::Rtp, |buf| {
            buf[0] = byte;
            Some((1, addr(1), addr(2)))
        })
    }

    fn pop(q: &mut TransmitQueue) -> Option<u8> {
        let mut out = [0u8; SLOT_SIZE];
        q.pop_into(&mut out).map(|_| out[0])
    }

    fn allocated(q: &TransmitQueue) -> usize {
        q.slots.iter().filter(|s| !s.buf.is_empty()).count()
    }

    #[test]
    fn fifo_and_a_full_ring_drops_the_oldest() {
        let mut q = TransmitQueue::new(3);
        for b in 1..=4 {
            assert!(push(&mut q, b));
        }
        assert_eq!(q.dropped(), 1);
        assert_eq!(
            [pop(&mut q), pop(&mut q), pop(&mut q)],
            [Some(2), Some(3), Some(4)]
        );
        assert_eq!(pop(&mut q), None);
    }

    #[test]
    fn a_ring_drained_after_each_datagram_uses_one_buffer() {
        let mut q = TransmitQueue::new(8);
        assert_eq!(allocated(&q), 0, "nothing before the first datagram");
        for b in 0..100 {
            push(&mut q, b);
            assert_eq!(pop(&mut q), Some(b));
        }
        assert_eq!(allocated(&q), 1);
        // A burst takes more slots, which stay for the next one.
        for b in 0..5 {
            push(&mut q, b);
        }
        while pop(&mut q).is_some() {}
        assert_eq!(allocated(&q), 5);
        push(&mut q, 9);
        assert_eq!(pop(&mut q), Some(9));
        assert_eq!(allocated(&q), 5);
    }

    #[test]
    fn a_datagram_too_large_for_a_slot_is_not_queued() {
        let mut q = TransmitQueue::new(2);
        let queued = q.push_with(MediaSocketKind::Rtp, |buf| {
            Some((buf.len() + 1, addr(1), addr(2)))
        });
        assert!(!queued);
        assert_eq!(pop(&mut q), None);
    }
}
