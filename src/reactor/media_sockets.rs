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

/// Why a call's media sockets could not be opened (rendered in the reactor's log line; the
/// gateway learns only that the media is unavailable).
#[derive(Debug)]
pub enum MediaOpenError {
    /// More sockets than one call can have.
    TooMany {
        /// Sockets the call would have.
        sockets: usize,
    },
    /// Sockets asked for a call whose sockets are closed.
    ClosedCall,
    /// A socket could not be bound or registered.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
}

impl std::fmt::Display for MediaOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaOpenError::TooMany { sockets } => write!(
                f,
                "{sockets} media sockets for one call (at most {MAX_SOCKETS_PER_CALL})"
            ),
            MediaOpenError::ClosedCall => f.write_str("media sockets asked for a closed call"),
            MediaOpenError::Bind { addr, source } => {
                write!(f, "cannot bind media socket {addr}: {source}")
            }
        }
    }
}

impl std::error::Error for MediaOpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MediaOpenError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl MediaSockets {
    /// Binds every socket of one call; for a call that has sockets already (video added by
    /// a renegotiation) the new ones join them. On failure nothing new stays bound.
    pub fn open(
        &mut self,
        registry: &Registry,
        generations: &mut Generations,
        media: MediaId,
        wanted: &[(MediaSocketKind, SocketAddr)],
    ) -> Result<(), MediaOpenError> {
        if let Some(&key) = self.by_media.get(&media) {
            let call = self.calls.get_mut(key).ok_or(MediaOpenError::ClosedCall)?;
            return bind_into(registry, key, call, wanted);
        }
        let entry = self.calls.vacant_entry();
        let key = entry.key();
        let mut call = CallMedia {
            generation: generations.advance(),
            media,
            sockets: Vec::with_capacity(wanted.len()),
        };
        bind_into(registry, key, &mut call, wanted)?;
        entry.insert(call);
        self.by_media.insert(media, key);
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

/// Binds `wanted` beside the sockets call `key` has; on failure the new ones are closed
/// again and the call keeps the sockets it had.
fn bind_into(
    registry: &Registry,
    key: usize,
    call: &mut CallMedia,
    wanted: &[(MediaSocketKind, SocketAddr)],
) -> Result<(), MediaOpenError> {
    let first = call.sockets.len();
    if first + wanted.len() > MAX_SOCKETS_PER_CALL {
        return Err(MediaOpenError::TooMany {
            sockets: first + wanted.len(),
        });
    }
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
            Err(source) => {
                for mut s in call.sockets.drain(first..) {
                    let _ = registry.deregister(&mut s.socket);
                }
                return Err(MediaOpenError::Bind { addr, source });
            }
        }
    }
    Ok(())
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
