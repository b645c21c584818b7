//! mio tokens that say what a readiness event is for.
//!
//! A token packs a kind, a slab key and a generation. Slab keys are reused as soon as an
//! entry is removed, so an event still queued for a closed connection could otherwise reach
//! the new one that took its key; the generation makes such a stale event miss.

use mio::Token;

/// What a token refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A WebSocket listener (key = index into the listener list).
    Listener,
    /// A WebSocket client connection (key = slab key).
    WsConn,
    /// The signal pipe (SIGTERM/SIGINT).
    Signals,
    /// The SIP UDP socket.
    SipUdp,
    /// A SIP TCP or TLS listener (key 0: TCP, 1: TLS).
    SipListener,
    /// A SIP TCP/TLS connection (key = slab key).
    SipStream,
    /// A DNS client socket (key 0: IPv4, 1: IPv6).
    Dns,
    /// A call's media socket (key = call slab key << 3 | socket index).
    Media,
    /// The message store's worker has results (its `mio::Waker`).
    Store,
    /// An MSRP listener (key 0: TCP, 1: TLS).
    MsrpListener,
    /// An MSRP connection (key = slab key).
    MsrpStream,
    /// An XCAP client connection (key = slab key).
    XcapStream,
}

impl TokenKind {
    const fn code(self) -> usize {
        match self {
            TokenKind::Listener => 1,
            TokenKind::WsConn => 2,
            TokenKind::Signals => 3,
            TokenKind::SipUdp => 4,
            TokenKind::SipListener => 5,
            TokenKind::SipStream => 6,
            TokenKind::Dns => 7,
            TokenKind::Media => 8,
            TokenKind::Store => 9,
            TokenKind::MsrpListener => 10,
            TokenKind::MsrpStream => 11,
            TokenKind::XcapStream => 12,
        }
    }

    fn from_code(code: usize) -> Option<TokenKind> {
        Some(match code {
            1 => TokenKind::Listener,
            2 => TokenKind::WsConn,
            3 => TokenKind::Signals,
            4 => TokenKind::SipUdp,
            5 => TokenKind::SipListener,
            6 => TokenKind::SipStream,
            7 => TokenKind::Dns,
            8 => TokenKind::Media,
            9 => TokenKind::Store,
            10 => TokenKind::MsrpListener,
            11 => TokenKind::MsrpStream,
            12 => TokenKind::XcapStream,
            _ => return None,
        })
    }
}

const KEY_BITS: u32 = 32;
const GENERATION_BITS: u32 = 24;
const KEY_MASK: usize = (1 << KEY_BITS) - 1;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

/// A decoded token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParts {
    /// What it is for.
    pub kind: TokenKind,
    /// Slab key or index.
    pub key: usize,
    /// Generation of the slab entry (24 bits).
    pub generation: u32,
}

/// Packs a token. Keys above 2^32 cannot occur: connection limits are far lower.
pub fn encode(kind: TokenKind, key: usize, generation: u32) -> Token {
    debug_assert!(key <= KEY_MASK);
    Token(
        (kind.code() << (KEY_BITS + GENERATION_BITS))
            | (((generation & GENERATION_MASK) as usize) << KEY_BITS)
            | (key & KEY_MASK),
    )
}

/// Unpacks a token; `None` for a token we never made.
pub fn decode(token: Token) -> Option<TokenParts> {
    let raw = token.0;
    Some(TokenParts {
        kind: TokenKind::from_code(raw >> (KEY_BITS + GENERATION_BITS))?,
        key: raw & KEY_MASK,
        generation: ((raw >> KEY_BITS) as u32) & GENERATION_MASK,
    })
}

/// Hands out generations; wraps after 2^24, far beyond a slab entry's lifetime overlap.
#[derive(Debug, Default)]
pub struct Generations(u32);

impl Generations {
    /// The next generation.
    pub fn advance(&mut self) -> u32 {
        self.0 = (self.0 + 1) & GENERATION_MASK;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stale_generations_differ() {
        let t = encode(TokenKind::WsConn, 12345, 77);
        assert_eq!(
            decode(t),
            Some(TokenParts {
                kind: TokenKind::WsConn,
                key: 12345,
                generation: 77
            })
        );
        assert_ne!(
            encode(TokenKind::WsConn, 5, 1),
            encode(TokenKind::WsConn, 5, 2)
        );
        assert_eq!(decode(Token(0)), None);
        let mut g = Generations(GENERATION_MASK - 1);
        assert_eq!(g.advance(), GENERATION_MASK);
        assert_eq!(g.advance(), 0);
    }
}
