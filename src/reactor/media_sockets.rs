//! Every call's media sockets: the WebRTC leg's UDP socket and the SIP leg's RTP/RTCP pairs.
//!
//! The gateway chooses the addresses (its port allocator hands out even/odd pairs) and asks
//! for them with [`GatewayCommand::OpenMedia`](crate::gateway::GatewayCommand); this module
//! binds them, hands each datagram straight to the call's bridge and sends what the bridge
//! produces. The hot path reads into the reactor's scratch buffer and writes borrowed bytes:
//! no allocation and no hashing per packet.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry};
use slab::Slab;

use super::token::{self, Generations, TokenKind};
use crate::gateway::PortProbe;
use crate::switchboard::{Bridges, MediaId, MediaSocketKind, Switchboard};
use media::bridge::BridgeTransmit;

/// [`PortProbe`] by binding: a port that cannot be bound because another socket holds it is
/// not free. The socket is closed again at once; the reactor binds the port for real within
/// the same turn, so only another process could take it in between.
#[derive(Debug, Default)]
pub struct BindProbe;

impl PortProbe for BindProbe {
    fn is_free(&mut self, addr: SocketAddr) -> bool {
        match std::net::UdpSocket::bind(addr) {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::AddrInUse,
        }
    }
}

/// Sockets per call at most: WebRTC + audio RTP/RTCP + video RTP/RTCP.
const MAX_SOCKETS_PER_CALL: usize = 5;
/// Bits of the token key that select the socket within a call.
const SOCKET_BITS: u32 = 3;

struct BoundSocket {
    socket: UdpSocket,
    local: SocketAddr,
    kind: MediaSocketKind,
}

struct CallMedia {
    generation: u32,
    media: MediaId,
    sockets: Vec<BoundSocket>,
}

/// Media sockets of all calls.
#[derive(Default)]
pub struct MediaSockets {
    calls: Slab<CallMedia>,
    by_media: HashMap<MediaId, usize>,
    /// Datagrams the kernel would not take (counted, not retried: RTP is loss-tolerant).
    pub dropped_sends: u64,
}

impl MediaSockets {
    /// Binds every socket of one call; for a call that has sockets already (video added by
    /// a renegotiation) the new ones join them. On failure nothing new stays bound and the
    /// error names the address.
    pub fn open(
        &mut self,
        registry: &Registry,
        generations: &mut Generations,
        media: MediaId,
        wanted: &[(MediaSocketKind, SocketAddr)],
    ) -> Result<(), String> {
        if let Some(&key) = self.by_media.get(&media) {
            return self.open_more(registry, key, wanted);
        }
        if wanted.len() > MAX_SOCKETS_PER_CALL {
            return Err(format!("{} media sockets asked for one call", wanted.len()));
        }
        let generation = generations.advance();
        let entry = self.calls.vacant_entry();
        let key = entry.key();
        let mut sockets = Vec::with_capacity(wanted.len());
        for (index, &(kind, addr)) in wanted.iter().enumerate() {
            let bound = UdpSocket::bind(addr).and_then(|mut socket| {
                let token_key = (key << SOCKET_BITS) | index;
                registry.register(
                    &mut socket,
                    token::encode(TokenKind::Media, token_key, generation),
                    Interest::READABLE,
                )?;
                Ok(socket)
            });
            match bound {
                Ok(socket) => sockets.push(BoundSocket {
                    socket,
                    local: addr,
                    kind,
                }),
                Err(e) => {
                    for mut s in sockets {
                        let _ = registry.deregister(&mut s.socket);
                    }
                    return Err(format!("cannot bind media socket {addr}: {e}"));
                }
            }
        }
        entry.insert(CallMedia {
            generation,
            media,
            sockets,
        });
        self.by_media.insert(media, key);
        Ok(())
    }

    /// Binds `wanted` beside the sockets call `key` has.
    fn open_more(
        &mut self,
        registry: &Registry,
        key: usize,
        wanted: &[(MediaSocketKind, SocketAddr)],
    ) -> Result<(), String> {
        let Some(call) = self.calls.get_mut(key) else {
            return Err("media sockets asked for a closed call".to_owned());
        };
        if call.sockets.len() + wanted.len() > MAX_SOCKETS_PER_CALL {
            return Err(format!(
                "more than {MAX_SOCKETS_PER_CALL} media sockets for one call"
            ));
        }
        let first = call.sockets.len();
        for (offset, &(kind, addr)) in wanted.iter().enumerate() {
            let bound = UdpSocket::bind(addr).and_then(|mut socket| {
                let token_key = (key << SOCKET_BITS) | (first + offset);
                registry.register(
                    &mut socket,
                    token::encode(TokenKind::Media, token_key, call.generation),
                    Interest::READABLE,
                )?;
                Ok(socket)
            });
            match bound {
                Ok(socket) => call.sockets.push(BoundSocket {
                    socket,
                    local: addr,
                    kind,
                }),
                Err(e) => {
                    for mut s in call.sockets.drain(first..) {
                        let _ = registry.deregister(&mut s.socket);
                    }
                    return Err(format!("cannot bind media socket {addr}: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Calls with sockets open.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Closes a call's sockets.
    pub fn close(&mut self, registry: &Registry, media: MediaId) {
        let Some(key) = self.by_media.remove(&media) else {
            return;
        };
        if self.calls.contains(key) {
            for mut s in self.calls.remove(key).sockets {
                let _ = registry.deregister(&mut s.socket);
            }
        }
    }

    /// Readiness on a media socket: reads every datagram into the call's bridge, sending
    /// what the bridge answers right away.
    pub fn read_ready(
        &mut self,
        token_key: usize,
        generation: u32,
        now: Instant,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) {
        let (key, index) = (
            token_key >> SOCKET_BITS,
            token_key & ((1 << SOCKET_BITS) - 1),
        );
        let Some(call) = self.calls.get(key) else {
            return;
        };
        if call.generation != generation {
            return;
        }
        let media = call.media;
        let Some(bound) = call.sockets.get(index) else {
            return;
        };
        let (kind, local) = (bound.kind, bound.local);
        let dropped = &mut self.dropped_sends;
        loop {
            match bound.socket.recv_from(buf) {
                Ok((n, from)) => {
                    let Some(datagram) = buf.get_mut(..n) else {
                        continue;
                    };
                    board.handle_media_datagram(now, media, kind, local, from, datagram, |t| {
                        send_on(&call.sockets, t, dropped)
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP port unreachable and friends concern one datagram, not the socket.
                Err(_) => {}
            }
        }
    }

    /// Sends everything the call's bridge has to send (when its sockets are gone, the call
    /// is ending: the datagrams are dropped so the bridge does not hold them).
    pub fn flush(&mut self, media: MediaId, bridges: &mut Bridges) {
        let dropped = &mut self.dropped_sends;
        let sockets = self
            .by_media
            .get(&media)
            .and_then(|&key| self.calls.get(key))
            .map_or(&[][..], |c| &c.sockets[..]);
        bridges.drain(media, |t| send_on(sockets, t, dropped));
    }
}

/// Sends `t` from the call's socket it names; a datagram the kernel will not take is counted,
/// not retried (RTP is loss-tolerant).
fn send_on(sockets: &[BoundSocket], t: BridgeTransmit<'_>, dropped: &mut u64) {
    // At most five sockets: a linear look-up beats hashing.
    let Some(bound) = sockets.iter().find(|s| s.local == t.from) else {
        return;
    };
    if bound.socket.send_to(t.bytes, t.to).is_err() {
        *dropped += 1;
    }
}
