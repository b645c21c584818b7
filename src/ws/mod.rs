//! The WebSocket endpoint as a sans-IO engine: the HTTP upgrade at `/webrtcgateway/ws`
//! (RFC 6455 section 4), subprotocol negotiation, frames, server pings and the close
//! handshake. The reactor feeds it bytes (already decrypted for `wss://`) and writes out
//! what it produces.

mod connection;
pub mod http;

pub use connection::{CloseReason, WsConnection, WsEvent, WsLimits};
pub use http::{Endpoint, Service};

/// The only resource that upgrades to a WebSocket; other paths get 404 (SylkServer mounts the
/// gateway at `/webrtcgateway/` with the socket at `ws`, spec section 3).
pub const WEBSOCKET_PATH: &str = "/webrtcgateway/ws";
