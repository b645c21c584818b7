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
use media::bridge::{Bridge, BridgeEvent, BridgeStats, BridgeTransmit, LegStats, MediaLeg};
use media::error::{BridgeError, WebrtcError};

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
    /// Failure counters and the statistics of the bridges that are gone (metrics).
    counters: MediaCounters,
}

/// Media failures counted by the bridges' owner, for the metrics endpoint. Plain integers
/// bumped on the packet path (no atomics, no allocation); read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// SRTP/SRTCP packets from the browser whose authentication or replay check failed
    /// (RFC 3711 section 3.3).
    pub srtp_auth_failures_webrtc: u64,
    /// The same on the SIP leg (SDES-SRTP, RFC 4568).
    pub srtp_auth_failures_sip: u64,
    /// Calls whose ICE connectivity with the browser failed.
    pub ice_failures: u64,
    /// Calls whose DTLS handshake with the browser failed.
    pub dtls_failures: u64,
    /// The final statistics of every removed bridge, summed.
    finished: BridgeStats,
}

impl MediaCounters {
    /// The SRTP authentication failures of `leg`.
    pub fn srtp_auth_failures(&self, leg: MediaLeg) -> u64 {
        match leg {
            MediaLeg::Webrtc => self.srtp_auth_failures_webrtc,
            MediaLeg::Sip => self.srtp_auth_failures_sip,
        }
    }
}

/// Adds `b`'s counters to `a` (negative loss, which RFC 3550 A.3 allows after duplicates,
/// counts as none so the sum only grows).
fn add_leg(a: &mut LegStats, b: &LegStats) {
    a.packets_received += b.packets_received;
    a.bytes_received += b.bytes_received;
    a.packets_sent += b.packets_sent;
    a.bytes_sent += b.bytes_sent;
    a.packets_lost += b.packets_lost.max(0);
}

fn add_stats(a: &mut BridgeStats, b: &BridgeStats) {
    add_leg(&mut a.webrtc, &b.webrtc);
    add_leg(&mut a.sip, &b.sip);
    a.dropped += b.dropped;
}

/// Which leg's SRTP refused a packet, if that is what `e` says.
fn srtp_auth_failure(e: &BridgeError) -> Option<MediaLeg> {
    use media::rtp::RtpError;
    use media::rtp_leg::RtpLegError;
    use media::srtp::SrtpError;
    match e {
        BridgeError::Webrtc(WebrtcError::Srtp(SrtpError::AuthFailed | SrtpError::Replayed)) => {
            Some(MediaLeg::Webrtc)
        }
        BridgeError::SipPacket(RtpLegError::Packet(RtpError::SrtpUnprotect)) => Some(MediaLeg::Sip),
        _ => None,
    }
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
        let result = match kind {
            MediaSocketKind::Webrtc => bridge.handle_webrtc_datagram(now, local, from, data),
            MediaSocketKind::Rtp => bridge.handle_rtp_datagram(now, local, from, data),
            MediaSocketKind::Rtcp => bridge.handle_rtcp_datagram(now, local, from, data),
        };
        match result.as_ref().err().and_then(srtp_auth_failure) {
            Some(MediaLeg::Webrtc) => self.counters.srtp_auth_failures_webrtc += 1,
            Some(MediaLeg::Sip) => self.counters.srtp_auth_failures_sip += 1,
            None => {}
        }
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
                    match event {
                        BridgeEvent::IceFailed => self.counters.ice_failures += 1,
                        BridgeEvent::DtlsFailed => self.counters.dtls_failures += 1,
                        _ => {}
                    }
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

    /// Whether a bridge has datagrams to send ([`poll_dirty`](Self::poll_dirty)).
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
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
        self.handle_timeout_while(now, &mut || true);
    }

    /// Runs due bridge timers, earliest first, while `more` says there is time (asked before
    /// each); the rest stay due.
    pub fn handle_timeout_while(&mut self, now: Instant, more: &mut dyn FnMut() -> bool) {
        while self.deadlines.earliest().is_some_and(|t| t <= now) && more() {
            let Some(id) = self.deadlines.pop_due(now) else {
                break;
            };
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

    /// Drops `id`'s bridge (its sockets are closed); its statistics stay in the totals.
    pub fn remove(&mut self, id: MediaId) {
        if let Some(slot) = self.slots.remove(id.0) {
            add_stats(&mut self.counters.finished, &slot.bridge.stats());
        }
        self.deadlines.cancel(id);
    }

    /// Failure counters (metrics).
    pub fn counters(&self) -> &MediaCounters {
        &self.counters
    }

    /// Media statistics of every call since the start: the removed bridges' final figures
    /// plus the live ones' current figures (metrics; O(live calls), at scrape time only).
    pub fn totals(&self) -> BridgeStats {
        let mut out = self.counters.finished;
        for (_, slot) in self.slots.iter() {
            add_stats(&mut out, &slot.bridge.stats());
        }
        out
    }
}
