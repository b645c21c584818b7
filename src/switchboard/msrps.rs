//! Every chat session's MSRP connection engine, owned beside the SIP stack and the bridges.
//!
//! The gateway opens one [`MsrpConnection`] per chat session ([`Msrps::open`]) and drives it
//! through [`Msrps::get_mut`]; the reactor feeds it the bytes of its socket by [`MsrpId`] and
//! carries out its transmits. A connection the peer opens to our listener names its session
//! in the To-Path of its first frame: [`Msrps::claim`] looks the session id up and binds the
//! socket to that session's engine (RFC 4975 section 5.4). Counters of finished connections
//! are kept for the metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::drops::{self, DropKind};
use engine::{Deadlines, Key, Output, Rng, Table};
use msrp::connection::MsrpStats;
use msrp::frame::{FrameLimits, FrameReader, Parsed};
use msrp::{MsrpConfig, MsrpConnection, MsrpEvent, MsrpTransmit, MsrpUri};

/// Most engine events queued for the gateway (a few per message).
const MAX_QUEUED_EVENTS: usize = 65_536;
/// Most bytes an accepted connection may send before its first frame names a session.
pub const MAX_CLAIM_BYTES: usize = 16 * 1024;
/// How long a finished session's connection stays open: the BYE travels through proxies
/// while a closed TCP connection reaches the peer at once, and the peer should hear the
/// BYE first (its session ends as "BYE received", not "connection lost").
pub const LINGER: Duration = Duration::from_secs(2);

/// Identifies one chat session's MSRP connection for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsrpId(Key);

impl MsrpId {
    /// The slot index and generation, for packing into a mio token.
    pub fn key(self) -> Key {
        self.0
    }
}

impl std::fmt::Display for MsrpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0.index(), self.0.generation())
    }
}

/// What an accepted connection's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not a whole frame head yet.
    NeedMore,
    /// It is for this session, which waits for its peer.
    Session(MsrpId),
    /// No such session, not MSRP, or a session that has its connection already: close it.
    Refuse,
}

struct Slot {
    conn: Box<MsrpConnection>,
    /// The deadline last given to [`Deadlines`].
    armed: Option<Instant>,
    /// Listed in `dirty`.
    dirty: bool,
    /// The gateway let go of it: closed at `LINGER`'s end (or when the peer closes), and
    /// its events concern no one.
    lingering: bool,
}

/// MSRP counters over every connection, finished ones included (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsrpCounters {
    /// Connections opened (ours and accepted ones bound to a session).
    pub connections: u64,
    /// Connections ended by the peer's misbehaviour (framing, flood, stall).
    pub cut_off: u64,
    /// The engines' counters, summed.
    pub stats: MsrpStats,
}

/// The MSRP connections of every chat session.
#[derive(Default)]
pub struct Msrps {
    slots: Table<Slot>,
    deadlines: Deadlines<MsrpId>,
    by_session: HashMap<String, MsrpId>,
    /// Engines with output possibly pending.
    dirty: Vec<MsrpId>,
    transmits: VecDeque<(MsrpId, MsrpTransmit)>,
    events: VecDeque<(MsrpId, MsrpEvent)>,
    /// Events dropped because the queue was full (never expected; counted).
    pub dropped_events: u64,
    counters: MsrpCounters,
}

impl std::fmt::Debug for Msrps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Msrps")
            .field("connections", &self.slots.len())
            .finish()
    }
}

fn add(a: &mut MsrpStats, b: &MsrpStats) {
    a.messages_in += b.messages_in;
    a.messages_out += b.messages_out;
    a.bytes_in += b.bytes_in;
    a.bytes_out += b.bytes_out;
    a.refused += b.refused;
    a.malformed += b.malformed;
}

impl Msrps {
    /// A session whose URI is `local`: its engine, not connected yet (`config` shared by
    /// every engine).
    pub fn open(&mut self, config: Arc<MsrpConfig>, local: MsrpUri, rng: Rng) -> MsrpId {
        let session = local.session_id.clone().unwrap_or_default();
        let id = MsrpId(self.slots.insert(Slot {
            conn: Box::new(MsrpConnection::new(config, local, rng)),
            armed: None,
            dirty: false,
            lingering: false,
        }));
        self.by_session.insert(session, id);
        id
    }

    /// A live engine, for the gateway; follow with [`touched`](Self::touched).
    pub fn get_mut(&mut self, id: MsrpId) -> Option<&mut MsrpConnection> {
        self.slots.get_mut(id.0).map(|s| &mut *s.conn)
    }

    /// A live engine.
    pub fn get(&self, id: MsrpId) -> Option<&MsrpConnection> {
        self.slots.get(id.0).map(|s| &*s.conn)
    }

    /// After an input to `id`: its output is collected by [`drain`](Self::drain).
    pub fn touched(&mut self, id: MsrpId) {
        if let Some(s) = self.slots.get_mut(id.0) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Whether an engine has output to collect.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The gateway is done with `id`: no event of it reaches the gateway any more; its
    /// connection closes after [`LINGER`] (a connection that never came up at once).
    pub fn close(&mut self, now: Instant, id: MsrpId) {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        self.events.retain(|(e, _)| *e != id);
        if let Some(session) = slot.conn.local().session_id.as_ref() {
            if self.by_session.get(session) == Some(&id) {
                self.by_session.remove(session);
            }
        }
        if !slot.conn.is_connected() {
            self.shut(now, id);
            return;
        }
        slot.lingering = true;
        slot.armed = Some(now + LINGER);
        self.deadlines.set(id, slot.armed);
    }

    /// Closes `id`'s engine now: its last transmit (Close) goes to the reactor.
    fn shut(&mut self, now: Instant, id: MsrpId) {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        slot.conn.close(now);
        loop {
            match slot.conn.poll_output() {
                Output::Transmit(t) => self.transmits.push_back((id, t)),
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        self.remove(id);
    }

    fn remove(&mut self, id: MsrpId) {
        if let Some(slot) = self.slots.remove(id.0) {
            add(&mut self.counters.stats, slot.conn.stats());
            if let Some(session) = slot.conn.local().session_id.as_ref() {
                if self.by_session.get(session) == Some(&id) {
                    self.by_session.remove(session);
                }
            }
        }
        self.deadlines.cancel(id);
    }

    /// Number of engines (leak checks).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The first bytes of a connection the peer opened: which session it is for (the
    /// To-Path of its first frame, RFC 4975 section 5.4).
    pub fn claim(&mut self, first_bytes: &[u8]) -> Claim {
        let mut reader = FrameReader::new(FrameLimits {
            max_head: MAX_CLAIM_BYTES,
        });
        reader.push(first_bytes);
        let claim = match reader.read() {
            Ok(None) if first_bytes.len() < MAX_CLAIM_BYTES => Claim::NeedMore,
            Ok(Some(Parsed::Head(head))) => head.headers.to_path[0]
                .session_id
                .as_ref()
                .and_then(|s| self.by_session.get(s))
                .copied()
                .filter(|id| {
                    self.slots
                        .get(id.0)
                        .is_some_and(|s| !s.conn.is_connected() && !s.conn.is_closed())
                })
                .map_or(Claim::Refuse, Claim::Session),
            _ => Claim::Refuse,
        };
        if let Claim::Session(_) = claim {
            self.counters.connections += 1;
        }
        claim
    }

    /// The connection of `id` is up.
    pub fn handle_connected(&mut self, now: Instant, id: MsrpId) {
        if let Some(s) = self.slots.get_mut(id.0) {
            s.conn.handle_connected(now);
            self.touched(id);
        }
    }

    /// Bytes from `id`'s connection.
    pub fn handle_data(&mut self, now: Instant, id: MsrpId, data: &[u8]) {
        if let Some(s) = self.slots.get_mut(id.0) {
            s.conn.handle_data(now, data);
            self.touched(id);
        }
    }

    /// `id`'s connection closed or could not be opened.
    pub fn handle_closed(&mut self, now: Instant, id: MsrpId) {
        if let Some(s) = self.slots.get_mut(id.0) {
            s.conn.handle_closed(now);
            self.touched(id);
        }
    }

    /// `queued` bytes still wait for `id`'s socket.
    pub fn handle_backlog(&mut self, id: MsrpId, queued: usize) {
        if let Some(s) = self.slots.get_mut(id.0) {
            s.conn.handle_backlog(queued);
            if s.conn.wants_output() {
                self.touched(id);
            }
        }
    }

    /// Runs due engine timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.deadlines.pop_due(now) {
            let Some(s) = self.slots.get_mut(id.0) else {
                continue;
            };
            s.armed = None;
            if s.lingering {
                self.shut(now, id);
                continue;
            }
            s.conn.handle_timeout(now);
            self.touched(id);
        }
    }

    /// The earliest engine deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    /// Collects the output of every engine that had input: transmits and events queued in
    /// order, timers re-armed. An engine that reported `Closed` is dropped after its
    /// event (the gateway learns it through that event).
    pub fn drain(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            let Some(slot) = self.slots.get_mut(id.0) else {
                continue;
            };
            slot.dirty = false;
            let mut closed = false;
            loop {
                match slot.conn.poll_output() {
                    Output::Transmit(t) => self.transmits.push_back((id, t)),
                    Output::Event(e) => {
                        if let MsrpEvent::Closed(reason) = &e {
                            closed = true;
                            if slot.lingering {
                                continue;
                            }
                            if matches!(
                                reason,
                                msrp::CloseReason::Protocol(_)
                                    | msrp::CloseReason::Flood
                                    | msrp::CloseReason::Stalled
                            ) {
                                self.counters.cut_off += 1;
                                drops::record(
                                    now,
                                    DropKind::MsrpStreamClosed,
                                    format_args!("msrp connection cut off: {reason}"),
                                );
                            }
                        }
                        if slot.lingering {
                            // Nobody listens any more.
                        } else if self.events.len() < MAX_QUEUED_EVENTS {
                            self.events.push_back((id, e));
                        } else {
                            self.dropped_events += 1;
                        }
                    }
                    Output::Timeout(_) if slot.lingering => break,
                    Output::Timeout(deadline) => {
                        if deadline != slot.armed {
                            slot.armed = deadline;
                            self.deadlines.set(id, deadline);
                        }
                        break;
                    }
                }
            }
            if closed {
                self.remove(id);
            }
        }
    }

    /// The next transmit for the reactor.
    pub fn poll_transmit(&mut self) -> Option<(MsrpId, MsrpTransmit)> {
        self.transmits.pop_front()
    }

    /// The next event for the gateway.
    pub fn poll_event(&mut self) -> Option<(MsrpId, MsrpEvent)> {
        self.events.pop_front()
    }

    /// An engine we opened connects out: counted when its connect goes out.
    pub fn count_connect(&mut self) {
        self.counters.connections += 1;
    }

    /// Counters, live engines' included (metrics; O(connections), at scrape time).
    pub fn counters(&self) -> MsrpCounters {
        let mut out = self.counters;
        for (_, s) in self.slots.iter() {
            add(&mut out.stats, s.conn.stats());
        }
        out
    }
}
