//! MSRP (RFC 4975) for sylk-gateway's chat sessions, sans-IO: no socket, no clock, no mio.
//!
//! * [`uri`]: MSRP URIs and paths.
//! * [`frame`]: typed frame heads, the streaming [`FrameReader`](frame::FrameReader) with
//!   strict limits, and the writer.
//! * [`connection`]: [`MsrpConnection`], the engine of one session over one TCP/TLS
//!   connection: transactions and their timeouts, chunking of outgoing messages
//!   (interruptible, at most [`MsrpConfig::chunk_size`] bytes of body per chunk),
//!   reassembly of incoming ones (bounded by [`MsrpConfig::max_message_size`]), success
//!   and failure reports, RFC 4976 relay AUTH with digest from the account's HA1, Use-Path
//!   and its refresh. The reactor owns the socket; the engine takes bytes through
//!   `handle_*(now, ..)` and gives frames, events and its deadline through
//!   [`poll_output`](MsrpConnection::poll_output).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod frame;
pub mod uri;

#[cfg(test)]
mod mutation;

pub use connection::{
    CloseReason, Delivery, MsrpConfig, MsrpConnection, MsrpEvent, MsrpTransmit, OutgoingId,
    RelayAuth, Role, SendError,
};
pub use uri::MsrpUri;
