//! Every call's media bridge, owned beside the SIP stack rather than inside the gateway.
//!
//! The reactor hands a media datagram straight to the bridge its socket belongs to
//! ([`Bridges::handle_datagram`]) and writes what the bridge sends ([`Bridges::drain`], a
//! send callback, since each datagram is borrowed from the bridge); only the bridge's rare
//! state changes ([`BridgeEvent`]s) travel on to the gateway. A bridge is addressed by a
//! generation-checked [`MediaId`], so a datagram for a call that just ended cannot reach
//! the call that reused its slot. Lookups on the packet path are slab indexing, no hashing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use engine::{Deadlines, Key, Output, Table};
use media::bridge::{Bridge, BridgeEvent, BridgeTransmit};

pub use media::bridge::MediaSocketKind;

/// Most bridge events queued for the gateway; a bridge reports a handful per call.
const MAX_QUEUED_EVENTS: usize = 65_536;

/// Identifies one call's media (its bridge and sockets) for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId(Key);

impl MediaId {
    /// The slot index and generation, for packing into a mio token.
    pub fn key(self) -> Key {
        self.0
    }

    /// The id back from [`key`](Self::key).
    pub fn from_key(key: Key) -> MediaId {
        MediaId(key)
    }
}

impl std::fmt::Display for MediaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0.index(), self.0.generation())
    }
}

struct Slot {
    /// Boxed: a bridge is several KiB, and the slab keeps spare capacity.
    bridge: Box<Bridge>,
    /// The deadline last given to [`Deadlines`], so re-arming after a packet costs a
    /// comparison rather than a map update when it did not move (the common case).
    armed: Option<Instant>,
    /// Listed in `dirty` (its output not drained yet).
    dirty: bool,
    /// The gateway let go of it: last datagrams (RTCP BYE, DTLS close_notify) still to flush.
    closing: bool,
}

/// The bridges of every call.
#[derive(Default)]
pub struct Bridges {
    slots: Table<Slot>,
    deadlines: Deadlines<MediaId>,
    /// Bridges with output possibly pending after an input that was not a datagram (the
    /// reactor drains a bridge right after each of its datagrams).
    dirty: Vec<MediaId>,
    events: VecDeque<(MediaId, BridgeEvent)>,
    /// Events dropped because the queue was full (never expected; counted, not silent).
    pub dropped_events: u64,
}

impl std::fmt::Debug for Bridges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridges")
            .field("bridges", &self.slots.len())
            .field("queued_events", &self.events.len())
            .finish()
    }
}

impl Bridges {
    /// Takes ownership of a new call's bridge.
    pub fn insert(&mut self, bridge: Box<Bridge>) -> MediaId {
        let id = MediaId(self.slots.insert(Slot {
            bridge,
            armed: None,
            dirty: false,
            closing: false,
        }));
        self.touched(id);
        id
    }

    /// Number of bridges, closing ones included (for leak checks).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bridges the gateway let go of whose sockets are not closed yet (for leak checks).
    pub fn closing_count(&self) -> usize {
        self.slots.iter().filter(|(_, s)| s.closing).count()
    }

    /// A live call's bridge, for the gateway's signalling inputs (SDP, candidates). Follow
    /// with [`touched`](Self::touched).
    pub fn get_mut(&mut self, id: MediaId) -> Option<&mut Bridge> {
        self.slots
            .get_mut(id.0)
            .filter(|s| !s.closing)
            .map(|s| &mut *s.bridge)
    }

    /// After a signalling input to `id`'s bridge: list it for the reactor to drain.
    pub fn touched(&mut self, id: MediaId) {
        if let Some(slot) = self.slots.get_mut(id.0) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// A datagram for `id` from one of its sockets. A bad packet is a counted drop inside the
    /// bridge and the call goes on. The caller [`drain`](Self::drain)s `id` right after.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        id: MediaId,
        kind: MediaSocketKind,
        local: SocketAddr,
        from: SocketAddr,
        data: &mut [u8],
    ) {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        let bridge = &mut slot.bridge;
        let _ = match kind {
            MediaSocketKind::Webrtc => bridge.handle_webrtc_datagram(now, local, from, data),
            MediaSocketKind::Rtp => bridge.handle_rtp_datagram(now, local, from, data),
            MediaSocketKind::Rtcp => bridge.handle_rtcp_datagram(now, local, from, data),
        };
    }

    /// Drains `id`'s bridge after an input: every datagram goes to `send` (borrowed from the
    /// bridge for the call), events are queued for the gateway and the timer is re-armed. A
    /// closing bridge's events concern no one any more and are dropped.
    pub fn drain(&mut self, id: MediaId, mut send: impl FnMut(BridgeTransmit<'_>)) {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        loop {
            match slot.bridge.poll_output() {
                Output::Transmit(t) => send(t),
                Output::Event(_) if slot.closing => {}
                Output::Event(event) => {
                    if self.events.len() < MAX_QUEUED_EVENTS {
                        self.events.push_back((id, event));
                    } else {
                        self.dropped_events += 1;
                    }
                }
                Output::Timeout(deadline) => {
                    let deadline = deadline.filter(|_| !slot.closing);
                    if deadline != slot.armed {
                        slot.armed = deadline;
                        self.deadlines.set(id, deadline);
                    }
                    return;
                }
            }
        }
    }

    /// A bridge that may have output pending after a signalling input or a timer; drain it
    /// with [`drain`](Self::drain). Each is listed once however many inputs it had since its
    /// last drain.
    pub fn poll_dirty(&mut self) -> Option<MediaId> {
        let id = self.dirty.pop()?;
        if let Some(slot) = self.slots.get_mut(id.0) {
            slot.dirty = false;
        }
        Some(id)
    }

    /// The next state change of any bridge, for the gateway.
    pub fn poll_event(&mut self) -> Option<(MediaId, BridgeEvent)> {
        self.events.pop_front()
    }

    /// Whether events wait for the gateway.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Runs every bridge timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.deadlines.pop_due(now) {
            let Some(slot) = self.slots.get_mut(id.0) else {
                continue;
            };
            slot.armed = None;
            if let Err(e) = slot.bridge.handle_timeout(now) {
                log::debug!("media {id}: timer: {e}");
            }
            self.touched(id);
        }
    }

    /// The earliest bridge deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    /// The gateway is done with `id`: the bridge says goodbye (RTCP BYE, DTLS close_notify)
    /// and keeps only those datagrams until [`remove`](Self::remove).
    pub fn close(&mut self, now: Instant, id: MediaId) {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        slot.closing = true;
        slot.bridge.close(now);
        slot.armed = None;
        self.deadlines.cancel(id);
        self.touched(id);
    }

    /// Drops `id`'s bridge (its sockets are closed).
    pub fn remove(&mut self, id: MediaId) {
        self.slots.remove(id.0);
        self.deadlines.cancel(id);
    }
}
