//! Every call's media sockets: the WebRTC leg's UDP socket and the SIP leg's RTP/RTCP pairs.
//!
//! The gateway chooses the addresses (its port allocator hands out even/odd pairs) and asks
//! for them with [`GatewayOutput::OpenMedia`](crate::gateway::GatewayOutput); this module
//! binds them, hands datagrams to the gateway and sends what the call's bridge produces. The
//! hot path reads into the reactor's scratch buffer and writes borrowed bytes: no
//! allocation per packet.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry};
use slab::Slab;

use super::token::{self, Generations, TokenKind};
use crate::gateway::{Gateway, MediaMap, MediaRef, MediaSocketKind};

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
    media: MediaRef,
    sockets: Vec<BoundSocket>,
}

/// Media sockets of all calls.
#[derive(Default)]
pub struct MediaSockets {
    calls: Slab<CallMedia>,
    by_media: MediaMap<usize>,
    /// Datagrams the kernel would not take (counted, not retried: RTP is loss-tolerant).
    pub dropped_sends: u64,
}

impl MediaSockets {
    /// Binds every socket of one call. On failure nothing stays bound and the error names
    /// the address.
    pub fn open(
        &mut self,
        registry: &Registry,
        generations: &mut Generations,
        media: MediaRef,
        wanted: &[(MediaSocketKind, SocketAddr)],
    ) -> Result<(), String> {
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

    /// Closes a call's sockets.
    pub fn close(&mut self, registry: &Registry, media: MediaRef) {
        let Some(key) = self.by_media.remove(&media) else {
            return;
        };
        if self.calls.contains(key) {
            for mut s in self.calls.remove(key).sockets {
                let _ = registry.deregister(&mut s.socket);
            }
        }
    }

    /// Readiness on a media socket: reads every datagram into the gateway, sending what the
    /// bridge answers right away.
    pub fn read_ready(
        &mut self,
        token_key: usize,
        generation: u32,
        now: Instant,
        gateway: &mut Gateway,
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
        loop {
            let received = match self.calls.get(key).and_then(|c| c.sockets.get(index)) {
                Some(bound) => bound.socket.recv_from(buf),
                None => return,
            };
            match received {
                Ok((n, from)) => {
                    let Some(datagram) = buf.get_mut(..n) else {
                        continue;
                    };
                    gateway.handle_media_datagram(now, media, kind, local, from, datagram);
                    self.flush_key(now, key, media, gateway);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP port unreachable and friends concern one datagram, not the socket.
                Err(_) => {}
            }
        }
    }

    /// Drains the call's bridge: sends what it has queued, hands its events to the gateway.
    pub fn flush(&mut self, now: Instant, media: MediaRef, gateway: &mut Gateway) {
        let Some(&key) = self.by_media.get(&media) else {
            // Sockets gone (call ending): drain so the bridge does not hold packets.
            gateway.drain_media(now, media, |_| {});
            return;
        };
        self.flush_key(now, key, media, gateway);
    }

    /// [`flush`](Self::flush) for the call at slab `key`, known to carry `media`.
    fn flush_key(&mut self, now: Instant, key: usize, media: MediaRef, gateway: &mut Gateway) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        let dropped_sends = &mut self.dropped_sends;
        gateway.drain_media(now, media, |t| {
            // At most five sockets: a linear look-up beats hashing.
            let Some(bound) = call.sockets.iter().find(|s| s.local == t.from) else {
                return;
            };
            // WouldBlock and the rest alike: counted, not retried (RTP is loss-tolerant).
            if bound.socket.send_to(t.bytes, t.to).is_err() {
                *dropped_sends += 1;
            }
        });
    }
}
